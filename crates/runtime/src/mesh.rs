//! Control traffic between members, in one place: waking the other members' event
//! loops after a publish, asking every member for its activated actors or its
//! running requests, and abandoning a request an operator killed or paused (the
//! store sends that signal in the kill or pause transition).
//!
//! Both travel as typed [`Signal`]s through the store's inboxes (`Store::signal`),
//! not as durable requests: neither needs durability. A lost wake-up (its member
//! died or restarts) is covered by the event loop's safety re-check, and an actor
//! listing is only useful to an asker still waiting (it gives up after
//! [`MESH_QUERY_TIMEOUT`]). A publish therefore writes no request record per member.
//!
//! Actor removal stays a durable request (see `actors.rs`): it must run exactly on
//! the actor's host, under its lock, after the requests queued before it, even if
//! that host dies first.

use crate::{Runtime, RuntimeError};
use kar_protocol::{NodeId, RequestId};
use kar_store_api::Signal;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a mesh-wide query waits for one member.
pub(crate) const MESH_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Activated actors of one member, by type.
pub(crate) type ActorListing = BTreeMap<String, Vec<String>>;

/// Answers of type `T` this member asked for and still waits for, by query number.
pub(crate) struct PendingQueries<T> {
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<T>>>,
}

impl<T> Default for PendingQueries<T> {
    fn default() -> Self {
        PendingQueries {
            next: AtomicU64::new(0),
            waiting: Mutex::new(HashMap::new()),
        }
    }
}

impl<T> PendingQueries<T> {
    pub(crate) fn open(&self) -> (u64, oneshot::Receiver<T>) {
        let query = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock().insert(query, tx);
        (query, rx)
    }

    pub(crate) fn close(&self, query: u64) {
        self.lock().remove(&query);
    }

    fn answer(&self, query: u64, answer: T) {
        if let Some(tx) = self.lock().remove(&query) {
            let _ = tx.send(answer);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<T>>> {
        // A poisoned map only held senders: keep using it.
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Runtime {
    /// Wakes the event loops of the other members that host actors (this one wakes
    /// its own directly), so that no subscriber waits for the safety re-check.
    pub(crate) async fn wake_other_members(self: Arc<Self>) {
        let members = match self.members().await {
            Ok(members) => members,
            Err(e) => {
                tracing::debug!("cannot wake the other members after a publish: {e}");
                return;
            }
        };
        for member in members {
            if member.node == self.node || member.actors.is_empty() {
                continue;
            }
            self.send(&member.node, &Signal::EventsPublished).await;
        }
    }

    /// The activated actors of every live member (this one included). A member that
    /// does not answer within [`MESH_QUERY_TIMEOUT`] is left out.
    pub(crate) async fn ask_members_for_actors(
        self: &Arc<Self>,
    ) -> Result<Vec<ActorListing>, RuntimeError> {
        Ok(self
            .ask_members_for_actors_by_member()
            .await?
            .into_iter()
            .filter_map(|(_, listing)| listing)
            .collect())
    }

    /// The activated actors of each live member (this one included); `None` for a
    /// member that did not answer within [`MESH_QUERY_TIMEOUT`].
    pub(crate) async fn ask_members_for_actors_by_member(
        self: &Arc<Self>,
    ) -> Result<Vec<(NodeId, Option<ActorListing>)>, RuntimeError> {
        let members = self.members().await?;
        let queries = members.iter().map(|member| async move {
            if member.node == self.node {
                return (member.node.clone(), Some(self.local_actors()));
            }
            if member.actors.is_empty() {
                // It hosts no actor type (a client, a CLI command that may be gone
                // already): nothing to ask.
                return (member.node.clone(), Some(ActorListing::new()));
            }
            let (query, answer) = self.mesh.open();
            let ask = Signal::ListActors {
                from: self.node.clone(),
                query,
            };
            self.send(&member.node, &ask).await;
            // A member that died a moment ago may still be listed: do not wait for
            // it longer than a live one needs.
            let listing = tokio::time::timeout(MESH_QUERY_TIMEOUT, answer).await;
            self.mesh.close(query);
            match listing {
                Ok(Ok(listing)) => (member.node.clone(), Some(listing)),
                _ => {
                    tracing::warn!(
                        member = %member.node,
                        "a member did not answer the actor listing in {MESH_QUERY_TIMEOUT:?}"
                    );
                    (member.node.clone(), None)
                }
            }
        });
        Ok(futures::future::join_all(queries).await)
    }

    /// Acts on a signal found in this member's inbox.
    pub(crate) fn on_signal(self: &Arc<Self>, signal: Signal) {
        match signal {
            Signal::EventsPublished => self.wakes.events.notify_one(),
            Signal::ListActors { from, query } => {
                let answer = Signal::ActorsListed {
                    query,
                    actors: self.local_actors(),
                };
                let runtime = self.clone();
                tokio::spawn(async move { runtime.send(&from, &answer).await });
            }
            Signal::ActorsListed { query, actors } => self.mesh.answer(query, actors),
            Signal::Abandon { id } => {
                if !self.executor.abandon(&id) {
                    tracing::debug!(request = %id, "abandon: not executing here");
                }
            }
            Signal::ListRunning { from, query } => {
                let answer = Signal::RunningListed {
                    query,
                    ids: self.executor.running(),
                };
                let runtime = self.clone();
                tokio::spawn(async move { runtime.send(&from, &answer).await });
            }
            Signal::RunningListed { query, ids } => self.mesh_running.answer(query, ids),
            Signal::ListLatency { from, query } => {
                let answer = Signal::LatencyListed {
                    query,
                    methods: self.local_latency(),
                };
                let runtime = self.clone();
                tokio::spawn(async move { runtime.send(&from, &answer).await });
            }
            Signal::LatencyListed { query, methods } => self.mesh_latency.answer(query, methods),
        }
    }

    /// The requests that the components of these members (this one included) were
    /// handed and have not finished: *running*, where the store only says queued. A
    /// member that does not answer within `MESH_QUERY_TIMEOUT` is left out (its
    /// requests show as queued).
    pub async fn running_requests(
        self: &Arc<Self>,
        members: &[NodeId],
    ) -> std::collections::HashSet<RequestId> {
        let queries = members.iter().map(|member| async move {
            if *member == self.node {
                return self.executor.running();
            }
            let (query, answer) = self.mesh_running.open();
            let ask = Signal::ListRunning {
                from: self.node.clone(),
                query,
            };
            self.send(member, &ask).await;
            let listing = tokio::time::timeout(MESH_QUERY_TIMEOUT, answer).await;
            self.mesh_running.close(query);
            match listing {
                Ok(Ok(ids)) => ids,
                _ => {
                    tracing::warn!(
                        %member,
                        "a member did not list its running requests in {MESH_QUERY_TIMEOUT:?}"
                    );
                    Vec::new()
                }
            }
        });
        futures::future::join_all(queries)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Sends a signal; a failure only costs what the signal would have saved.
    pub(crate) async fn send(&self, to: &NodeId, signal: &Signal) {
        if let Err(e) = self.store.signal(to, signal).await {
            tracing::debug!(member = %to, ?signal, "cannot signal a member: {e}");
        }
    }
}
