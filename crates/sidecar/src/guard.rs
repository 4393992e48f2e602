//! The checks every request passes before routing, whatever its route: the API token
//! for peers other than the component's own loopback address, and the declared body
//! size (bodies without a declared length are held to the same limit while they are
//! read, in `body.rs`).

use crate::reply::{self, Response};
use crate::routes::{self, Request};
use crate::server::Ctx;
use http::header::{HeaderValue, AUTHORIZATION, CONTENT_LENGTH, WWW_AUTHENTICATE};
use http::{HeaderMap, Method, StatusCode};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The secret that peers other than the component must present as
/// `Authorization: Bearer <token>`. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// `None` for an empty token (no authentication).
    pub fn new(token: impl Into<String>) -> Option<ApiToken> {
        let token = token.into();
        (!token.is_empty()).then_some(ApiToken(token))
    }

    /// Compares in time independent of where the first difference is.
    fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        let mut diff = expected.len() ^ presented.len();
        for (i, byte) in presented.iter().enumerate() {
            diff |= usize::from(byte ^ expected.get(i).copied().unwrap_or(!byte));
        }
        diff == 0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

/// Checks the request, then routes it.
pub(crate) async fn serve(ctx: &Ctx, peer: Option<SocketAddr>, request: Request) -> Response {
    match check(ctx, peer, &request) {
        None => routes::dispatch(ctx, peer, request).await,
        Some(mut refused) => {
            if request.method() == Method::HEAD {
                routes::strip_content(&mut refused);
            }
            refused
        }
    }
}

fn check(ctx: &Ctx, peer: Option<SocketAddr>, request: &Request) -> Option<Response> {
    if let Some(token) = &ctx.config.api_token {
        // The dashboard's page holds no data: it asks for the token itself.
        let page = ctx.dashboard && crate::dashboard::is_page(request);
        if !(exempt(peer, request) || page) {
            if let Err(reason) = authorize(token, request.headers()) {
                // The reason names what was wrong, never the token presented.
                let peer = peer.map_or_else(|| "unknown".to_string(), |p| p.ip().to_string());
                tracing::warn!(
                    "refused {} {} from {peer}: {reason}",
                    request.method(),
                    request.uri().path()
                );
                let mut response = reply::json_error(StatusCode::UNAUTHORIZED, reason);
                response
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                return Some(response);
            }
        }
    }
    let limit = ctx.config.max_body_bytes;
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Some(too_large(limit));
    }
    None
}

/// `413` with a JSON error naming the limit.
pub(crate) fn too_large(limit: usize) -> Response {
    reply::json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "request body too large: the limit is {limit} bytes (-max_body_bytes); \
             keep large payloads outside kar and pass a reference"
        ),
    )
}

/// The component's own address (the SDKs connect to 127.0.0.1) needs no token, so
/// components keep using the published SDKs unchanged. Only exactly 127.0.0.1 and ::1
/// count: other loopback addresses are treated like remote peers. The health route
/// needs none either: Kubernetes probes come from the node and it tells nothing.
fn exempt(peer: Option<SocketAddr>, request: &Request) -> bool {
    let local = peer.is_some_and(|peer| match peer.ip() {
        IpAddr::V4(ip) => ip == Ipv4Addr::LOCALHOST,
        IpAddr::V6(ip) => {
            ip == Ipv6Addr::LOCALHOST || ip.to_ipv4_mapped() == Some(Ipv4Addr::LOCALHOST)
        }
    });
    let health = request.uri().path() == "/kar/v1/system/health"
        && (request.method() == Method::GET || request.method() == Method::HEAD);
    local || health
}

fn authorize(token: &ApiToken, headers: &HeaderMap) -> Result<(), &'static str> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err("missing API token (Authorization: Bearer)");
    };
    let value = value.as_bytes();
    let presented = match value.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => &value[7..],
        _ => return Err("the Authorization header is not a Bearer token"),
    };
    if token.matches(presented) {
        Ok(())
    } else {
        Err("wrong API token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison() {
        let token = ApiToken::new("s3cret").unwrap();
        assert!(token.matches(b"s3cret"));
        assert!(!token.matches(b"s3cre"));
        assert!(!token.matches(b"s3cret!"));
        assert!(!token.matches(b""));
        assert!(!token.matches(b"S3cret"));
        assert!(ApiToken::new("").is_none());
        assert_eq!(format!("{token:?}"), "ApiToken(<redacted>)");
    }

    #[test]
    fn authorization_header() {
        let token = ApiToken::new("t").unwrap();
        let mut headers = HeaderMap::new();
        assert!(authorize(&token, &headers).is_err());
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        assert!(authorize(&token, &headers).is_ok());
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer t"));
        assert!(authorize(&token, &headers).is_ok());
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer u"));
        assert_eq!(authorize(&token, &headers), Err("wrong API token"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic dDp0"));
        assert!(authorize(&token, &headers).is_err());
    }
}
