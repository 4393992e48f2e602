//! The writer: the process's one SQLite connection and what runs on it. Jobs (one
//! transition or read each, `TypedJob`), the transaction around a batch of them (a
//! savepoint per transition when several share it; a transition alone in its
//! transaction needs none: if it fails, the transaction is rolled back), the
//! deletions deferred to the next write transaction (`Cleanup`), and the letters and
//! pokes sent to the members a transaction concerns once it committed (`letters`).
//! Who runs the writer, and when: `db`.

use super::connection::{without_waiting, COMMITS_PER_CHECKPOINT};
use super::db::{Pending, Pokes};
use super::letters;
use super::poke::Poker;
use crate::codes::sql_status;
use crate::StoreError;
use rusqlite::Connection;
use std::collections::HashMap;
use std::sync::{mpsc, Arc, Mutex, MutexGuard, TryLockError};
use tokio::sync::oneshot;

/// Letters a transition posted (`letters::post`): encoded, with their receiver's port.
type Posted = Vec<(u16, Vec<u8>)>;

/// How the transaction around a batch of jobs ended (shared by the jobs of the batch).
type Committed = Result<(), Arc<rusqlite::Error>>;

/// Runs after commit (with the commit's outcome) to hand the result to the caller.
pub(super) trait Job: Send {
    /// Whether the job only reads (it then runs outside the write transaction).
    fn is_read(&self) -> bool;
    /// Runs the body. A write job runs inside a savepoint of its own when `isolate`
    /// (other jobs share the transaction), which is rolled back if the body fails.
    /// Returns the ports to poke and the letters the body posted; `None`: the body
    /// failed (its letters are discarded).
    fn run(&mut self, conn: &Connection, isolate: bool) -> Option<(Pokes, Posted)>;
    fn finish(self: Box<Self>, committed: Committed);
}

pub(super) struct TypedJob<F, R> {
    /// First, so that it is dropped first: a job dropped unfinished is counted off
    /// before its caller learns of it.
    pending: Pending,
    read: bool,
    body: Option<F>,
    result: Option<Result<R, StoreError>>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> Job for TypedJob<F, R>
where
    F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send,
    R: Send,
{
    fn is_read(&self) -> bool {
        self.read
    }

    fn run(&mut self, conn: &Connection, isolate: bool) -> Option<(Pokes, Posted)> {
        let body = self.body.take()?;
        if self.read {
            let result = body(conn).map(|(value, _)| value);
            let ok = result.is_ok();
            self.result = Some(result);
            return ok.then(Default::default);
        }
        letters::discard_posted();
        let ran = self.run_write(body, conn, isolate);
        let posted = letters::take_posted();
        ran.map(|pokes| (pokes, posted))
    }

    fn finish(self: Box<Self>, committed: Committed) {
        let TypedJob {
            result,
            reply,
            pending,
            ..
        } = *self;
        let result = match (committed, result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::unavailable("transition did not run")),
            // The transaction around the transition failed (busy, I/O, full disk):
            // not the transition's fault, so retryable.
            (Err(e), _) => Err(StoreError::Unavailable {
                reason: format!("sqlite transaction: {e}"),
                source: Some(Box::new(e)),
            }),
        };
        // Counted off first: a caller that dispatches as soon as it has the reply
        // finds this job no longer pending.
        drop(pending);
        let _ = reply.send(result);
    }
}

impl<F, R> TypedJob<F, R>
where
    F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send,
    R: Send,
{
    pub(super) fn new(
        read: bool,
        body: F,
        reply: oneshot::Sender<Result<R, StoreError>>,
        pending: Pending,
    ) -> Self {
        TypedJob {
            pending,
            read,
            body: Some(body),
            result: None,
            reply,
        }
    }

    /// Runs a write body (see [`Job::run`]); `None`: it failed.
    fn run_write(&mut self, body: F, conn: &Connection, isolate: bool) -> Option<Pokes> {
        if !isolate {
            return match body(conn) {
                Ok((value, pokes)) => {
                    self.result = Some(Ok(value));
                    Some(pokes)
                }
                Err(e) => {
                    self.result = Some(Err(e));
                    None
                }
            };
        }
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            self.result = Some(Err(e.into()));
            return None;
        }
        match body(conn) {
            Ok((value, pokes)) => match exec(conn, "RELEASE job") {
                Ok(()) => {
                    self.result = Some(Ok(value));
                    Some(pokes)
                }
                Err(e) => {
                    self.result = Some(Err(e.into()));
                    None
                }
            },
            Err(e) => {
                let _ = exec(conn, "ROLLBACK TO job");
                let _ = exec(conn, "RELEASE job");
                self.result = Some(Err(e));
                None
            }
        }
    }
}

