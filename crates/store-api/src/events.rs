//! Topics, events and subscriptions (spec §2.6, §2.7, §4.6, decision §9.2).
//!
//! Topics are global: every application sees the same topics (one application may
//! publish to a topic another one subscribes to). Subscriptions belong to an
//! application's actors. Events are retained (no trimming yet).

use crate::{Routing, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::{ActorRef, Request, Subscription};
use std::sync::Arc;

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
