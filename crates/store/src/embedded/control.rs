//! An operator's control of pending requests in the embedded engine: listing by `seq`
//! (the rowid: pages read a range of the primary key), one request with its children
//! (the children index), kill and pause (one transaction each).

use super::db::Pokes;
use super::inbox::{self, COMPLETED, EXECUTE};
use super::mesh::is_member;
use super::recovery;
use super::EmbeddedStore;
use crate::codec::{decode, encode};
use crate::codes::{kind, kind_from_code, sql_status, Status};
use crate::{
    ControlStore, Killed, Paused, PendingRequest, PendingStatus, RequestFilter, RequestPage,
    Signal, StoreError, KILLED,
};
use async_trait::async_trait;
use kar_protocol::{NodeId, Outcome, RequestId};
use rusqlite::{params, Connection, OptionalExtension, Row};

const COLUMNS: &str = "seq, id, status, assignee, record";

fn pending_status(id: &str, code: &str) -> Result<Option<PendingStatus>, StoreError> {
    Ok(match Status::from_sql(id, code)? {
        Status::Queued => Some(PendingStatus::Queued),
        Status::Parked => Some(PendingStatus::Parked),
        Status::Held => Some(PendingStatus::Held),
        Status::Paused => Some(PendingStatus::Paused),
        Status::Done => None,
    })
}

type RawRow = (i64, String, String, Option<String>, Vec<u8>);

fn raw(row: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn pending(raw: RawRow) -> Result<Option<PendingRequest>, StoreError> {
    let (seq, id, status, assignee, record) = raw;
    let Some(status) = pending_status(&id, &status)? else {
        return Ok(None);
    };
    Ok(Some(PendingRequest {
        seq: seq as u64,
        request: decode(&id, &record)?,
        status,
        assignee: assignee.map(NodeId),
    }))
}

/// The status, kind, caller, assignee and parent of request `id`.
pub(super) type Head = (String, i64, String, Option<String>, Option<String>);

pub(super) fn head(conn: &Connection, app: &str, id: &str) -> Result<Option<Head>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT status, kind, caller, assignee, parent FROM requests
             WHERE app = ?1 AND id = ?2",
        )?
        .query_row([app, id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
            ))
        })
        .optional()?)
}

/// Takes request `id` away from its assignee: its Execute row goes (if unread) and
/// the member is told to abandon it (if it read it). Returns the port to poke.
fn withdraw(
    conn: &Connection,
    app: &str,
    id: &str,
    assignee: &str,
) -> Result<Option<u16>, StoreError> {
    conn.prepare_cached(
        "DELETE FROM inbox WHERE app = ?1 AND node = ?2 AND kind = ?3 AND request_id = ?4",
    )?
    .execute(params![app, assignee, EXECUTE, id])?;
    let Some(port) = is_member(conn, app, assignee)? else {
        return Ok(None);
    };
    let abandon = Signal::Abandon {
        id: RequestId(id.to_string()),
    };
    inbox::push_signal(conn, app, assignee, &abandon)?;
    Ok(Some(port))
}

#[async_trait]
impl ControlStore for EmbeddedStore {
    async fn list_requests(
        &self,
        filter: &RequestFilter,
        after: Option<u64>,
        limit: usize,
    ) -> Result<RequestPage, StoreError> {
        let app = self.app.clone();
        let filter = filter.clone();
        let after = after.unwrap_or(0) as i64;
        let limit = limit.max(1) as i64;
        self.db
            .read_long(move |conn| {
                let status = filter.status.map(|s| match s {
                    PendingStatus::Queued => Status::Queued.sql(),
                    PendingStatus::Parked => Status::Parked.sql(),
                    PendingStatus::Held => Status::Held.sql(),
                    PendingStatus::Paused => Status::Paused.sql(),
                });
                let service = filter.service.is_some();
                let name = filter.service.clone().or(filter.actor_type.clone());
                let rows: Vec<RawRow> = conn
                    .prepare_cached(concat!(
                        // `+app`: the rowid range, in order, rather than the
                        // (app, id) index and a sort of every row of the app.
                        "SELECT seq, id, status, assignee, record FROM requests
                         WHERE seq > ?2 AND +app = ?1 AND status <> ",
                        sql_status!(Done),
                        " AND (?3 IS NULL OR status = ?3)
                         AND (?4 IS NULL OR name = ?4)
                         AND (?5 = 0 OR actor_type IS NULL)
                         AND (?6 IS NULL OR actor_type IS NOT NULL)
                         AND (?7 IS NULL OR actor_id = ?7)
                         ORDER BY seq LIMIT ?8"
                    ))?
                    .query_map(
                        params![
                            app,
                            after,
                            status,
                            name,
                            service as i64,
                            filter.actor_type,
                            filter.actor_id,
                            limit
                        ],
                        raw,
                    )?
                    .collect::<Result<_, _>>()?;
                let next = (rows.len() as i64 == limit)
                    .then(|| rows.last().map(|r| r.0 as u64))
                    .flatten();
                let mut requests = Vec::with_capacity(rows.len());
                for row in rows {
                    requests.extend(pending(row)?);
                }
                Ok(RequestPage { requests, next })
            })
            .await
    }

