//! Wire types shared by every kar crate: the durable request record, its target,
//! the reply relayed to callers, identifiers, mesh members and Go-style durations.
//!
//! This crate does no I/O; the store persists these types and the runtime moves them.
//!
//! # Map
//!
//! | module | what lives there |
//! | --- | --- |
//! | [`request`] | the durable [`Request`] record: [`Target`], [`RequestKind`], [`Invocation`], [`Outcome`], and the constructors every new request goes through |
//! | [`reply`] | the component's [`Reply`], relayed verbatim to callers |
//! | [`ids`] | [`RequestId`], [`FlowId`], [`NodeId`] (`req-`/`flow-`/`node-<uuid4>`) |
//! | [`member`] | a mesh [`Member`]: one sidecar and what it offers |
//! | [`actor`] | [`ActorRef`] and the actor state shapes ([`ActorState`], [`StateUpdate`]) |
//! | [`state_ops`] | the JSON bodies of the state operations (stateUpdateOp, MapOp), decoded as Go decodes them |
//! | [`deferred_state`] | an actor method's state writes handed over with its reply (kar's sidecar and Rust SDK) |
//! | [`binding`] | what reminders and subscriptions share ([`Binding`]: keyed by actor and id, JSON head) |
//! | [`reminder`] | the stored [`Reminder`], its next target (skipping missed periods) and JSON |
//! | [`subscription`] | the stored [`Subscription`], its JSON and the body of an event delivery |
//! | [`trace`] | the W3C [`TraceContext`] a request carries while tracing is on |
//! | [`paths`] | percent-encoding of the app-side paths (`/kar/impl/v1/actor/...`) |
//! | [`gojson`] | JSON as Go re-encodes it (sorted members, float64 numbers, escapes) |
//! | [`duration`], [`time`] | Go durations and RFC 3339 timestamps, parsed and printed like Go |
//!
//! # Adding a type (or a field)
//!
//! The store persists records of these types ([`Request`], [`Outcome`], [`Member`],
//! and the fields of [`Reminder`] and [`Subscription`]) through serde, in postcard
//! (positional: no field names, no defaults) or as columns; records written by one
//! version are read by the next, so:
//!
//! * a new type is a new module with `#[derive(Serialize, Deserialize)]`, its
//!   behaviour as plain methods (no I/O, no clock reads: take `now` as an argument),
//!   its unit tests beside it, and a re-export here;
//! * never reorder, remove or insert fields of a stored type, nor variants of a stored
//!   enum, except at the end, and only with a store migration that rewrites old
//!   records (postcard cannot skip an unknown field or default a missing one) — or,
//!   for one optional last field of a record stored on its own, a deserializer that
//!   reads its absence as `None` (`Request::trace`, see `trace::trailing`);
//! * a JSON shape of the spec (what `kar get` or a route shows) is a `to_json` method
//!   that builds the members in Go's struct order, tested against the spec's text.

pub mod actor;
pub mod binding;
pub mod deferred_state;
pub mod duration;
pub mod gojson;
pub mod ids;
pub mod member;
pub mod paths;
pub mod reminder;
pub mod reply;
pub mod request;
pub mod state_ops;
pub mod subscription;
pub mod time;
pub mod trace;

pub use actor::{ActorRef, ActorState, StateUpdate, UpdateCounts};
pub use binding::Binding;
pub use duration::{format_go_duration, parse_go_duration, DurationError};
pub use ids::{FlowId, NodeId, RequestId};
pub use member::Member;
pub use reminder::Reminder;
pub use reply::Reply;
pub use request::{Invocation, Outcome, Request, RequestKind, Target};
pub use subscription::Subscription;
pub use trace::TraceContext;

/// Milliseconds since the Unix epoch: the clock used in durable records.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
