//! The embedded engine's database thread: every transition runs on one thread per
//! process that owns the SQLite connection. Transitions that arrive together are
//! committed together (group commit), each inside its own savepoint so that one
//! failing transition does not undo the others (a transition alone in its
//! transaction needs none: if it fails, the transaction is rolled back). Read-only jobs (inbox reads) run
//! after the batch's commit in a deferred read transaction, which never takes the
//! write lock that the other `kar` processes compete for.

use super::letters;
use crate::codes::sql_status;
use crate::{EmbeddedSync, StoreError};
use kar_store_api::timing;
use rusqlite::Connection;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Loopback ports of members to wake up once a transition has committed.
pub(crate) type Pokes = Vec<u16>;

/// Letters a transition posted (`letters::post`): encoded, with their receiver's port.
type Posted = Vec<(u16, Vec<u8>)>;

/// Brings the schema of a database up to date (run in the opening transaction).
pub(crate) type Upgrade = fn(&Connection) -> Result<(), StoreError>;

/// How the transaction around a batch of jobs ended (shared by the jobs of the batch).
type Committed = Result<(), Arc<rusqlite::Error>>;

/// Runs after commit (with the commit's outcome) to hand the result to the caller.
trait Job: Send {
    /// Whether the job only reads (it then runs outside the write transaction).
    fn is_read(&self) -> bool;
    /// Runs the body. A write job runs inside a savepoint of its own when `isolate`
    /// (other jobs share the transaction), which is rolled back if the body fails.
    /// Returns the ports to poke and the letters the body posted; `None`: the body
    /// failed (its letters are discarded).
    fn run(&mut self, conn: &Connection, isolate: bool) -> Option<(Pokes, Posted)>;
    fn finish(self: Box<Self>, committed: Committed);
}

struct TypedJob<F, R> {
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
        let this = *self;
        let result = match (committed, this.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::unavailable("transition did not run")),
            // The transaction around the transition failed (busy, I/O, full disk):
            // not the transition's fault, so retryable.
            (Err(e), _) => Err(StoreError::Unavailable {
                reason: format!("sqlite transaction: {e}"),
                source: Some(Box::new(e)),
            }),
        };
        let _ = this.reply.send(result);
    }
}

