//! Wire types shared by every kar crate: the durable request record, its target,
//! the reply relayed to callers, identifiers, mesh members and Go-style durations.
//!
//! This crate does no I/O; the store persists these types and the runtime moves them.

pub mod actor;
pub mod binding;
pub mod duration;
pub mod gojson;
pub mod ids;
pub mod member;
pub mod paths;
pub mod reminder;
pub mod reply;
pub mod request;
pub mod subscription;
pub mod time;

pub use actor::{ActorRef, ActorState, StateUpdate, UpdateCounts};
pub use binding::Binding;
pub use duration::{format_go_duration, parse_go_duration, DurationError};
pub use ids::{FlowId, NodeId, RequestId};
pub use member::Member;
pub use reminder::Reminder;
pub use reply::Reply;
pub use request::{Invocation, Outcome, Request, RequestKind, Target};
pub use subscription::Subscription;

/// Milliseconds since the Unix epoch: the clock used in durable records.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
