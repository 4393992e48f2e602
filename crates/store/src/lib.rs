//! The kar store: every piece of durable state goes through the [`Store`] trait, a
//! narrow set of *atomic transitions* (enqueue a request, complete it, join the mesh,
//! ...), never raw get/put. Two engines implement it and pass one conformance suite:
//!
//! * [`embedded`]: SQLite in WAL mode under `$KAR_HOME`, shared by every `kar` process
//!   of the user on the host; failure detection through OS file locks; wake-ups are
//!   pokes over loopback TCP.
//! * [`redis`]: one Lua script per transition over one hash tag per application;
//!   membership leases renewed in the background, self-fencing; inboxes are streams
//!   read with blocking `XREAD`.
//!
//! A store handle is scoped to one application: keys and rows of different
//! applications never mix.

pub mod embedded;
mod error;
mod fault;
mod message;
pub mod redis;

pub use error::StoreError;
pub use message::{Message, Routing};

use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::{
    ActorRef, ActorState, Member, NodeId, Outcome, Reminder, Request, RequestId, StateUpdate,
    Subscription, UpdateCounts,
};
use std::path::PathBuf;
use std::sync::Arc;

/// Which engine to open, and where.
#[derive(Clone, Debug)]
pub enum StoreConfig {
    /// SQLite database `kar.db` in this directory (created if missing).
    Embedded {
        dir: PathBuf,
    },
    Redis(RedisConfig),
}

#[derive(Clone, Debug, Default)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub tls: bool,
    pub tls_skip_verify: bool,
    /// Membership lease; a member that does not renew within it is dead.
    pub lease: std::time::Duration,
}

/// Opens the store of application `app`.
pub async fn open(config: &StoreConfig, app: &str) -> Result<Arc<dyn Store>, StoreError> {
    match config {
        StoreConfig::Embedded { dir } => Ok(Arc::new(embedded::EmbeddedStore::open(dir, app)?)),
        StoreConfig::Redis(cfg) => Ok(Arc::new(redis::RedisStore::open(cfg, app).await?)),
    }
}

