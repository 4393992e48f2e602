//! Adoption of the requests parked for a member's names, in bounded transactions of
//! [`BATCH`] requests per name: adopting a backlog of 100,000 in the join's own
//! transaction held the database's write lock for seconds, during which no other
//! `kar` process could commit anything. Until a name's backlog is adopted, routing
//! parks new requests for it behind the backlog (`routing::route`), so none
//! overtakes an earlier one.
//!
//! A member starts adopting when it joins, and again whenever its inbox sees the mesh
//! change (a join, a departure, a death) while requests are parked for its names: an
//! adopter that died or left midway is thus replaced by the live members offering the
//! names as soon as it is removed, not only by the next one to join. Several members
//! may adopt the same names at once: each transaction takes the oldest parked
//! requests, so the arrival order holds whoever runs it.

use super::db::{Db, Pokes};
use super::mesh::is_member;
use super::routing::{assign, destination, has_backlog};
use crate::codes::sql_status;
use crate::StoreError;
use rusqlite::Connection;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Most parked requests of one name adopted by one transaction (a few milliseconds
/// of the write lock).
pub(super) const BATCH: i64 = 500;

/// The adoption of the requests parked for the names of one member joined through
/// this handle (shared by its join and its inbox; one run at a time).
#[derive(Clone)]
pub(super) struct Adoption {
    app: String,
    node: String,
    names: Arc<[String]>,
    db: Db,
    running: Arc<AtomicBool>,
    /// Set by every call of [`Adoption::start`], cleared by each run as it starts.
    wanted: Arc<AtomicBool>,
}

/// How one adoption transaction ended.
enum Step {
    /// Requests are still parked for the names.
    More,
    /// None is.
    Done,
    /// The member is gone: the live members offering the names take over.
    Gone,
}

impl Adoption {
    pub(super) fn new(app: &str, node: &str, names: Vec<String>, db: &Db) -> Self {
        Adoption {
            app: app.to_string(),
            node: node.to_string(),
            names: names.into(),
            db: db.clone(),
            running: Arc::default(),
            wanted: Arc::default(),
        }
    }

    /// Adopts what is parked for the member's names, in a task, unless one runs: that
    /// one then looks again once done, so that no call goes unanswered (a look at the
    /// parked index first, outside the write lock: usually nothing is parked).
    /// `limit` (fault injection only) ends the first run after that many
    /// transactions, as though the process had died.
    pub(super) fn start(&self, limit: Option<u32>) {
        if self.names.is_empty() {
            return;
        }
        self.wanted.store(true, Ordering::Release);
        if self.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut limit = limit;
            loop {
                this.wanted.store(false, Ordering::Release);
                this.run(limit.take()).await;
                this.running.store(false, Ordering::Release);
                // Called meanwhile (and nobody took over since): once more.
                if !this.wanted.load(Ordering::Acquire) || this.running.swap(true, Ordering::AcqRel)
                {
                    break;
                }
            }
        });
    }

    async fn run(&self, limit: Option<u32>) {
        let node = &self.node;
        let (app, names) = (self.app.clone(), self.names.clone());
        let parked = self
            .db
            .read(move |conn| {
                for name in names.iter() {
                    if has_backlog(conn, &app, name)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            })
            .await;
        if matches!(parked, Ok(false)) {
            return;
        }
        let mut adopted_batches = 0u32;
        loop {
            if limit.is_some_and(|limit| adopted_batches >= limit) {
                tracing::warn!(%node, "fault injection: the adoption stops here");
                return;
            }
            let (app, node2, names) = (self.app.clone(), node.clone(), self.names.clone());
            match self
                .db
                .run_long(move |conn| adopt(conn, &app, &node2, &names))
                .await
            {
                Ok(Step::More) => {
                    adopted_batches += 1;
                    if adopted_batches.is_multiple_of(20) {
                        tracing::info!(%node, "adopting the requests parked for this member's names");
                    }
                }
                Ok(Step::Done) => break,
                Ok(Step::Gone) => return,
                Err(e) => {
                    tracing::warn!(%node, "cannot adopt parked requests (trying again): {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
        if adopted_batches > 0 {
            tracing::info!(%node, "adopted every request parked for this member's names");
        }
    }
}

/// One adoption transaction: routes the oldest [`BATCH`] requests parked for each of
/// `names` (in arrival order; an actor request goes to its placement if that member
/// lives), on behalf of member `node`.
fn adopt(
    conn: &Connection,
    app: &str,
    node: &str,
    names: &[String],
) -> Result<(Step, Pokes), StoreError> {
    if is_member(conn, app, node)?.is_none() {
        return Ok((Step::Gone, Vec::new()));
    }
    let mut pokes = Vec::new();
    let mut more = false;
    for name in names {
        // The partial index `requests_parked_for` (app, name) holds the rowid `seq`:
        // read in arrival order without a sort.
        let parked: Vec<(String, Option<String>, Option<String>)> = conn
            .prepare_cached(concat!(
                "SELECT id, actor_type, actor_id FROM requests
                 WHERE app = ?1 AND name = ?2 AND status = ",
                sql_status!(Parked),
                " ORDER BY seq LIMIT ?3"
            ))?
            .query_map(rusqlite::params![app, name, BATCH], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })?
            .collect::<Result<_, _>>()?;
        for (id, actor_type, actor_id) in parked {
            let actor = actor_type.as_deref().zip(actor_id.as_deref());
            // `node` offers `name`, so someone does.
            let Some((target, port)) = destination(conn, app, name, actor)? else {
                return Ok((Step::Gone, pokes));
            };
            assign(conn, app, &id, &target)?;
            pokes.push(port);
        }
        more |= has_backlog(conn, app, name)?;
    }
    pokes.sort_unstable();
    pokes.dedup();
    Ok((if more { Step::More } else { Step::Done }, pokes))
}
