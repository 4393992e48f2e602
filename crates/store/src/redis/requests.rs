//! Requests in the Redis engine: enqueueing (routed or parked), completion, tail
//! calls, and the deletion of finished and expired records. Reminder firings and
//! event deliveries enqueue their requests the same way ([`request_args`],
//! [`routing`]).

use super::actors::state_update_args;
use super::scripts::{
    COMPLETE, COMPLETE_ALL, COMPLETE_WITH_STATE, ENQUEUE, EXPIRE_PARKED, FORGET, RESUME, TAIL_CALL,
};
use super::{encode_actor, target_actor, value_string, RedisStore};
use crate::codec::encode;
use crate::codes::kind_code;
use crate::{RequestStore, Resumed, Routing, StoreError};
use async_trait::async_trait;
use kar_protocol::{ActorRef, NodeId, Outcome, Request, RequestId, StateUpdate};
use redis::{ScriptInvocation, Value};

/// Appends the six arguments describing a new request, in the order the scripts read
/// them (`enqueue.lua`, `enqueue_at` in `bindings.lua`): id, routing name, kind code,
/// caller, record (postcard), encoded target actor ('' for a service).
pub(super) fn request_args(invocation: &mut ScriptInvocation<'_>, request: &Request) {
    invocation
        .arg(&request.id.0)
        .arg(request.target.routing_name())
        .arg(kind_code(request.kind))
        .arg(&request.caller.0)
        .arg(encode(request))
        .arg(target_actor(&request.target));
}

/// Where script `what` says it routed a request it enqueued: `a:<node>` or `p`
/// (parked).
pub(super) fn routing(what: &str, outcome: &str) -> Result<Routing, StoreError> {
    match outcome {
        "p" => Ok(Routing::Parked),
        other => match other.strip_prefix("a:") {
            Some(node) => Ok(Routing::Assigned(NodeId(node.to_string()))),
            None => Err(StoreError::Corrupt {
                key: what.to_string(),
                reason: format!("unexpected outcome {other:?}"),
            }),
        },
    }
}

/// Most completions recorded by one `complete_all` script.
const COMPLETE_ALL_BATCH: usize = 256;

#[async_trait]
impl RequestStore for RedisStore {
    async fn enqueue(&self, request: &Request) -> Result<Routing, StoreError> {
        let mut invocation = self.by_member(&ENQUEUE, &request.caller.0)?;
        request_args(&mut invocation, request);
        invocation
            .arg(request.parent.as_ref().map_or("", |p| p.as_str()))
            .arg(request.attempt);
        let assignee: Option<String> = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(match assignee {
            Some(node) => Routing::Assigned(NodeId(node)),
            None => Routing::Parked,
        })
    }

    async fn complete(
        &self,
        node: &NodeId,
        id: &RequestId,
        outcome: &Outcome,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.by_member(&COMPLETE, &node.0)?;
        invocation.arg(&node.0).arg(&id.0).arg(encode(outcome));
        let done: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(done == 1)
    }

    async fn complete_with_state(
        &self,
        node: &NodeId,
        id: &RequestId,
        outcome: &Outcome,
        actor: &ActorRef,
        update: &StateUpdate,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.by_member(&COMPLETE_WITH_STATE, &node.0)?;
        invocation
            .arg(&node.0)
            .arg(&id.0)
            .arg(encode(outcome))
            .arg(encode_actor(&actor.actor_type, &actor.id));
        state_update_args(&mut invocation, update);
        let done: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(done == 1)
    }

    async fn complete_all(
        &self,
        node: &NodeId,
        completions: &[(RequestId, Outcome)],
    ) -> Result<Vec<bool>, StoreError> {
        let mut done = Vec::with_capacity(completions.len());
        // Bounded batches keep each script short (Redis runs one script at a time).
        for chunk in completions.chunks(COMPLETE_ALL_BATCH) {
            let mut invocation = self.by_member(&COMPLETE_ALL, &node.0)?;
            invocation.arg(&node.0);
            for (id, outcome) in chunk {
                invocation.arg(&id.0).arg(encode(outcome));
            }
            let results: Vec<i64> = invocation.invoke_async(&mut self.conn.clone()).await?;
            if results.len() != chunk.len() {
                return Err(StoreError::Corrupt {
                    key: "complete_all".to_string(),
                    reason: format!("{} results for {} completions", results.len(), chunk.len()),
                });
            }
            done.extend(results.into_iter().map(|r| r == 1));
        }
        Ok(done)
    }

    async fn forget(&self, ids: &[RequestId]) -> Result<(), StoreError> {
        // Bounded batches keep each script short (Redis runs one script at a time).
        for chunk in ids.chunks(512) {
            let mut invocation = self.by_handle(&FORGET)?;
            for id in chunk {
                invocation.arg(&id.0);
            }
            invocation
                .invoke_async::<i64>(&mut self.conn.clone())
                .await?;
        }
        Ok(())
    }

    async fn expire_parked(&self, id: &RequestId) -> Result<bool, StoreError> {
        let mut invocation = self.by_handle(&EXPIRE_PARKED)?;
        invocation.arg(&id.0);
        let removed: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(removed == 1)
    }

    async fn tail_call(
        &self,
        node: &NodeId,
        next: &Request,
        local: bool,
    ) -> Result<Routing, StoreError> {
        let mut invocation = self.by_member(&TAIL_CALL, &node.0)?;
        invocation
            .arg(&node.0)
            .arg(&next.id.0)
            .arg(next.target.routing_name())
            .arg(target_actor(&next.target))
            .arg(encode(next))
            .arg(if local { "1" } else { "0" })
            .arg(next.attempt);
        match invocation
            .invoke_async::<Value>(&mut self.conn.clone())
            .await?
        {
            Value::Int(-2) => Err(StoreError::NotAssigned(next.id.0.clone())),
            Value::Nil => Ok(Routing::Parked),
            other => Ok(Routing::Assigned(NodeId(value_string(other)?))),
        }
    }

    async fn resume(&self, id: &RequestId) -> Result<Resumed, StoreError> {
        let mut invocation = self.unfenced(&RESUME);
        invocation.arg(&id.0);
        let outcome: String = invocation.invoke_async(&mut self.conn.clone()).await?;
        match outcome.as_str() {
            "u" => Ok(Resumed::Unknown),
            "n" => Ok(Resumed::NotPaused),
            "h" => Ok(Resumed::Held),
            other => routing("resume", other).map(Resumed::Routed),
        }
    }
}
