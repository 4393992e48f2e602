//! Idempotency keys in the embedded engine: the `idempotency` table (schema version
//! 3), one row per live key: the request it maps to, its expiry (Unix ms, this
//! host's clock: every process of the store runs on it), the retention to apply again
//! at completion, and the outcome once recorded by `complete` ([`record_outcome`]).
//! Expired rows are ignored at once and deleted by [`IdempotencyStore::sweep_keys`].

use super::routing::insert_request;
use super::EmbeddedStore;
use crate::codec::{decode, idempotency_target};
use crate::{IdempotencyStore, Keyed, KeyedRequest, StoreError};
use async_trait::async_trait;
use kar_protocol::{Outcome, Request, RequestId, Target};
use rusqlite::{params, Connection, OptionalExtension};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The live row of `(target, key)`: the request it maps to, if that request is
/// pending or has a recorded outcome.
fn live_key(
    conn: &Connection,
    app: &str,
    target: &str,
    key: &str,
) -> Result<Option<KeyedRequest>, StoreError> {
    let row: Option<(String, Option<Vec<u8>>)> = conn
        .prepare_cached(
            "SELECT id, outcome FROM idempotency
             WHERE app = ?1 AND target = ?2 AND key = ?3 AND expires_at > ?4",
        )?
        .query_row(params![app, target, key, now_ms()], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let Some((id, outcome)) = row else {
        return Ok(None);
    };
    if let Some(outcome) = outcome {
        let outcome: Outcome = decode(&id, &outcome)?;
        return Ok(Some(KeyedRequest {
            id: RequestId(id),
            outcome: Some(outcome),
        }));
    }
    // Pending, or ended without an outcome (expired while parked, drained): then
    // the key is free.
    let pending = conn
        .prepare_cached("SELECT 1 FROM requests WHERE app = ?1 AND id = ?2")?
        .exists([app, &id])?;
    Ok(pending.then(|| KeyedRequest {
        id: RequestId(id),
        outcome: None,
    }))
}

/// Records the outcome of request `id` with its key, if it was made with one that
/// still maps to it; the key then lives for its retention from now. Part of the
/// completion transition (`RequestStore::complete`).
pub(super) fn record_outcome(
    conn: &Connection,
    app: &str,
    id: &str,
    outcome: &[u8],
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "UPDATE idempotency INDEXED BY idempotency_request SET outcome = ?3, expires_at = ?4 + retention
         WHERE app = ?1 AND id = ?2 AND expires_at > ?4",
    )?
    .execute(params![app, id, outcome, now_ms()])?;
    Ok(())
}

#[async_trait]
impl IdempotencyStore for EmbeddedStore {
    async fn enqueue_keyed(
        &self,
        request: &Request,
        key: &str,
        retention: Duration,
    ) -> Result<Keyed, StoreError> {
        let app = self.app.clone();
        let request = request.clone();
        let key = key.to_string();
        let retention = millis(retention);
        self.db
            .run(move |conn| {
                let target = idempotency_target(&request.target);
                if let Some(existing) = live_key(conn, &app, &target, &key)? {
                    return Ok((Keyed::Existing(existing), Vec::new()));
                }
                let (routing, pokes) = insert_request(conn, &app, &request, false)?;
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO idempotency
                     (app, target, key, id, expires_at, retention, outcome)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)",
                )?
                .execute(params![
                    app,
                    target,
                    key,
                    request.id.as_str(),
                    now_ms().saturating_add(retention),
                    retention
                ])?;
                Ok((Keyed::New(routing), pokes))
            })
            .await
    }

    async fn keyed(&self, target: &Target, key: &str) -> Result<Option<KeyedRequest>, StoreError> {
        let app = self.app.clone();
        let target = idempotency_target(target);
        let key = key.to_string();
        self.db
            .read(move |conn| live_key(conn, &app, &target, &key))
            .await
    }

    async fn sweep_keys(&self) -> Result<u64, StoreError> {
        let app = self.app.clone();
        self.db
            .run(move |conn| {
                let swept = conn
                    .prepare_cached("DELETE FROM idempotency WHERE app = ?1 AND expires_at <= ?2")?
                    .execute(params![app, now_ms()])? as u64;
                Ok((swept, Vec::new()))
            })
            .await
    }
}
