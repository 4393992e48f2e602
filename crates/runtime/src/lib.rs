//! The kar runtime: one mesh member. It turns requests of its component into durable
//! request records (through the [`kar_store_api::Store`] trait), executes the requests
//! routed to it by invoking its component through an [`AppClient`], and routes
//! outcomes back to callers. It knows nothing of HTTP servers or of a particular
//! store engine; the sidecar reaches the store only through it.
//!
//! # Map
//!
//! The core:
//! * `runtime.rs`: [`Runtime`], the lifecycle core: joining the mesh, the background
//!   tasks (each a `run_woken` loop: a pass, then sleep for what the pass says or
//!   until woken), shutdown, fencing. It owns the two sides below.
//! * `caller.rs`: the caller side, requests made by the component:
//!   [`Runtime::request`], [`Runtime::await_promise`], the waiters, parked requests
//!   expiring at their start deadline, deleting consumed outcomes.
//!   `idempotency.rs`: [`Runtime::request_keyed`] (idempotency keys: duplicates wait
//!   on the outcome kept with the key), the sweep of expired keys.
//! * `executor.rs`: the executor side: the inbox loop, executing a request up to its
//!   completion; `invoke.rs`: invoking the component (metrics label, attempt and call
//!   spans); `completion.rs`: recording outcomes. `actor_steps.rs`: actor requests (instance
//!   lock, activation, tail calls, deactivation, removal, idle collection), with
//!   `actor_table.rs` (instances) over `locks.rs` (a pure lock state machine) and
//!   `envelope.rs` (reading tail calls out of replies).
//!
//! One façade per area, each a method of [`Runtime`]:
//! * services and actor methods: [`Runtime::request`] (a service or actor target);
//! * actors (`actors.rs`): [`Runtime::remove_actor`], [`Runtime::mesh_actors`], ...;
//! * state (`state.rs`): [`Runtime::state`];
//! * an operator's control of pending requests (`control.rs`): listing (running
//!   told from queued through `mesh.rs`), the JSON of a request, kill, pause, resume;
//! * reminders (`reminders.rs`): [`Runtime::reminders`], plus the firing loop;
//! * events (`events.rs`): [`Runtime::events`] (topics, publish) and
//!   [`Runtime::subscriptions`], plus the delivery loop. Reminders and
//!   subscriptions share one façade, [`Bindings`] (`bindings.rs`); `retention.rs`
//!   trims delivered events; `kafka/` bridges Kafka topics into kar topics and
//!   publishes bound topics' events to Kafka.
//!
//! Cross-cutting, in one place each:
//! * `mesh.rs`: control traffic between members as typed store signals, not durable
//!   requests (waking their event loops, asking for their actors);
//! * `clock.rs`: wall time and timers ([`Clock`]; timers are tokio time, so tests
//!   run on paused time);
//! * `retry.rs`: retrying store transitions, one policy per call site; the back-off
//!   of a step re-delivered after its executor died (`Redelivery`);
//! * `metrics.rs`, `config.rs`, `error.rs`, `app.rs` ([`AppClient`]).
//!
//! # Adding a path
//!
//! A new capability of the component's API is a method on a façade (or a new façade
//! file, `impl Runtime { pub fn area(&self) -> Area<'_> }`) that makes store
//! transitions and returns [`RuntimeError`]. Work that must run where an actor or
//! service lives is a request: give it a typed accessor beside
//! [`Runtime::remove_actor`] rather than a new magic path, and handle it in
//! `actor_steps.rs` or `executor.rs`. A message between members that need not be
//! durable (a wake-up, a query) belongs in `mesh.rs`. A store transition that must
//! not be lost goes through `Runtime::retry` with an explicit `retry::Policy`; every
//! time read goes through the runtime's [`Clock`].

mod actor_steps;
mod actor_table;
mod actors;
mod admission;
mod app;
mod bindings;
mod caller;
mod clock;
mod completion;
mod config;
pub mod control;
mod envelope;
mod error;
mod events;
mod executor;
mod fast_map;
mod idempotency;
mod invoke;
mod kafka;
pub mod latency;
mod locks;
mod mesh;
mod metrics;
mod outage;
mod rebalance;
mod reminders;
mod retention;
mod retry;
mod runtime;
mod state;
pub mod telemetry;
pub mod views;

pub use app::{AppClient, AppError, AppReply};
pub use bindings::{Binding, Bindings};
pub use caller::Accepted;
pub use clock::Clock;
pub use config::{
    RuntimeConfig, DEFAULT_ACTOR_REBALANCE_RATE, DEFAULT_EVENT_RETENTION,
    DEFAULT_MAX_CONCURRENT_TELLS, DEFAULT_MAX_PENDING_FIRINGS, DEFAULT_SHUTDOWN_GRACE,
};
pub use error::{AwaitError, RuntimeError};
pub use events::Events;
pub use idempotency::MAX_IDEMPOTENCY_KEY_BYTES;
pub use kafka::{KafkaConfig, KafkaError, TopicBinding, TopicOptions};
pub use runtime::Runtime;
pub use state::{Entry, State};
