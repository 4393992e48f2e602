//! The embedded engine's database thread, and who runs a transition. Every
//! transition runs on the one SQLite connection of the process (`writer`): on the
//! database thread, or on the caller's thread when it comes alone (see
//! `Db::dispatch`). Transitions that arrive together are committed together by the
//! thread (group commit), each inside its own savepoint so that one failing
//! transition does not undo the others. Read-only jobs run after the batch's commit
//! in a deferred read transaction, which never takes the write lock that the other
//! `kar` processes compete for. How connections are opened and the WAL
//! checkpointed: `connection`.

use super::connection::{checkpointer, open_connection};
use super::poke::Poker;
use super::writer::{lock, try_lock, Acks, Job, TypedJob, Writer};
use crate::{EmbeddedSync, StoreError};
use kar_store_api::timing;
use rusqlite::Connection;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Loopback ports of members to wake up once a transition has committed.
pub(crate) type Pokes = Vec<u16>;

/// Brings the schema of a database up to date (run in the opening transaction).
pub(crate) type Upgrade = fn(&Connection) -> Result<(), StoreError>;

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

/// Handle to the database thread.
#[derive(Clone)]
pub(crate) struct Db {
    jobs: mpsc::Sender<Msg>,
    acks: Acks,
    /// The connection and what a commit needs: held by the thread while it runs a
    /// batch, or by a caller that runs a lone transition itself (see [`Db::dispatch`]).
    writer: Arc<Mutex<Writer>>,
    /// Jobs dispatched and not yet finished (queued for the thread, in its batch, or
    /// run by a caller): each holds a [`Pending`] that counts it off.
    pending: Arc<AtomicUsize>,
    /// How many jobs were pending lately when callers dispatched theirs.
    lately: Arc<Lately>,
    /// Whether callers may run their transitions themselves (not when every commit
    /// fsyncs: see [`Db::dispatch`]).
    inline: bool,
}

/// A moving average of the jobs pending when a job is dispatched: each observation
/// weighs 1/8, in fixed point with 4 fractional bits. Under load it stays well above
/// zero even at the moments when no job happens to be pending, so that jobs keep
/// meeting in batches (one commit for many) instead of each taking a commit of its
/// own; it decays to zero within a few dozen jobs after the load is gone.
#[derive(Default)]
struct Lately(AtomicU32);

impl Lately {
    /// Adds an observation (racing updates may lose one: an estimate); whether jobs
    /// have come one at a time lately (an average below one half).
    fn quiet_after(&self, pending: usize) -> bool {
        let average = Lately::next(self.0.load(Ordering::Relaxed), pending);
        self.0.store(average, Ordering::Relaxed);
        average < 8
    }

