//! Durable requests: accepting, completing, tail calls and parked requests
//! (guarantees 1–6 of the architecture).

use crate::{Routing, StoreError};
use async_trait::async_trait;
use kar_protocol::{ActorRef, NodeId, Outcome, Request, RequestId, StateUpdate};

/// The life of a durable request, one atomic transition per step.
#[async_trait]
pub trait RequestStore: Send + Sync + 'static {
    /// Persists a new request and routes it, in one transition: to a random live member
    /// offering its target (the request is appended to that member's inbox), or, if
    /// none offers it, parks it until one joins.
    async fn enqueue(&self, request: &Request) -> Result<Routing, StoreError>;

    /// Records the outcome of a request executed by `node`. For calls and promises the
    /// outcome is kept and a [`Message::Completed`](crate::Message::Completed) goes to the caller's inbox; a tell,
    /// or a request whose caller is no longer a live member, is simply finished (never
    /// run again; no message goes to a dead inbox, no record stays behind). Completing
    /// a request that is already complete, unknown, or not queued on `node` (a stale
    /// attempt: recovery moved it) does nothing and returns `false`. When the request
    /// was the last unfinished call or promise of a *held* parent (see
    /// [`crate::MembershipStore::leave`]), the parent is routed in the same transition.
    ///
    /// Fails with [`StoreError::Fenced`] once `node` is no longer a member.
    async fn complete(
        &self,
        node: &NodeId,
        id: &RequestId,
        outcome: &Outcome,
    ) -> Result<bool, StoreError>;

    /// [`RequestStore::complete`] of an actor request together with the state writes
    /// its method handed over with its reply (`update` of `actor`'s state, applied as
    /// [`crate::ActorStore::state_update`] applies it), in one atomic transition: the
    /// writes are committed if and only if the completion is, so a stale attempt
    /// (`false`) writes nothing.
    async fn complete_with_state(
        &self,
        node: &NodeId,
        id: &RequestId,
        outcome: &Outcome,
        actor: &ActorRef,
        update: &StateUpdate,
    ) -> Result<bool, StoreError>;

    /// Records several outcomes of requests executed by `node` (group commit): each
    /// completion is exactly [`RequestStore::complete`] of its own, atomic (same
    /// checks, same effects, its own `bool` in the result, in order); engines commit
    /// many in one transaction. An error (fencing included) is the batch's: some
    /// completions may have been recorded all the same, which completing them again
    /// finds (`false`).
    ///
    /// The default completes them one after another.
    async fn complete_all(
        &self,
        node: &NodeId,
        completions: &[(RequestId, Outcome)],
    ) -> Result<Vec<bool>, StoreError> {
        let mut done = Vec::with_capacity(completions.len());
        for (id, outcome) in completions {
            done.push(self.complete(node, id, outcome).await?);
        }
        Ok(done)
    }

    /// The caller has consumed these outcomes: the records can go. Engines may
    /// delete them lazily (with a later transition); they are never delivered again.
    async fn forget(&self, ids: &[RequestId]) -> Result<(), StoreError>;

    /// Removes a request that is still parked (its start deadline passed). Returns
    /// `false` if it was adopted by a member meanwhile (it then runs normally). Like a
    /// completion, it may release a held parent.
    async fn expire_parked(&self, id: &RequestId) -> Result<bool, StoreError>;

    /// Completes step k of a request and enqueues its step k+1 (same id, `next`) in
    /// one transition (spec §4.3, guarantee 6). With `local`, the continuation stays
    /// assigned to `node`, which runs it at once because it holds the actor lock; it
    /// is put in no inbox. Otherwise it is routed like a new request.
    async fn tail_call(
        &self,
        node: &NodeId,
        next: &Request,
        local: bool,
    ) -> Result<Routing, StoreError>;

    /// Resumes a request paused by recovery (see [`crate::RecoveryPolicy`]), in one
    /// transition: its attempt count starts afresh (`attempt = 0`) and it is routed
    /// like a new request to a live member offering its target, or parked; a request
    /// whose calls or promises from its failed attempt are still unfinished is held
    /// until they finish, like any re-delivered step (guarantee 5). An unknown id, or
    /// a request that is not paused, changes nothing.
    async fn resume(&self, id: &RequestId) -> Result<Resumed, StoreError>;
}

/// What [`RequestStore::resume`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resumed {
    /// Resumed: routed to this member, or parked.
    Routed(Routing),
    /// Resumed, and held until the children of its failed attempt finish.
    Held,
    /// No request with this id (never accepted, or completed and gone).
    Unknown,
    /// The request exists but is not paused: nothing changed.
    NotPaused,
}
