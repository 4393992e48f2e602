//! Topics, events and subscriptions (spec §2.6, §2.7, §4.6, decision §9.2).
//!
//! Topics are global: every application sees the same topics (one application may
//! publish to a topic another one subscribes to). Subscriptions belong to an
//! application's actors. Events are trimmed ([`EventStore::trim`]) once every
//! subscription passed them and their retention elapsed.
//!
//! A topic may also be fed by a *bridge* from an outside log (a Kafka topic's
//! partitions): [`EventStore::bridge_claim`] makes one member the owner of a source
//! partition, and [`EventStore::bridge_append`] appends the records it read and
//! advances the partition's offset in one transition, so each record is appended
//! once whatever crashes (delivery then goes through [`EventStore::deliver_event`]).

use crate::{Routing, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::{ActorRef, Request, Subscription};
use std::sync::Arc;
use std::time::Duration;

/// Topics, their event logs, and actor subscriptions: what only they do. Getting,
/// listing and cancelling subscriptions is
/// [`BindingStore<Subscription>`](crate::BindingStore).
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
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

    /// Delivers the next event of one subscription, as one atomic step: unless the
    /// tell of the previous delivery is still unfinished (decision §9.2: one at a
    /// time, in topic order), the first event after the subscription's position is
    /// turned into a request by `build`, enqueued (routed like [`crate::RequestStore::enqueue`]),
    /// recorded as the one in flight, and the position advances past it. Several
    /// members may deliver concurrently: each event is enqueued once per subscription.
    async fn deliver_event(
        &self,
        actor: &ActorRef,
        id: &str,
        build: &EventRequestBuilder,
    ) -> Result<Delivery, StoreError>;

    /// Deletes the oldest events of `topic` that every subscription to it (of every
    /// application) has been delivered and that were appended at least `retention`
    /// ago, at most `max` of them; returns how many. Offsets are unchanged: a
    /// subscription starting from the oldest event starts after the trimmed ones.
    async fn trim(&self, topic: &str, retention: Duration, max: u64) -> Result<u64, StoreError>;

    /// Claims or renews the bridge of one source partition (`source` names the outside
    /// log, say `kafka:<topic>`) into `topic` for member `node` of this application:
    /// it succeeds if nobody owns it, if `node` does, or if its owner is dead (not a
    /// live member of its application; on engines with leases, its bridge lease of
    /// `lease` ran out). Returns the partition's next offset to read (`None`: the
    /// first ever claim, read from the partition's start), or [`Claim::Owned`] by
    /// another live member.
    async fn bridge_claim(
        &self,
        bridge: &Bridge,
        node: &str,
        lease: Duration,
    ) -> Result<Claim, StoreError>;

    /// Appends `events` (read from the source partition from offset `from` on) to the
    /// topic and sets the partition's next offset to `next`, as one transition, if
    /// `node` still owns the bridge and the partition's next offset is still `from`
    /// (`None`: never set). Renews the owner's lease. Returns whether it did; `false`:
    /// another member took the bridge over (or appended meanwhile), nothing changed.
    async fn bridge_append(
        &self,
        bridge: &Bridge,
        node: &str,
        lease: Duration,
        from: Option<i64>,
        next: i64,
        events: Vec<Bytes>,
    ) -> Result<bool, StoreError>;
}

/// One source partition bridged into a topic.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bridge {
    /// The kar topic the records are appended to.
    pub topic: String,
    /// The outside log, such as `kafka:<topic>`.
    pub source: String,
    pub partition: i32,
}

/// What [`EventStore::bridge_claim`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The caller owns the bridge; the next offset to read (`None`: from the start).
    Mine(Option<i64>),
    /// Another live member does.
    Owned(String),
}

/// Makes the request delivering one event (the event as published) to a subscriber.
pub type EventRequestBuilder = Arc<dyn Fn(&Subscription, &[u8]) -> Request + Send + Sync>;

/// What [`EventStore::deliver_event`] did.
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
