//! Answers shared by the reminder and subscription routes (upstream calls both
//! "bindings" of an actor, spec §2.5, §2.6): the same statuses, bodies and
//! Content-Types for listing, getting, cancelling and storing them.

use crate::reply::{self, Response, JSON};
use bytes::Bytes;
use http::StatusCode;
use kar_protocol::reminder::to_go_json;
use kar_protocol::Reply;
use kar_runtime::RuntimeError;
use serde_json::Value;

/// The Content-Type upstream sets explicitly on store replies.
const TEXT_PLAIN: &str = "text/plain";

/// `GET` of all: a JSON array (possibly `[]`).
pub(crate) fn listed(result: Result<Vec<Value>, RuntimeError>, what: &str) -> Response {
    match result {
        Ok(all) => reply::typed(StatusCode::OK, JSON, to_go_json(&Value::Array(all))),
        Err(e) => failed(&e, what),
    }
}

/// `GET` of one: the object; absent → `404` (empty), or `200 null` with `nilOnAbsent`.
pub(crate) fn found(
    result: Result<Option<Value>, RuntimeError>,
    nil_on_absent: bool,
    what: &str,
) -> Response {
    match result {
        Ok(Some(value)) => reply::typed(StatusCode::OK, JSON, to_go_json(&value)),
        Ok(None) if nil_on_absent => reply::typed(StatusCode::OK, JSON, "null"),
        Ok(None) => not_found(),
        Err(e) => failed(&e, what),
    }
}

/// `DELETE` of all: the count.
pub(crate) fn cancelled_all(result: Result<u64, RuntimeError>, what: &str) -> Response {
    match result {
        Ok(n) => reply::text(StatusCode::OK, n.to_string()),
        Err(e) => failed(&e, what),
    }
}

/// `DELETE` of one: `1`; absent → `404` (empty), or `0` with `nilOnAbsent`.
pub(crate) fn cancelled(
    result: Result<bool, RuntimeError>,
    nil_on_absent: bool,
    what: &str,
) -> Response {
    match result {
        Ok(true) => reply::text(StatusCode::OK, "1"),
        Ok(false) if nil_on_absent => reply::text(StatusCode::OK, "0"),
        Ok(false) => not_found(),
        Err(e) => failed(&e, what),
    }
}

/// `PUT`: `200 OK` when it replaced one, `204` (text/plain, no body) when new.
pub(crate) fn stored(result: Result<bool, RuntimeError>, what: &str) -> Response {
    match result {
        Ok(true) => reply::typed(StatusCode::OK, TEXT_PLAIN, "OK"),
        Ok(false) => reply::typed(StatusCode::NO_CONTENT, TEXT_PLAIN, Bytes::new()),
        Err(e) => failed(&e, what),
    }
}

/// A `PUT` body that does not parse: `400`, upstream's error text without a trailing
/// newline.
pub(crate) fn bad_request(reason: &str) -> Response {
    reply::typed(StatusCode::BAD_REQUEST, TEXT_PLAIN, one_line(reason))
}

/// `404` with an empty body and an empty Content-Type.
fn not_found() -> Response {
    reply::relay(
        Reply::new(404, Some(""), Bytes::new()),
        reply::On204::StatusOnly,
    )
}

pub(crate) fn failed(e: &RuntimeError, what: &str) -> Response {
    if !matches!(e, RuntimeError::ShuttingDown) {
        tracing::error!("{what} operation failed: {e}");
    }
    match e {
        RuntimeError::ShuttingDown => reply::service_unavailable(),
        other => reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            one_line(&format!("failed to send message: {other}")),
        ),
    }
}

/// Error bodies are one line: embedded line breaks become spaces.
pub(crate) fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// The kind of a JSON value as Go's unmarshal errors name it.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
