//! Administration of an application's records.

use crate::StoreError;
use async_trait::async_trait;

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
}