/// Deletions that need not happen at once: they run at the start of the next write
/// transaction of this process (see [`Db::forget`](super::db::Db::forget) for when
/// that is).
#[derive(Default)]
pub(super) struct Cleanup {
    /// Inbox rows handed out, per (app, node).
    pub(super) inbox_acks: HashMap<(String, String), i64>,
    /// Completed requests whose outcome the caller consumed, per app.
    pub(super) forgotten: Vec<(String, String)>,
    /// The database thread waits for jobs with no deletion in view: the next
    /// [`Db::forget`](super::db::Db::forget) wakes it.
    pub(super) sleeping: bool,
}

pub(super) type Acks = Arc<Mutex<Cleanup>>;

/// Takes the writer, also after a job panicked while holding it (see [`recovered`]).
pub(super) fn lock(writer: &Mutex<Writer>) -> MutexGuard<'_, Writer> {
    match writer.lock() {
        Ok(writer) => writer,
        Err(poisoned) => recovered(poisoned.into_inner()),
    }
}

/// Takes the writer if no one holds it (see [`lock`]).
pub(super) fn try_lock(writer: &Mutex<Writer>) -> Option<MutexGuard<'_, Writer>> {
    match writer.try_lock() {
        Ok(writer) => Some(writer),
        Err(TryLockError::Poisoned(poisoned)) => Some(recovered(poisoned.into_inner())),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// The writer left by a job that panicked: the transaction it may have left open is
/// rolled back (else every later `BEGIN` would fail), and the connection serves on.
fn recovered(writer: MutexGuard<'_, Writer>) -> MutexGuard<'_, Writer> {
    if !writer.conn.is_autocommit() {
        let _ = exec(&writer.conn, "ROLLBACK");
    }
    writer
}

/// The connection and what a commit needs (see `Db::writer`).
pub(super) struct Writer {
    pub(super) conn: Connection,
    pub(super) acks: Acks,
    pub(super) checkpoints: mpsc::SyncSender<()>,
    pub(super) poker: Poker,
    /// Commits since the last checkpoint.
    pub(super) commits: u32,
}

impl Writer {
    /// Runs one job for a caller outside the thread; gives it back if another process
    /// holds the write lock (the thread then waits for it).
    pub(super) fn run_alone(&mut self, job: Box<dyn Job>) -> Option<Box<dyn Job>> {
        if job.is_read() {
            self.read(vec![job]);
            return None;
        }
        match without_waiting(|| exec(&self.conn, "BEGIN IMMEDIATE")) {
            Ok(()) => {
                self.commit_begun(vec![job]);
                None
            }
            Err(_) => Some(job),
        }
    }

    /// Runs `reads` in one deferred read transaction (one snapshot for all), which
    /// never takes the write lock.
    pub(super) fn read(&self, mut reads: Vec<Box<dyn Job>>) {
        let conn = &self.conn;
        let began = exec(conn, "BEGIN DEFERRED").map_err(Arc::new);
        if began.is_ok() {
            for job in reads.iter_mut() {
                job.run(conn, false);
            }
            let _ = exec(conn, "COMMIT");
        }
        for job in reads {
            job.finish(began.clone());
        }
    }

    /// Runs the deferred deletions and `writes` in one transaction, then wakes the
    /// members they concern and hands each job its result.
    pub(super) fn commit(&mut self, writes: Vec<Box<dyn Job>>) {
        let nothing_to_delete = || {
            self.acks
                .lock()
                .map_or(true, |cleanup| cleanup.forgotten.is_empty())
        };
        if writes.is_empty() && nothing_to_delete() {
            // A caller's transition took the forgotten outcomes along.
            return;
        }
        match exec(&self.conn, "BEGIN IMMEDIATE") {
            Ok(()) => self.commit_begun(writes),
            Err(e) => {
                let failed = Err(Arc::new(e));
                for job in writes {
                    job.finish(failed.clone());
                }
            }
        }
    }

    /// [`Writer::commit`] once its transaction has begun.
    fn commit_begun(&mut self, mut writes: Vec<Box<dyn Job>>) {
        let conn = &self.conn;
        let mut pokes: Pokes = Vec::new();
        let mut posted: Posted = Vec::new();
        // A job alone in its transaction needs no savepoint: if it fails, the whole
        // transaction is rolled back instead. A savepoint costs a copy of every page
        // the job changes (SQLite's statement journal).
        let isolate = writes.len() > 1;
        let deleted = delete_acked(conn, &self.acks);
        let mut failed = false;
        for job in writes.iter_mut() {
            match job.run(conn, isolate) {
                Some((more, letters)) => {
                    pokes.extend(more);
                    posted.extend(letters);
                }
                None => failed = true,
            }
        }
        let committed = if failed && !isolate {
            // The job's error is its result; the deletions wait for the next
            // transaction.
            let _ = exec(conn, "ROLLBACK");
            restore(&self.acks, deleted);
            pokes.clear();
            posted.clear();
            Ok(())
        } else {
            exec(conn, "COMMIT").map_err(|e| {
                let _ = exec(conn, "ROLLBACK");
                restore(&self.acks, deleted);
                Arc::new(e)
            })
        };
        if committed.is_ok() {
            self.commits += 1;
            if self.commits >= COMMITS_PER_CHECKPOINT {
                self.commits = 0;
                // Full: a checkpoint is pending already.
                let _ = self.checkpoints.try_send(());
            }
            for (port, bytes) in frames(posted, pokes) {
                self.poker.send(port, &bytes);
            }
        }
        for job in writes {
            job.finish(committed.clone());
        }
    }
}

/// What a committed transaction sends to each member it concerns: its letters in
/// commit order, then a bare poke if a transition asked for one (one write each).
fn frames(posted: Posted, mut pokes: Pokes) -> Vec<(u16, Vec<u8>)> {
    fn to(frames: &mut Vec<(u16, Vec<u8>)>, port: u16) -> &mut Vec<u8> {
        let i = match frames.iter().position(|(p, _)| *p == port) {
            Some(i) => i,
            None => {
                frames.push((port, Vec::new()));
                frames.len() - 1
            }
        };
        &mut frames[i].1
    }
    let mut frames = Vec::new();
    for (port, letter) in &posted {
        super::poke::frame_letter(to(&mut frames, *port), letter);
    }
    pokes.sort_unstable();
    pokes.dedup();
    for port in pokes {
        to(&mut frames, port).push(super::poke::BARE);
    }
    frames
}

/// Runs a statement without parameters through the statement cache.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Puts back deletions taken by [`delete_acked`] whose transaction was rolled back.
fn restore(acks: &Acks, deleted: Cleanup) {
    if let Ok(mut cleanup) = acks.lock() {
        for (key, seq) in deleted.inbox_acks {
            let entry = cleanup.inbox_acks.entry(key).or_insert(seq);
            *entry = (*entry).max(seq);
        }
        cleanup.forgotten.extend(deleted.forgotten);
    }
}

/// Runs the deferred deletions (inside the current write transaction) and returns
/// them (see [`restore`]).
fn delete_acked(conn: &Connection, acks: &Acks) -> Cleanup {
    let cleanup = match acks.lock() {
        Ok(mut cleanup) => Cleanup {
            inbox_acks: std::mem::take(&mut cleanup.inbox_acks),
            forgotten: std::mem::take(&mut cleanup.forgotten),
            sleeping: false,
        },
        Err(_) => return Cleanup::default(),
    };
    let run = |sql: &str, params: &[&dyn rusqlite::ToSql]| {
        let done = conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(params));
        if let Err(e) = done {
            // The rows stay: inbox rows are past the reader's cursor, outcomes are
            // never delivered twice; both go with their member at the latest.
            tracing::debug!("deferred deletion failed: {e}");
        }
    };
    for ((app, node), seq) in &cleanup.inbox_acks {
        run(
            "DELETE FROM inbox WHERE app = ?1 AND node = ?2 AND seq <= ?3",
            &[app, node, seq],
        );
    }
    for (app, id) in &cleanup.forgotten {
        run(
            concat!(
                "DELETE FROM requests WHERE app = ?1 AND id = ?2 AND status = ",
                sql_status!(Done)
            ),
            &[app, id],
        );
    }
    cleanup
}