    fn next(average: u32, pending: usize) -> u32 {
        let sample = u32::try_from(pending).unwrap_or(u32::MAX).min(1 << 20) << 4;
        average - average / 8 + sample / 8
    }
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
        let writer = Arc::new(Mutex::new(Writer {
            conn,
            acks: acks.clone(),
            checkpoints: checkpointer(path, sync)?,
            // Members' poke sockets are beside the database.
            poker: Poker::new(path.parent().unwrap_or(Path::new("."))),
            commits: 0,
        }));
        let thread = Thread {
            jobs: rx,
            writer: writer.clone(),
            acks: acks.clone(),
        };
        std::thread::Builder::new()
            .name("kar-sqlite".into())
            .spawn(move || thread.run())
            .map_err(|e| StoreError::unavailable_from("cannot start the database thread", e))?;
        Ok(Db {
            jobs: tx,
            acks,
            writer,
            pending: Arc::default(),
            lately: Arc::default(),
            inline: sync != EmbeddedSync::Full,
        })
    }

    /// Records that the inbox of `node` was read up to `seq` (see [`Cleanup`](super::writer::Cleanup)).
    pub(crate) fn ack(&self, app: &str, node: &str, seq: i64) {
        if let Ok(mut cleanup) = self.acks.lock() {
            let entry = cleanup
                .inbox_acks
                .entry((app.to_string(), node.to_string()))
                .or_insert(seq);
            *entry = (*entry).max(seq);
        }
    }

    /// Records that the outcomes of these requests were consumed (see [`Cleanup`](super::writer::Cleanup)).
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
        self.read_as(Length::Short, body).await
    }

    /// Like [`Db::read`], for a read that may take long (a listing of the whole
    /// application): it never runs on the caller's thread.
    pub(crate) async fn read_long<F, R>(&self, body: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.read_as(Length::Long, body).await
    }

    async fn read_as<F, R>(&self, length: Length, body: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let started = Instant::now();
        let rx = self.submit(true, length, move |conn| {
            body(conn).map(|r| (r, Vec::new()))
        })?;
        let result = rx.await.map_err(|_| abandoned())?;
        timing::observe(timing::EMBEDDED, "read", started.elapsed());
        result
    }

    /// Like [`Db::run`], for threads outside the async runtime.
    pub(crate) fn run_blocking<F, R>(&self, body: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send + 'static,
        R: Send + 'static,
    {
        // Not an async worker: it may wait for the lock or the disk.
        let rx = self.submit(false, Length::Short, body)?;
        rx.blocking_recv().map_err(|_| abandoned())?
    }

    fn submit<F, R>(
        &self,
        read: bool,
        length: Length,
        body: F,
    ) -> Result<oneshot::Receiver<Result<R, StoreError>>, StoreError>
    where
        F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let (alone, pending) = self.count(length);
        let job = TypedJob::new(read, body, reply, pending);
        self.dispatch(Box::new(job), alone)?;
        Ok(rx)
    }

    /// Counts a new job as pending; whether its caller may run it itself (see
    /// [`Db::dispatch`]): only a short one, only when nothing else is pending and
    /// nothing was lately, and never when every commit fsyncs.
    fn count(&self, length: Length) -> (bool, Pending) {
        let alone = self.inline
            && length == Length::Short
            && self.lately.quiet_after(self.pending.load(Ordering::SeqCst))
            && self
                .pending
                .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok();
        if !alone {
            self.pending.fetch_add(1, Ordering::SeqCst);
        }
        (alone, Pending(self.pending.clone()))
    }

    /// Runs `job` on the calling thread when it may (`alone`, see [`Db::count`]),
    /// else queues it for the database thread. A lone transition is what the thread
    /// would run anyway (a batch of one); running it here saves the two hand-offs
    /// between threads, about a third of a transition's time as the caller sees it.
    /// Under load other jobs are pending, and the jobs meet in the thread's batches as
    /// before (one commit for many). A caller never waits here for another process's
    /// write lock (it queues the job instead), and never runs a transition itself when
    /// every commit fsyncs or that may take long: an async worker must not wait for
    /// the disk, nor hold up the tasks queued behind it.
    fn dispatch(&self, job: Box<dyn Job>, alone: bool) -> Result<(), StoreError> {
        let job = match alone.then(|| try_lock(&self.writer)).flatten() {
            Some(mut writer) => match writer.run_alone(job) {
                None => return Ok(()),
                Some(job) => job,
            },
            // Not alone, or the thread is still finishing its last batch.
            None => job,
        };
        // A job that cannot be sent is dropped, which counts it off.
        self.jobs
            .send(Msg::Job(job))
            .map_err(|_| StoreError::unavailable("database thread stopped"))
    }

    /// Runs `body` as one atomic transition and returns its value once committed.
    pub(crate) async fn run<F, R>(&self, body: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.run_as(Length::Short, body).await
    }

    /// Like [`Db::run`], for a transition that may take long (a member's leave, a
    /// purge, bulk deletions): it never runs on the caller's thread.
    pub(crate) async fn run_long<F, R>(&self, body: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send + 'static,
        R: Send + 'static,
    {
        self.run_as(Length::Long, body).await
    }

    async fn run_as<F, R>(&self, length: Length, body: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let started = Instant::now();
        let rx = self.submit(false, length, body)?;
        let result = rx.await.map_err(|_| abandoned())?;
        timing::observe(timing::EMBEDDED, "write", started.elapsed());
        result
    }
}

