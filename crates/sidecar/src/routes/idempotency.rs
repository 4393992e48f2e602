//! The `Idempotency-Key` header of service and actor requests (issue 9): read and
//! checked here, honoured by [`kar_runtime::Runtime::request_keyed`].

use crate::reply::{self, Response};
use crate::server::Ctx;
use http::{HeaderMap, StatusCode};
use kar_protocol::{FlowId, Invocation, RequestId, RequestKind, Target};
use kar_runtime::{Accepted, RuntimeError, MAX_IDEMPOTENCY_KEY_BYTES};

pub(crate) const HEADER: &str = "idempotency-key";

/// The request's idempotency key, if it has one, or the `400` answer to a bad one
/// (several headers, an empty value, characters other than visible ASCII and
/// spaces, more than [`MAX_IDEMPOTENCY_KEY_BYTES`]).
pub(crate) fn key(headers: &HeaderMap) -> Result<Option<String>, Box<Response>> {
    checked(headers).map_err(|reason| Box::new(reply::error(StatusCode::BAD_REQUEST, reason)))
}

/// The key, or why it is refused.
fn checked(headers: &HeaderMap) -> Result<Option<String>, String> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one Idempotency-Key header".to_string());
    }
    let len = value.as_bytes().len();
    if len > MAX_IDEMPOTENCY_KEY_BYTES {
        return Err(format!(
            "Idempotency-Key is {len} bytes long, longer than the limit of {MAX_IDEMPOTENCY_KEY_BYTES}"
        ));
    }
    match value.to_str() {
        Ok("") => Err("Idempotency-Key is empty".to_string()),
        Ok(key) => Ok(Some(key.to_string())),
        Err(_) => Err("Idempotency-Key must be visible ASCII characters".to_string()),
    }
}

/// Makes the request, under `key` if there is one.
pub(crate) async fn request(
    ctx: &Ctx,
    target: Target,
    invocation: Invocation,
    kind: RequestKind,
    flow: Option<FlowId>,
    parent: Option<RequestId>,
    key: Option<String>,
) -> Result<Accepted, RuntimeError> {
    match key {
        None => {
            ctx.runtime
                .request(target, invocation, kind, flow, parent)
                .await
        }
        Some(key) => {
            ctx.runtime
                .request_keyed(target, invocation, kind, flow, parent, &key)
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use http_body_util::BodyExt;

    async fn check(values: &[&[u8]]) -> Result<Option<String>, String> {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(HEADER, HeaderValue::from_bytes(v).unwrap());
        }
        match key(&headers) {
            Ok(key) => Ok(key),
            Err(response) => {
                let response = *response;
                assert_eq!(response.status(), StatusCode::BAD_REQUEST);
                let body = response.into_body().collect().await.unwrap().to_bytes();
                Err(String::from_utf8(body.to_vec()).unwrap())
            }
        }
    }

    #[tokio::test]
    async fn keys_are_checked() {
        assert_eq!(check(&[]).await, Ok(None));
        assert_eq!(
            check(&[&b"order-42"[..]]).await,
            Ok(Some("order-42".into()))
        );
        let longest = "k".repeat(MAX_IDEMPOTENCY_KEY_BYTES);
        assert_eq!(
            check(&[longest.as_bytes()]).await,
            Ok(Some(longest.clone()))
        );
        let long = "k".repeat(MAX_IDEMPOTENCY_KEY_BYTES + 1);
        assert_eq!(
            check(&[long.as_bytes()]).await,
            Err("Idempotency-Key is 257 bytes long, longer than the limit of 256\n".into())
        );
        assert_eq!(
            check(&[&b""[..]]).await,
            Err("Idempotency-Key is empty\n".into())
        );
        assert_eq!(
            check(&[&b"caf\xc3\xa9"[..]]).await,
            Err("Idempotency-Key must be visible ASCII characters\n".into())
        );
        assert_eq!(
            check(&[&b"a"[..], &b"b"[..]]).await,
            Err("more than one Idempotency-Key header\n".into())
        );
    }
}
