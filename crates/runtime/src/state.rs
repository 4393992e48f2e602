//! The actor state façade (spec §2.4): every route of the state API is one store
//! transition, made from whichever member receives it (no routing to the actor's
//! host, no lock, no activation).

use crate::{Runtime, RuntimeError};
use bytes::Bytes;
use kar_protocol::{ActorRef, ActorState, StateUpdate, UpdateCounts};
use kar_store::Store;

/// The state of the application's actors, from [`Runtime::state`]. `subkey` `None`
/// names a flat entry, `Some` an entry of submap `key`.
#[derive(Clone, Copy)]
pub struct State<'a> {
    store: &'a dyn Store,
}

impl Runtime {
    pub fn state(&self) -> State<'_> {
        State {
            store: self.store.as_ref(),
        }
    }
}

impl State<'_> {
    /// One entry.
    pub async fn get(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
    ) -> Result<Option<Bytes>, RuntimeError> {
        Ok(self.store.state_get(actor, key, subkey).await?)
    }

    /// Sets one entry; returns whether it was created (not replaced).
    pub async fn set(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
        value: Bytes,
    ) -> Result<bool, RuntimeError> {
        Ok(self.store.state_set(actor, key, subkey, value).await?)
    }

    /// Removes one entry; returns whether it existed.
    pub async fn remove(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
    ) -> Result<bool, RuntimeError> {
        Ok(self.store.state_remove(actor, key, subkey).await?)
    }

    /// Every flat entry and submap of an actor.
    pub async fn get_all(&self, actor: &ActorRef) -> Result<ActorState, RuntimeError> {
        Ok(self.store.state_get_all(actor).await?)
    }

    /// Removes all state of an actor; returns how many entries there were.
    pub async fn remove_all(&self, actor: &ActorRef) -> Result<u64, RuntimeError> {
        Ok(self.store.state_remove_all(actor).await?)
    }

    /// Applies a multi-element update atomically (removals first).
    pub async fn update(
        &self,
        actor: &ActorRef,
        update: &StateUpdate,
    ) -> Result<UpdateCounts, RuntimeError> {
        Ok(self.store.state_update(actor, update).await?)
    }

    /// The entries of one submap, in insertion order.
    pub async fn submap_entries(
        &self,
        actor: &ActorRef,
        key: &str,
    ) -> Result<Vec<(String, Bytes)>, RuntimeError> {
        Ok(self.store.submap_entries(actor, key).await?)
    }

    /// Removes every entry of one submap; returns how many there were.
    pub async fn submap_clear(&self, actor: &ActorRef, key: &str) -> Result<u64, RuntimeError> {
        Ok(self.store.submap_clear(actor, key).await?)
    }
}
