//! The embedded engine's database thread: every transition runs on one thread per
//! process that owns the SQLite connection. Transitions that arrive together are
//! committed together (group commit), each inside its own savepoint so that one
//! failing transition does not undo the others.

use crate::StoreError;
use rusqlite::Connection;
use std::path::Path;
use std::sync::mpsc;
use tokio::sync::oneshot;

/// Loopback ports of members to wake up once a transition has committed.
pub(crate) type Pokes = Vec<u16>;

/// Runs after commit (with the commit's outcome) to hand the result to the caller.
trait Job: Send {
    fn run(&mut self, conn: &Connection) -> Pokes;
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct TypedJob<F, R> {
    body: Option<F>,
    result: Option<Result<R, StoreError>>,
    reply: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> Job for TypedJob<F, R>
where
    F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send,
    R: Send,
{
    fn run(&mut self, conn: &Connection) -> Pokes {
        let Some(body) = self.body.take() else {
            return Vec::new();
        };
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            self.result = Some(Err(e.into()));
            return Vec::new();
        }
        match body(conn) {
            Ok((value, pokes)) => match conn.execute_batch("RELEASE job") {
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
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                self.result = Some(Err(e));
                Vec::new()
            }
        }
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let this = *self;
        let result = match (committed, this.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Unavailable("transition did not run".into())),
            (Err(e), _) => Err(StoreError::Unavailable(format!("sqlite commit: {e}"))),
        };
        let _ = this.reply.send(result);
    }
}

/// Handle to the database thread.
#[derive(Clone)]
pub(crate) struct Db {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

/// Most transitions committed in one transaction.
const MAX_BATCH: usize = 512;

impl Db {
    pub(crate) fn open(path: &Path, schema: &str) -> Result<Db, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        // WAL + synchronous=NORMAL: a commit survives the death of any process (the
        // guarantees are about process failures); only an OS crash may lose the last
        // commits.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(schema)?;
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        std::thread::Builder::new()
            .name("kar-sqlite".into())
            .spawn(move || run_thread(conn, rx))
            .map_err(|e| StoreError::Unavailable(format!("cannot start database thread: {e}")))?;
        Ok(Db { jobs: tx })
    }

    /// Like [`Db::run`], for threads outside the async runtime.
    pub(crate) fn run_blocking<F, R>(&self, body: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let rx = self.submit(body)?;
        rx.blocking_recv()
            .map_err(|_| StoreError::Unavailable("database thread stopped".into()))?
    }

    fn submit<F, R>(&self, body: F) -> Result<oneshot::Receiver<Result<R, StoreError>>, StoreError>
    where
        F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job = TypedJob {
            body: Some(body),
            result: None,
            reply,
        };
        self.jobs
            .send(Box::new(job))
            .map_err(|_| StoreError::Unavailable("database thread stopped".into()))?;
        Ok(rx)
    }

    /// Runs `body` as one atomic transition and returns its value once committed.
    pub(crate) async fn run<F, R>(&self, body: F) -> Result<R, StoreError>
    where
        F: FnOnce(&Connection) -> Result<(R, Pokes), StoreError> + Send + 'static,
        R: Send + 'static,
    {
        let rx = self.submit(body)?;
        rx.await
            .map_err(|_| StoreError::Unavailable("database thread stopped".into()))?
    }
}

fn run_thread(conn: Connection, jobs: mpsc::Receiver<Box<dyn Job>>) {
    let mut poker = super::poke::Poker::default();
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut pokes: Pokes = Vec::new();
        let committed = match conn.execute_batch("BEGIN IMMEDIATE") {
            Ok(()) => {
                for job in batch.iter_mut() {
                    pokes.extend(job.run(&conn));
                }
                conn.execute_batch("COMMIT").map_err(|e| {
                    let _ = conn.execute_batch("ROLLBACK");
                    e.to_string()
                })
            }
            Err(e) => Err(e.to_string()),
        };
        if committed.is_ok() {
            pokes.sort_unstable();
            pokes.dedup();
            for port in pokes {
                poker.poke(port);
            }
        }
        for job in batch {
            job.finish(committed.clone());
        }
    }
}
