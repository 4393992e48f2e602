//! Reminders and event subscriptions are both *bindings* of an actor (upstream's
//! word): stored per actor and id, listed, got, cancelled one by one or all at once,
//! and put (created or replaced), after which the loop that acts on them is woken.
//! That shared shape is written once here; what differs (the store transitions, the
//! loop to wake) is the [`Binding`] implementation in `reminders.rs` and `events.rs`.

use crate::{Runtime, RuntimeError};
use kar_protocol::ActorRef;
use std::marker::PhantomData;

/// A kind of binding: [`kar_protocol::Reminder`] or [`kar_protocol::Subscription`].
pub trait Binding: kind::Kind {}

impl<B: kind::Kind> Binding for B {}

/// How one kind of binding is stored (sealed: only this crate implements it).
pub(crate) mod kind {
    use crate::Runtime;
    use async_trait::async_trait;
    use kar_protocol::ActorRef;
    use kar_store_api::{Store, StoreError};

    #[async_trait]
    pub trait Kind: Sized + Send + Sync + 'static {
        /// Creates or replaces it; returns whether one was replaced.
        async fn put(store: &dyn Store, binding: &Self) -> Result<bool, StoreError>;
        async fn get(
            store: &dyn Store,
            actor: &ActorRef,
            id: &str,
        ) -> Result<Option<Self>, StoreError>;
        /// By id.
        async fn list(store: &dyn Store, actor: &ActorRef) -> Result<Vec<Self>, StoreError>;
        /// Returns whether it existed.
        async fn cancel(store: &dyn Store, actor: &ActorRef, id: &str) -> Result<bool, StoreError>;
        /// Returns how many there were.
        async fn cancel_all(store: &dyn Store, actor: &ActorRef) -> Result<u64, StoreError>;
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
        Ok(B::get(self.runtime.store.as_ref(), actor, id).await?)
    }

    /// Every binding of an actor, by id.
    pub async fn list(&self, actor: &ActorRef) -> Result<Vec<B>, RuntimeError> {
        Ok(B::list(self.runtime.store.as_ref(), actor).await?)
    }

    /// Cancels one; returns whether it existed.
    pub async fn cancel(&self, actor: &ActorRef, id: &str) -> Result<bool, RuntimeError> {
        Ok(B::cancel(self.runtime.store.as_ref(), actor, id).await?)
    }

    /// Cancels every binding of an actor; returns how many there were.
    pub async fn cancel_all(&self, actor: &ActorRef) -> Result<u64, RuntimeError> {
        Ok(B::cancel_all(self.runtime.store.as_ref(), actor).await?)
    }
}
