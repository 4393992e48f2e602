//! Reminders and event subscriptions are both *bindings* of an actor (upstream's
//! word): stored per actor and id, listed, got, cancelled one by one or all at once,
//! and put (created or replaced), after which the loop that acts on them is woken.
//! That shared shape is written once here, on the store's shared transitions
//! ([`BindingStore`]); what differs (how one is put, the loop to wake) is the
//! [`Binding`] implementation in `reminders.rs` and `events.rs`.

use crate::telemetry::{self, Relation, Span};
use crate::{Runtime, RuntimeError};
use kar_protocol::{ActorRef, Target, TraceContext};
use kar_store_api::BindingStore;
use opentelemetry::KeyValue;
use std::marker::PhantomData;

/// A kind of binding: [`kar_protocol::Reminder`] or [`kar_protocol::Subscription`].
pub trait Binding: kind::Kind {}

impl<B: kind::Kind> Binding for B {}

/// What one kind of binding does besides what the store shares
/// ([`kar_store_api::BindingStore`]) (sealed: only this crate implements it).
pub(crate) mod kind {
    use crate::Runtime;
    use async_trait::async_trait;
    use kar_store_api::{Store, StoreError, StoredBinding};

    #[async_trait]
    pub trait Kind: StoredBinding {
        /// Names the kind in spans (`reminder`, `subscription`).
        const KIND: &'static str;
        /// Creates or replaces it; returns whether one was replaced.
        async fn put(store: &dyn Store, binding: &Self) -> Result<bool, StoreError>;
        /// Wakes the loop of this runtime that acts on them: it may sleep past a new
        /// one otherwise.
        fn wake(runtime: &Runtime);
        /// Keeps the trace context of the call that put it (reminders: their
        /// firings link to it); by default not kept.
        fn set_trace(&mut self, _trace: Option<kar_protocol::TraceContext>) {}
        /// `n` of them were cancelled through `runtime` (counted for reminders).
        fn cancelled(_runtime: &Runtime, _n: u64) {}
    }
}

/// The bindings of one kind, from [`Runtime::reminders`], [`Runtime::subscriptions`]
/// or [`Runtime::bindings`].
pub struct Bindings<'a, B> {
    runtime: &'a Runtime,
    kind: PhantomData<B>,
}

impl Runtime {
    pub fn bindings<B: Binding>(&self) -> Bindings<'_, B> {
        Bindings {
            runtime: self,
            kind: PhantomData,
        }
    }
}

impl<B: Binding> Bindings<'_, B> {
    /// Creates or replaces one; returns whether one was replaced.
    pub async fn put(&self, binding: &B) -> Result<bool, RuntimeError> {
        let replaced = B::put(self.runtime.store.as_ref(), binding).await?;
        B::wake(self.runtime);
        Ok(replaced)
    }

    /// [`Bindings::put`] by a call whose `traceparent` was `parent`: while tracing
    /// is on, the put has a span (a child of `parent`, or else of the request the
    /// component executes here for the actor), which the binding keeps.
    pub async fn put_traced(
        &self,
        mut binding: B,
        parent: Option<TraceContext>,
    ) -> Result<bool, RuntimeError> {
        let mut span = Span::default();
        if telemetry::on() {
            let actor = binding.actor();
            let target = Target::Actor {
                actor_type: actor.actor_type.clone(),
                id: actor.id.clone(),
            };
            let parent = parent.or_else(|| self.runtime.executor.traced_for(&target));
            span = telemetry::start(
                || format!("put {} {}:{}", B::KIND, actor.actor_type, binding.id()),
                telemetry::Kind::Internal,
                parent.map_or(Relation::Root, Relation::ChildOf),
                || {
                    vec![
                        KeyValue::new("kar.app", self.runtime.config.app.clone()),
                        KeyValue::new("kar.actor.type", actor.actor_type.clone()),
                        KeyValue::new("kar.actor.id", actor.id.clone()),
                        KeyValue::new("kar.binding", binding.id().to_string()),
                    ]
                },
            );
            binding.set_trace(span.context());
        }
        let put = self.put(&binding).await;
        if let Err(e) = &put {
            span.fail(e.to_string());
        }
        put
    }

    /// One binding of an actor.
    pub async fn get(&self, actor: &ActorRef, id: &str) -> Result<Option<B>, RuntimeError> {
        Ok(self.store().get(actor, id).await?)
    }

    /// Every binding of an actor, by id.
    pub async fn list(&self, actor: &ActorRef) -> Result<Vec<B>, RuntimeError> {
        Ok(self.store().list(actor).await?)
    }

    /// Cancels one; returns whether it existed.
    pub async fn cancel(&self, actor: &ActorRef, id: &str) -> Result<bool, RuntimeError> {
        let cancelled = self.store().cancel(actor, id).await?;
        if cancelled {
            B::cancelled(self.runtime, 1);
        }
        Ok(cancelled)
    }

    /// Cancels every binding of an actor; returns how many there were.
    pub async fn cancel_all(&self, actor: &ActorRef) -> Result<u64, RuntimeError> {
        let cancelled = self.store().cancel_all(actor).await?;
        B::cancelled(self.runtime, cancelled);
        Ok(cancelled)
    }

    fn store(&self) -> &dyn BindingStore<B> {
        self.runtime.store.bindings()
    }
}
