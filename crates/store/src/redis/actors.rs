//! Actors in the Redis engine: their placements, their removal, and their state (flat
//! entries and submaps, layout in `lua/lib.lua`), each operation one script.

use super::scripts::{ByHandle, Script, Unfenced};
use super::scripts::{
    MOVE_ACTOR, REMOVE_ACTOR, STATE_GET, STATE_GET_ALL, STATE_REMOVE, STATE_REMOVE_ALL, STATE_SET,
    STATE_UPDATE, SUBMAP_CLEAR, SUBMAP_ENTRIES,
};
use super::{decode_actor, encode_actor, unexpected, value_pairs, value_string, RedisStore};
use crate::{ActorStore, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::{ActorRef, ActorState, NodeId, StateUpdate, UpdateCounts};
use redis::{ScriptInvocation, Value};

impl RedisStore {
    /// An invocation of a read of `actor` (its first argument).
    fn actor_read(
        &self,
        script: &'static Script<Unfenced>,
        actor: &ActorRef,
    ) -> ScriptInvocation<'static> {
        let mut invocation = self.unfenced(script);
        invocation.arg(encode_actor(&actor.actor_type, &actor.id));
        invocation
    }

    /// An invocation of a transition of `actor` (its first argument).
    fn actor_write(
        &self,
        script: &'static Script<ByHandle>,
        actor: &ActorRef,
    ) -> Result<ScriptInvocation<'static>, StoreError> {
        let mut invocation = self.by_handle(script)?;
        invocation.arg(encode_actor(&actor.actor_type, &actor.id));
        Ok(invocation)
    }
}

#[async_trait]
impl ActorStore for RedisStore {
    async fn remove_actor(&self, actor: &ActorRef) -> Result<(), StoreError> {
        self.actor_write(&REMOVE_ACTOR, actor)?
            .invoke_async::<i64>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn move_actor(
        &self,
        from: &NodeId,
        actor: &ActorRef,
        to: Option<&NodeId>,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.by_member(&MOVE_ACTOR, &from.0)?;
        invocation
            .arg(&from.0)
            .arg(encode_actor(&actor.actor_type, &actor.id))
            .arg(to.map_or("", |n| n.0.as_str()))
            .arg(&actor.actor_type);
        let moved: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(moved == 1)
    }

    async fn placements(&self) -> Result<Vec<(ActorRef, NodeId)>, StoreError> {
        let key = format!("{}place", self.keys.prefix);
        let value: Value = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn.clone())
            .await?;
        let mut placements = value_pairs(value)?
            .into_iter()
            .map(|(actor, node)| {
                let actor = decode_actor(&actor).ok_or_else(|| StoreError::Corrupt {
                    key: key.clone(),
                    reason: format!("bad actor field {actor:?}"),
                })?;
                Ok((actor, NodeId(String::from_utf8_lossy(&node).into_owned())))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        placements.sort();
        Ok(placements)
    }

    async fn state_get(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
    ) -> Result<Option<Bytes>, StoreError> {
        let mut invocation = self.actor_read(&STATE_GET, actor);
        invocation
            .arg(key)
            .arg(if subkey.is_some() { "1" } else { "0" })
            .arg(subkey.unwrap_or(""));
        let value: Option<Vec<u8>> = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(value.map(Bytes::from))
    }

    async fn state_set(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
        value: Bytes,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.actor_write(&STATE_SET, actor)?;
        invocation
            .arg(key)
            .arg(if subkey.is_some() { "1" } else { "0" })
            .arg(subkey.unwrap_or(""))
            .arg(value.as_ref());
        let created: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(created == 1)
    }

    async fn state_remove(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.actor_write(&STATE_REMOVE, actor)?;
        invocation
            .arg(key)
            .arg(if subkey.is_some() { "1" } else { "0" })
            .arg(subkey.unwrap_or(""));
        let removed: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(removed == 1)
    }

    async fn state_get_all(&self, actor: &ActorRef) -> Result<ActorState, StoreError> {
        let reply: Value = self
            .actor_read(&STATE_GET_ALL, actor)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let Value::Array(mut parts) = reply else {
            return Err(unexpected("state", &reply));
        };
        if parts.is_empty() {
            return Err(unexpected("state", &Value::Array(parts)));
        }
        let mut flat = value_pairs(parts.remove(0))?;
        flat.sort_by(|a, b| a.0.cmp(&b.0));
        let mut submaps = Vec::with_capacity(parts.len());
        for part in parts {
            let Value::Array(mut pair) = part else {
                return Err(unexpected("submap", &part));
            };
            if pair.len() != 2 {
                return Err(unexpected("submap", &Value::Array(pair)));
            }
            let entries = value_pairs(pair.remove(1))?;
            let key = value_string(pair.remove(0))?;
            if !entries.is_empty() {
                submaps.push((key, entries));
            }
        }
        submaps.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(ActorState { flat, submaps })
    }

    async fn state_remove_all(&self, actor: &ActorRef) -> Result<u64, StoreError> {
        Ok(self
            .actor_write(&STATE_REMOVE_ALL, actor)?
            .invoke_async(&mut self.conn.clone())
            .await?)
    }

    async fn state_update(
        &self,
        actor: &ActorRef,
        update: &StateUpdate,
    ) -> Result<UpdateCounts, StoreError> {
        let mut invocation = self.actor_write(&STATE_UPDATE, actor)?;
        state_update_args(&mut invocation, update);
        let (removed, added): (u64, u64) = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(UpdateCounts { removed, added })
    }

    async fn submap_entries(
        &self,
        actor: &ActorRef,
        key: &str,
    ) -> Result<Vec<(String, Bytes)>, StoreError> {
        let mut invocation = self.actor_read(&SUBMAP_ENTRIES, actor);
        invocation.arg(key);
        let reply: Value = invocation.invoke_async(&mut self.conn.clone()).await?;
        value_pairs(reply)
    }

    async fn submap_clear(&self, actor: &ActorRef, key: &str) -> Result<u64, StoreError> {
        let mut invocation = self.actor_write(&SUBMAP_CLEAR, actor)?;
        invocation.arg(key);
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }
}

/// The arguments of `apply_state_update` (state_lib.lua): four counted lists.
pub(super) fn state_update_args(invocation: &mut ScriptInvocation<'_>, update: &StateUpdate) {
    invocation.arg(update.removals.len());
    for key in &update.removals {
        invocation.arg(key);
    }
    invocation.arg(update.submap_removals.len());
    for (key, subkeys) in &update.submap_removals {
        invocation.arg(key).arg(subkeys.len());
        for sub in subkeys {
            invocation.arg(sub);
        }
    }
    invocation.arg(update.updates.len());
    for (key, value) in &update.updates {
        invocation.arg(key).arg(value.as_ref());
    }
    invocation.arg(update.submap_updates.len());
    for (key, entries) in &update.submap_updates {
        invocation.arg(key).arg(entries.len());
        for (sub, value) in entries {
            invocation.arg(sub).arg(value.as_ref());
        }
    }
}