impl<F, R> TypedJob<F, R>
where
    F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send,
    R: Send,
{
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
/// transaction of this process (see [`Db::forget`] for when that is).
#[derive(Default)]
struct Cleanup {
    /// Inbox rows handed out, per (app, node).
    inbox_acks: HashMap<(String, String), i64>,
    /// Completed requests whose outcome the caller consumed, per app.
    forgotten: Vec<(String, String)>,
    /// The database thread waits for jobs with no deletion in view: the next
    /// [`Db::forget`] wakes it (see [`Msg::Wake`]).
    sleeping: bool,
}

/// What the database thread receives.
enum Msg {
    Job(Box<dyn Job>),
    /// Forgotten outcomes arrived while the thread slept: it then deletes them with
    /// the next write transaction, or on their own after [`FORGET_DELAY`].
    Wake,
}

/// How long forgotten outcomes wait for a write transaction to ride on before they
/// get one of their own. A caller that reads a reply usually makes its next request
/// well within it, whose transaction then deletes them: one commit per call saved.
const FORGET_DELAY: Duration = Duration::from_millis(20);

type Acks = Arc<Mutex<Cleanup>>;

/// Handle to the database thread.
#[derive(Clone)]
pub(crate) struct Db {
    jobs: mpsc::Sender<Msg>,
    acks: Acks,
}

/// Most transitions committed in one transaction.
const MAX_BATCH: usize = 512;

impl Db {
    /// Opens the database and brings its schema up to date (`upgrade`, in the
    /// opening transaction).
    /// Commits reach the disk as `sync` says.
    pub(crate) fn open(
        path: &Path,
        upgrade: Upgrade,
        sync: EmbeddedSync,
    ) -> Result<Db, StoreError> {
        let conn = open_connection(path, upgrade, sync)?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let acks = Acks::default();
        let thread_acks = acks.clone();
        let checkpoints = checkpointer(path, sync)?;
        std::thread::Builder::new()
            .name("kar-sqlite".into())
            .spawn(move || run_thread(conn, rx, thread_acks, checkpoints))
            .map_err(|e| StoreError::unavailable_from("cannot start the database thread", e))?;
        Ok(Db { jobs: tx, acks })
    }

    /// Records that the inbox of `node` was read up to `seq` (see [`Cleanup`]).
    pub(crate) fn ack(&self, app: &str, node: &str, seq: i64) {
        if let Ok(mut cleanup) = self.acks.lock() {
            let entry = cleanup
                .inbox_acks
                .entry((app.to_string(), node.to_string()))
                .or_insert(seq);
            *entry = (*entry).max(seq);
        }
    }

    /// Records that the outcomes of these requests were consumed (see [`Cleanup`]).
    /// They are deleted with the next write transaction of this process — usually
    /// the caller's next request — or, if none comes within [`FORGET_DELAY`], in a
    /// transaction of their own: not a commit per reply.
    pub(crate) fn forget(&self, app: &str, ids: impl IntoIterator<Item = String>) {
        let wake = match self.acks.lock() {
            Ok(mut cleanup) => {
                cleanup
                    .forgotten
                    .extend(ids.into_iter().map(|id| (app.to_string(), id)));
                std::mem::take(&mut cleanup.sleeping)
            }
            Err(_) => false,
        };
        if wake {
            let _ = self.jobs.send(Msg::Wake);
        }
    }

    /// Runs a read-only `body` (no write lock) and returns its value.
    pub(crate) async fn read<F, R>(&self, body: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let started = Instant::now();
        let rx = self.submit(true, move |conn| body(conn).map(|r| (r, Vec::new())))?;
        let result = rx
            .await
            .map_err(|_| StoreError::unavailable("database thread stopped"))?;
        timing::observe(timing::EMBEDDED, "read", started.elapsed());
        result
    }

    /// Like [`Db::run`], for threads outside the async runtime.
    pub(crate) fn run_blocking<F, R>(&self, body: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let rx = self.submit(false, body)?;
        rx.blocking_recv()
            .map_err(|_| StoreError::unavailable("database thread stopped"))?
    }

    fn submit<F, R>(
        &self,
        read: bool,
        body: F,
    ) -> Result<oneshot::Receiver<Result<R, StoreError>>, StoreError>
    where
        F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = TypedJob {
            read,
            body: Some(body),
            result: None,
            reply,
        };
        self.jobs
            .send(Msg::Job(Box::new(job)))
            .map_err(|_| StoreError::unavailable("database thread stopped"))?;
        Ok(rx)
    }

    /// Runs `body` as one atomic transition and returns its value once committed.
    pub(crate) async fn run<F, R>(&self, body: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let started = Instant::now();
        let rx = self.submit(false, body)?;
        let result = rx
            .await
            .map_err(|_| StoreError::unavailable("database thread stopped"))?;
        timing::observe(timing::EMBEDDED, "write", started.elapsed());
        result
    }
}

