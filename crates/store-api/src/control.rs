//! Operator control of pending requests: listing them page by page, reading one with
//! its children, killing and pausing (resuming is [`crate::RequestStore::resume`]).
//! These transitions are an operator's (`kar kill`, the admin API): they are fenced
//! on no member and work with no sidecar running.

use crate::StoreError;
use async_trait::async_trait;
use kar_protocol::{NodeId, Request, RequestId};
use std::fmt;
use std::str::FromStr;

/// The message of the outcome of a killed request: its caller gets the usual kar
/// error, `500 failed to send message: killed by an operator`.
pub const KILLED: &str = "killed by an operator";

/// Where a pending request is, as the store knows it (whether a queued request was
/// handed to its component is only known to its assignee: see the runtime).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PendingStatus {
    /// Assigned to a member, in its inbox or executing there.
    Queued,
    /// Nobody offers its target: waits for a member that does.
    Parked,
    /// A re-delivery waiting for the calls of its failed attempt (guarantee 5).
    Held,
    /// Its executor died `max_attempts` times, or an operator paused it.
    Paused,
}

impl PendingStatus {
    pub const ALL: [PendingStatus; 4] = [
        PendingStatus::Queued,
        PendingStatus::Parked,
        PendingStatus::Held,
        PendingStatus::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PendingStatus::Queued => "queued",
            PendingStatus::Parked => "parked",
            PendingStatus::Held => "held",
            PendingStatus::Paused => "paused",
        }
    }
}

impl fmt::Display for PendingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PendingStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        PendingStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown request status {s:?}"))
    }
}

/// Which pending requests a listing keeps; every field set must match (AND).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestFilter {
    pub status: Option<PendingStatus>,
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    pub service: Option<String>,
}

impl RequestFilter {
    /// Whether a request with this record and status is kept.
    pub fn keeps(&self, request: &Request, status: PendingStatus) -> bool {
        use kar_protocol::Target;
        if self.status.is_some_and(|s| s != status) {
            return false;
        }
        match &request.target {
            Target::Service { name } => {
                self.actor_type.is_none()
                    && self.actor_id.is_none()
                    && self.service.as_ref().is_none_or(|s| s == name)
            }
            Target::Actor { actor_type, id } => {
                self.service.is_none()
                    && self.actor_type.as_ref().is_none_or(|t| t == actor_type)
                    && self.actor_id.as_ref().is_none_or(|i| i == id)
            }
        }
    }
}

/// One pending request as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingRequest {
    /// Arrival order (the listing's order and cursor).
    pub seq: u64,
    /// The record of its current step, `attempt` as counted by recovery.
    pub request: Request,
    pub status: PendingStatus,
    /// The member it is queued on.
    pub assignee: Option<NodeId>,
}

/// One page of a listing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestPage {
    pub requests: Vec<PendingRequest>,
    /// Where the next page starts (the `seq` of the last request looked at); `None`
    /// on the last page. A page may hold fewer than `limit` requests (even none) and
    /// still have a next one: engines bound the work of one read.
    pub next: Option<u64>,
}

/// What [`ControlStore::kill`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Killed {
    /// Completed with the outcome [`KILLED`]; it was queued on this member (which was
    /// signalled to abandon it), or on none.
    Killed { assignee: Option<NodeId> },
    /// No request with this id (never accepted, or completed and gone).
    Unknown,
    /// Completed already (its outcome waits for its caller): nothing changed.
    AlreadyComplete,
}

/// What [`ControlStore::pause`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Paused {
    /// Paused; it was queued on this member (signalled to abandon it), or on none.
    Paused {
        assignee: Option<NodeId>,
    },
    Unknown,
    AlreadyComplete,
    /// Paused already: nothing changed.
    AlreadyPaused,
}

/// Operator control of pending requests.
#[async_trait]
pub trait ControlStore: Send + Sync + 'static {
    /// The pending requests (not done) that `filter` keeps, in arrival order, from
    /// the one after `after` (a [`RequestPage::next`]), at most `limit` of them.
    /// Reads one page of an index: never the whole table.
    async fn list_requests(
        &self,
        filter: &RequestFilter,
        after: Option<u64>,
        limit: usize,
    ) -> Result<RequestPage, StoreError>;

    /// One pending request and its children (the calls and promises it made that
    /// are still pending), or `None` if it is not pending.
    async fn request_with_children(
        &self,
        id: &RequestId,
    ) -> Result<Option<(PendingRequest, Vec<PendingRequest>)>, StoreError>;

    /// Completes a pending request now, whatever its status, with the outcome
    /// `Failed(KILLED)`, in one transition, like [`crate::RequestStore::complete`]
    /// but fenced on no assignee: the caller of a call or promise receives it, a
    /// held parent is released. Its assignee, if any, is sent
    /// [`crate::Signal::Abandon`] in the same transition, and a later `complete` or
    /// `tail_call` of the abandoned attempt changes nothing.
    async fn kill(&self, id: &RequestId) -> Result<Killed, StoreError>;

    /// Pauses a queued, parked or held request, in one transition: status paused,
    /// in no inbox, assigned to nobody, never re-routed until
    /// [`crate::RequestStore::resume`]. A queued one's assignee is sent
    /// [`crate::Signal::Abandon`]: a running attempt is abandoned like a killed one
    /// (its late outcome is discarded; resume runs the step again).
    async fn pause(&self, id: &RequestId) -> Result<Paused, StoreError>;
}
