//! The life of a topic's log beyond publish and delivery in the embedded engine:
//! retention (trimming what every subscription passed) and bridges from outside
//! logs (`bridges`, schema version 3).
//!
//! A bridge's owner is a member of some application; it is dead once its row left
//! `members` (its lock file was released: see `liveness`), so a takeover follows a
//! death as fast as recovery does. Appending checks the owner and compares the
//! partition's next offset in the transition that writes the events: a record is
//! appended once, even if a stalled owner wakes up after a takeover.

use crate::{Bridge, Claim, StoreError};
use bytes::Bytes;
use rusqlite::{params, Connection, OptionalExtension};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch (events' `at`).
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Deletes up to `max` of the oldest events of `topic` that every subscription passed
/// and that are older than `retention`.
pub(super) fn trim(
    conn: &Connection,
    topic: &str,
    retention: Duration,
    max: u64,
) -> Result<u64, StoreError> {
    // Every subscription of every application (topics are global) holds what it has
    // not been delivered yet; with none, the whole log may go.
    let passed: Option<i64> = conn
        .prepare_cached("SELECT min(position) FROM subscriptions WHERE topic = ?1")?
        .query_row([topic], |row| row.get(0))?;
    let limit = match passed {
        Some(position) => position,
        None => conn
            .prepare_cached("SELECT last FROM topics WHERE topic = ?1")?
            .query_row([topic], |row| row.get(0))
            .optional()?
            .unwrap_or(0),
    };
    let cutoff = now_ms().saturating_sub(i64::try_from(retention.as_millis()).unwrap_or(i64::MAX));
    let deleted = conn
        .prepare_cached(
            "DELETE FROM events WHERE topic = ?1 AND offset IN (
               SELECT offset FROM events WHERE topic = ?1 AND offset <= ?2 AND at <= ?3
               ORDER BY offset LIMIT ?4)",
        )?
        .execute(params![
            topic,
            limit,
            cutoff,
            i64::try_from(max).unwrap_or(i64::MAX)
        ])?;
    Ok(deleted as u64)
}

/// The bridge's row: owner (app, node) and next offset.
fn owner(
    conn: &Connection,
    b: &Bridge,
) -> Result<Option<(String, String, Option<i64>)>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT app, node, next FROM bridges WHERE topic = ?1 AND source = ?2 AND partition = ?3",
        )?
        .query_row(params![b.topic, b.source, b.partition], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?)
}

fn is_member(conn: &Connection, app: &str, node: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM members WHERE app = ?1 AND node = ?2")?
        .exists([app, node])?)
}

pub(super) fn claim(
    conn: &Connection,
    b: &Bridge,
    app: &str,
    node: &str,
) -> Result<Claim, StoreError> {
    let next = match owner(conn, b)? {
        Some((a, n, next)) if a == app && n == node => return Ok(Claim::Mine(next)),
        Some((a, n, _)) if is_member(conn, &a, &n)? => return Ok(Claim::Owned(n)),
        Some((_, _, next)) => next,
        None => None,
    };
    conn.prepare_cached(
        "INSERT INTO bridges (topic, source, partition, app, node, next) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (topic, source, partition) DO UPDATE SET app = excluded.app, node = excluded.node",
    )?
    .execute(params![b.topic, b.source, b.partition, app, node, next])?;
    Ok(Claim::Mine(next))
}

pub(super) fn append(
    conn: &Connection,
    b: &Bridge,
    app: &str,
    node: &str,
    from: Option<i64>,
    next: i64,
    events: &[Bytes],
) -> Result<bool, StoreError> {
    match owner(conn, b)? {
        Some((a, n, at)) if a == app && n == node && at == from => {}
        _ => return Ok(false),
    }
    let at = now_ms();
    for event in events {
        let offset: i64 = conn
            .prepare_cached(
                "INSERT INTO topics (topic, last, live) VALUES (?1, 1, 1)
                 ON CONFLICT (topic) DO UPDATE SET last = last + 1, live = 1
                 RETURNING last",
            )?
            .query_row([&b.topic], |row| row.get(0))?;
        conn.prepare_cached(
            "INSERT INTO events (topic, offset, data, at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![b.topic, offset, event.as_ref(), at])?;
    }
    conn.prepare_cached(
        "UPDATE bridges SET next = ?4 WHERE topic = ?1 AND source = ?2 AND partition = ?3",
    )?
    .execute(params![b.topic, b.source, b.partition, next])?;
    Ok(true)
}
