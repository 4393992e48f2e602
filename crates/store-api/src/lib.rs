//! The API of the kar store: every piece of durable state goes through a narrow set
//! of *atomic transitions* (enqueue a request, complete it, join the mesh, ...),
//! never raw get/put. The transitions are grouped by area, one trait per file:
//!
//! | file | trait | what |
//! |---|---|---|
//! | `membership.rs` | [`MembershipStore`] | join/leave, live members, inboxes, signals; [`RecoveryPolicy`] (the attempt cap) |
//! | `requests.rs` | [`RequestStore`] | enqueue, complete, tail calls, parked requests, resuming paused requests |
//! | `actors.rs` | [`ActorStore`] | placement, removal, actor state |
//! | `bindings.rs` | [`BindingStore`] | what reminders and subscriptions share: get, list, cancel |
//! | `reminders.rs` | [`ReminderStore`] | scheduling reminders and their firing |
//! | `events.rs` | [`EventStore`] | topics, publish, subscribing, delivery, retention, bridges from outside logs (Kafka) |
//! | `admin.rs` | [`AdminStore`] | purge, drain, description |
//! | `control.rs` | [`ControlStore`] | an operator's listing, kill and pause of pending requests |
//! | `timing.rs` | (no trait) the durations of store round trips, observed by the engines for `/metrics` |
//! | `idempotency.rs` | [`IdempotencyStore`] | idempotency keys: enqueue under a key, the request a key maps to, sweeping expired keys |
//!
//! [`Store`] is their sum: callers hold an `Arc<dyn Store>` and bring the area
//! traits they use into scope (`use kar_store_api::prelude::*`); `store.reminders()`
//! and `store.subscriptions()` (generically `store.bindings::<B>()`) pick one kind of
//! binding. The engines
//! (embedded SQLite, Redis) live in the `kar-store` crate, which is the only way to
//! open one (`kar_store::open`); every crate above it sees this API only.
//!
//! A store handle is scoped to one application: keys and rows of different
//! applications never mix.
//!
//! Adding a transition: declare it in the area's trait here (its doc says what is
//! atomic), implement it in both engines (`kar-store/src/<engine>/<area>.rs`; a new
//! table or column of the embedded engine is a migration in its `schema.rs`), and
//! cover it in `kar-store/tests/conformance.rs`, which runs every case on both. The
//! crate doc of `kar-store` maps its files.
//!
//! Errors are classified where they arise ([`StoreError::kind`]): callers retry
//! only [`ErrorKind::Retryable`] failures.

mod actors;
mod admin;
mod bindings;
mod control;
mod error;
mod events;
mod idempotency;
mod membership;
mod message;
mod reminders;
mod requests;
pub mod timing;

pub use actors::ActorStore;
pub use admin::{AdminStore, PlacementPage, SubscriptionLag};
pub use bindings::{BindingStore, StoredBinding};
pub use control::{
    ControlStore, Killed, Paused, PendingRequest, PendingStatus, RequestFilter, RequestPage, KILLED,
};
pub use error::{BoxError, ErrorKind, StoreError};
pub use events::{Bridge, Claim, Delivery, EventRequestBuilder, EventStore};
pub use idempotency::{IdempotencyStore, Keyed, KeyedRequest};
pub use membership::{Inbox, MembershipStore, RecoveryPolicy};
pub use message::{Message, MethodLatency, Routing, Signal};
pub use reminders::{Firing, ReminderStore, RequestBuilder};
pub use requests::{RequestStore, Resumed};

use kar_protocol::{Reminder, Subscription};

/// The atomic transitions of one application's durable state: the sum of the area
/// traits.
///
/// Every method is one atomic step on the store: after a crash of any `kar` process
/// either all of its effects are visible or none is.
pub trait Store:
    MembershipStore
    + RequestStore
    + ActorStore
    + BindingStore<Reminder>
    + ReminderStore
    + BindingStore<Subscription>
    + EventStore
    + AdminStore
    + ControlStore
    + IdempotencyStore
{
}

impl<T> Store for T where
    T: MembershipStore
        + RequestStore
        + ActorStore
        + BindingStore<Reminder>
        + ReminderStore
        + BindingStore<Subscription>
        + EventStore
        + AdminStore
        + ControlStore
        + IdempotencyStore
{
}

/// The store traits, for callers of `dyn Store` methods.
pub mod prelude {
    pub use crate::{
        ActorStore, AdminStore, BindingStore, ControlStore, EventStore, IdempotencyStore,
        MembershipStore, ReminderStore, RequestStore, Store,
    };
}
