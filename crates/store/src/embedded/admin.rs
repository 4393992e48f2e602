//! Administration of the embedded engine's rows of one application.

use super::EmbeddedStore;
use crate::{AdminStore, StoreError};
use async_trait::async_trait;

#[async_trait]
impl AdminStore for EmbeddedStore {
    async fn purge(&self) -> Result<u64, StoreError> {
        let app = self.app.clone();
        self.db
            .run(move |conn| {
                let mut total = 0u64;
                for table in [
                    "members",
                    "offers",
                    "mesh",
                    "requests",
                    "inbox",
                    "placements",
                    "state_flat",
                    "state_submap",
                    "reminders",
                    "subscriptions",
                ] {
                    total += conn.execute(&format!("DELETE FROM {table} WHERE app = ?1"), [&app])?
                        as u64;
                }
                Ok((total, Vec::new()))
            })
            .await
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}