/// The atomic transitions of one application's durable state.
///
/// Every method is one atomic step on the store: after a crash of any `kar` process
/// either all of its effects are visible or none is.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ----- membership -----

    /// Joins the mesh as `member` and returns its inbox. Requests parked for a name the
    /// member offers are adopted by it in the same transition (they appear in the
    /// inbox). Every other member receives [`Message::MembersChanged`].
    async fn join(&self, member: &Member) -> Result<Box<dyn Inbox>, StoreError>;

    /// Leaves the mesh. Requests still assigned to the node are recovered like those
    /// of a dead node.
    ///
    /// Recovery of a member that left or died (guarantees 2–5): each request step
    /// queued on it is re-delivered with [`Request::attempt`] incremented, in arrival
    /// order, to a live member offering its target (actors are placed anew) or parked.
    /// A request that still has unfinished children (calls or promises whose
    /// [`Request::parent`] is its id, queued, parked or held) is *held* instead:
    /// assigned to nobody, in no inbox, until its last such child finishes
    /// ([`Store::complete`], [`Store::expire_parked`]), which routes it. Outcomes only
    /// the member could collect are dropped. Recovery is idempotent and never stops
    /// the other members.
    async fn leave(&self, node: &NodeId) -> Result<(), StoreError>;

    /// The live members.
    async fn members(&self) -> Result<Vec<Member>, StoreError>;

    // ----- requests -----

    /// Persists a new request and routes it, in one transition: to a random live member
    /// offering its target (the request is appended to that member's inbox), or, if
    /// none offers it, parks it until one joins.
    async fn enqueue(&self, request: &Request) -> Result<Routing, StoreError>;

    /// Records the outcome of a request executed by `node`. For calls and promises the
    /// outcome is kept and a [`Message::Completed`] goes to the caller's inbox; a tell,
    /// or a request whose caller is no longer a live member, is simply finished (never
    /// run again; no message goes to a dead inbox, no record stays behind). Completing
    /// a request that is already complete, unknown, or not queued on `node` (a stale
    /// attempt: recovery moved it) does nothing and returns `false`. When the request
    /// was the last unfinished call or promise of a *held* parent (see
    /// [`Store::leave`]), the parent is routed in the same transition.
    ///
    /// Fails with [`StoreError::Fenced`] once `node` is no longer a member.
    async fn complete(
        &self,
        node: &NodeId,
        id: &RequestId,
        outcome: &Outcome,
    ) -> Result<bool, StoreError>;

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

    // ----- actors -----

    /// Deletes an actor's state and placement (spec §2.2 actor removal).
    async fn remove_actor(&self, actor: &ActorRef) -> Result<(), StoreError>;

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

    // ----- reminders (spec §2.5, §4.4, decision §9.10) -----

    /// Schedules `reminder`, replacing the one of the same actor and id if any.
    /// Returns whether one was replaced.
    async fn reminder_schedule(&self, reminder: &Reminder) -> Result<bool, StoreError>;

    /// One reminder of an actor.
    async fn reminder_get(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<Option<Reminder>, StoreError>;

    /// Every reminder of an actor, by id.
    async fn reminders_of(&self, actor: &ActorRef) -> Result<Vec<Reminder>, StoreError>;

    /// Every reminder of the application, by actor type, actor id and id (for
    /// `kar get -s reminders`).
    async fn reminders(&self) -> Result<Vec<Reminder>, StoreError>;

    /// Cancels one reminder; returns whether it existed.
    async fn reminder_cancel(&self, actor: &ActorRef, id: &str) -> Result<bool, StoreError>;

    /// Cancels every reminder of an actor; returns how many there were.
    async fn reminders_cancel_all(&self, actor: &ActorRef) -> Result<u64, StoreError>;

    /// The earliest target time (Unix ms) of the application's reminders.
    async fn next_due(&self) -> Result<Option<i64>, StoreError>;

    /// Fires up to `limit` reminders due at `now` (target ≤ now, Unix ms), earliest
    /// first. Each firing is one atomic step: the request `build` makes from the
    /// reminder is enqueued (routed exactly like [`Store::enqueue`]: placement, or
    /// parked) *and* the reminder advances (a one-shot one is deleted; a periodic
    /// one moves to [`Reminder::next_target`]). Several members may fire
    /// concurrently: each due firing is enqueued by exactly one of them.
    async fn fire_due(
        &self,
        now: i64,
        limit: usize,
        build: &RequestBuilder,
    ) -> Result<Vec<Firing>, StoreError>;

    // ----- events (spec §2.6, §2.7, §4.6, decision §9.2) -----
    //
    // Topics are global: every application sees the same topics (one application may
    // publish to a topic another one subscribes to). Subscriptions belong to an
    // application's actors. Events are retained (no trimming yet).

    /// Creates a topic; returns whether it was created (`false`: it existed).
    async fn topic_create(&self, topic: &str) -> Result<bool, StoreError>;

    /// Deletes a topic and its events; returns whether it existed. Offsets keep
    /// growing if it is created again, so subscriptions never skip new events.
    async fn topic_delete(&self, topic: &str) -> Result<bool, StoreError>;

    /// Appends `event` to the topic's log (creating the topic if needed, as Kafka's
    /// auto-create does) and returns its offset (1, 2, ...: increasing per topic).
    async fn publish(&self, topic: &str, event: Bytes) -> Result<u64, StoreError>;

    /// Creates or replaces a subscription; returns whether one was replaced. A new
    /// subscription starts after the topic's newest event (or before its oldest with
    /// [`Subscription::oldest`]); a replacement on the same topic and group keeps its
    /// position.
    async fn subscribe(&self, subscription: &Subscription) -> Result<bool, StoreError>;

    /// One subscription of an actor.
    async fn subscription_get(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<Option<Subscription>, StoreError>;

    /// Every subscription of an actor, by id.
    async fn subscriptions_of(&self, actor: &ActorRef) -> Result<Vec<Subscription>, StoreError>;

    /// Every subscription of the application.
    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError>;

    /// Cancels one subscription; returns whether it existed.
    async fn subscription_cancel(&self, actor: &ActorRef, id: &str) -> Result<bool, StoreError>;

    /// Cancels every subscription of an actor; returns how many there were.
    async fn subscriptions_cancel_all(&self, actor: &ActorRef) -> Result<u64, StoreError>;

    /// Delivers the next event of one subscription, as one atomic step: unless the
    /// tell of the previous delivery is still unfinished (decision §9.2: one at a
    /// time, in topic order), the first event after the subscription's position is
    /// turned into a request by `build`, enqueued (routed like [`Store::enqueue`]),
    /// recorded as the one in flight, and the position advances past it. Several
    /// members may deliver concurrently: each event is enqueued once per subscription.
    async fn deliver_event(
        &self,
        actor: &ActorRef,
        id: &str,
        build: &EventRequestBuilder,
    ) -> Result<Delivery, StoreError>;

    // ----- administration -----

    /// Deletes every record of this application (requests, members, state). Returns
    /// the number of records deleted.
    async fn purge(&self) -> Result<u64, StoreError>;

    /// A short human description (`sqlite:/path/kar.db`, `redis://host:port`).
    fn describe(&self) -> String;
}

/// Makes the request of one reminder firing (the runtime decides its shape; the store
/// only routes it).
pub type RequestBuilder = Arc<dyn Fn(&Reminder) -> Request + Send + Sync>;

/// Makes the request delivering one event (the event as published) to a subscriber.
pub type EventRequestBuilder = Arc<dyn Fn(&Subscription, &[u8]) -> Request + Send + Sync>;

/// What [`Store::deliver_event`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The event at `offset` was enqueued as `request`.
    Delivered {
        offset: u64,
        request: Box<Request>,
        routing: Routing,
    },
    /// The previous delivery's request is not finished yet.
    InFlight,
    /// No event after the subscription's position.
    UpToDate,
    /// No such subscription (cancelled).
    Gone,
}

/// One reminder firing made by [`Store::fire_due`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Firing {
    /// The reminder as it was when due (`target` is the firing's target time).
    pub reminder: Reminder,
    /// The request enqueued for it.
    pub request: Request,
    pub routing: Routing,
}

/// The inbox of one member: the requests it must execute, the outcomes of requests
/// it made, and membership changes, in the order they were appended.
#[async_trait]
pub trait Inbox: Send {
    /// Waits until at least one message is available and takes every available one.
    /// Cancel-safe: a cancelled call loses no message.
    async fn recv(&mut self) -> Result<Vec<Message>, StoreError>;
}
