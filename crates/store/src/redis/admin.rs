//! Administration of the Redis engine: purging an application's keys, draining its
//! pending requests, and the dashboard's read-only views (placements by page,
//! subscriptions with their lag).

use super::scripts::{DRAIN, PURGE};
use super::{decode_actor, glob_escape, value_pairs, RedisStore};
use crate::{AdminStore, PlacementPage, StoreError, SubscriptionLag};
use async_trait::async_trait;
use kar_protocol::NodeId;
use redis::Value;

/// Fields of a hash that Redis may keep compact (`hash-max-listpack-entries`: 128 by
/// default, 512 in Debian's build); such a hash is paged by the engine itself.
const COMPACT: u64 = 512;

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

    /// Pages through the hash `place`. A compact hash (at most [`COMPACT`] fields,
    /// which Redis keeps as a listpack and `HSCAN` returns whole whatever its
    /// `COUNT`) is read whole and cut into pages in (type, id) order, with the last
    /// key as cursor (`k:<json>`), exactly like the embedded engine. A larger one is
    /// scanned (`HSCAN`, cursor `s:<n>`): every placement present for the whole
    /// listing is listed once, in the hash's order, about `limit` per page (COUNT is
    /// a hint). A type filter is a `MATCH` on the encoded actor's prefix
    /// (`<len>:<type>`, exact thanks to the length).
    async fn list_placements(
        &self,
        actor_type: Option<&str>,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<PlacementPage, StoreError> {
        let key = format!("{}place", self.keys.prefix);
        let malformed =
            |text: &str| StoreError::Config(format!("malformed placement cursor {text:?}"));
        let (scan_from, after) = match cursor {
            None => {
                let fields: u64 = redis::cmd("HLEN")
                    .arg(&key)
                    .query_async(&mut self.conn.clone())
                    .await?;
                if fields > COMPACT {
                    (Some(0), None)
                } else {
                    (None, None)
                }
            }
            Some(text) => match text.split_once(':') {
                Some(("s", n)) => (Some(n.parse::<u64>().map_err(|_| malformed(text))?), None),
                Some(("k", k)) => {
                    let after: (String, String) =
                        serde_json::from_str(k).map_err(|_| malformed(text))?;
                    (None, Some(after))
                }
                _ => return Err(malformed(text)),
            },
        };
        let decode = |(actor, node): (String, bytes::Bytes)| {
            let actor = decode_actor(&actor).ok_or_else(|| StoreError::Corrupt {
                key: key.clone(),
                reason: format!("bad actor field {actor:?}"),
            })?;
            Ok((actor, NodeId(String::from_utf8_lossy(&node).into_owned())))
        };
        let Some(from) = scan_from else {
            let fields: Value = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut self.conn.clone())
                .await?;
            let mut placements = value_pairs(fields)?
                .into_iter()
                .map(decode)
                .collect::<Result<Vec<_>, StoreError>>()?;
            placements.retain(|(actor, _)| actor_type.is_none_or(|t| actor.actor_type == t));
            placements.sort();
            let placements: Vec<_> = placements
                .into_iter()
                .filter(|(actor, _)| {
                    after
                        .as_ref()
                        .is_none_or(|(t, i)| (&actor.actor_type, &actor.id) > (t, i))
                })
                .take(limit)
                .collect();
            let next = (placements.len() == limit)
                .then(|| placements.last())
                .flatten()
                .map(|(a, _)| format!("k:{}", serde_json::json!([a.actor_type, a.id])));
            return Ok(PlacementPage { placements, next });
        };
        let mut scan = redis::cmd("HSCAN");
        scan.arg(&key).arg(from);
        if let Some(actor_type) = actor_type {
            let prefix = format!("{}:{actor_type}", actor_type.len());
            scan.arg("MATCH").arg(format!("{}*", glob_escape(&prefix)));
        }
        scan.arg("COUNT").arg(limit);
        let (next, fields): (u64, Value) = scan.query_async(&mut self.conn.clone()).await?;
        let placements = value_pairs(fields)?
            .into_iter()
            .map(decode)
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(PlacementPage {
            placements,
            next: (next != 0).then(|| format!("s:{next}")),
        })
    }

    async fn subscription_lags(&self) -> Result<Vec<SubscriptionLag>, StoreError> {
        self.read_subscription_lags().await
    }
}
