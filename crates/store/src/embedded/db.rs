//! The embedded engine's database thread: every transition runs on one thread per
//! process that owns the SQLite connection. Transitions that arrive together are
//! committed together (group commit), each inside its own savepoint so that one
//! failing transition does not undo the others. Read-only jobs (inbox reads) run
//! after the batch's commit in a deferred read transaction, which never takes the
//! write lock that the other `kar` processes compete for.

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

/// Brings the schema of a database up to date (run in the opening transaction).
pub(crate) type Upgrade = fn(&Connection) -> Result<(), StoreError>;

/// How the transaction around a batch of jobs ended (shared by the jobs of the batch).
type Committed = Result<(), Arc<rusqlite::Error>>;

/// Runs after commit (with the commit's outcome) to hand the result to the caller.
trait Job: Send {
    /// Whether the job only reads (it then runs outside the write transaction).
    fn is_read(&self) -> bool;
    fn run(&mut self, conn: &Connection) -> Pokes;
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

    fn run(&mut self, conn: &Connection) -> Pokes {
        let Some(body) = self.body.take() else {
            return Vec::new();
        };
        if self.read {
            self.result = Some(body(conn).map(|(value, _)| value));
            return Vec::new();
        }
        if let Err(e) = exec(conn, "SAVEPOINT job") {
            self.result = Some(Err(e.into()));
            return Vec::new();
        }
        match body(conn) {
            Ok((value, pokes)) => match exec(conn, "RELEASE job") {
                Ok(()) => {
                    self.result = Some(Ok(value));
                    pokes
                }
                Err(e) => {
                    self.result = Some(Err(e.into()));
                    Vec::new()
                }
            },
            Err(e) => {
                let _ = exec(conn, "ROLLBACK TO job");
                let _ = exec(conn, "RELEASE job");
                self.result = Some(Err(e));
                Vec::new()
            }
        }
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

/// Deletions that need not happen at once: they run at the start of the next write
/// transaction of this process (see [`Db::forget`] for when that is).
#[derive(Default)]
struct Cleanup {
    /// Inbox rows handed out, per (app, node).
    inbox_acks: HashMap<(String, String), i64>,
    /// Completed requests whose outcome the caller consumed, per app.
    forgotten: Vec<(String, String)>,
}

type Acks = Arc<Mutex<Cleanup>>;

/// Handle to the database thread.
#[derive(Clone)]
pub(crate) struct Db {
    jobs: mpsc::Sender<Box<dyn Job>>,
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
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
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

    /// Records that the outcomes of these requests were consumed (see [`Cleanup`]),
    /// and wakes the database thread for a write transaction that deletes them now:
    /// right after a reply, while its caller is busy with the reply, rather than
    /// inside the caller's next request.
    pub(crate) fn forget(&self, app: &str, ids: impl IntoIterator<Item = String>) {
        if let Ok(mut cleanup) = self.acks.lock() {
            cleanup
                .forgotten
                .extend(ids.into_iter().map(|id| (app.to_string(), id)));
        }
        // Nobody waits for it: the deletions ride on the transaction.
        let _ = self.submit(false, |_| Ok(((), Vec::new())));
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
            .send(Box::new(job))
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

fn try_open(path: &Path, upgrade: Upgrade, sync: EmbeddedSync) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    conn.busy_handler(Some(on_busy))?;
    // Every statement of every transition stays prepared (the default cache of 16 is
    // smaller than the engine's set of statements: SQL would be parsed again on most
    // transitions).
    conn.set_prepared_statement_cache_capacity(256);
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
    // WAL: a commit survives the death of any process (the guarantees are about
    // process failures) at every sync level; the level says what an OS crash or a
    // power loss may lose (see `EmbeddedSync`). `synchronous` is a setting of the
    // connection: each process commits at its own level.
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
const COMMITS_PER_CHECKPOINT: u32 = 64;

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
    jobs: mpsc::Receiver<Box<dyn Job>>,
    acks: Acks,
    checkpoints: mpsc::SyncSender<()>,
) {
    let mut poker = super::poke::Poker::default();
    let mut commits = 0u32;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (mut reads, mut writes): (Vec<_>, Vec<_>) =
            batch.into_iter().partition(|job| job.is_read());
        if !writes.is_empty() {
            let mut pokes: Pokes = Vec::new();
            let committed = match exec(&conn, "BEGIN IMMEDIATE") {
                Ok(()) => {
                    delete_acked(&conn, &acks);
                    for job in writes.iter_mut() {
                        pokes.extend(job.run(&conn));
                    }
                    exec(&conn, "COMMIT").map_err(|e| {
                        let _ = exec(&conn, "ROLLBACK");
                        Arc::new(e)
                    })
                }
                Err(e) => Err(Arc::new(e)),
            };
            if committed.is_ok() {
                commits += 1;
                if commits >= COMMITS_PER_CHECKPOINT {
                    commits = 0;
                    // Full: a checkpoint is pending already.
                    let _ = checkpoints.try_send(());
                }
                pokes.sort_unstable();
                pokes.dedup();
                for port in pokes {
                    poker.poke(port);
                }
            }
            for job in writes {
                job.finish(committed.clone());
            }
        }
        if !reads.is_empty() {
            // One snapshot for all the reads of the batch.
            let began = exec(&conn, "BEGIN DEFERRED").map_err(Arc::new);
            if began.is_ok() {
                for job in reads.iter_mut() {
                    job.run(&conn);
                }
                let _ = exec(&conn, "COMMIT");
            }
            for job in reads {
                job.finish(began.clone());
            }
        }
    }
}

/// Runs a statement without parameters through the statement cache.
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// Runs the deferred deletions (inside the current write transaction).
fn delete_acked(conn: &Connection, acks: &Acks) {
    let cleanup = match acks.lock() {
        Ok(mut cleanup) => std::mem::take(&mut *cleanup),
        Err(_) => return,
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
    for ((app, node), seq) in cleanup.inbox_acks {
        run(
            "DELETE FROM inbox WHERE app = ?1 AND node = ?2 AND seq <= ?3",
            &[&app, &node, &seq],
        );
    }
    for (app, id) in cleanup.forgotten {
        run(
            concat!(
                "DELETE FROM requests WHERE app = ?1 AND id = ?2 AND status = ",
                sql_status!(Done)
            ),
            &[&app, &id],
        );
    }
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
