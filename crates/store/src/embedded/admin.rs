//! Administration of the embedded engine's rows of one application.

use super::EmbeddedStore;
use crate::codes::sql_status;
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
                    "idempotency",
                ] {
                    total += conn.execute(&format!("DELETE FROM {table} WHERE app = ?1"), [&app])?
                        as u64;
                }
                Ok((total, Vec::new()))
            })
            .await
    }

    async fn drain(&self) -> Result<u64, StoreError> {
        let app = self.app.clone();
        // One transaction: the Execute rows of the pending requests, then the requests.
        // Completed rows (kind 1) refer to done requests, which stay; a subscription
        // whose delivery is drained is free again (its `inflight` request is gone).
        self.db
            .run(move |conn| {
                conn.execute(
                    concat!(
                        "DELETE FROM inbox WHERE app = ?1 AND kind = 0 AND request_id IN
                         (SELECT id FROM requests WHERE app = ?1 AND status <> ",
                        sql_status!(Done),
                        ")"
                    ),
                    [&app],
                )?;
                let drained = conn.execute(
                    concat!(
                        "DELETE FROM requests WHERE app = ?1 AND status <> ",
                        sql_status!(Done)
                    ),
                    [&app],
                )? as u64;
                Ok((drained, Vec::new()))
            })
            .await
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}
