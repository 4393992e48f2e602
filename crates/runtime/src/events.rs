//! Events (spec §2.6, §2.7, §4.6, decision §9.2): topics, publishing and
//! subscriptions through the store, and the loop that delivers the application's
//! events to subscribed actors.
//!
//! Every member with a component runs the loop for the subscriptions of the actor
//! types it offers. Delivering is one atomic store transition (enqueue the tell +
//! advance the subscription + record the tell as in flight), refused while the
//! previous tell of the subscription is unfinished: events reach each subscriber one
//! at a time, in topic order, each once per subscription (at-least-once towards the
//! actor: a tell whose executor dies is retried). Subscriptions live in the store, so
//! a member that joins after another died picks them up.

use crate::{Runtime, RuntimeError};
use bytes::Bytes;
use kar_protocol::{ActorRef, Invocation, RequestKind, Subscription, Target};
use kar_store_api::{Delivery, EventRequestBuilder, Routing};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// The system query that wakes a member's delivery loop (see [`Runtime::publish`]).
pub(crate) const EVENTS_WAKE_QUERY: &str = "/kar/v1/system/events/wake";

/// Longest sleep of the delivery loop. Publishing through any member of the
/// application, and the end of a tell executed here, wake it at once; events
/// published by other applications (topics are shared) and tells finished elsewhere
/// are only noticed at this tick, as the store sends no notification for them.
const DELIVERY_TICK: Duration = Duration::from_millis(100);

impl Runtime {
    /// Creates a topic; returns whether it was created.
    pub async fn create_topic(&self, topic: &str) -> Result<bool, RuntimeError> {
        Ok(self.store().topic_create(topic).await?)
    }

    /// Deletes a topic; returns whether it existed.
    pub async fn delete_topic(&self, topic: &str) -> Result<bool, RuntimeError> {
        Ok(self.store().topic_delete(topic).await?)
    }

    /// Publishes one event; returns its offset. Wakes the delivery loops of this
    /// member and of the other members of the application that host actors (a tell
    /// addressed to each one's node id), so that no subscriber waits for its tick.
    pub async fn publish(self: &Arc<Self>, topic: &str, event: Bytes) -> Result<u64, RuntimeError> {
        let offset = self.store().publish(topic, event).await?;
        self.wake_events();
        tokio::spawn(self.clone().wake_other_members());
        Ok(offset)
    }

    async fn wake_other_members(self: Arc<Self>) {
        let members = match self.members().await {
            Ok(members) => members,
            Err(e) => {
                tracing::debug!("cannot wake the other members after a publish: {e}");
                return;
            }
        };
        for member in members {
            if member.node == *self.node() || member.actors.is_empty() {
                continue;
            }
            let invocation = Invocation {
                method: "POST".to_string(),
                path: EVENTS_WAKE_QUERY.to_string(),
                query: None,
                headers: Vec::new(),
                body: Bytes::new(),
            };
            let target = Target::Service {
                name: member.node.0.clone(),
            };
            if let Err(e) = self
                .request(target, invocation, RequestKind::Tell, None, None)
                .await
            {
                tracing::debug!("cannot wake member {}: {e}", member.node);
            }
        }
    }

    /// Creates or replaces a subscription; returns whether one was replaced.
    pub async fn subscribe(&self, subscription: &Subscription) -> Result<bool, RuntimeError> {
        let replaced = self.store().subscribe(subscription).await?;
        self.wake_events();
        Ok(replaced)
    }

    /// One subscription of an actor.
    pub async fn subscription(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<Option<Subscription>, RuntimeError> {
        Ok(self.store().subscription_get(actor, id).await?)
    }

    /// Every subscription of an actor, by id.
    pub async fn subscriptions(&self, actor: &ActorRef) -> Result<Vec<Subscription>, RuntimeError> {
        Ok(self.store().subscriptions_of(actor).await?)
    }

    /// Cancels one subscription; returns whether it existed.
    pub async fn cancel_subscription(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<bool, RuntimeError> {
        Ok(self.store().subscription_cancel(actor, id).await?)
    }

    /// Cancels every subscription of an actor; returns how many there were.
    pub async fn cancel_subscriptions(&self, actor: &ActorRef) -> Result<u64, RuntimeError> {
        Ok(self.store().subscriptions_cancel_all(actor).await?)
    }

    /// The tell delivering one event: the subscriber's `path` with body `[<event>]`,
    /// in a fresh flow (decision §9.2), with the usual start deadline.
    fn delivery_builder(&self) -> EventRequestBuilder {
        let caller = self.node().clone();
        let timeout = self.config().missing_component_timeout;
        Arc::new(move |sub: &Subscription, event: &[u8]| {
            Runtime::actor_tell(
                &caller,
                timeout,
                &sub.actor,
                &sub.path,
                sub.event_body(event),
            )
        })
    }

    /// Delivers the events of the subscriptions of this member's actor types until
    /// shutdown: each pass offers every subscription its next event (the store
    /// refuses while the previous one is in flight), then sleeps until woken or the
    /// tick.
    pub(crate) async fn event_loop(self: Arc<Self>) {
        let build = self.delivery_builder();
        let offered: HashSet<String> = self.config().actors.iter().cloned().collect();
        if offered.is_empty() {
            return;
        }
        loop {
            if self.is_shutting_down() {
                return;
            }
            match self.store().subscriptions().await {
                Ok(all) => {
                    for sub in all.iter().filter(|s| offered.contains(&s.actor.actor_type)) {
                        self.deliver_next(sub, &build).await;
                    }
                }
                Err(e) => tracing::error!("cannot read the event subscriptions: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(DELIVERY_TICK) => {}
                _ = self.events_woken() => {}
                _ = self.shutdown_started() => return,
            }
        }
    }

    async fn deliver_next(self: &Arc<Self>, sub: &Subscription, build: &EventRequestBuilder) {
        match self.store().deliver_event(&sub.actor, &sub.id, build).await {
            Ok(Delivery::Delivered {
                offset,
                request,
                routing,
            }) => {
                tracing::debug!(request = %request.id, "event {offset} of topic {} delivered to subscription {} of {} {}", sub.topic, sub.id, sub.actor.actor_type, sub.actor.id);
                if routing == Routing::Parked {
                    tracing::info!(request = %request.id, "no member offers actor type {}: event delivery parked", sub.actor.actor_type);
                    if let Some(deadline) = request.deadline {
                        tokio::spawn(self.clone().expire_when_due(*request, deadline));
                    }
                }
            }
            Ok(Delivery::InFlight | Delivery::UpToDate | Delivery::Gone) => {}
            // The event stays next: a later pass delivers it.
            Err(e) => tracing::error!(
                "cannot deliver an event of topic {} to subscription {}: {e}",
                sub.topic,
                sub.id
            ),
        }
    }
}
