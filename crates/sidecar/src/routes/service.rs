//! Service requests (spec §2.1, decision §9.7).

use super::{idempotency, pragma_kind, Request};
use crate::body;
use crate::reply::{self, Response};
use crate::server::Ctx;
use http::header::{HeaderName, CONNECTION, CONTENT_LENGTH, HOST};
use http::HeaderMap;
use kar_protocol::{Invocation, Target};

/// `{ANY} /kar/v1/service/{service}/call/{path...}`: forwards method, `/<path>` (still
/// percent-encoded as received), query string, headers and body to the service.
pub(crate) async fn call(ctx: &Ctx, service: String, path: String, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match body::read(body, &parts.headers, ctx.config.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let kind = pragma_kind(&parts.headers);
    let key = match idempotency::key(&parts.headers) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let invocation = Invocation {
        method: parts.method.as_str().to_string(),
        path,
        query: parts.uri.query().map(str::to_string),
        headers: forwarded_headers(&parts.headers),
        body,
    };
    let target = Target::Service { name: service };
    let result = idempotency::request(ctx, target, invocation, kind, None, None, key).await;
    reply::mesh_request(result, kind)
}

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the usual proxy ones): they describe the
/// connection to this sidecar, not the request to the service. `Expect:
/// 100-continue` was answered here already: the body has been read.
const HOP_BY_HOP: &[&str] = &[
    "expect",
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Every request header in order, except hop-by-hop ones (including those named by
/// `Connection`), `Host` and `Content-Length` (the client recomputes them).
pub(crate) fn forwarded_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    let named_by_connection: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .collect();
    headers
        .iter()
        .filter(|(name, _)| {
            **name != HOST
                && **name != CONTENT_LENGTH
                && !HOP_BY_HOP.contains(&name.as_str())
                && !named_by_connection.contains(name)
        })
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                // Header values are almost always ASCII; obs-text bytes are kept as
                // U+FFFD rather than failing the request.
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn drops_hop_by_hop_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1"));
        headers.insert("content-length", HeaderValue::from_static("3"));
        headers.insert("connection", HeaderValue::from_static("keep-alive, x-hop"));
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert("te", HeaderValue::from_static("trailers"));
        headers.insert("expect", HeaderValue::from_static("100-continue"));
        headers.append("x-multi", HeaderValue::from_static("a"));
        headers.append("x-multi", HeaderValue::from_static("b"));
        headers.insert("pragma", HeaderValue::from_static("async"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        let forwarded = forwarded_headers(&headers);
        let names: Vec<&str> = forwarded.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x-multi", "x-multi", "pragma", "content-type"]);
        assert_eq!(forwarded[1].1, "b");
    }
}
