//! Events (spec §2.6, §2.7, §4.6, decision §9.2): topics and publishing, how
//! subscriptions are stored (a [`Binding`](crate::Binding)), and the loop that
//! delivers the application's events to subscribed actors.
//!
//! Every member with a component runs the loop for the subscriptions of the actor
//! types it offers. Delivering is one atomic store transition (enqueue the tell +
//! advance the subscription + record the tell as in flight), refused while the
//! previous tell of the subscription is unfinished: events reach each subscriber one
//! at a time, in topic order, each once per subscription (at-least-once towards the
//! actor: a tell whose executor dies is retried). Subscriptions live in the store, so
//! a member that joins after another died picks them up.
//!
//! The loop sleeps until woken: by a publish or a subscription here, by the end of a
//! tell executed here (the subscription's next event may go), or by another member
//! that published (`mesh.rs`). Wake-ups from other members can be lost (a member busy
//! or restarting), and events published by other applications (topics are shared)
//! wake nobody here: the [`SAFETY_RECHECK`] bounds every sleep for them.

use crate::bindings::{kind::Kind, Bindings};
use crate::clock::SAFETY_RECHECK;
use crate::telemetry::{self, Relation};
use crate::{Runtime, RuntimeError};
use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::Subscription;
use kar_protocol::TraceContext;
use kar_store_api::{Delivery, EventRequestBuilder, Store, StoreError};
use opentelemetry::KeyValue;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

#[async_trait]
impl Kind for Subscription {
    const KIND: &'static str = "subscription";
    async fn put(store: &dyn Store, subscription: &Self) -> Result<bool, StoreError> {
        store.subscribe(subscription).await
    }
    fn wake(runtime: &Runtime) {
        runtime.wakes.events.notify_one();
    }
}

/// Topics and publishing, from [`Runtime::events`].
pub struct Events<'a> {
    runtime: &'a Arc<Runtime>,
}

impl Runtime {
    pub fn events(self: &Arc<Self>) -> Events<'_> {
        Events { runtime: self }
    }

    /// The application's event subscriptions (spec §2.6).
    pub fn subscriptions(&self) -> Bindings<'_, Subscription> {
        self.bindings()
    }
}

impl Events<'_> {
    /// Creates a topic; returns whether it was created.
    pub async fn create_topic(&self, topic: &str) -> Result<bool, RuntimeError> {
        self.create_topic_with(topic, crate::TopicOptions::default())
            .await
    }

    /// Creates a topic, and its Kafka topic (with `options`) if it is bound to one;
    /// returns whether the kar topic was created.
    pub async fn create_topic_with(
        &self,
        topic: &str,
        options: crate::TopicOptions,
    ) -> Result<bool, RuntimeError> {
        if let Some(kafka) = &self.runtime.kafka {
            if let Some(binding) = kafka.binding(topic) {
                kafka
                    .create_topic(binding, options)
                    .await
                    .map_err(|e| RuntimeError::Failed(e.to_string()))?;
            }
        }
        Ok(self.runtime.store.topic_create(topic).await?)
    }

    /// Deletes a topic; returns whether it existed.
    pub async fn delete_topic(&self, topic: &str) -> Result<bool, RuntimeError> {
        Ok(self.runtime.store.topic_delete(topic).await?)
    }

    /// Publishes one event; returns its offset. Wakes the delivery loops of this
    /// member and of the other members of the application that host actors.
    ///
    /// On a topic bound to Kafka, the event is produced to Kafka instead (the bridge
    /// brings it into the topic); the offset returned is then the Kafka record's.
    pub async fn publish(&self, topic: &str, event: Bytes) -> Result<u64, RuntimeError> {
        self.publish_traced(topic, event, None).await
    }

    /// [`Events::publish`] of a request whose `traceparent` was `parent`: while
    /// tracing is on, the publish has a span, and a structured-mode CloudEvent
    /// without a `traceparent` member gets its context (the CloudEvents
    /// distributed-tracing extension), which links each delivery to the publish.
    pub async fn publish_traced(
        &self,
        topic: &str,
        mut event: Bytes,
        parent: Option<TraceContext>,
    ) -> Result<u64, RuntimeError> {
        let mut span = telemetry::start(
            || format!("publish {topic}"),
            telemetry::Kind::Producer,
            parent.map_or(Relation::Root, Relation::ChildOf),
            || {
                vec![
                    KeyValue::new("kar.app", self.runtime.config.app.clone()),
                    KeyValue::new("kar.topic", topic.to_string()),
                ]
            },
        );
        if let Some(context) = span.context() {
            event = telemetry::with_event_traceparent(event, &context);
        }
        let published = self.publish_untraced(topic, event).await;
        if let Err(e) = &published {
            span.fail(e.to_string());
        }
        published
    }

    async fn publish_untraced(&self, topic: &str, event: Bytes) -> Result<u64, RuntimeError> {
        let runtime = self.runtime;
        if let Some(kafka) = &runtime.kafka {
            if let Some(binding) = kafka.binding(topic) {
                let offset = kafka
                    .publish(binding, runtime.node.as_str(), event)
                    .await
                    .map_err(|e| RuntimeError::Failed(e.to_string()))?;
                return Ok(u64::try_from(offset).unwrap_or(0));
            }
        }
        runtime.published_to(topic);
        let offset = runtime.store.publish(topic, event).await?;
        runtime.wakes.events.notify_one();
        tokio::spawn(runtime.clone().wake_other_members());
        Ok(offset)
    }
}

