//! Mesh membership: joining and leaving, the live members, and the inbox through
//! which a member receives its work and the mesh's signals.

use crate::{Message, StoreError};
use async_trait::async_trait;
use kar_protocol::{Member, NodeId};

/// Who is in the mesh, and the inbox of each member.
#[async_trait]
pub trait MembershipStore: Send + Sync + 'static {
    /// Joins the mesh as `member` and returns its inbox. Requests parked for a name the
    /// member offers are adopted by it in the same transition (they appear in the
    /// inbox). Every other member receives [`Message::MembersChanged`].
    async fn join(&self, member: &Member) -> Result<Box<dyn Inbox>, StoreError>;

    /// Leaves the mesh. Requests still assigned to the node are recovered like those
    /// of a dead node.
    ///
    /// Recovery of a member that left or died (guarantees 2–5): each request step
    /// queued on it is re-delivered with [`Request::attempt`](kar_protocol::Request::attempt) incremented, in arrival
    /// order, to a live member offering its target (actors are placed anew) or parked.
    /// A request that still has unfinished children (calls or promises whose
    /// [`Request::parent`](kar_protocol::Request::parent) is its id, queued, parked or held) is *held* instead:
    /// assigned to nobody, in no inbox, until its last such child finishes
    /// ([`crate::RequestStore::complete`], [`crate::RequestStore::expire_parked`]), which routes it. Outcomes only
    /// the member could collect are dropped. Recovery is idempotent and never stops
    /// the other members.
    ///
    /// The recoveries a handle performs (of members that left through it, or died)
    /// follow the [`RecoveryPolicy`] it was opened with: a step whose re-delivery
    /// would reach `max_attempts` is *paused* instead (see [`RecoveryPolicy`]).
    async fn leave(&self, node: &NodeId) -> Result<(), StoreError> {
        self.leave_releasing(node, &[]).await
    }

    /// [`MembershipStore::leave`], where the requests of `unstarted` (queued on
    /// `node`, which never handed them to its component: they waited for their
    /// back-off, or arrived while it was leaving) are re-delivered *without* counting
    /// an attempt: their executor did not die running them, so they are neither
    /// charged a death nor paused. Best effort on Redis: if a live member's renewal
    /// takes over the recovery, every step counts (as for a death).
    async fn leave_releasing(
        &self,
        node: &NodeId,
        unstarted: &[kar_protocol::RequestId],
    ) -> Result<(), StoreError>;

    /// The live members.
    async fn members(&self) -> Result<Vec<Member>, StoreError>;

    /// Sends a control signal to a live member: it appears in that member's inbox as
    /// [`Message::Signal`]. Signals are not durable requests: one sent to a member
    /// that dies is lost with it, which is what every signal wants (see [`Signal`](crate::Signal)).
    async fn signal(&self, to: &NodeId, signal: &crate::Signal) -> Result<(), StoreError>;
}

/// The inbox of one member: the requests it must execute, the outcomes of requests
/// it made, membership changes and signals, in the order they were appended.
#[async_trait]
pub trait Inbox: Send {
    /// Waits until at least one message is available and takes every available one.
    /// Cancel-safe: a cancelled call loses no message.
    async fn recv(&mut self) -> Result<Vec<Message>, StoreError>;
}

/// How the recoveries performed through one store handle treat a step whose executor
/// died: `kar run -max_attempts`. Each sidecar applies its own policy to the recoveries
/// it performs, so all the sidecars of an application should use the same one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RecoveryPolicy {
    /// How many deaths of its executor a request step may cause: the recovery that
    /// would re-deliver it with `attempt == max_attempts` (the step killed its
    /// executor `max_attempts` times) *pauses* it instead, in the same transition:
    /// status paused, in no inbox, assigned to nobody, with `attempt ==
    /// max_attempts`; nothing re-routes it (recoveries, joins, parked expiry) until
    /// [`crate::RequestStore::resume`]. `0`: unlimited (never paused), as upstream.
    pub max_attempts: u32,
}

impl RecoveryPolicy {
    /// Whether a step re-delivered with `attempt` (its executor died `attempt` times)
    /// is paused instead.
    pub fn pauses(&self, attempt: u32) -> bool {
        self.max_attempts != 0 && attempt >= self.max_attempts
    }
}