/// The error of a job whose reply was dropped unsent.
fn abandoned() -> StoreError {
    StoreError::unavailable(
        "store transition abandoned: the database thread stopped or it panicked",
    )
}

/// A job's place in [`Db::pending`], given up when the job is finished (before its
/// reply goes) or dropped unfinished (a panic, a thread gone).
pub(super) struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long a job may take: a short one may run on its caller's thread (see
/// [`Db::dispatch`]), a long one always runs on the database thread.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Length {
    Short,
    Long,
}

/// The database thread: runs the jobs callers queue, in batches.
struct Thread {
    jobs: mpsc::Receiver<Msg>,
    writer: Arc<Mutex<Writer>>,
    acks: Acks,
}

impl Thread {
    fn run(self) {
        let Thread { jobs, writer, acks } = self;
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
                        lock(&writer).commit(Vec::new());
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
            let (reads, writes): (Vec<_>, Vec<_>) =
                batch.into_iter().partition(|job| job.is_read());
            if !writes.is_empty() {
                forget_by = None;
            }
            // A transition that panics (a bug) fails its batch, not the thread: the
            // callers of the batch's unfinished jobs get an error (their replies are
            // dropped), and the next holder of the writer rolls the transaction back.
            let survived = std::panic::catch_unwind(AssertUnwindSafe(|| {
                let mut writer = lock(&writer);
                if !writes.is_empty() {
                    writer.commit(writes);
                }
                if !reads.is_empty() {
                    writer.read(reads);
                }
            }));
            if survived.is_err() {
                tracing::error!("a store transition panicked: its batch was rolled back");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::letters;
    use super::*;
    use crate::codes::sql_status;

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

    /// Runs `jobs` (futures of several jobs) so that they queue for the database
    /// thread, which then runs them together: the writer is held while they are
    /// dispatched.
    async fn in_one_batch<T>(db: &Db, jobs: impl std::future::Future<Output = T>) -> T {
        let mut jobs = std::pin::pin!(jobs);
        let mut cx = std::task::Context::from_waker(futures::task::noop_waker_ref());
        let held = lock(&db.writer);
        assert!(jobs.as_mut().poll(&mut cx).is_pending());
        drop(held);
        jobs.await
    }

    /// A caller runs its transition itself only when jobs have been coming one at a
    /// time: after a burst it queues them for the thread until the average of
    /// pending jobs has decayed below one half.
    #[test]
    fn callers_run_alone_only_when_jobs_come_one_at_a_time() {
        let lately = Lately::default();
        assert!(lately.quiet_after(0));
        assert!(lately.quiet_after(1), "one overlap is not a load");
        for _ in 0..20 {
            lately.quiet_after(10);
        }
        assert!(!lately.quiet_after(0), "a gap in a load is not quiet");
        let quiet_again = (1..100).find(|_| lately.quiet_after(0));
        assert!(matches!(quiet_again, Some(n) if n > 5), "{quiet_again:?}");
        // No overflow, however many are pending.
        assert!(Lately::next(u32::MAX, usize::MAX) > Lately::next(0, 1));
    }

    /// A lone job runs on its caller's thread, except one that may take long, and
    /// any at `-store_sync full`: those run on the database thread.
    #[tokio::test]
    async fn long_jobs_and_fsynced_commits_run_on_the_database_thread() {
        fn thread(_: &Connection) -> Result<(String, Pokes), StoreError> {
            let name = std::thread::current().name().unwrap_or("").to_string();
            Ok((name, Vec::new()))
        }
        fn read(conn: &Connection) -> Result<String, StoreError> {
            thread(conn).map(|(name, _)| name)
        }
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("normal.db"), table, EmbeddedSync::Normal).unwrap();
        assert_ne!(db.run(thread).await.unwrap(), "kar-sqlite");
        assert_ne!(db.read(read).await.unwrap(), "kar-sqlite");
        assert_eq!(db.run_long(thread).await.unwrap(), "kar-sqlite");
        assert_eq!(db.read_long(read).await.unwrap(), "kar-sqlite");
        let full = Db::open(&dir.path().join("full.db"), table, EmbeddedSync::Full).unwrap();
        assert_eq!(full.run(thread).await.unwrap(), "kar-sqlite");
    }

    /// A transition that panics midway (a bug) leaves nothing behind and stops
    /// nothing, on a caller's thread (the transitions after it run there again) as on
    /// the database thread (the thread goes on: the next transition commits).
    #[tokio::test]
    async fn a_panicking_transition_leaves_the_store_usable() {
        fn half_then_panic(conn: &Connection) -> Result<((), Pokes), StoreError> {
            conn.execute("INSERT INTO t VALUES ('half')", [])?;
            panic!("a bug in a transition");
        }
        fn after(conn: &Connection) -> Result<(Option<String>, Pokes), StoreError> {
            conn.execute("INSERT INTO t VALUES ('after')", [])?;
            Ok((std::thread::current().name().map(String::from), Vec::new()))
        }
        for on_the_thread in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let db = Db::open(&dir.path().join("panic.db"), table, EmbeddedSync::Normal).unwrap();
            if on_the_thread {
                assert!(db.run_long(half_then_panic).await.is_err());
            } else {
                let task = db.clone();
                let panicked = tokio::spawn(async move { task.run(half_then_panic).await });
                assert!(panicked.await.is_err(), "the caller's task panics");
            }
            let ran_on = db.run(after).await.unwrap();
            assert_eq!(rows(&db).await, 1);
            if !on_the_thread {
                assert_eq!(db.pending.load(Ordering::SeqCst), 0);
                assert_ne!(
                    ran_on.as_deref(),
                    Some("kar-sqlite"),
                    "still run by callers"
                );
            }
        }
    }

