//! What a member finds in its inbox, and where a new request went.

use kar_protocol::{NodeId, Outcome, Request, RequestId, RequestKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a member finds in its inbox.
///
/// Engines store messages encoded with postcard: new variants go at the end, so
/// that messages written by an earlier version still decode.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Execute this request: the member is its assignee.
    Execute(Box<Request>),
    /// A request this member made has completed.
    Completed {
        id: RequestId,
        kind: RequestKind,
        outcome: Outcome,
    },
    /// A member joined, left or died.
    MembersChanged,
    /// A control signal from another member (see [`Signal`]).
    Signal(Signal),
}

/// Control signals between the members of a mesh: typed messages that travel
/// through the inboxes but are *not* durable requests (no request record, no
/// retry, no recovery). Each one is either a hint whose loss only delays work that
/// a timer also does, or a query whose asker gives up after a timeout; a signal to a
/// member that dies is lost with it. What must survive crashes (requests, actor
/// removal, reminder firings, event deliveries) rides the durable request path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Signal {
    /// Events were published: run the event delivery loop now instead of at its
    /// next safety tick.
    EventsPublished,
    /// Answer with [`Signal::ActorsListed`] to `from`, quoting `query`.
    ListActors { from: NodeId, query: u64 },
    /// The actor instances activated on the sender, by type.
    ActorsListed {
        query: u64,
        actors: BTreeMap<String, Vec<String>>,
    },
    /// An operator killed or paused request `id` (`ControlStore`): stop executing
    /// it here (drop the call to the component, release the actor lock) and discard
    /// its outcome. Lost with a member that dies, which no longer runs it anyway.
    Abandon { id: RequestId },
    /// Answer with [`Signal::RunningListed`] to `from`, quoting `query`.
    ListRunning { from: NodeId, query: u64 },
    /// The requests the sender has handed to its component and not finished.
    RunningListed { query: u64, ids: Vec<RequestId> },
    /// Answer with [`Signal::LatencyListed`] to `from`, quoting `query`.
    ListLatency { from: NodeId, query: u64 },
    /// How long the sender's component took to answer, per method (its histograms).
    LatencyListed {
        query: u64,
        methods: Vec<MethodLatency>,
    },
}

/// The latency histogram of one method of a member's component (`<type>:<method>`
/// or `<service>:<path>`), as its Prometheus histogram holds it, in microseconds so
/// that it compares exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MethodLatency {
    pub method: String,
    /// `(upper bound in µs, observations at or below it)`, cumulative, by bound;
    /// `u64::MAX` is the `+Inf` bucket.
    pub buckets: Vec<(u64, u64)>,
    pub count: u64,
    pub sum_micros: u64,
}

/// Where [`crate::RequestStore::enqueue`] sent a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routing {
    Assigned(NodeId),
    Parked,
}
