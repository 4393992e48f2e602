//! The embedded engine's database thread: every transition runs on one thread per
//! process that owns the SQLite connection. Transitions that arrive together are
//! committed together (group commit), each inside its own savepoint so that one
//! failing transition does not undo the others (a transition alone in its
//! transaction needs none: if it fails, the transaction is rolled back). Read-only
//! jobs run after the batch's commit in a deferred read transaction, which never takes
//! the write lock that the other `kar` processes compete for. After a commit the
//! thread wakes the members the batch concerns, with the letters its transitions
//! posted (`letters`). How connections are opened and the WAL checkpointed:
//! `connection`.

use super::connection::{checkpointer, open_connection, COMMITS_PER_CHECKPOINT};
use super::letters;
use super::poke::Poker;
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
        // Members' poke sockets are beside the database.
        let poker = Poker::new(path.parent().unwrap_or(Path::new(".")));
        std::thread::Builder::new()
            .name("kar-sqlite".into())
            .spawn(move || run_thread(conn, rx, thread_acks, checkpoints, poker))
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

fn run_thread(
    conn: Connection,
    jobs: mpsc::Receiver<Msg>,
    acks: Acks,
    checkpoints: mpsc::SyncSender<()>,
    poker: Poker,
) {
    let mut writer = Writer {
        conn: &conn,
        acks: &acks,
        checkpoints,
        poker,
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
        let listening = super::super::poke::listen(dir.path()).await.unwrap();
        let (port, mailbox) = (listening.port, listening.mailbox.clone());
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
}
