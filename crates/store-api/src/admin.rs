//! Administration of an application's records, and the read-only views an operator's
//! dashboard pages through (placements, subscriptions with their lag).

use crate::StoreError;
use async_trait::async_trait;
use kar_protocol::{ActorRef, NodeId, Subscription};

/// One page of actor placements (actor → the member hosting it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlacementPage {
    pub placements: Vec<(ActorRef, NodeId)>,
    /// Opaque to callers (each engine has its own): pass it back to read the next
    /// page; `None` on the last page. A page may hold fewer than `limit` placements
    /// (even none) and still have a next one.
    pub next: Option<String>,
}

/// A subscription with how far its delivery is behind its topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionLag {
    pub subscription: Subscription,
    /// The offset of the last event handed to the subscriber (0: none yet).
    pub position: u64,
    /// Events of the topic after `position` still in the store: not delivered yet
    /// (0 when the topic was deleted).
    pub lag: u64,
    /// Whether the delivery of the event at `position` has not finished.
    pub in_flight: bool,
}

/// Whole-application administration.
#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    /// Deletes every record of this application (requests, members, state). Returns
    /// the number of records deleted.
    async fn purge(&self) -> Result<u64, StoreError>;

    /// Deletes every pending request of this application (queued, parked, held or
    /// paused: not done) with the inbox entries and bookkeeping that refer to them.
    /// Keeps actor state, placements, reminders, subscriptions, topics, members, and
    /// completed outcomes not yet collected by their callers. Returns the number of
    /// requests deleted.
    async fn drain(&self) -> Result<u64, StoreError>;

    /// A short human description (`sqlite:/path/kar.db`, `redis://host:port`).
    fn describe(&self) -> String;

    /// One page of the application's actor placements, of one actor type if
    /// `actor_type` is given, from `cursor` (a [`PlacementPage::next`]; `None` for
    /// the first page), at most `limit` of them. Reads one page of an index (or of
    /// a hash scan): never the whole table. A malformed cursor is a
    /// [`StoreError::Config`] naming it.
    async fn list_placements(
        &self,
        actor_type: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PlacementPage, StoreError>;

    /// Every subscription of the application with its position and lag, sorted by
    /// actor type, actor id and subscription id.
    async fn subscription_lags(&self) -> Result<Vec<SubscriptionLag>, StoreError>;
}
