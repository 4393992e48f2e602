//! The embedded engine's SQLite connections: opening the shared database (WAL, page
//! size, sync level, schema upgrade, retried while other processes do the same), the
//! settings every connection shares (busy handler, statement cache, query plans), the
//! read-only connection of an inbox reader, and the thread that checkpoints the WAL.

use super::db::Upgrade;
use crate::{EmbeddedSync, StoreError};
use rusqlite::Connection;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Opens the shared database and upgrades its schema. Several processes may do this
/// at the same moment on a fresh directory; SQLite can then answer "busy" at once
/// (without its busy handler) to the switch to WAL or to the upgrade, so those steps
/// are retried for a while.
pub(super) fn open_connection(
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

thread_local! {
    /// Set while a caller outside the database thread tries to take the write lock
    /// (see [`without_waiting`]).
    static NO_WAIT: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with a busy handler that gives up at once: a caller on an async worker
/// thread must not wait there for another process's lock (it hands its transition to
/// the database thread instead, which waits).
pub(super) fn without_waiting<T>(f: impl FnOnce() -> T) -> T {
    NO_WAIT.with(|flag| flag.set(true));
    let result = f();
    NO_WAIT.with(|flag| flag.set(false));
    result
}

/// Called by SQLite while another process holds the write lock. SQLite's own
/// handler sleeps 1, 2, 5, 10 ms...: an eternity next to the tens of microseconds
/// another `kar` process holds the lock for. Yield first, then sleep briefly.
fn on_busy(attempt: i32) -> bool {
    if NO_WAIT.with(|flag| flag.get()) {
        return false;
    }
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
pub(super) const COMMITS_PER_CHECKPOINT: u32 = 512;

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
pub(super) fn checkpointer(
    path: &Path,
    sync: EmbeddedSync,
) -> Result<mpsc::SyncSender<()>, StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
