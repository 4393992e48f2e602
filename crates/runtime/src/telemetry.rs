//! Traces (OpenTelemetry): the spans kar makes for a request — accepted, each
//! delivery attempt of each step, each call to the component, each tail call, each
//! reminder firing and event delivery — joined into one trace by the
//! [`TraceContext`] stored in the request record (`Request::trace`).
//!
//! The exporter is set up at the edge (`kar`'s `telemetry.rs`, from the standard
//! `OTEL_*` variables), which then calls [`enable`]. Until then every function here
//! returns at once after one atomic load: tracing off costs nothing else on the
//! request path, and no request record carries a context.

use kar_protocol::{Request, RequestKind, Target, TraceContext};
use opentelemetry::global::{self, BoxedSpan, BoxedTracer};
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue};
use std::sync::OnceLock;

static TRACER: OnceLock<BoxedTracer> = OnceLock::new();

/// Turns tracing on, with the global tracer provider the caller installed.
pub fn enable() {
    let _ = TRACER.get_or_init(|| global::tracer("kar"));
}

/// Whether tracing is on.
#[inline]
pub fn on() -> bool {
    TRACER.get().is_some()
}

/// A span kar made; ends when dropped. Empty while tracing is off.
#[derive(Default)]
pub struct Span(Option<BoxedSpan>);

impl Span {
    /// The context of this span, for children (stored in a request record, or sent
    /// as `traceparent`).
    pub fn context(&self) -> Option<TraceContext> {
        let span = self.0.as_ref()?;
        let context = span.span_context();
        context.is_valid().then(|| TraceContext {
            trace_id: context.trace_id().to_bytes(),
            span_id: context.span_id().to_bytes(),
            flags: context.trace_flags().to_u8(),
        })
    }

    pub fn set(&mut self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(KeyValue::new(key, value));
        }
    }

    /// Marks the span failed, with the reason.
    pub fn fail(&mut self, reason: impl Into<String>) {
        if let Some(span) = &mut self.0 {
            span.set_status(Status::error(reason.into()));
        }
    }
}

/// Records how a request ended on its span: the status of the reply, or the
/// failure.
pub fn outcome(span: &mut Span, outcome: &kar_protocol::Outcome) {
    if span.0.is_none() {
        return;
    }
    match outcome {
        kar_protocol::Outcome::Reply(reply) => status(span, reply.status),
        kar_protocol::Outcome::Failed(reason) => span.fail(reason.clone()),
    }
}

/// Records the HTTP status of a reply on its span (5xx: failed).
pub fn status(span: &mut Span, status: u16) {
    span.set("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.fail(format!("status {status}"));
    }
}

/// How a new span relates to an earlier one.
#[derive(Clone, Copy)]
pub enum Relation {
    /// A root span: a new trace.
    Root,
    /// A child of this span (possibly made by another process).
    ChildOf(TraceContext),
    /// A new trace that links to this span: what caused it (a reminder's schedule
    /// call, an event's publish) is not waiting for it.
    LinkedTo(Option<TraceContext>),
}

/// Starts a span named `name` (`attributes` are only computed while tracing is on).
pub fn start(
    name: impl FnOnce() -> String,
    kind: SpanKind,
    relation: Relation,
    attributes: impl FnOnce() -> Vec<KeyValue>,
) -> Span {
    let Some(tracer) = TRACER.get() else {
        return Span(None);
    };
    let mut builder = tracer
        .span_builder(name())
        .with_kind(kind)
        .with_attributes(attributes());
    let parent = match relation {
        Relation::ChildOf(parent) => Context::new().with_remote_span_context(remote(&parent)),
        Relation::Root => Context::new(),
        Relation::LinkedTo(cause) => {
            if let Some(cause) = cause {
                builder = builder.with_links(vec![Link::with_context(remote(&cause))]);
            }
            Context::new()
        }
    };
    Span(Some(builder.start_with_context(tracer, &parent)))
}

fn remote(context: &TraceContext) -> SpanContext {
    SpanContext::new(
        TraceId::from_bytes(context.trace_id),
        SpanId::from_bytes(context.span_id),
        TraceFlags::new(context.flags),
        true,
        TraceState::default(),
    )
}

/// What a span of `request` shows: `kar.app`, the target (actor type and id, or
/// service and path), the HTTP method, the request id, the flow, step and kind.
pub fn request_attributes(app: &str, request: &Request) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("kar.app", app.to_string()),
        KeyValue::new("kar.request.id", request.id.0.clone()),
        KeyValue::new("kar.flow", request.flow.0.clone()),
        KeyValue::new("kar.step", i64::from(request.step)),
        KeyValue::new("kar.kind", kind_name(request.kind)),
        KeyValue::new("http.request.method", request.invocation.method.clone()),
    ];
    match &request.target {
        Target::Actor { actor_type, id } => {
            attributes.push(KeyValue::new("kar.actor.type", actor_type.clone()));
            attributes.push(KeyValue::new("kar.actor.id", id.clone()));
            attributes.push(KeyValue::new("kar.method", method_of(request)));
        }
        Target::Service { name } => {
            attributes.push(KeyValue::new("kar.service", name.clone()));
            attributes.push(KeyValue::new("kar.path", request.invocation.path.clone()));
        }
    }
    if let Some(parent) = &request.parent {
        attributes.push(KeyValue::new("kar.parent", parent.0.clone()));
    }
    attributes
}

