//! Administration of an application's records.

use crate::StoreError;
use async_trait::async_trait;

/// Whole-application administration.
#[async_trait]
pub trait AdminStore: Send + Sync + 'static {
    /// Deletes every record of this application (requests, members, state). Returns
    /// the number of records deleted.
    async fn purge(&self) -> Result<u64, StoreError>;

    /// A short human description (`sqlite:/path/kar.db`, `redis://host:port`).
    fn describe(&self) -> String;
}
