//! Actor invocation and removal (spec §2.2, §4.2).

use super::{idempotency, pragma_kind, Request};
use crate::body;
use crate::query::form_value;
use crate::reply::{self, Response};
use crate::router::ActorRef;
use crate::server::Ctx;
use http::StatusCode;
use kar_protocol::paths::actor_path;
use kar_protocol::{FlowId, Invocation, RequestId, RequestKind, Target};

/// Content type of actor method invocations (spec §3.3).
const KAR_JSON: &str = "application/kar+json";

/// `POST /kar/v1/actor/{type}/{id}/call/{method...}[?session=<flow>[:<parent>]]`;
/// `method` is still percent-encoded as received and goes to the component as is.
pub(crate) async fn call(ctx: &Ctx, actor: ActorRef, method: String, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // The body is the argument list, passed on verbatim and never validated: the
    // Python SDK sends `{"args":[...],"kwargs":{...}}` as well as arrays.
    let body = match body::read(body, &parts.headers, ctx.config.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let kind = pragma_kind(&parts.headers);
    let key = match idempotency::key(&parts.headers) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    let session = form_value(parts.uri.query(), "session");
    let (flow, parent) = session_parts(session.as_deref());
    // Only calls run in the caller's flow (re-entrancy); tells keep the parent for
    // bookkeeping but queue in a fresh flow; promises ignore the session entirely.
    let (flow, parent) = match kind {
        RequestKind::Call => (flow, parent),
        RequestKind::Tell => (None, parent),
        RequestKind::Promise => (None, None),
    };
    // Incoming headers (Content-Type included) are not forwarded; while tracing is
    // on, the caller's `traceparent` parents the request's spans (the component gets
    // kar's own, see kar_runtime::telemetry).
    let mut headers = vec![("Content-Type".to_string(), KAR_JSON.to_string())];
    if let Some(parent) = kar_runtime::telemetry::traceparent_header(&parts.headers) {
        headers.push(("traceparent".to_string(), parent.to_string()));
    }
    let invocation = Invocation {
        method: "POST".to_string(),
        path: format!("{}/{method}", actor_path(&actor.actor_type, &actor.id)),
        query: None,
        headers,
        body,
    };
    let target = Target::Actor {
        actor_type: actor.actor_type,
        id: actor.id,
    };
    let result = idempotency::request(ctx, target, invocation, kind, flow, parent, key).await;
    reply::mesh_request(result, kind)
}

/// `DELETE /kar/v1/actor/{type}/{id}`: a tell through the actor's queue; when it runs
/// the runtime deactivates the instance and drops its state and placement.
pub(crate) async fn remove(ctx: &Ctx, actor: ActorRef, _request: Request) -> Response {
    let actor = kar_protocol::ActorRef::new(actor.actor_type, actor.id);
    match ctx.runtime.remove_actor(actor).await {
        Ok(()) => reply::text(StatusCode::ACCEPTED, "OK"),
        Err(e) => reply::runtime_error(&e),
    }
}

/// Splits `<flow>[:<parent>[:...]]` like Go's `strings.Split(session, ":")`: part 0 is
/// the flow, part 1 the parent request; empty parts count as absent.
fn session_parts(session: Option<&str>) -> (Option<FlowId>, Option<RequestId>) {
    let Some(session) = session else {
        return (None, None);
    };
    let mut parts = session.split(':');
    let flow = parts
        .next()
        .filter(|flow| !flow.is_empty())
        .map(FlowId::from);
    let parent = parts
        .next()
        .filter(|parent| !parent.is_empty())
        .map(RequestId::from);
    (flow, parent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_split_on_colons() {
        let split = |s: Option<&str>| {
            let (flow, parent) = session_parts(s);
            (flow.map(|f| f.0), parent.map(|p| p.0))
        };
        assert_eq!(split(None), (None, None));
        assert_eq!(split(Some("")), (None, None));
        assert_eq!(split(Some("f1")), (Some("f1".into()), None));
        assert_eq!(split(Some("f1:r0")), (Some("f1".into()), Some("r0".into())));
        assert_eq!(
            split(Some("f1:r0:extra")),
            (Some("f1".into()), Some("r0".into()))
        );
        assert_eq!(split(Some(":r0")), (None, Some("r0".into())));
        assert_eq!(split(Some("None")), (Some("None".into()), None));
    }
}
