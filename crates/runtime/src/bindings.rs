//! Reminders and event subscriptions are both *bindings* of an actor (upstream's
//! word): stored per actor and id, listed, got, cancelled one by one or all at once,
//! and put (created or replaced), after which the loop that acts on them is woken.
//! That shared shape is written once here, on the store's shared transitions
//! ([`BindingStore`]); what differs (how one is put, the loop to wake) is the
//! [`Binding`] implementation in `reminders.rs` and `events.rs`.

use crate::{Runtime, RuntimeError};
use kar_protocol::ActorRef;
use kar_store_api::BindingStore;
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
        /// Creates or replaces it; returns whether one was replaced.
        async fn put(store: &dyn Store, binding: &Self) -> Result<bool, StoreError>;
        /// Wakes the loop of this runtime that acts on them: it may sleep past a new
        /// one otherwise.
        fn wake(runtime: &Runtime);
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
        Ok(self.store().cancel(actor, id).await?)
    }

    /// Cancels every binding of an actor; returns how many there were.
    pub async fn cancel_all(&self, actor: &ActorRef) -> Result<u64, RuntimeError> {
        Ok(self.store().cancel_all(actor).await?)
    }

    fn store(&self) -> &dyn BindingStore<B> {
        self.runtime.store.bindings()
    }
}
