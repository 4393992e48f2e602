//! What reminders and subscriptions share: both are *bindings* of an actor (upstream's
//! word), stored per actor and id, got, listed and cancelled the same way. What
//! differs (scheduling and firing, subscribing and delivering) is in
//! [`ReminderStore`](crate::ReminderStore) and [`EventStore`](crate::EventStore).

use crate::{Store, StoreError};
use async_trait::async_trait;
use kar_protocol::{ActorRef, Reminder, Subscription};

/// A kind of binding the store keeps: [`Reminder`] or [`Subscription`] (sealed).
pub trait StoredBinding:
    kar_protocol::Binding + Clone + Send + Sync + 'static + sealed::Sealed
{
    /// The store's transitions on this kind (what `store.bindings::<Self>()` returns).
    fn store(store: &dyn Store) -> &dyn BindingStore<Self>;
}

impl StoredBinding for Reminder {
    fn store(store: &dyn Store) -> &dyn BindingStore<Self> {
        store
    }
}

impl StoredBinding for Subscription {
    fn store(store: &dyn Store) -> &dyn BindingStore<Self> {
        store
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for kar_protocol::Reminder {}
    impl Sealed for kar_protocol::Subscription {}
}

/// The bindings of one kind `B` of the application's actors. Each method is one
/// atomic step; listings are ordered by actor type, actor id and id.
#[async_trait]
pub trait BindingStore<B: StoredBinding>: Send + Sync + 'static {
    /// One binding of an actor.
    async fn get(&self, actor: &ActorRef, id: &str) -> Result<Option<B>, StoreError>;

    /// Every binding of an actor, by id.
    async fn list(&self, actor: &ActorRef) -> Result<Vec<B>, StoreError>;

    /// Every binding of the application (for `kar get -s reminders|events` and the
    /// delivery loop).
    async fn list_all(&self) -> Result<Vec<B>, StoreError>;

    /// Cancels one binding; returns whether it existed.
    async fn cancel(&self, actor: &ActorRef, id: &str) -> Result<bool, StoreError>;

    /// Cancels every binding of an actor; returns how many there were.
    async fn cancel_all(&self, actor: &ActorRef) -> Result<u64, StoreError>;
}

impl dyn Store {
    /// The store's transitions on the bindings of kind `B`.
    pub fn bindings<B: StoredBinding>(&self) -> &dyn BindingStore<B> {
        B::store(self)
    }

    /// `bindings::<Reminder>()`: `store.reminders().list(&actor)`.
    pub fn reminders(&self) -> &dyn BindingStore<Reminder> {
        self
    }

    /// `bindings::<Subscription>()`.
    pub fn subscriptions(&self) -> &dyn BindingStore<Subscription> {
        self
    }
}
