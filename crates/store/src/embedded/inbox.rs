//! Inboxes in the embedded engine: the `inbox` table, one row per message, read in
//! `seq` order by the member (`EmbeddedInbox`), woken by pokes; the rows of requests
//! travel with their poke as letters too (`letters`), which spare the member most
//! reads of its table.

use super::adoption::Adoption;
use super::db::{Db, Pokes};
use super::letters::{self, Letter, Mailbox};
use super::liveness::Watchers;
use super::mesh::mesh_version;
use super::poke::Listening;
use crate::codec::{decode, encode};
use crate::codes::kind_from_code;
use crate::{Inbox, Message, Signal, StoreError};
use async_trait::async_trait;
use kar_protocol::RequestId;
use rusqlite::{params, Connection};
use std::fs::File;
use std::sync::Arc;

/// Inbox row kinds (the `kind` column): what the row's message is. Request rows
/// name their request (`request_id`), signal rows carry the signal (`payload`).
pub(super) const EXECUTE: i64 = 0;
pub(super) const COMPLETED: i64 = 1;
pub(super) const SIGNAL: i64 = 2;

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

/// Appends a message about request `id` to the inbox of `node`, listening on `port`,
/// and posts the row as a letter (`letters`): `payload` is the request's record
/// (`EXECUTE`) or its outcome (`COMPLETED`, of a request of kind `request_kind`).
/// Returns the ports to poke: none when the letter goes, else `port` (a payload too
/// large for a letter).
pub(super) fn push_lettered(
    conn: &Connection,
    app: &str,
    (node, port): (&str, u16),
    kind: i64,
    id: &str,
    request_kind: i64,
    payload: &[u8],
) -> Result<Pokes, StoreError> {
    if payload.len() > letters::MAX_PAYLOAD {
        push(conn, app, node, kind, id)?;
        return Ok(vec![port]);
    }
    // The inbox index (app, node, seq) answers with one descent.
    let prev: i64 = conn
        .prepare_cached("SELECT coalesce(max(seq), 0) FROM inbox WHERE app = ?1 AND node = ?2")?
        .query_row([app, node], |row| row.get(0))?;
    push(conn, app, node, kind, id)?;
    let letter = Letter {
        seq: conn.last_insert_rowid(),
        prev,
        kind,
        request_id: id.to_string(),
        request_kind,
        payload: payload.to_vec(),
    };
    letters::post(port, &letter);
    Ok(Vec::new())
}

/// Appends a signal to the inbox of `node`.
pub(super) fn push_signal(
    conn: &Connection,
    app: &str,
    node: &str,
    signal: &Signal,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO inbox (app, node, kind, request_id, payload) VALUES (?1, ?2, ?3, '', ?4)",
    )?
    .execute(params![app, node, SIGNAL, encode(signal)])?;
    Ok(())
}

pub(super) struct EmbeddedInbox {
    pub(super) app: String,
    pub(super) node: String,
    pub(super) db: Db,
    /// Reads the inbox in the calling task (`connection::open_reader`): a poke's
    /// wake-up goes straight to the read, not through the database thread.
    pub(super) reader: Connection,
    /// What the pokes brought: letters, or word to read the table.
    pub(super) mailbox: Arc<Mailbox>,
    /// Inbox rows up to this sequence number were handed out and can be deleted.
    pub(super) acked: i64,
    /// Mesh version last reported.
    pub(super) version: i64,
    /// The last read (or letter) handed out every row there was: rows (and mesh
    /// changes) after it come with a poke, so the next read waits for one. Saves a
    /// read transaction per batch of messages (the read that would find nothing new).
    pub(super) drained: bool,
    pub(super) watchers: Arc<Watchers>,
    /// Resumed at every change of the mesh: an adopter of the member's names that
    /// died or left midway leaves requests parked (`adoption`).
    pub(super) adoption: Adoption,
    pub(super) _lock: File,
    /// The poke listeners, stopped (and the socket removed) with the inbox.
    pub(super) _pokes: Listening,
}

/// One inbox row, joined with its request for request rows.
struct InboxRow {
    seq: i64,
    kind: i64,
    request_id: String,
    payload: Option<Vec<u8>>,
    record: Option<Vec<u8>>,
    request_kind: Option<i64>,
    outcome: Option<Vec<u8>>,
}

impl InboxRow {
    /// The message of the row; `None` when its request is gone (purged, or completed
    /// after re-routing).
    fn message(self) -> Result<Option<Message>, StoreError> {
        let key = &self.request_id;
        Ok(
            match (self.kind, self.record, self.outcome, self.request_kind) {
                (EXECUTE, Some(record), _, _) => {
                    Some(Message::Execute(Box::new(decode(key, &record)?)))
                }
                (COMPLETED, Some(_), Some(outcome), Some(kind)) => Some(Message::Completed {
                    id: RequestId(key.clone()),
                    kind: kind_from_code(key, kind)?,
                    outcome: decode(key, &outcome)?,
                }),
                (SIGNAL, ..) => {
                    let key = format!("inbox row {}", self.seq);
                    let payload = self.payload.unwrap_or_default();
                    Some(Message::Signal(decode(&key, &payload)?))
                }
                (EXECUTE | COMPLETED, ..) => None,
                (kind, ..) => {
                    return Err(StoreError::Corrupt {
                        key: format!("inbox row {}", self.seq),
                        reason: format!("unknown inbox row kind {kind}"),
                    })
                }
            },
        )
    }
}