    /// A caller that finds another process holding the write lock does not wait for
    /// it on its own thread: its transition goes to the database thread, which
    /// commits it once the lock is free.
    #[tokio::test]
    async fn a_caller_does_not_wait_for_another_process_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy.db");
        let db = Db::open(&path, table, EmbeddedSync::Normal).unwrap();
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        // The other process lets go once the caller is back (or, if the caller
        // waits for it, after a while: then the caller got the lock and ran).
        let (back, caller_back) = mpsc::channel();
        let holder = std::thread::spawn(move || {
            let waited = caller_back.recv_timeout(Duration::from_secs(10)).is_err();
            other.execute_batch("COMMIT").unwrap();
            waited
        });
        let mut insert = std::pin::pin!(db.run(|conn| {
            conn.execute("INSERT INTO t VALUES ('late')", [])?;
            Ok(((), Vec::new()))
        }));
        let first = futures::poll!(&mut insert);
        back.send(()).unwrap();
        assert!(!holder.join().unwrap(), "the caller waited for the lock");
        assert!(first.is_pending());
        insert.await.unwrap();
        assert_eq!(rows(&db).await, 1);
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
        // Several at once (batched by the thread): the others commit.
        let attempts = (0..8).map(|i| {
            db.run(move |conn| {
                conn.execute("INSERT INTO t VALUES (?1)", [format!("row{i}")])?;
                if i % 2 == 0 {
                    return Err(StoreError::unavailable("midway"));
                }
                Ok(((), Vec::new()))
            })
        });
        let results = in_one_batch(&db, futures::future::join_all(attempts)).await;
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
        let handle = db.clone();
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
        let attempts = (2..10).map(|seq| post(seq, seq % 2 == 0));
        let results = in_one_batch(&handle, futures::future::join_all(attempts)).await;
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
