//! Responses shaped like the Go runtime's (spec §1.2): the SDKs branch on status and
//! Content-Type, so every reply the sidecar makes goes through these helpers.

use bytes::Bytes;
use http::header::{HeaderValue, ALLOW, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use http::StatusCode;
use http_body_util::Full;
use kar_protocol::Reply;
use kar_protocol::RequestKind;
use kar_runtime::{Accepted, RuntimeError};

pub(crate) type Response = http::Response<Full<Bytes>>;

/// What Go's content sniffing yields for the runtime's own text bodies.
pub(crate) const TEXT_UTF8: &str = "text/plain; charset=utf-8";
pub(crate) const JSON: &str = "application/json";

fn build(status: StatusCode, content_type: Option<HeaderValue>, body: Bytes) -> Response {
    let mut response = http::Response::new(Full::new(body));
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response.headers_mut().insert(CONTENT_TYPE, content_type);
    }
    response
}

/// A body the runtime wrote without an explicit type: `text/plain; charset=utf-8`,
/// except that an empty body carries no Content-Type at all (Go sniffs only
/// non-empty bodies; the Python SDK returns the raw response then).
pub(crate) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response {
    let body = body.into();
    let content_type = (!body.is_empty()).then(|| HeaderValue::from_static(TEXT_UTF8));
    build(status, content_type, body)
}

/// A body with an explicitly set Content-Type (kept even when the body is empty).
pub(crate) fn typed(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response {
    build(
        status,
        Some(HeaderValue::from_static(content_type)),
        body.into(),
    )
}

/// No body, no Content-Type.
pub(crate) fn empty(status: StatusCode) -> Response {
    build(status, None, Bytes::new())
}

/// Go's `http.Error`: the message plus one newline, text/plain, `nosniff`.
pub(crate) fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let mut response = typed(status, TEXT_UTF8, format!("{message}\n"));
    response
        .headers_mut()
        .insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

/// An error as a JSON object `{"error": message}` (the checks of `guard.rs`, which
/// upstream did not have, so no SDK expects Go's text form there).
pub(crate) fn json_error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let body = serde_json::json!({ "error": message.to_string() }).to_string();
    typed(status, JSON, body)
}

/// `405 Method Not Allowed` listing the methods the path supports.
pub(crate) fn method_not_allowed(allow: &str) -> Response {
    let mut response = error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    if let Ok(allow) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(ALLOW, allow);
    }
    response
}

/// httprouter's automatic answer to `OPTIONS` on a path without an OPTIONS handler.
pub(crate) fn options(allow: &str) -> Response {
    let mut response = empty(StatusCode::OK);
    if let Ok(allow) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(ALLOW, allow);
    }
    response
}

/// The spec's mapping of a failed mesh request: 503 while shutting down, 500 with
/// the reason otherwise.
/// The answer to a service or actor request made through the mesh (spec §2.1, §2.2):
/// the relayed reply of a call, `202 OK` for a tell, `202 <request id>` for a promise.
pub(crate) fn mesh_request(result: Result<Accepted, RuntimeError>, kind: RequestKind) -> Response {
    match result {
        Ok(Accepted::Reply(reply)) => relay(reply, On204::StatusOnly),
        Ok(Accepted::Queued(id)) => match kind {
            RequestKind::Tell => text(StatusCode::ACCEPTED, "OK"),
            _ => text(StatusCode::ACCEPTED, id.0),
        },
        Err(e) => runtime_error(&e),
    }
}

pub(crate) fn runtime_error(e: &RuntimeError) -> Response {
    match e {
        RuntimeError::ShuttingDown => service_unavailable(),
        other => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to send message: {other}"),
        ),
    }
}

pub(crate) fn service_unavailable() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable")
}

/// How to treat the Content-Type of a relayed 204.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum On204 {
    /// Calls write only the status of a 204 (spec §2.1).
    StatusOnly,
    /// Await sets the reply's Content-Type even on a 204 (spec §2.3).
    KeepContentType,
}

/// Relays a component's reply: its status, exactly its Content-Type (none if it sent
/// none) and its body byte for byte. A 204 (or 304) never has a body.
pub(crate) fn relay(reply: Reply, on_204: On204) -> Response {
    let Ok(status) = StatusCode::from_u16(reply.status) else {
        // Replies come from an HTTP client, so this is a corrupt record.
        return error(
            StatusCode::BAD_GATEWAY,
            format!("invalid status {} in the reply", reply.status),
        );
    };
    let bodiless = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let content_type = if status == StatusCode::NO_CONTENT && on_204 == On204::StatusOnly {
        None
    } else {
        reply.content_type.as_deref().and_then(|value| {
            HeaderValue::from_bytes(value.as_bytes())
                .inspect_err(|_| {
                    tracing::warn!("dropping invalid Content-Type {value:?} of a reply")
                })
                .ok()
        })
    };
    let body = if bodiless { Bytes::new() } else { reply.body };
    build(status, content_type, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_text_has_no_content_type() {
        assert!(text(StatusCode::OK, "")
            .headers()
            .get(CONTENT_TYPE)
            .is_none());
        assert_eq!(
            text(StatusCode::OK, "OK").headers()[CONTENT_TYPE],
            TEXT_UTF8
        );
    }

    #[test]
    fn relay_keeps_exact_content_type() {
        let r = relay(Reply::new(200, Some(""), "x"), On204::StatusOnly);
        assert_eq!(r.headers()[CONTENT_TYPE], "");
        let r = relay(Reply::new(200, None, "x"), On204::StatusOnly);
        assert!(r.headers().get(CONTENT_TYPE).is_none());
        let r = relay(Reply::new(204, Some("text/plain"), "x"), On204::StatusOnly);
        assert!(r.headers().get(CONTENT_TYPE).is_none());
        let r = relay(
            Reply::new(204, Some("text/plain"), "x"),
            On204::KeepContentType,
        );
        assert_eq!(r.headers()[CONTENT_TYPE], "text/plain");
        let r = relay(Reply::new(1000, None, "x"), On204::StatusOnly);
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY);
    }
}
