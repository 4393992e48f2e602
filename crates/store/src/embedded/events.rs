//! Events in the embedded engine: the global `topics` and `events` tables (no app
//! column: topics are shared by every application) and the per-application
//! `subscriptions` table (reading and cancelling are shared with reminders:
//! `bindings.rs`).

use super::bindings::Binding;
use super::event_log;
use super::routing::insert_request;
use super::EmbeddedStore;
use crate::codes::sql_status;
use crate::{Bridge, Claim, Delivery, EventRequestBuilder, EventStore, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::{ActorRef, Subscription};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::time::Duration;

impl Binding for Subscription {
    const TABLE: &'static str = "subscriptions";
    const COLUMNS: &'static str =
        "actor_type, actor_id, id, path, topic, content_type, grp, oldest";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Subscription> {
        Ok(Subscription {
            actor: ActorRef::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?),
            id: row.get(2)?,
            path: row.get(3)?,
            topic: row.get(4)?,
            content_type: row.get(5)?,
            group: row.get(6)?,
            oldest: row.get(7)?,
        })
    }
}

fn to_offset(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The offset of the topic's newest event (0 if none ever).
fn last_offset(conn: &Connection, topic: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT last FROM topics WHERE topic = ?1")?
        .query_row([topic], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

#[async_trait]
impl EventStore for EmbeddedStore {
    async fn topic_create(&self, topic: &str) -> Result<bool, StoreError> {
        let topic = topic.to_string();
        self.db
            .run(move |conn| {
                let created = conn
                    .prepare_cached(
                        "INSERT INTO topics (topic, last, live) VALUES (?1, 0, 1)
                         ON CONFLICT (topic) DO UPDATE SET live = 1 WHERE live = 0",
                    )?
                    .execute([&topic])?
                    > 0;
                Ok((created, Vec::new()))
            })
            .await
    }

    async fn topic_delete(&self, topic: &str) -> Result<bool, StoreError> {
        let topic = topic.to_string();
        self.db
            .run(move |conn| {
                let existed = conn
                    .prepare_cached("UPDATE topics SET live = 0 WHERE topic = ?1 AND live = 1")?
                    .execute([&topic])?
                    > 0;
                conn.prepare_cached("DELETE FROM events WHERE topic = ?1")?
                    .execute([&topic])?;
                Ok((existed, Vec::new()))
            })
            .await
    }

    async fn publish(&self, topic: &str, event: Bytes) -> Result<u64, StoreError> {
        let topic = topic.to_string();
        self.db
            .run(move |conn| {
                let offset: i64 = conn
                    .prepare_cached(
                        "INSERT INTO topics (topic, last, live) VALUES (?1, 1, 1)
                         ON CONFLICT (topic) DO UPDATE SET last = last + 1, live = 1
                         RETURNING last",
                    )?
                    .query_row([&topic], |row| row.get(0))?;
                conn.prepare_cached(
                    "INSERT INTO events (topic, offset, data, at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![
                    topic,
                    offset,
                    event.as_ref(),
                    event_log::now_ms()
                ])?;
                Ok((to_offset(offset), Vec::new()))
            })
            .await
    }

    async fn subscribe(&self, s: &Subscription) -> Result<bool, StoreError> {
        let app = self.app.clone();
        let s = s.clone();
        self.db
            .run(move |conn| {
                let replaced = conn
                    .prepare_cached(
                        "SELECT 1 FROM subscriptions
                         WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND id = ?4",
                    )?
                    .exists(params![app, s.actor.actor_type, s.actor.id, s.id])?;
                let start = if s.oldest {
                    0
                } else {
                    last_offset(conn, &s.topic)?
                };
                // A replacement on the same topic and consumer group keeps its position;
                // on another one it starts at `start`. Either way it keeps its delivery
                // in flight: the next one still waits for it. (The right-hand sides of
                // the update read the row as it was.)
                conn.prepare_cached(
                    "INSERT INTO subscriptions
                       (app, actor_type, actor_id, id, path, topic, content_type, grp, oldest, position)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (app, actor_type, actor_id, id) DO UPDATE SET
                       path = excluded.path, topic = excluded.topic,
                       content_type = excluded.content_type, grp = excluded.grp,
                       oldest = excluded.oldest,
                       position = CASE WHEN topic = excluded.topic AND grp = excluded.grp
                                  THEN position ELSE excluded.position END",
                )?
                .execute(params![
                    app,
                    s.actor.actor_type,
                    s.actor.id,
                    s.id,
                    s.path,
                    s.topic,
                    s.content_type,
                    s.group,
                    s.oldest,
                    start
                ])?;
                Ok((replaced, Vec::new()))
            })
            .await
    }

    async fn deliver_event(
        &self,
        actor: &ActorRef,
        id: &str,
        build: &EventRequestBuilder,
    ) -> Result<Delivery, StoreError> {
        // Most polls find nothing to deliver: a read (no write lock, which every kar
        // process of the host competes for) settles that.
        let (app, actor, id) = (self.app.clone(), actor.clone(), id.to_string());
        let build = build.clone();
        let (a, r, i) = (app.clone(), actor.clone(), id.clone());
        let first = self.db.read(move |conn| probe(conn, &a, &r, &i)).await?;
        if let Some(done) = settled(&first) {
            return Ok(done);
        }
        self.db
            .run(move |conn| {
                // Read again inside the write transaction: another member may have delivered.
                let found = probe(conn, &app, &actor, &id)?;
                if let Some(done) = settled(&found) {
                    return Ok((done, Vec::new()));
                }
                let Some((sub, _, _, Some((offset, event)))) = found else {
                    return Ok((Delivery::UpToDate, Vec::new()));
                };
                let request = build(&sub, &event);
                let (routing, pokes) = insert_request(conn, &app, &request, false)?;
                conn.prepare_cached(
                    "UPDATE subscriptions SET position = ?5, inflight = ?6
                     WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND id = ?4",
                )?
                .execute(params![
                    app,
                    actor.actor_type,
                    actor.id,
                    id,
                    offset,
                    request.id.as_str()
                ])?;
                Ok((
                    Delivery::Delivered {
                        offset: to_offset(offset),
                        request: Box::new(request),
                        routing,
                    },
                    pokes,
                ))
            })
            .await
    }

    async fn trim(&self, topic: &str, retention: Duration, max: u64) -> Result<u64, StoreError> {
        let topic = topic.to_string();
        self.db
            .run_long(move |conn| Ok((event_log::trim(conn, &topic, retention, max)?, Vec::new())))
            .await
    }

    async fn bridge_claim(
        &self,
        bridge: &Bridge,
        node: &str,
        _lease: Duration,
    ) -> Result<Claim, StoreError> {
        let (app, bridge, node) = (self.app.clone(), bridge.clone(), node.to_string());
        self.db
            .run(move |conn| Ok((event_log::claim(conn, &bridge, &app, &node)?, Vec::new())))
            .await
    }

    async fn bridge_append(
        &self,
        bridge: &Bridge,
        node: &str,
        _lease: Duration,
        from: Option<i64>,
        next: i64,
        events: Vec<Bytes>,
    ) -> Result<bool, StoreError> {
        let (app, bridge, node) = (self.app.clone(), bridge.clone(), node.to_string());
        self.db
            .run(move |conn| {
                let done = event_log::append(conn, &bridge, &app, &node, from, next, &events)?;
                Ok((done, Vec::new()))
            })
            .await
    }
}

/// What a delivery would find: the subscription, its position, whether its previous
/// delivery is unfinished, and the next event.
type Probe = Option<(Subscription, i64, bool, Option<(i64, Vec<u8>)>)>;

fn probe(conn: &Connection, app: &str, actor: &ActorRef, id: &str) -> Result<Probe, StoreError> {
    let found: Option<(Subscription, i64, Option<String>)> = conn
        .prepare_cached(&format!(
            "SELECT {}, position, inflight FROM subscriptions
             WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND id = ?4",
            Subscription::COLUMNS
        ))?
        .query_row([app, &actor.actor_type, &actor.id, id], |row| {
            Ok((Subscription::from_row(row)?, row.get(8)?, row.get(9)?))
        })
        .optional()?;
    let Some((sub, position, inflight)) = found else {
        return Ok(None);
    };
    // A tell's record goes when it completes (or expires parked): while it is there
    // and not done, the previous event is still being delivered.
    let busy = match &inflight {
        Some(request) => conn
            .prepare_cached(concat!(
                "SELECT 1 FROM requests WHERE app = ?1 AND id = ?2 AND status <> ",
                sql_status!(Done)
            ))?
            .query_row([app, request.as_str()], |_| Ok(()))
            .optional()?
            .is_some(),
        None => false,
    };
    let next = if busy {
        None
    } else {
        conn.prepare_cached(
            "SELECT offset, data FROM events WHERE topic = ?1 AND offset > ?2
             ORDER BY offset LIMIT 1",
        )?
        .query_row(params![sub.topic, position], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?
    };
    Ok(Some((sub, position, busy, next)))
}

fn settled(probe: &Probe) -> Option<Delivery> {
    match probe {
        None => Some(Delivery::Gone),
        Some((_, _, true, _)) => Some(Delivery::InFlight),
        Some((_, _, false, None)) => Some(Delivery::UpToDate),
        Some((_, _, false, Some(_))) => None,
    }
}