/// Most rows taken by one read.
const INBOX_BATCH: i64 = 1024;

/// The rows of `node`'s inbox after `acked`, in order.
fn rows_after(
    conn: &Connection,
    app: &str,
    node: &str,
    acked: i64,
) -> Result<Vec<InboxRow>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT i.seq, i.kind, i.request_id, i.payload, r.record, r.kind, r.outcome
             FROM inbox i LEFT JOIN requests r ON r.app = i.app AND r.id = i.request_id
             WHERE i.app = ?1 AND i.node = ?2 AND i.seq > ?3 ORDER BY i.seq LIMIT ?4",
        )?
        .query_map(params![app, node, acked, INBOX_BATCH], |row| {
            Ok(InboxRow {
                seq: row.get(0)?,
                kind: row.get(1)?,
                request_id: row.get(2)?,
                payload: row.get(3)?,
                record: row.get(4)?,
                request_kind: row.get(5)?,
                outcome: row.get(6)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

impl EmbeddedInbox {
    /// The messages of `letters` (in order, following `acked`: see
    /// [`Mailbox::open`]), acknowledged like rows read from the table.
    fn hand_out(&mut self, letters: Vec<Letter>) -> Vec<Message> {
        let acked = self.acked;
        let mut messages = Vec::with_capacity(letters.len());
        for letter in letters {
            self.take(letter.seq, letter.message().map(Some), &mut messages);
        }
        self.acknowledge(acked);
        messages
    }

    /// Hands out the message of inbox row `seq` into `out`. A row whose request is
    /// gone has none; a corrupt one (its error names the record) is skipped, not
    /// returned: it is acknowledged all the same, and the messages around it must
    /// still be delivered.
    fn take(
        &mut self,
        seq: i64,
        message: Result<Option<Message>, StoreError>,
        out: &mut Vec<Message>,
    ) {
        self.acked = self.acked.max(seq);
        match message {
            Ok(Some(message)) => out.push(message),
            Ok(None) => {}
            Err(e) => tracing::error!("dropping a corrupt inbox message: {e}"),
        }
    }

    /// Rows handed out since `acked` was the cursor are deleted with the next write.
    fn acknowledge(&self, acked: i64) {
        if self.acked > acked {
            self.db.ack(&self.app, &self.node, self.acked);
        }
    }

    /// The rows after `acked`, the mesh version, and the members if it changed: one
    /// read transaction (a few tens of microseconds; a full batch a millisecond or two).
    #[allow(clippy::type_complexity)]
    fn read_after(&self, acked: i64) -> Result<(Vec<InboxRow>, i64, Vec<String>), StoreError> {
        let started = std::time::Instant::now();
        let conn = &self.reader;
        // One transaction: the rows and the version come from one snapshot.
        let tx = conn.unchecked_transaction()?;
        let rows = rows_after(&tx, &self.app, &self.node, acked)?;
        let version = mesh_version(&tx, &self.app)?;
        // The member list only matters when the mesh changed.
        let members: Vec<String> = if version == self.version {
            Vec::new()
        } else {
            tx.prepare_cached("SELECT node FROM members WHERE app = ?1")?
                .query_map([&self.app], |row| row.get(0))?
                .collect::<Result<_, _>>()?
        };
        drop(tx);
        kar_store_api::timing::observe(kar_store_api::timing::EMBEDDED, "read", started.elapsed());
        Ok((rows, version, members))
    }
}

#[async_trait]
impl Inbox for EmbeddedInbox {
    async fn recv(&mut self) -> Result<Vec<Message>, StoreError> {
        loop {
            if self.drained {
                // A poke that came before this wait (even one for rows the last read
                // saw) left a permit: no wake-up is lost, at worst a read finds nothing.
                self.mailbox.notify.notified().await;
                if let Some(letters) = self.mailbox.open(self.acked) {
                    // Every row up to the last letter is handed out: still drained.
                    let messages = self.hand_out(letters);
                    if !messages.is_empty() {
                        return Ok(messages);
                    }
                    continue;
                }
                // Cleared before reading: a read cancelled midway is done again.
                self.drained = false;
            }
            // The read finds every row a pending letter names.
            self.mailbox.clear();
            let acked = self.acked;
            let (rows, version, members) = self.read_after(acked)?;
            self.drained = (rows.len() as i64) < INBOX_BATCH;
            let mut messages = Vec::with_capacity(rows.len() + 1);
            if version != self.version {
                if self.version >= 0 {
                    messages.push(Message::MembersChanged);
                }
                self.version = version;
                self.watchers
                    .watch_all(members, std::slice::from_ref(&self.node));
                self.adoption.start(None);
            }
            for row in rows {
                self.take(row.seq, row.message(), &mut messages);
            }
            self.acknowledge(acked);
            if !messages.is_empty() {
                return Ok(messages);
            }
        }
    }
}
