//! Reminders in the embedded engine: the `reminders` table, indexed by (app, due).

use super::db::Db;
use super::insert_request;
use crate::{Firing, RequestBuilder, StoreError};
use bytes::Bytes;
use kar_protocol::{ActorRef, Reminder};
use rusqlite::{params, Connection, OptionalExtension, Row};

const COLUMNS: &str = "actor_type, actor_id, id, path, due, target_text, period, data";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Reminder> {
    Ok(Reminder {
        actor: ActorRef::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?),
        id: row.get(2)?,
        path: row.get(3)?,
        target: row.get(4)?,
        target_text: row.get(5)?,
        period: row.get(6)?,
        data: Bytes::from(row.get::<_, Vec<u8>>(7)?),
    })
}

pub(super) async fn schedule(db: &Db, app: &str, r: &Reminder) -> Result<bool, StoreError> {
    let app = app.to_string();
    let r = r.clone();
    db.run(move |conn| {
        let replaced = conn
            .prepare_cached(
                "DELETE FROM reminders WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND id = ?4",
            )?
            .execute(params![app, r.actor.actor_type, r.actor.id, r.id])?
            > 0;
        conn.prepare_cached(
            "INSERT INTO reminders (app, actor_type, actor_id, id, path, due, target_text, period, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            app,
            r.actor.actor_type,
            r.actor.id,
            r.id,
            r.path,
            r.target,
            r.target_text,
            r.period,
            r.data.as_ref()
        ])?;
        Ok((replaced, Vec::new()))
    })
    .await
}

/// One reminder (`id`) or all of an actor, by id.
pub(super) async fn get(
    db: &Db,
    app: &str,
    actor: &ActorRef,
    id: Option<&str>,
) -> Result<Vec<Reminder>, StoreError> {
    let (app, t, i) = (app.to_string(), actor.actor_type.clone(), actor.id.clone());
    let id = id.map(str::to_string);
    db.read(move |conn| {
        let found = match &id {
            Some(id) => conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM reminders
                     WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND id = ?4"
                ))?
                .query_row([&app, &t, &i, id], from_row)
                .optional()?
                .into_iter()
                .collect(),
            None => conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM reminders
                     WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 ORDER BY id"
                ))?
                .query_map([&app, &t, &i], from_row)?
                .collect::<Result<_, _>>()?,
        };
        Ok(found)
    })
    .await
}

/// Every reminder of the application, by actor and id.
pub(super) async fn all(db: &Db, app: &str) -> Result<Vec<Reminder>, StoreError> {
    let app = app.to_string();
    db.read(move |conn| {
        Ok(conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM reminders WHERE app = ?1 ORDER BY actor_type, actor_id, id"
            ))?
            .query_map([&app], from_row)?
            .collect::<Result<_, _>>()?)
    })
    .await
}

fn earliest(conn: &Connection, app: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT min(due) FROM reminders WHERE app = ?1")?
        .query_row([app], |row| row.get(0))?)
}

pub(super) async fn next_due(db: &Db, app: &str) -> Result<Option<i64>, StoreError> {
    let app = app.to_string();
    db.read(move |conn| earliest(conn, &app)).await
}

pub(super) async fn fire_due(
    db: &Db,
    app: &str,
    now: i64,
    limit: usize,
    build: RequestBuilder,
) -> Result<Vec<Firing>, StoreError> {
    // Most ticks find nothing due: a read (no write lock, which every kar process of
    // the host competes for) settles that.
    let app = app.to_string();
    let probe = app.clone();
    let due = db
        .read(move |conn| earliest(conn, &probe))
        .await?
        .is_some_and(|due| due <= now);
    if !due || limit == 0 {
        return Ok(Vec::new());
    }
    db.run(move |conn| {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let due: Vec<Reminder> = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM reminders WHERE app = ?1 AND due <= ?2
                 ORDER BY due, actor_type, actor_id, id LIMIT ?3"
            ))?
            .query_map(params![app, now, limit], from_row)?
            .collect::<Result<_, _>>()?;
        let mut firings = Vec::with_capacity(due.len());
        let mut pokes = Vec::new();
        for reminder in due {
            let request = build(&reminder);
            let (routing, more) = insert_request(conn, &app, &request)?;
            pokes.extend(more);
            let key = params![app, reminder.actor.actor_type, reminder.actor.id, reminder.id];
            match reminder.next_target(now) {
                Some(next) => conn
                    .prepare_cached(
                        "UPDATE reminders SET due = ?5, target_text = NULL
                         WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND id = ?4",
                    )?
                    .execute(params![
                        app,
                        reminder.actor.actor_type,
                        reminder.actor.id,
                        reminder.id,
                        next
                    ])?,
                None => conn
                    .prepare_cached(
                        "DELETE FROM reminders WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND id = ?4",
                    )?
                    .execute(key)?,
            };
            firings.push(Firing {
                reminder,
                request,
                routing,
            });
        }
        Ok((firings, pokes))
    })
    .await
}