    async fn request_with_children(
        &self,
        id: &RequestId,
    ) -> Result<Option<(PendingRequest, Vec<PendingRequest>)>, StoreError> {
        let app = self.app.clone();
        let id = id.0.clone();
        self.db
            .read(move |conn| {
                let row = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM requests WHERE app = ?1 AND id = ?2"
                    ))?
                    .query_row([&app, &id], raw)
                    .optional()?;
                let Some(request) = row.map(pending).transpose()?.flatten() else {
                    return Ok(None);
                };
                let rows: Vec<RawRow> = conn
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM requests WHERE app = ?1 AND parent = ?2 AND kind <> {} \
                         ORDER BY seq",
                        kind!(Tell)
                    ))?
                    .query_map([&app, &id], raw)?
                    .collect::<Result<_, _>>()?;
                let mut children = Vec::new();
                for row in rows {
                    children.extend(pending(row)?);
                }
                Ok(Some((request, children)))
            })
            .await
    }

    async fn kill(&self, id: &RequestId) -> Result<Killed, StoreError> {
        let app = self.app.clone();
        let id = id.0.clone();
        let outcome = encode(&Outcome::Failed(KILLED.to_string()));
        self.db
            .run(move |conn| {
                let Some((status, kind, caller, assignee, parent)) = head(conn, &app, &id)? else {
                    return Ok((Killed::Unknown, Vec::new()));
                };
                if pending_status(&id, &status)?.is_none() {
                    return Ok((Killed::AlreadyComplete, Vec::new()));
                }
                let mut pokes: Pokes = Vec::new();
                if let Some(assignee) = &assignee {
                    pokes.extend(withdraw(conn, &app, &id, assignee)?);
                }
                // From here on, as a completion (requests.rs) by nobody in particular;
                // a duplicate under the request's idempotency key gets the killed reply.
                let kind = kind_from_code(&id, kind)?;
                super::idempotency::record_outcome(conn, &app, &id, &outcome)?;
                match (kind.expects_reply(), is_member(conn, &app, &caller)?) {
                    (true, Some(port)) => {
                        conn.prepare_cached(concat!(
                            "UPDATE requests SET status = ",
                            sql_status!(Done),
                            ", assignee = NULL, outcome = ?3 WHERE app = ?1 AND id = ?2"
                        ))?
                        .execute(params![app, id, outcome])?;
                        inbox::push(conn, &app, &caller, COMPLETED, &id)?;
                        pokes.push(port);
                    }
                    _ => {
                        conn.prepare_cached("DELETE FROM requests WHERE app = ?1 AND id = ?2")?
                            .execute([&app, &id])?;
                    }
                }
                if let (true, Some(parent)) = (kind.expects_reply(), parent) {
                    pokes.extend(recovery::child_finished(conn, &app, &parent)?);
                }
                Ok((
                    Killed::Killed {
                        assignee: assignee.map(NodeId),
                    },
                    pokes,
                ))
            })
            .await
    }

    async fn pause(&self, id: &RequestId) -> Result<Paused, StoreError> {
        let app = self.app.clone();
        let id = id.0.clone();
        self.db
            .run(move |conn| {
                let Some((status, _, _, assignee, _)) = head(conn, &app, &id)? else {
                    return Ok((Paused::Unknown, Vec::new()));
                };
                match pending_status(&id, &status)? {
                    None => return Ok((Paused::AlreadyComplete, Vec::new())),
                    Some(PendingStatus::Paused) => return Ok((Paused::AlreadyPaused, Vec::new())),
                    Some(_) => {}
                }
                let mut pokes: Pokes = Vec::new();
                if let Some(assignee) = &assignee {
                    pokes.extend(withdraw(conn, &app, &id, assignee)?);
                }
                conn.prepare_cached(concat!(
                    "UPDATE requests SET status = ",
                    sql_status!(Paused),
                    ", assignee = NULL WHERE app = ?1 AND id = ?2"
                ))?
                .execute([&app, &id])?;
                Ok((
                    Paused::Paused {
                        assignee: assignee.map(NodeId),
                    },
                    pokes,
                ))
            })
            .await
    }
}
