//! The durable request record: what is stored before a request is forwarded, and
//! what every transition (enqueue, start, complete, tail call) moves along.

use crate::{FlowId, NodeId, RequestId};
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// Where a request goes. Services and actor types share one routing namespace
/// (spec §4.1), so both resolve to a name offered by mesh members.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    Service { name: String },
    Actor { actor_type: String, id: String },
}

impl Target {
    /// The name a member must offer to serve this target.
    pub fn routing_name(&self) -> &str {
        match self {
            Target::Service { name } => name,
            Target::Actor { actor_type, .. } => actor_type,
        }
    }
}

/// How the caller consumes the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestKind {
    /// The caller blocks until the reply arrives.
    Call,
    /// The caller got `202 OK`; the reply is only logged.
    Tell,
    /// The caller got `202 <id>` and collects the reply with `/kar/v1/await`.
    Promise,
}

impl RequestKind {
    /// Whether somebody waits for the reply.
    pub fn expects_reply(self) -> bool {
        !matches!(self, RequestKind::Tell)
    }
}

/// The HTTP request to make to the target component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// HTTP method (`GET`, `POST`, ...).
    pub method: String,
    /// Path on the component, starting with `/`, percent-encoded as it goes on the wire.
    pub path: String,
    /// Query string without the `?` (forwarded on service calls, spec §9.7).
    pub query: Option<String>,
    /// Headers to forward, in order, names as received.
    pub headers: Vec<(String, String)>,
    /// Body bytes, unchanged (spec §9.13).
    pub body: Bytes,
}

/// The durable record of one request. It is written to the store before the request
/// is forwarded anywhere, and its completion is one atomic store transition.
///
/// An actor target whose invocation is a `DELETE` of the actor's own path
/// (`/kar/impl/v1/actor/T/I`) is the removal of the actor (spec §2.2): the host
/// deactivates the instance and drops its state and placement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: RequestId,
    pub kind: RequestKind,
    pub target: Target,
    pub invocation: Invocation,
    /// The node whose component made the request; replies are routed there.
    pub caller: NodeId,
    /// The flow (session) the request runs in.
    pub flow: FlowId,
    /// The request from which this one was made, if known.
    pub parent: Option<RequestId>,
    /// Start deadline in Unix milliseconds: a request that has not started by then
    /// fails (calls) or is dropped (tells). `None`: no deadline.
    pub deadline: Option<u64>,
    /// Tail-call step: 0 for the original request, k for its k-th continuation.
    pub step: u32,
    /// Delivery attempt of this step: 0 for the first, incremented by the store each
    /// time recovery re-delivers the step after its executor died. A re-delivered
    /// step may have started already, so its start deadline no longer applies.
    pub attempt: u32,
    /// Set on a service continuation of an actor tail call that named a method: a
    /// `200` service reply is re-wrapped as `{"value": ...}` for the actor caller
    /// (spec §4.3).
    pub wrap_reply: bool,
    /// While tracing is on: the span the spans of this step's attempts are children
    /// of (the accepting span; for a tail-call step, the step's span), so that a
    /// re-delivered attempt joins the trace. Last field, tolerated missing: records
    /// written before it existed read as `None`.
    #[serde(default, deserialize_with = "crate::trace::trailing")]
    pub trace: Option<crate::TraceContext>,
}

impl Request {
    /// A new request: a fresh id, step 0, first attempt.
    pub fn new(
        kind: RequestKind,
        target: Target,
        invocation: Invocation,
        caller: NodeId,
        flow: FlowId,
        parent: Option<RequestId>,
        deadline: Option<u64>,
    ) -> Request {
        Request {
            id: RequestId::generate(),
            kind,
            target,
            invocation,
            caller,
            flow,
            parent,
            deadline,
            step: 0,
            attempt: 0,
            wrap_reply: false,
            trace: None,
        }
    }

    /// Whether the start deadline has passed at `now` (Unix milliseconds).
    pub fn deadline_passed(&self, now: u64) -> bool {
        self.deadline.is_some_and(|d| now > d)
    }
}

/// How a request ended, as recorded by its completion transition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The component replied (any status: non-2xx replies are relayed, not errors).
    Reply(Reply),
    /// The mesh could not deliver it (deadline expired, component unreachable, ...).
    /// Callers see `500 failed to send message: <reason>`.
    Failed(String),
}

use crate::Reply;

#[cfg(test)]
mod tests {
    use super::*;

    /// The record as it was before the `trace` field: decoded with `trace: None`.
    #[derive(Serialize)]
    struct Before {
        id: RequestId,
        kind: RequestKind,
        target: Target,
        invocation: Invocation,
        caller: NodeId,
        flow: FlowId,
        parent: Option<RequestId>,
        deadline: Option<u64>,
        step: u32,
        attempt: u32,
        wrap_reply: bool,
    }

    #[test]
    fn records_without_a_trace_still_decode() {
        let mut request = Request::new(
            RequestKind::Call,
            Target::Service { name: "s".into() },
            Invocation {
                method: "GET".into(),
                path: "/p".into(),
                query: None,
                headers: Vec::new(),
                body: Bytes::from_static(b"x"),
            },
            NodeId("n".into()),
            FlowId::generate(),
            None,
            Some(7),
        );
        let before = Before {
            id: request.id.clone(),
            kind: request.kind,
            target: request.target.clone(),
            invocation: request.invocation.clone(),
            caller: request.caller.clone(),
            flow: request.flow.clone(),
            parent: None,
            deadline: Some(7),
            step: 0,
            attempt: 0,
            wrap_reply: false,
        };
        let old = postcard::to_stdvec(&before).expect("encodes");
        assert_eq!(
            postcard::from_bytes::<Request>(&old).expect("decodes"),
            request
        );
        request.trace =
            crate::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let new = postcard::to_stdvec(&request).expect("encodes");
        assert_eq!(
            postcard::from_bytes::<Request>(&new).expect("decodes"),
            request
        );
    }
}
