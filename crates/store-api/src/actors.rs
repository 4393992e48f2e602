//! Actors: placement and removal, and the actor state (flat keys and submaps).

use crate::StoreError;
use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::{ActorRef, ActorState, NodeId, StateUpdate, UpdateCounts};

/// Actor placement and actor state.
#[async_trait]
pub trait ActorStore: Send + Sync + 'static {
    /// Deletes an actor's state and placement (spec §2.2 actor removal).
    async fn remove_actor(&self, actor: &ActorRef) -> Result<(), StoreError>;

    /// Moves `actor` off `from` between two of its flows (rebalancing, a graceful
    /// leave), in one transition: if `actor` is placed on `from` and no request of it
    /// is queued on `from` (one that arrived meanwhile would run there: the move is
    /// then refused), its placement becomes `to` when `to` is a live member offering
    /// the actor's type, and is dropped otherwise (the next request places it anew).
    /// Returns whether it moved. The caller deactivated the instance on `from` first
    /// and holds it until this returns, so no flow of it runs anywhere meanwhile.
    ///
    /// Fails with [`StoreError::Fenced`] once `from` is no longer a member.
    async fn move_actor(
        &self,
        from: &NodeId,
        actor: &ActorRef,
        to: Option<&NodeId>,
    ) -> Result<bool, StoreError>;

    /// Every recorded placement: actor → node.
    async fn placements(&self) -> Result<Vec<(ActorRef, NodeId)>, StoreError>;

    /// One flat entry (`subkey` None) or one submap entry.
    async fn state_get(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
    ) -> Result<Option<Bytes>, StoreError>;

    /// Sets one entry; returns whether it was created (not replaced).
    async fn state_set(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
        value: Bytes,
    ) -> Result<bool, StoreError>;

    /// Removes one entry; returns whether it existed.
    async fn state_remove(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
    ) -> Result<bool, StoreError>;

    /// All flat entries and submaps of an actor.
    async fn state_get_all(&self, actor: &ActorRef) -> Result<ActorState, StoreError>;

    /// Removes all state of an actor; returns the number of entries removed.
    async fn state_remove_all(&self, actor: &ActorRef) -> Result<u64, StoreError>;

    /// Applies a multi-element update atomically (removals first).
    async fn state_update(
        &self,
        actor: &ActorRef,
        update: &StateUpdate,
    ) -> Result<UpdateCounts, StoreError>;

    /// The entries of one submap, in insertion order.
    async fn submap_entries(
        &self,
        actor: &ActorRef,
        key: &str,
    ) -> Result<Vec<(String, Bytes)>, StoreError>;

    /// Removes every entry of one submap; returns how many.
    async fn submap_clear(&self, actor: &ActorRef, key: &str) -> Result<u64, StoreError>;
}
