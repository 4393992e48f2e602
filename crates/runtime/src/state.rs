//! The actor state façade (spec §2.4): every route of the state API is one store
//! transition, made from whichever member receives it (no routing to the actor's
//! host, no lock, no activation).

use crate::{Runtime, RuntimeError};
use bytes::Bytes;
use kar_protocol::{ActorRef, ActorState, StateUpdate, UpdateCounts};
use kar_store_api::Store;

/// The state of the application's actors, from [`Runtime::state`].
#[derive(Clone, Copy)]
pub struct State<'a> {
    store: &'a dyn Store,
}

/// One entry of an actor's state: a flat entry (`subkey` `None`) or an entry of
/// submap `key`.
pub struct Entry<'a> {
    store: &'a dyn Store,
    actor: &'a ActorRef,
    key: &'a str,
    subkey: Option<&'a str>,
}

impl Runtime {
    pub fn state(&self) -> State<'_> {
        State {
            store: self.store.as_ref(),
        }
    }
}

impl<'a> State<'a> {
    pub fn entry<'e>(&self, actor: &'e ActorRef, key: &'e str, subkey: Option<&'e str>) -> Entry<'e>
    where
        'a: 'e,
    {
        Entry {
            store: self.store,
            actor,
            key,
            subkey,
        }
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

impl Entry<'_> {
    pub async fn get(&self) -> Result<Option<Bytes>, RuntimeError> {
        Ok(self
            .store
            .state_get(self.actor, self.key, self.subkey)
            .await?)
    }

    /// Sets it; returns whether it was created (not replaced).
    pub async fn set(&self, value: Bytes) -> Result<bool, RuntimeError> {
        let store = self.store;
        Ok(store
            .state_set(self.actor, self.key, self.subkey, value)
            .await?)
    }

    /// Removes it; returns whether it existed.
    pub async fn remove(&self) -> Result<bool, RuntimeError> {
        Ok(self
            .store
            .state_remove(self.actor, self.key, self.subkey)
            .await?)
    }
}
