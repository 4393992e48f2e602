//! Actor reminders (spec §2.5, §4.4, decision §9.10).

use crate::{Routing, StoreError};
use async_trait::async_trait;
use kar_protocol::{Reminder, Request};
use std::sync::Arc;

/// Durable actor reminders: what only they do. Getting, listing and cancelling them
/// is [`BindingStore<Reminder>`](crate::BindingStore).
#[async_trait]
pub trait ReminderStore: Send + Sync + 'static {
    /// Schedules `reminder`, replacing the one of the same actor and id if any.
    /// Returns whether one was replaced.
    async fn reminder_schedule(&self, reminder: &Reminder) -> Result<bool, StoreError>;

    /// The earliest target time (Unix ms) of the application's reminders.
    async fn next_due(&self) -> Result<Option<i64>, StoreError>;

    /// Fires up to `limit` reminders due at `now` (target ≤ now, Unix ms), earliest
    /// first. Each firing is one atomic step: the request `build` makes from the
    /// reminder is enqueued (routed exactly like [`crate::RequestStore::enqueue`]: placement, or
    /// parked) *and* the reminder advances (a one-shot one is deleted; a periodic
    /// one moves to [`Reminder::next_target`]). Several members may fire
    /// concurrently: each due firing is enqueued by exactly one of them.
    async fn fire_due(
        &self,
        now: i64,
        limit: usize,
        build: &RequestBuilder,
    ) -> Result<Vec<Firing>, StoreError>;

    /// How many of the application's reminder firings were enqueued and have not
    /// finished (queued, parked or held), counted up to `bound` (the count costs at
    /// most that much). The reminder loop fires only while this is below its bound,
    /// so that under overload the excess stays in the reminders table, where a late
    /// periodic reminder coalesces, instead of piling up as requests.
    async fn firings_pending(&self, bound: usize) -> Result<usize, StoreError>;
}

/// Makes the request of one reminder firing (the runtime decides its shape; the store
/// only routes it).
pub type RequestBuilder = Arc<dyn Fn(&Reminder) -> Request + Send + Sync>;

/// One reminder firing made by [`ReminderStore::fire_due`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Firing {
    /// The reminder as it was when due (`target` is the firing's target time).
    pub reminder: Reminder,
    /// The request enqueued for it.
    pub request: Request,
    pub routing: Routing,
}
