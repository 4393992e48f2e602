//! Administration of the Redis engine: purging an application's keys, draining its
//! pending requests, and the dashboard's read-only views (placements by page,
//! subscriptions with their lag).

use super::scripts::{DRAIN, PURGE};
use super::{decode_actor, glob_escape, value_pairs, RedisStore};
use crate::{AdminStore, PlacementPage, StoreError, SubscriptionLag};
use async_trait::async_trait;
use kar_protocol::NodeId;
use redis::Value;

#[async_trait]
impl AdminStore for RedisStore {
    async fn purge(&self) -> Result<u64, StoreError> {
        let mut invocation = self.unfenced(&PURGE);
        invocation.arg(format!("{}*", glob_escape(&self.keys.prefix)));
        let deleted: u64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(deleted)
    }

    async fn drain(&self) -> Result<u64, StoreError> {
        let mut invocation = self.unfenced(&DRAIN);
        let prefix = glob_escape(&self.keys.prefix);
        invocation.arg(format!("{prefix}req:*"));
        invocation.arg(format!("{prefix}inbox:*"));
        let drained: u64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(drained)
    }

    fn describe(&self) -> String {
        self.url.clone()
    }

    /// Pages through the hash `place` with `HSCAN` (its cursor is the page cursor):
    /// every placement present for the whole listing is listed once, in the hash's
    /// order, not sorted. A type filter is a `MATCH` on the encoded actor's prefix
    /// (`<len>:<type>`, exact thanks to the length).
    async fn list_placements(
        &self,
        actor_type: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PlacementPage, StoreError> {
        let key = format!("{}place", self.keys.prefix);
        let cursor: u64 = match cursor {
            None => 0,
            Some(text) => text
                .parse()
                .map_err(|_| StoreError::Config(format!("malformed placement cursor {text:?}")))?,
        };
        let mut scan = redis::cmd("HSCAN");
        scan.arg(&key).arg(cursor);
        if let Some(actor_type) = actor_type {
            let prefix = format!("{}:{actor_type}", actor_type.len());
            scan.arg("MATCH").arg(format!("{}*", glob_escape(&prefix)));
        }
        scan.arg("COUNT").arg(limit);
        let (next, fields): (u64, Value) = scan.query_async(&mut self.conn.clone()).await?;
        let placements = value_pairs(fields)?
            .into_iter()
            .map(|(actor, node)| {
                let actor = decode_actor(&actor).ok_or_else(|| StoreError::Corrupt {
                    key: key.clone(),
                    reason: format!("bad actor field {actor:?}"),
                })?;
                Ok((actor, NodeId(String::from_utf8_lossy(&node).into_owned())))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(PlacementPage {
            placements,
            next: (next != 0).then(|| next.to_string()),
        })
    }

    async fn subscription_lags(&self) -> Result<Vec<SubscriptionLag>, StoreError> {
        self.read_subscription_lags().await
    }
}