/// `Type:method` or `service:/path`: what the spans of `request` are named after
/// (the label of the component metrics too).
pub fn target_label(request: &Request) -> String {
    match &request.target {
        Target::Actor { actor_type, .. } => format!("{actor_type}:{}", method_of(request)),
        Target::Service { name } => format!("{name}:{}", request.invocation.path),
    }
}

/// The actor method a request invokes: its path below the actor's own path.
fn method_of(request: &Request) -> String {
    method_of_path(&request.invocation.path)
}

fn method_of_path(path: &str) -> String {
    // `/kar/impl/v1/actor/<type>/<id>/<method...>`
    path.splitn(8, '/').nth(7).unwrap_or("").to_string()
}

fn kind_name(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::Call => "call",
        RequestKind::Tell => "tell",
        RequestKind::Promise => "promise",
    }
}

/// The `traceparent` among forwarded headers, if valid.
pub fn traceparent_of(headers: &[(String, String)]) -> Option<TraceContext> {
    headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("traceparent"))
        .and_then(|(_, value)| TraceContext::parse(value))
}

/// The `traceparent` header of a request to the sidecar, if valid (and tracing on).
pub fn traceparent_header(headers: &http::HeaderMap) -> Option<TraceContext> {
    if !on() {
        return None;
    }
    TraceContext::parse(headers.get("traceparent")?.to_str().ok()?)
}

/// `headers` with the trace headers replaced by `context`: the component's own spans
/// become children of kar's component-call span.
pub fn with_traceparent(
    headers: &[(String, String)],
    context: &TraceContext,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| {
            !name.eq_ignore_ascii_case("traceparent") && !name.eq_ignore_ascii_case("tracestate")
        })
        .cloned()
        .collect();
    out.push(("traceparent".to_string(), context.to_string()));
    out
}

/// The `traceparent` member of a structured-mode CloudEvent (the distributed-tracing
/// extension), if any.
pub fn event_traceparent(event: &[u8]) -> Option<TraceContext> {
    // Most events carry none: skip parsing them.
    if !event.windows(11).any(|w| w == b"traceparent") {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(event).ok()?;
    TraceContext::parse(value.get("traceparent")?.as_str()?)
}

/// `event` with a `traceparent` member set to `context` if it is a structured-mode
/// CloudEvent (a JSON object with `specversion`) without one; otherwise unchanged.
/// The member is inserted first, the rest of the bytes are kept as they are.
pub fn with_event_traceparent(event: bytes::Bytes, context: &TraceContext) -> bytes::Bytes {
    let Ok(serde_json::Value::Object(members)) = serde_json::from_slice(&event) else {
        return event;
    };
    if !members.contains_key("specversion") || members.contains_key("traceparent") {
        return event;
    }
    let Some(open) = event.iter().position(|b| *b == b'{') else {
        return event;
    };
    let mut out = Vec::with_capacity(event.len() + 72);
    out.extend_from_slice(&event[..=open]);
    out.extend_from_slice(format!("\"traceparent\":\"{context}\",").as_bytes());
    out.extend_from_slice(&event[open + 1..]);
    bytes::Bytes::from(out)
}

pub use opentelemetry::trace::SpanKind as Kind;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloud_events_carry_the_publish_context() {
        let context =
            TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                .expect("valid");
        let event = bytes::Bytes::from_static(br#" {"specversion":"1.0","data":{"n":1.50}}"#);
        let traced = with_event_traceparent(event, &context);
        assert_eq!(
            &traced[..],
            format!(r#" {{"traceparent":"{context}","specversion":"1.0","data":{{"n":1.50}}}}"#)
                .as_bytes()
        );
        assert_eq!(event_traceparent(&traced), Some(context));
        // Not a CloudEvent, or one with its own context: unchanged.
        for kept in [
            &b"[1]"[..],
            br#"{"a":1}"#,
            br#"{"specversion":"1.0","traceparent":"x"}"#,
        ] {
            let event = bytes::Bytes::copy_from_slice(kept);
            assert_eq!(with_event_traceparent(event.clone(), &context), event);
        }
        assert_eq!(event_traceparent(b"{}"), None);
    }

    #[test]
    fn actor_methods_name_spans() {
        assert_eq!(
            method_of_path("/kar/impl/v1/actor/Account/a1/debit"),
            "debit".to_string()
        );
    }
}