impl Runtime {
    /// The tell delivering one event: the subscriber's `path` with body `[<event>]`
    /// (decision §9.2).
    fn delivery_builder(&self) -> EventRequestBuilder {
        let tells = self.actor_tells();
        let app = self.config.app.clone();
        Arc::new(move |s: &Subscription, event: &[u8]| {
            let mut request = tells.tell("event", &s.actor, &s.path, s.event_body(event));
            if telemetry::on() {
                // One trace per delivery, linked to the publish; the attempts of the
                // delivery's tell are children of this span.
                let span = telemetry::start(
                    || format!("event delivery {}", s.topic),
                    telemetry::Kind::Producer,
                    Relation::LinkedTo(telemetry::event_traceparent(event)),
                    || {
                        let mut attributes = telemetry::request_attributes(&app, &request);
                        attributes.push(KeyValue::new("kar.topic", s.topic.clone()));
                        attributes.push(KeyValue::new("kar.subscription", s.id.clone()));
                        attributes
                    },
                );
                request.trace = span.context();
            }
            request
        })
    }

    /// Delivers the events of the subscriptions of this member's actor types until
    /// shutdown.
    pub(crate) async fn event_loop(self: Arc<Self>) {
        let build = self.delivery_builder();
        let offered: HashSet<String> = self.config.actors.iter().cloned().collect();
        if offered.is_empty() {
            return;
        }
        self.run_woken(&self.wakes.events, || self.delivery_pass(&offered, &build))
            .await;
    }

    /// One pass: offers every subscription its next event (the store refuses while
    /// the previous one is in flight). Then the loop sleeps until woken, or for the
    /// safety re-check.
    async fn delivery_pass(
        self: &Arc<Self>,
        offered: &HashSet<String>,
        build: &EventRequestBuilder,
    ) -> Option<Duration> {
        match self.store.subscriptions().list_all().await {
            Ok(all) => {
                for sub in all.iter().filter(|s| offered.contains(&s.actor.actor_type)) {
                    self.deliver_next(sub, build).await;
                }
            }
            Err(e) => tracing::error!("cannot read the event subscriptions: {e}"),
        }
        Some(SAFETY_RECHECK)
    }

    async fn deliver_next(self: &Arc<Self>, sub: &Subscription, build: &EventRequestBuilder) {
        match self.store.deliver_event(&sub.actor, &sub.id, build).await {
            Ok(Delivery::Delivered {
                offset,
                request,
                routing,
            }) => {
                tracing::debug!(request = %request.id, "event {offset} of topic {} delivered to subscription {} of {} {}", sub.topic, sub.id, sub.actor.actor_type, sub.actor.id);
                self.watch_if_parked(&request, &routing);
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
