//! What an operator's dashboard reads besides the pending requests (`control.rs`):
//! actor placements by page, reminders, subscriptions with their lag. Reads only,
//! straight from the store ([`kar_store_api::AdminStore`]); which instances are
//! activated comes from the members ([`Runtime::mesh_actors`]) and how long methods
//! take from their histograms (`latency.rs`).

use crate::{Runtime, RuntimeError};
use kar_protocol::Reminder;
/// A malformed cursor is refused as [`StoreError::Config`].
pub use kar_store_api::{PlacementPage, StoreError, SubscriptionLag};

impl Runtime {
    /// One page of the actor placements (see [`kar_store_api::AdminStore::list_placements`]).
    pub async fn list_placements(
        &self,
        actor_type: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PlacementPage, RuntimeError> {
        Ok(self
            .store
            .list_placements(actor_type, cursor, limit)
            .await?)
    }

    /// Every subscription of the application with its position and lag.
    pub async fn subscription_lags(&self) -> Result<Vec<SubscriptionLag>, RuntimeError> {
        Ok(self.store.subscription_lags().await?)
    }

    /// Every reminder of the application, sorted by actor and id.
    pub async fn all_reminders(&self) -> Result<Vec<Reminder>, RuntimeError> {
        Ok(self.store.reminders().list_all().await?)
    }
}
