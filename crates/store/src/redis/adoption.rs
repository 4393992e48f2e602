//! Adoption of the requests parked for a member's names (`lua/adopt.lua`), in bounded
//! scripts: one script adopting a backlog of 100,000 ran for seconds, during which
//! Redis served nobody and every member missed its lease. Until a name's backlog is
//! adopted, `route` (`lua/lib.lua`) parks new requests for it behind the backlog, so
//! none overtakes an earlier one.
//!
//! A member starts adopting when it joins, and again whenever one of its renewals
//! finds requests parked for its names while it adopts nothing (`lua/renew.lua`): an
//! adopter that died, was fenced or left midway is thus replaced within a renewal
//! period by any live member offering the names, not only by the next one to join.
//! Several members may adopt the same names at once: each script takes the oldest
//! parked requests, so the arrival order holds whoever runs it.

use super::replication::StoreConn;
use super::scripts::ADOPT;
use super::Keys;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// Most parked requests of one name adopted by one script: a few milliseconds of
/// Redis's time each.
pub(super) const BATCH: u32 = 500;

/// The members joined through this handle that are adopting (one task per member at
/// most).
#[derive(Clone, Default)]
pub(crate) struct Adoptions(Arc<Mutex<HashSet<String>>>);

impl Adoptions {
    /// Starts adopting the requests parked for `names` on behalf of `node`, on
    /// `runtime`, unless an adoption of `node` runs already. `limit` (fault injection
    /// only) ends it after that many scripts, as though its process had died.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn start(
        &self,
        runtime: &tokio::runtime::Handle,
        conn: &StoreConn,
        keys: &Arc<Keys>,
        node: &str,
        names: Vec<String>,
        fenced: watch::Receiver<bool>,
        limit: Option<u32>,
    ) {
        if names.is_empty() {
            return;
        }
        let fresh = self
            .0
            .lock()
            .map(|mut running| running.insert(node.to_string()))
            .unwrap_or(false);
        if !fresh {
            return;
        }
        let adoption = Adoption {
            conn: conn.clone(),
            keys: keys.clone(),
            node: node.to_string(),
            names,
            fenced,
        };
        let running = self.clone();
        runtime.spawn(async move {
            let node = adoption.node.clone();
            adoption.run(limit).await;
            if let Ok(mut running) = running.0.lock() {
                running.remove(&node);
            }
        });
    }
}

struct Adoption {
    conn: StoreConn,
    keys: Arc<Keys>,
    node: String,
    names: Vec<String>,
    fenced: watch::Receiver<bool>,
}

impl Adoption {
    /// One script at a time until none is left, while the member serves and renews.
    /// A failed script is tried again as long as the member is live; once it is not,
    /// the live members offering the names take over at their renewals.
    async fn run(mut self, limit: Option<u32>) {
        let node = &self.node;
        let mut adopted_batches = 0u32;
        loop {
            if limit.is_some_and(|limit| adopted_batches >= limit) {
                tracing::warn!(%node, "fault injection: the adoption stops here");
                return;
            }
            let mut invocation = ADOPT.invocation(&self.keys);
            invocation.arg(node).arg(BATCH);
            for name in &self.names {
                invocation.arg(name);
            }
            match invocation.invoke_async::<i64>(&mut self.conn).await {
                Ok(0) => break,
                // No longer a member (it left, or its lease expired).
                Ok(-1) => return,
                Ok(left) => {
                    adopted_batches += 1;
                    if adopted_batches.is_multiple_of(20) {
                        tracing::info!(%node, left, "adopting the requests parked for this member's names");
                    }
                }
                Err(e) => {
                    if *self.fenced.borrow() {
                        return;
                    }
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
