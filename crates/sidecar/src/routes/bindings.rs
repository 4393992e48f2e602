//! The reminder and subscription routes (upstream calls both
//! "bindings" of an actor, spec §2.5, §2.6): the same statuses, bodies and
//! Content-Types for listing, getting, cancelling and storing them.

use super::Request;
use crate::body;
use crate::query::form_value;
use crate::reply::{self, Response, JSON};
use crate::server::Ctx;
use bytes::Bytes;
use http::{Method, StatusCode};
use kar_protocol::reminder::to_go_json;
use kar_protocol::{ActorRef, Reply};
use kar_runtime::RuntimeError;
use serde_json::{Map, Value};

/// One kind of binding (reminders, event subscriptions): how it reads and writes its
/// JSON. The runtime reaches both the same way ([`kar_runtime::Bindings`]).
pub(crate) trait Binding: kar_runtime::Binding {
    /// Names one binding in errors ("reminder").
    const WHAT: &'static str;
    /// Names them in the `405` reason ("reminders").
    const PLURAL: &'static str;

    fn to_json(&self) -> Value;
    /// The binding a `PUT` body describes, or upstream's error text.
    fn parse(actor: ActorRef, id: String, body: &[u8]) -> Result<Self, String>;
}

/// `/kar/v1/actor/{type}/{id}/<bindings>[/{id}]`, every method the router lets through:
/// all of them (`id` None) or one.
pub(crate) async fn handle<B: Binding>(
    ctx: &Ctx,
    actor: ActorRef,
    id: Option<String>,
    request: Request,
) -> Response {
    if ctx.runtime.has_left() {
        return reply::service_unavailable();
    }
    let (parts, body) = request.into_parts();
    // Only the exact string `true` enables it (spec §2.0).
    let nil_on_absent = form_value(parts.uri.query(), "nilOnAbsent").as_deref() == Some("true");
    let bindings = ctx.runtime.bindings::<B>();
    let what = B::WHAT;
    match (id, parts.method) {
        (None, Method::GET) => listed(
            bindings
                .list(&actor)
                .await
                .map(|all| all.iter().map(B::to_json).collect()),
            what,
        ),
        (None, Method::DELETE) => cancelled_all(bindings.cancel_all(&actor).await, what),
        (Some(id), Method::GET) => found(
            bindings
                .get(&actor, &id)
                .await
                .map(|one| one.as_ref().map(B::to_json)),
            nil_on_absent,
            what,
        ),
        (Some(id), Method::DELETE) => {
            cancelled(bindings.cancel(&actor, &id).await, nil_on_absent, what)
        }
        (Some(id), Method::PUT) => {
            let body = match body::read(body, &parts.headers, ctx.config.max_body_bytes).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            match B::parse(actor, id, &body) {
                Ok(binding) => {
                    let parent = kar_runtime::telemetry::traceparent_header(&parts.headers);
                    stored(bindings.put_traced(binding, parent).await, what)
                }
                Err(reason) => bad_request(&reason),
            }
        }
        // The router admits no other combination.
        (_, method) => reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not supported on {}", B::PLURAL),
        ),
    }
}

/// The Content-Type upstream sets explicitly on store replies.
const TEXT_PLAIN: &str = "text/plain";

/// `GET` of all: a JSON array (possibly `[]`).
fn listed(result: Result<Vec<Value>, RuntimeError>, what: &str) -> Response {
    match result {
        Ok(all) => reply::typed(StatusCode::OK, JSON, to_go_json(&Value::Array(all))),
        Err(e) => failed(&e, what),
    }
}

/// `GET` of one: the object; absent → `404` (empty), or `200 null` with `nilOnAbsent`.
fn found(result: Result<Option<Value>, RuntimeError>, nil_on_absent: bool, what: &str) -> Response {
    match result {
        Ok(Some(value)) => reply::typed(StatusCode::OK, JSON, to_go_json(&value)),
        Ok(None) if nil_on_absent => reply::typed(StatusCode::OK, JSON, "null"),
        Ok(None) => not_found(),
        Err(e) => failed(&e, what),
    }
}

/// `DELETE` of all: the count.
fn cancelled_all(result: Result<u64, RuntimeError>, what: &str) -> Response {
    match result {
        Ok(n) => reply::text(StatusCode::OK, n.to_string()),
        Err(e) => failed(&e, what),
    }
}

/// `DELETE` of one: `1`; absent → `404` (empty), or `0` with `nilOnAbsent`.
fn cancelled(result: Result<bool, RuntimeError>, nil_on_absent: bool, what: &str) -> Response {
    match result {
        Ok(true) => reply::text(StatusCode::OK, "1"),
        Ok(false) if nil_on_absent => reply::text(StatusCode::OK, "0"),
        Ok(false) => not_found(),
        Err(e) => failed(&e, what),
    }
}

/// `PUT`: `200 OK` when it replaced one, `204` (text/plain, no body) when new.
fn stored(result: Result<bool, RuntimeError>, what: &str) -> Response {
    match result {
        Ok(true) => reply::typed(StatusCode::OK, TEXT_PLAIN, "OK"),
        Ok(false) => reply::typed(StatusCode::NO_CONTENT, TEXT_PLAIN, Bytes::new()),
        Err(e) => failed(&e, what),
    }
}

/// A `PUT` body that does not parse: `400`, upstream's error text without a trailing
/// newline.
fn bad_request(reason: &str) -> Response {
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

/// The JSON object of a `PUT` body, or upstream's error text; `go_type` is the Go type
/// upstream unmarshals it into.
pub(crate) fn json_object(body: &[u8], go_type: &str) -> Result<Map<String, Value>, String> {
    let spec: Value = serde_json::from_slice(body).map_err(|e| {
        if e.is_eof() {
            "unexpected end of JSON input".to_string()
        } else {
            format!("invalid JSON: {e}")
        }
    })?;
    match spec {
        Value::Object(spec) => Ok(spec),
        other => Err(format!(
            "json: cannot unmarshal {} into Go value of type {go_type}",
            json_kind(&other)
        )),
    }
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
