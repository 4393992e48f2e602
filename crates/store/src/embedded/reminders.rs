//! Reminders in the embedded engine: the `reminders` table, indexed by (app, due)
//! (reading and cancelling are shared with subscriptions: `bindings.rs`).

use super::bindings::Binding;
use super::routing::insert_request;
use super::EmbeddedStore;
use crate::codes::sql_status;
use crate::{Firing, ReminderStore, RequestBuilder, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::{ActorRef, Reminder, TraceContext};
use rusqlite::{params, Connection, Row};

impl Binding for Reminder {
    const TABLE: &'static str = "reminders";
    const COLUMNS: &'static str =
        "actor_type, actor_id, id, path, due, target_text, period, data, trace";

    fn from_row(row: &Row<'_>) -> rusqlite::Result<Reminder> {
        Ok(Reminder {
            actor: ActorRef::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?),
            id: row.get(2)?,
            path: row.get(3)?,
            target: row.get(4)?,
            target_text: row.get(5)?,
            period: row.get(6)?,
            data: Bytes::from(row.get::<_, Vec<u8>>(7)?),
            // A malformed context (never written by kar) is no context.
            trace: row
                .get::<_, Option<String>>(8)?
                .and_then(|text| TraceContext::parse(&text)),
        })
    }
}

#[async_trait]
impl ReminderStore for EmbeddedStore {
    async fn reminder_schedule(&self, r: &Reminder) -> Result<bool, StoreError> {
        let app = self.app.clone();
        let r = r.clone();
        self.db.run(move |conn| {
        let replaced = conn
            .prepare_cached(
                "DELETE FROM reminders WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND id = ?4",
            )?
            .execute(params![app, r.actor.actor_type, r.actor.id, r.id])?
            > 0;
        conn.prepare_cached(
            "INSERT INTO reminders (app, actor_type, actor_id, id, path, due, target_text, period, data, trace)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
            r.data.as_ref(),
            r.trace.map(|t| t.to_string())
        ])?;
        Ok((replaced, Vec::new()))
    })
    .await
    }

    async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        let app = self.app.clone();
        self.db.read(move |conn| earliest(conn, &app)).await
    }

    async fn fire_due(
        &self,
        now: i64,
        limit: usize,
        build: &RequestBuilder,
    ) -> Result<Vec<Firing>, StoreError> {
        // Most ticks find nothing due: a read (no write lock, which every kar process of
        // the host competes for) settles that.
        let app = self.app.clone();
        let build = build.clone();
        let probe = app.clone();
        let due = self
            .db
            .read(move |conn| earliest(conn, &probe))
            .await?
            .is_some_and(|due| due <= now);
        if !due || limit == 0 {
            return Ok(Vec::new());
        }
        self.db.run(move |conn| {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let due: Vec<Reminder> = conn
            .prepare_cached(&format!(
                "SELECT {} FROM reminders WHERE app = ?1 AND due <= ?2
                         ORDER BY due, actor_type, actor_id, id LIMIT ?3",
                Reminder::COLUMNS
            ))?
            .query_map(params![app, now, limit], Reminder::from_row)?
            .collect::<Result<_, _>>()?;
        let mut firings = Vec::with_capacity(due.len());
        let mut pokes = Vec::new();
        for reminder in due {
            let request = build(&reminder);
            let (routing, more) = insert_request(conn, &app, &request, true)?;
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

    async fn firings_pending(&self, bound: usize) -> Result<usize, StoreError> {
        let app = self.app.clone();
        let bound = i64::try_from(bound).unwrap_or(i64::MAX);
        self.db
            .read(move |conn| {
                // Through the partial index `requests_firing`: at most `bound` entries.
                let n: i64 = conn
                    .prepare_cached(concat!(
                        "SELECT count(*) FROM (SELECT 1 FROM requests
                         WHERE app = ?1 AND firing = 1 AND status IN (",
                        sql_status!(Queued),
                        ", ",
                        sql_status!(Parked),
                        ", ",
                        sql_status!(Held),
                        ") LIMIT ?2)"
                    ))?
                    .query_row(params![app, bound], |row| row.get(0))?;
                Ok(usize::try_from(n).unwrap_or(0))
            })
            .await
    }
}

fn earliest(conn: &Connection, app: &str) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT min(due) FROM reminders WHERE app = ?1")?
        .query_row([app], |row| row.get(0))?)
}