/// Opens the shared database and upgrades its schema. Several processes may do this
/// at the same moment on a fresh directory; SQLite can then answer "busy" at once
/// (without its busy handler) to the switch to WAL or to the upgrade, so those steps
/// are retried for a while.
fn open_connection(
    path: &Path,
    upgrade: Upgrade,
    sync: EmbeddedSync,
) -> Result<Connection, StoreError> {
    let started = Instant::now();
    loop {
        match try_open(path, upgrade, sync) {
            Ok(conn) => return Ok(conn),
            Err(e) if is_busy(&e) && started.elapsed() < BUSY_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}

/// A connection with the busy handler and query planning every kar connection uses,
/// keeping up to `statements` prepared statements.
fn connect(path: &Path, statements: usize) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    conn.busy_handler(Some(on_busy))?;
    conn.set_prepared_statement_cache_capacity(statements);
    // Query plans that do not depend on the values bound: without this, SQLite marks
    // most of our statements (any `LIMIT ?`, any `column = ?` the plan does not look
    // up by) to be compiled again when a parameter changes, and rusqlite's cache
    // clears the parameters of every statement it takes back, so cached statements
    // were parsed and planned again on most uses (`sqlite3Reprepare`, 5% of the
    // sidecar's CPU). Our statements are point lookups and index ranges: the plans
    // are the same for every value.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(conn)
}

fn try_open(path: &Path, upgrade: Upgrade, sync: EmbeddedSync) -> Result<Connection, StoreError> {
    // Every statement of every transition stays prepared (the default cache of 16 is
    // smaller than the engine's set of statements: SQL would be parsed again on most
    // transitions).
    let conn = connect(path, 256)?;
    // WAL: a commit survives the death of any process (the guarantees are about
    // process failures) at every sync level; the level says what an OS crash or a
    // power loss may lose (see `EmbeddedSync`). `synchronous` is a setting of the
    // connection: each process commits at its own level.
    // Pages of 2 KiB rather than 4: a commit writes each page it changed whole to the
    // WAL (and checksums it), and a transition changes a handful of leaves, each
    // holding a few small rows; rows up to ~2 KB still fit in a leaf. Only a new
    // database takes it (before its first write); an existing one keeps its size.
    conn.pragma_update(None, "page_size", NEW_PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", sync.name())?;
    // Checkpoints (which fsync) run on a thread of their own, never inside the commit
    // of a transition (see `checkpointer`).
    conn.pragma_update(None, "wal_autocheckpoint", "0")?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let upgraded = upgrade(&conn).and_then(|()| Ok(conn.execute_batch("COMMIT")?));
    if let Err(e) = upgraded {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(e);
    }
    Ok(conn)
}

/// A read-only connection for a reader outside the database thread (a member's inbox):
/// its reads then wait neither for the thread's queue of write transactions nor for
/// the two hand-offs to and from the thread. In WAL mode a reader never blocks the
/// writers, and it sees every commit made before it starts reading.
pub(crate) fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = connect(path, 16)?;
    conn.pragma_update(None, "query_only", true)?;
    Ok(conn)
}

/// Page size of a new database (see `try_open`).
const NEW_PAGE_SIZE: u32 = 2048;

/// Whether a failure is SQLite's "busy" (or "locked"): another process holds the lock.
fn is_busy(e: &StoreError) -> bool {
    let sqlite = std::error::Error::source(e).and_then(|s| s.downcast_ref::<rusqlite::Error>());
    matches!(
        sqlite.and_then(rusqlite::Error::sqlite_error_code),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// How long a transition waits for the write lock held by other processes.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Called by SQLite while another process holds the write lock. SQLite's own
/// handler sleeps 1, 2, 5, 10 ms...: an eternity next to the tens of microseconds
/// another `kar` process holds the lock for. Yield first, then sleep briefly.
fn on_busy(attempt: i32) -> bool {
    const YIELDS: i32 = 200;
    const SLEEP: Duration = Duration::from_micros(200);
    if attempt < YIELDS {
        std::thread::yield_now();
        return true;
    }
    let slept = SLEEP * (attempt - YIELDS) as u32;
    if slept > BUSY_TIMEOUT {
        return false;
    }
    std::thread::sleep(SLEEP);
    true
}

/// Write transactions of this process between two checkpoints of the WAL (SQLite's
/// own automatic checkpoint comes every 1000 pages, about 150 of our transactions).
/// The first commit after a restarting checkpoint writes the WAL's new header and
/// must fsync it (even with `synchronous=NORMAL`: SQLite's guard against reordered
/// writes after a restart), 0.2–4 ms on this machine kind: every 64 commits that put
/// it into the calls' p99. 512 keeps the WAL index within one hash block (4,096
/// frames) and costs the p50 nothing measurable.
const COMMITS_PER_CHECKPOINT: u32 = 512;

/// How long a restarting checkpoint waits for the write lock and for readers of the
/// old WAL frames before it gives up (it then was a passive one: the next catches up).
const RESTART_WAIT: Duration = Duration::from_millis(5);

/// Starts the thread that copies the WAL back into the database file when told to.
///
/// First a passive checkpoint, which never blocks readers or writers, so the fsync
/// it needs stays off the commits of transitions. Then a restarting one, which has
/// little or nothing left to copy: it makes the next commit write the WAL from its
/// start again. Without it, under a steady load the WAL is never restarted (a writer
/// restarts it only when it finds every frame copied back, which another process's
/// commit has nearly always prevented), and SQLite's WAL index gets slower with every
/// commit: each commit adds the pages it wrote to a hash table that is only cleared
/// on a restart, and every page read and write probes through all the entries of
/// that page (`walFindFrame` and `walIndexAppend` took 28% of a sidecar's
/// instructions).
fn checkpointer(path: &Path, sync: EmbeddedSync) -> Result<mpsc::SyncSender<()>, StoreError> {
    let conn = Connection::open(path)?;
    // `off` skips the fsyncs of checkpoints too.
    conn.pragma_update(None, "synchronous", sync.name())?;
    conn.busy_timeout(RESTART_WAIT)?;
    let (tx, rx) = mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("kar-checkpoint".into())
        .spawn(move || {
            while rx.recv().is_ok() {
                // Busy (another process checkpoints) or failed: the next one catches up.
                for mode in ["PASSIVE", "RESTART"] {
                    let sql = format!("PRAGMA wal_checkpoint({mode})");
                    let _ = conn.query_row(&sql, [], |_| Ok(()));
                }
            }
        })
        .map_err(|e| StoreError::unavailable_from("cannot start the checkpoint thread", e))?;
    Ok(tx)
}

fn run_thread(
    conn: Connection,
    jobs: mpsc::Receiver<Msg>,
    acks: Acks,
    checkpoints: mpsc::SyncSender<()>,
) {
    let mut writer = Writer {
        conn: &conn,
        acks: &acks,
        checkpoints,
        poker: super::poke::Poker::default(),
        commits: 0,
    };
    // When forgotten outcomes get a transaction of their own, if none comes first.
    let mut forget_by: Option<Instant> = None;
    loop {
        forget_by = match acks.lock() {
            Ok(mut cleanup) if cleanup.forgotten.is_empty() => {
                cleanup.sleeping = true;
                None
            }
            Ok(_) => forget_by.or_else(|| Some(Instant::now() + FORGET_DELAY)),
            Err(_) => None,
        };
        let first = match forget_by {
            None => match jobs.recv() {
                Ok(msg) => msg,
                Err(_) => return,
            },
            Some(at) => match jobs.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(msg) => msg,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    writer.commit(Vec::new());
                    forget_by = None;
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            },
        };
        if let Ok(mut cleanup) = acks.lock() {
            cleanup.sleeping = false;
        }
        let mut batch = Vec::new();
        let mut next = Some(first);
        while let Some(msg) = next.take() {
            if let Msg::Job(job) = msg {
                batch.push(job);
            }
            if batch.len() < MAX_BATCH {
                next = jobs.try_recv().ok();
            }
        }
        let (mut reads, writes): (Vec<_>, Vec<_>) =
            batch.into_iter().partition(|job| job.is_read());
        if !writes.is_empty() {
            writer.commit(writes);
            forget_by = None;
        }
        if !reads.is_empty() {
            // One snapshot for all the reads of the batch.
            let began = exec(&conn, "BEGIN DEFERRED").map_err(Arc::new);
            if began.is_ok() {
                for job in reads.iter_mut() {
                    job.run(&conn, false);
                }
                let _ = exec(&conn, "COMMIT");
            }
            for job in reads {
                job.finish(began.clone());
            }
        }
    }
}

/// The write side of the database thread.
struct Writer<'a> {
    conn: &'a Connection,
    acks: &'a Acks,
    checkpoints: mpsc::SyncSender<()>,
    poker: super::poke::Poker,
    /// Commits since the last checkpoint.
    commits: u32,
}

impl Writer<'_> {
    /// Runs the deferred deletions and `writes` in one transaction, then wakes the
    /// members they concern and hands each job its result.
    fn commit(&mut self, mut writes: Vec<Box<dyn Job>>) {
        let conn = self.conn;
        let mut pokes: Pokes = Vec::new();
        let mut posted: Posted = Vec::new();
        // A job alone in its transaction needs no savepoint: if it fails, the whole
        // transaction is rolled back instead. A savepoint costs a copy of every page
        // the job changes (SQLite's statement journal).
        let isolate = writes.len() > 1;
        let committed = match exec(conn, "BEGIN IMMEDIATE") {
            Ok(()) => {
                let deleted = delete_acked(conn, self.acks);
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
                if failed && !isolate {
                    // The job's error is its result; the deletions wait for the next
                    // transaction.
                    let _ = exec(conn, "ROLLBACK");
                    restore(self.acks, deleted);
                    pokes.clear();
                    Ok(())
                } else {
                    exec(conn, "COMMIT").map_err(|e| {
                        let _ = exec(conn, "ROLLBACK");
                        restore(self.acks, deleted);
                        Arc::new(e)
                    })
                }
            }
            Err(e) => Err(Arc::new(e)),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Each sync level reaches SQLite as its `synchronous` setting (0, 1, 2).
    #[tokio::test]
    async fn sync_level_sets_synchronous() {
        let dir = tempfile::tempdir().unwrap();
        for (sync, expected) in [
            (EmbeddedSync::Off, 0),
            (EmbeddedSync::Normal, 1),
            (EmbeddedSync::Full, 2),
        ] {
            let db = Db::open(&dir.path().join("sync.db"), |_| Ok(()), sync).unwrap();
            let value: i64 = db
                .read(|conn| Ok(conn.pragma_query_value(None, "synchronous", |row| row.get(0))?))
                .await
                .unwrap();
            assert_eq!(value, expected, "{sync:?}");
        }
    }

    /// Cached statements stay compiled across uses with other parameters, also those
    /// whose plan SQLite would otherwise redo for new values (a `LIMIT ?`, an equality
    /// the plan does not look up by).
    #[tokio::test]
    async fn cached_statements_are_not_compiled_again() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            &dir.path().join("plans.db"),
            super::super::schema::upgrade,
            EmbeddedSync::Normal,
        )
        .unwrap();
        let recompiled = db
            .read(|conn| {
                let sql = "SELECT i.seq, r.record FROM inbox i
                           LEFT JOIN requests r ON r.app = i.app AND r.id = i.request_id
                           WHERE i.app = ?1 AND i.node = ?2 AND i.seq > ?3
                           ORDER BY i.seq LIMIT ?4";
                for (node, after, limit) in [("n1", 0i64, 10i64), ("n2", 5, 1024), ("n1", 9, 1)] {
                    let mut stmt = conn.prepare_cached(sql)?;
                    let mut rows = stmt.query(rusqlite::params!["app", node, after, limit])?;
                    while rows.next()?.is_some() {}
                }
                let stmt = conn.prepare_cached(sql)?;
                Ok(stmt.get_status(rusqlite::StatementStatus::RePrepare))
            })
            .await
            .unwrap();
        assert_eq!(recompiled, 0);
    }

    fn table(conn: &Connection) -> Result<(), StoreError> {
        conn.execute_batch("CREATE TABLE IF NOT EXISTS t (id TEXT PRIMARY KEY)")?;
        Ok(())
    }

    async fn rows(db: &Db) -> i64 {
        db.read(|conn| Ok(conn.query_row("SELECT count(*) FROM t", [], |row| row.get(0))?))
            .await
            .unwrap()
    }

    /// A transition that fails leaves nothing behind, alone in its transaction (no
    /// savepoint: the transaction is rolled back) as among others (its savepoint is).
    #[tokio::test]
    async fn a_failing_transition_commits_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("fail.db"), table, EmbeddedSync::Normal).unwrap();
        let failed = db
            .run(|conn| {
                conn.execute("INSERT INTO t VALUES ('half')", [])?;
                Err::<((), Pokes), _>(StoreError::unavailable("midway"))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(rows(&db).await, 0);
        // Several at once (one batch if they arrive together): the others commit.
        let attempts = (0..8).map(|i| {
            db.run(move |conn| {
                conn.execute("INSERT INTO t VALUES (?1)", [format!("row{i}")])?;
                if i % 2 == 0 {
                    return Err(StoreError::unavailable("midway"));
                }
                Ok(((), Vec::new()))
            })
        });
        let results = futures::future::join_all(attempts).await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 4);
        assert_eq!(rows(&db).await, 4);
    }

    /// Only committed transitions send their letters: one that fails posts nothing,
    /// alone in its transaction as among others; the letters of those that commit
    /// arrive in commit order.
    #[tokio::test]
    async fn letters_of_failing_transitions_are_not_sent() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("letters.db"), table, EmbeddedSync::Normal).unwrap();
        let (port, mailbox, _listener) = super::super::poke::listen().await.unwrap();
        let post = move |seq: i64, fail: bool| {
            let db = db.clone();
            async move {
                db.run(move |_conn| {
                    let letter = letters::Letter {
                        seq,
                        // No gap to check: the order is checked below.
                        prev: 0,
                        kind: super::super::inbox::EXECUTE,
                        request_id: format!("r{seq}"),
                        request_kind: 0,
                        payload: Vec::new(),
                    };
                    letters::post(port, &letter);
                    if fail {
                        return Err(StoreError::unavailable("midway"));
                    }
                    Ok(((), Vec::new()))
                })
                .await
            }
        };
        assert!(post(1, true).await.is_err());
        // Several at once: even seqs fail.
        let results = futures::future::join_all((2..10).map(|seq| post(seq, seq % 2 == 0))).await;
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 4);
        // Seqs must increase (a letter below the last one opened would be dropped).
        let mut got = Vec::new();
        while got.len() < 4 {
            let wait = mailbox.notify.notified();
            tokio::time::timeout(std::time::Duration::from_secs(10), wait)
                .await
                .unwrap_or_else(|_| panic!("letters missing: got {got:?}"));
            let after = got.last().copied().unwrap_or(0);
            let opened = mailbox.open(after).expect("no bare poke");
            got.extend(opened.into_iter().map(|l| l.seq));
        }
        assert_eq!(got, vec![3, 5, 7, 9]);
    }

    /// Forgotten outcomes are deleted even when no other write comes to carry them.
    #[tokio::test]
    async fn forgotten_outcomes_go_without_another_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            &dir.path().join("forget.db"),
            super::super::schema::upgrade,
            EmbeddedSync::Normal,
        )
        .unwrap();
        db.run(|conn| {
            conn.execute(
                concat!(
                    "INSERT INTO requests (app, id, name, status, kind, caller, record) ",
                    "VALUES ('app', 'r1', 'svc', ",
                    sql_status!(Done),
                    ", 0, 'n1', x'00')"
                ),
                [],
            )?;
            Ok(((), Vec::new()))
        })
        .await
        .unwrap();
        db.forget("app", ["r1".to_string()]);
        let count = || {
            db.read(|conn| {
                Ok(conn.query_row("SELECT count(*) FROM requests", [], |row| {
                    row.get::<_, i64>(0)
                })?)
            })
        };
        // Polled: the deletion has no event of its own to wait for.
        let deadline = Instant::now() + Duration::from_secs(30);
        while count().await.unwrap() != 0 {
            assert!(
                Instant::now() < deadline,
                "the forgotten outcome is still there"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Opening retries "busy" only: it is recognised through the error's source.
    #[test]
    fn busy_is_recognised_through_the_store_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let holder = Connection::open(&path).unwrap();
        holder
            .execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY); BEGIN IMMEDIATE")
            .unwrap();
        let other = Connection::open(&path).unwrap();
        other.busy_timeout(Duration::ZERO).unwrap();
        let busy: StoreError = other.execute_batch("BEGIN IMMEDIATE").unwrap_err().into();
        assert!(is_busy(&busy), "{busy:?}");
        holder
            .execute_batch("INSERT INTO t VALUES ('a'); COMMIT")
            .unwrap();
        let constraint: StoreError = other
            .execute("INSERT INTO t VALUES ('a')", [])
            .unwrap_err()
            .into();
        assert!(!is_busy(&constraint), "{constraint:?}");
    }
}
