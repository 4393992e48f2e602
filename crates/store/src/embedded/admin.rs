//! Administration of the embedded engine's rows of one application, and the
//! dashboard's read-only views (placements by page, subscriptions with their lag).

use super::bindings::Binding;
use super::EmbeddedStore;
use crate::codes::sql_status;
use crate::{AdminStore, PlacementPage, StoreError, SubscriptionLag};
use async_trait::async_trait;
use kar_protocol::{ActorRef, NodeId, Subscription};
use rusqlite::params;

#[async_trait]
impl AdminStore for EmbeddedStore {
    async fn purge(&self) -> Result<u64, StoreError> {
        let app = self.app.clone();
        self.db
            .run_long(move |conn| {
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
            .run_long(move |conn| {
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

    async fn list_placements(
        &self,
        actor_type: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PlacementPage, StoreError> {
        // The cursor is the last (type, id) of the previous page, as a JSON pair:
        // the next page starts after it in the primary key's order.
        let after: Option<(String, String)> =
            match cursor {
                None => None,
                Some(text) => Some(serde_json::from_str(text).map_err(|_| {
                    StoreError::Config(format!("malformed placement cursor {text:?}"))
                })?),
            };
        let (app, actor_type) = (self.app.clone(), actor_type.map(str::to_string));
        let placements: Vec<(ActorRef, NodeId)> = self
            .db
            .read_long(move |conn| {
                let (after_type, after_id) = after.unzip();
                let rows = conn
                    .prepare_cached(
                        "SELECT actor_type, actor_id, node FROM placements
                         WHERE app = ?1 AND (?2 IS NULL OR actor_type = ?2)
                           AND (?3 IS NULL OR (actor_type, actor_id) > (?3, ?4))
                         ORDER BY actor_type, actor_id LIMIT ?5",
                    )?
                    .query_map(
                        params![app, actor_type, after_type, after_id, limit as i64],
                        |row| {
                            Ok((
                                ActorRef::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?),
                                NodeId(row.get(2)?),
                            ))
                        },
                    )?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await?;
        let next = (placements.len() == limit)
            .then(|| placements.last())
            .flatten()
            .map(|(actor, _)| serde_json::json!([actor.actor_type, actor.id]).to_string());
        Ok(PlacementPage { placements, next })
    }

    async fn subscription_lags(&self) -> Result<Vec<SubscriptionLag>, StoreError> {
        let app = self.app.clone();
        self.db
            .read_long(move |conn| {
                // Offsets are contiguous above what was trimmed, and trimming only
                // removes delivered events: counting the events after the position
                // through the primary key is the lag.
                let rows = conn
                    .prepare_cached(&format!(
                        concat!(
                            "SELECT {}, position,
                               EXISTS (SELECT 1 FROM requests r WHERE r.app = s.app
                                 AND r.id = s.inflight AND r.status <> ",
                            sql_status!(Done),
                            "),
                               (SELECT COUNT(*) FROM events e
                                 WHERE e.topic = s.topic AND e.offset > s.position)
                             FROM subscriptions s WHERE s.app = ?1
                             ORDER BY actor_type, actor_id, id"
                        ),
                        Subscription::COLUMNS
                    ))?
                    .query_map([&app], |row| {
                        Ok(SubscriptionLag {
                            subscription: Subscription::from_row(row)?,
                            position: row.get::<_, i64>(8)?.max(0) as u64,
                            in_flight: row.get(9)?,
                            lag: row.get::<_, i64>(10)?.max(0) as u64,
                        })
                    })?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await
    }
}
