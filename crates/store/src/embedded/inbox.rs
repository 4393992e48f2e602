//! Inboxes in the embedded engine: the `inbox` table, one row per message, read in
//! `seq` order by the member (`EmbeddedInbox`), woken by pokes.

use super::db::Db;
use super::liveness::Watchers;
use super::mesh::mesh_version;
use crate::codec::decode;
use crate::codes::kind_from_code;
use crate::{Inbox, Message, StoreError};
use async_trait::async_trait;
use kar_protocol::RequestId;
use rusqlite::{params, Connection};
use std::fs::File;
use std::sync::Arc;
use tokio::sync::Notify;

/// Inbox row kinds (the `kind` column): what the row's message is.
pub(super) const EXECUTE: i64 = 0;
pub(super) const COMPLETED: i64 = 1;

/// Appends a message about request `id` (`EXECUTE` or `COMPLETED`) to the inbox of
/// `node`.
pub(super) fn push(
    conn: &Connection,
    app: &str,
    node: &str,
    kind: i64,
    id: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO inbox (app, node, kind, request_id) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![app, node, kind, id])?;
    Ok(())
}

pub(super) struct EmbeddedInbox {
    pub(super) app: String,
    pub(super) node: String,
    pub(super) db: Db,
    pub(super) notify: Arc<Notify>,
    /// Inbox rows up to this sequence number were handed out and can be deleted.
    pub(super) acked: i64,
    /// Mesh version last reported.
    pub(super) version: i64,
    pub(super) watchers: Arc<Watchers>,
    pub(super) _lock: File,
    pub(super) listener: tokio::task::JoinHandle<()>,
}

impl Drop for EmbeddedInbox {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// One inbox row joined with its request.
struct InboxRow {
    seq: i64,
    kind: i64,
    request_id: String,
    record: Option<Vec<u8>>,
    request_kind: Option<i64>,
    outcome: Option<Vec<u8>>,
}

const INBOX_BATCH: i64 = 1024;

#[async_trait]
impl Inbox for EmbeddedInbox {
    async fn recv(&mut self) -> Result<Vec<Message>, StoreError> {
        loop {
            let app = self.app.clone();
            let node = self.node.clone();
            let acked = self.acked;
            let known_version = self.version;
            let (rows, version, members) = self
                .db
                .read(move |conn| {
                    let rows: Vec<InboxRow> = conn
                        .prepare_cached(
                            "SELECT i.seq, i.kind, i.request_id, r.record, r.kind, r.outcome
                             FROM inbox i LEFT JOIN requests r ON r.app = i.app AND r.id = i.request_id
                             WHERE i.app = ?1 AND i.node = ?2 AND i.seq > ?3 ORDER BY i.seq LIMIT ?4",
                        )?
                        .query_map(params![app, node, acked, INBOX_BATCH], |row| {
                            Ok(InboxRow {
                                seq: row.get(0)?,
                                kind: row.get(1)?,
                                request_id: row.get(2)?,
                                record: row.get(3)?,
                                request_kind: row.get(4)?,
                                outcome: row.get(5)?,
                            })
                        })?
                        .collect::<Result<_, _>>()?;
                    let version = mesh_version(conn, &app)?;
                    // The member list only matters when the mesh changed.
                    let members: Vec<String> = if version == known_version {
                        Vec::new()
                    } else {
                        conn.prepare_cached("SELECT node FROM members WHERE app = ?1")?
                            .query_map([&app], |row| row.get(0))?
                            .collect::<Result<_, _>>()?
                    };
                    Ok((rows, version, members))
                })
                .await?;
            let mut messages = Vec::with_capacity(rows.len() + 1);
            if version != self.version {
                if self.version >= 0 {
                    messages.push(Message::MembersChanged);
                }
                self.version = version;
                self.watchers
                    .watch_all(members, std::slice::from_ref(&self.node));
            }
            for row in rows {
                self.acked = self.acked.max(row.seq);
                let message = match (row.kind, row.record, row.outcome, row.request_kind) {
                    (EXECUTE, Some(record), _, _) => decode(&row.request_id, &record)
                        .map(|request| Some(Message::Execute(Box::new(request)))),
                    (COMPLETED, Some(_), Some(outcome), Some(kind)) => {
                        kind_from_code(&row.request_id, kind).and_then(|kind| {
                            Ok(Some(Message::Completed {
                                id: RequestId(row.request_id.clone()),
                                kind,
                                outcome: decode(&row.request_id, &outcome)?,
                            }))
                        })
                    }
                    // The request is gone (purged, or completed after re-routing).
                    _ => Ok(None),
                };
                match message {
                    Ok(Some(message)) => messages.push(message),
                    Ok(None) => {}
                    // Skipped, not returned: the row is already acknowledged, and the
                    // messages around it must still be delivered.
                    Err(e) => {
                        tracing::error!(request = %row.request_id, "dropping a corrupt inbox message: {e}")
                    }
                }
            }
            if self.acked > acked {
                // Handed out from here on: delete them with the next write.
                self.db.ack(&self.app, &self.node, self.acked);
            }
            if !messages.is_empty() {
                return Ok(messages);
            }
            self.notify.notified().await;
        }
    }
}
