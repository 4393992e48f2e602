//! Idempotency keys in the Redis engine: one hash per live key (`P idem:...`, see the
//! key layout in `mod.rs`), expiring by TTL, so nothing needs sweeping.

use super::requests::{request_args, routing};
use super::scripts::{ENQUEUE_KEYED, KEYED};
use super::{unexpected, value_bytes, value_string, RedisStore};
use crate::codec::{decode, idempotency_target};
use crate::{IdempotencyStore, Keyed, KeyedRequest, StoreError};
use async_trait::async_trait;
use kar_protocol::{Request, RequestId, Target};
use redis::Value;
use std::time::Duration;

/// The suffix of the key's name: `<len(target)>:<target><key>` (self-delimiting, so
/// no target and key pair collides with another).
fn key_suffix(target: &Target, key: &str) -> String {
    let target = idempotency_target(target);
    format!("{}:{target}{key}", target.len())
}

/// `[id]` or `[id, outcome]`, as `keyed.lua` and `enqueue_keyed.lua` return them.
fn keyed_request(items: Vec<Value>) -> Result<KeyedRequest, StoreError> {
    let mut items = items.into_iter();
    let id = match items.next() {
        Some(id) => RequestId(value_string(id)?),
        None => return Err(unexpected("keyed request", &Value::Nil)),
    };
    let outcome = match items.next() {
        Some(outcome) => Some(decode(id.as_str(), &value_bytes(outcome)?)?),
        None => None,
    };
    Ok(KeyedRequest { id, outcome })
}

#[async_trait]
impl IdempotencyStore for RedisStore {
    async fn enqueue_keyed(
        &self,
        request: &Request,
        key: &str,
        retention: Duration,
    ) -> Result<Keyed, StoreError> {
        let mut invocation = self.by_member(&ENQUEUE_KEYED, &request.caller.0)?;
        request_args(&mut invocation, request);
        invocation
            .arg(request.parent.as_ref().map_or("", |p| p.as_str()))
            .arg(request.attempt)
            .arg(key_suffix(&request.target, key))
            .arg(u64::try_from(retention.as_millis()).unwrap_or(u64::MAX));
        let reply: Value = invocation.invoke_async(&mut self.conn.clone()).await?;
        let Value::Array(items) = reply else {
            return Err(unexpected("enqueue_keyed", &reply));
        };
        let mut items = items.into_iter();
        let tag = match items.next() {
            Some(tag) => value_string(tag)?,
            None => return Err(unexpected("enqueue_keyed", &Value::Nil)),
        };
        let rest: Vec<Value> = items.collect();
        match tag.as_str() {
            "n" => {
                let node = match rest.into_iter().next() {
                    Some(node) => value_string(node)?,
                    None => return Err(unexpected("enqueue_keyed", &Value::Nil)),
                };
                if node.is_empty() {
                    Ok(Keyed::New(crate::Routing::Parked))
                } else {
                    routing("enqueue_keyed", &format!("a:{node}")).map(Keyed::New)
                }
            }
            "p" | "d" => keyed_request(rest).map(Keyed::Existing),
            other => Err(StoreError::Corrupt {
                key: "enqueue_keyed".to_string(),
                reason: format!("unexpected tag {other:?}"),
            }),
        }
    }

    async fn keyed(&self, target: &Target, key: &str) -> Result<Option<KeyedRequest>, StoreError> {
        let mut invocation = self.unfenced(&KEYED);
        invocation.arg(key_suffix(target, key));
        let reply: Value = invocation.invoke_async(&mut self.conn.clone()).await?;
        match reply {
            Value::Array(items) if items.is_empty() => Ok(None),
            Value::Array(items) => keyed_request(items).map(Some),
            Value::Nil => Ok(None),
            other => Err(unexpected("keyed", &other)),
        }
    }

    async fn sweep_keys(&self) -> Result<u64, StoreError> {
        // Keys expire by their TTL.
        Ok(0)
    }
}
