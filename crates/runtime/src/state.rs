//! The actor state façade (spec §2.4): every route of the state API is one store
//! transition, made from whichever member receives it (no routing to the actor's
//! host, no lock, no activation). Transient store failures are retried for a few
//! seconds ([`Policy::BRIEF_OUTAGE`]) before the caller gets its 5xx.

use crate::retry::Policy;
use crate::{Runtime, RuntimeError};
use bytes::Bytes;
use kar_protocol::{ActorRef, ActorState, StateUpdate, UpdateCounts};
use kar_store_api::Store;

/// The state of the application's actors, from [`Runtime::state`].
#[derive(Clone, Copy)]
pub struct State<'a> {
    runtime: &'a Runtime,
}

/// One entry of an actor's state: a flat entry (`subkey` `None`) or an entry of
/// submap `key`.
pub struct Entry<'a> {
    runtime: &'a Runtime,
    actor: &'a ActorRef,
    key: &'a str,
    subkey: Option<&'a str>,
}

impl Runtime {
    pub fn state(&self) -> State<'_> {
        State { runtime: self }
    }
}

/// The retry of every state operation.
const BRIEF: Policy = Policy::BRIEF_OUTAGE;

impl<'a> State<'a> {
    fn store(&self) -> &'a dyn Store {
        self.runtime.store.as_ref()
    }

    pub fn entry<'e>(&self, actor: &'e ActorRef, key: &'e str, subkey: Option<&'e str>) -> Entry<'e>
    where
        'a: 'e,
    {
        Entry {
            runtime: self.runtime,
            actor,
            key,
            subkey,
        }
    }

    /// Every flat entry and submap of an actor.
    pub async fn get_all(&self, actor: &ActorRef) -> Result<ActorState, RuntimeError> {
        let store = self.store();
        let op = || store.state_get_all(actor);
        Ok(self
            .runtime
            .retry(BRIEF, "cannot read actor state", op)
            .await?)
    }

    /// Removes all state of an actor; returns how many entries there were.
    pub async fn remove_all(&self, actor: &ActorRef) -> Result<u64, RuntimeError> {
        let store = self.store();
        let op = || store.state_remove_all(actor);
        Ok(self
            .runtime
            .retry(BRIEF, "cannot remove actor state", op)
            .await?)
    }

    /// Applies a multi-element update atomically (removals first).
    pub async fn update(
        &self,
        actor: &ActorRef,
        update: &StateUpdate,
    ) -> Result<UpdateCounts, RuntimeError> {
        let store = self.store();
        let op = || store.state_update(actor, update);
        Ok(self
            .runtime
            .retry(BRIEF, "cannot update actor state", op)
            .await?)
    }

    /// The entries of one submap, in insertion order.
    pub async fn submap_entries(
        &self,
        actor: &ActorRef,
        key: &str,
    ) -> Result<Vec<(String, Bytes)>, RuntimeError> {
        let store = self.store();
        let op = || store.submap_entries(actor, key);
        Ok(self
            .runtime
            .retry(BRIEF, "cannot read a submap", op)
            .await?)
    }

    /// Removes every entry of one submap; returns how many there were.
    pub async fn submap_clear(&self, actor: &ActorRef, key: &str) -> Result<u64, RuntimeError> {
        let store = self.store();
        let op = || store.submap_clear(actor, key);
        Ok(self
            .runtime
            .retry(BRIEF, "cannot clear a submap", op)
            .await?)
    }
}

impl Entry<'_> {
    pub async fn get(&self) -> Result<Option<Bytes>, RuntimeError> {
        let (store, actor, key, subkey) = (
            self.runtime.store.as_ref(),
            self.actor,
            self.key,
            self.subkey,
        );
        let op = || store.state_get(actor, key, subkey);
        Ok(self
            .runtime
            .retry(BRIEF, "cannot read actor state", op)
            .await?)
    }

    /// Sets it; returns whether it was created (not replaced).
    pub async fn set(&self, value: Bytes) -> Result<bool, RuntimeError> {
        let (store, actor, key, subkey) = (
            self.runtime.store.as_ref(),
            self.actor,
            self.key,
            self.subkey,
        );
        let op = || store.state_set(actor, key, subkey, value.clone());
        Ok(self
            .runtime
            .retry(BRIEF, "cannot write actor state", op)
            .await?)
    }

    /// Removes it; returns whether it existed.
    pub async fn remove(&self) -> Result<bool, RuntimeError> {
        let (store, actor, key, subkey) = (
            self.runtime.store.as_ref(),
            self.actor,
            self.key,
            self.subkey,
        );
        let op = || store.state_remove(actor, key, subkey);
        Ok(self
            .runtime
            .retry(BRIEF, "cannot remove actor state", op)
            .await?)
    }
}
