//! The lifecycle core of one mesh member: joining, the background tasks, shutdown and
//! fencing. The work itself lives beside it: the caller side (`caller.rs`: requests
//! made by the component), the executor side (`executor.rs`, `actor_steps.rs`:
//! requests routed here) and one façade per area (`actors.rs`, `state.rs`,
//! `reminders.rs`, `events.rs`).

use crate::caller::Caller;
use crate::executor::Executor;
use crate::{AppClient, Clock, RuntimeConfig, RuntimeError};
use kar_protocol::{Member, NodeId};
use kar_store_api::Store;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};

pub struct Runtime {
    pub(crate) config: RuntimeConfig,
    pub(crate) node: NodeId,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) caller: Caller,
    pub(crate) executor: Executor,
    pub(crate) wakes: Wakes,
    /// Actor listings asked of other members and not answered yet.
    pub(crate) mesh: crate::mesh::PendingQueries<crate::mesh::ActorListing>,
    /// Running-request listings asked of other members and not answered yet.
    pub(crate) mesh_running: crate::mesh::PendingQueries<Vec<kar_protocol::RequestId>>,
    /// The dashboard's latency queries (`latency.rs`) waiting for their answers.
    pub(crate) mesh_latency: crate::mesh::PendingQueries<Vec<kar_store_api::MethodLatency>>,
    /// The Kafka connection and topic bindings (`kafka/`), with `-kafka_brokers`.
    pub(crate) kafka: Option<Arc<crate::kafka::Kafka>>,
    /// Topics published through this member or subscribed to by its application
    /// since it started (trimmed here: `retention.rs`).
    pub(crate) published: std::sync::Mutex<std::collections::BTreeSet<String>>,
    lifecycle: Lifecycle,
}

/// Local wake-ups of the background loops, so that they sleep until there is work.
#[derive(Default)]
pub(crate) struct Wakes {
    /// A reminder was scheduled here, or the membership changed.
    pub reminders: Notify,
    /// An event was published or a subscription made here, a tell finished here
    /// (possibly a delivery, after which the next event may go), or another member
    /// published.
    pub events: Notify,
    /// The membership changed: a Kafka bridge's owner may have died (`kafka/`).
    pub bridges: Notify,
    /// The membership changed: a member may have joined to take actors
    /// (`rebalance.rs`).
    pub rebalance: Notify,
}

struct Lifecycle {
    shutting_down: watch::Sender<bool>,
    /// Set once the mesh was left (or leaving failed for good).
    left: watch::Sender<bool>,
    /// Leaving: `true` asks the inbox loop to stop reading (it still holds the
    /// inbox); the loop answers by setting `reading_stopped`.
    stop_reading: watch::Sender<bool>,
    reading_stopped: watch::Sender<bool>,
    /// Set when the store declared this node dead: it must stop its component.
    fenced: AtomicBool,
}

/// How long a leave waits for the inbox loop to finish handling its current batch.
const READING_STOP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

impl Runtime {
    /// Joins the mesh and starts serving. `app` is `None` for members without a
    /// component (CLI commands).
    pub async fn start(
        config: RuntimeConfig,
        store: Arc<dyn Store>,
        app: Option<Arc<dyn AppClient>>,
    ) -> Result<Arc<Runtime>, RuntimeError> {
        let node = NodeId::generate();
        let member = Member {
            node: node.clone(),
            service: config.service.clone(),
            actors: config.actors.clone(),
            runtime_port: config.runtime_port,
        };
        let inbox = store.join(&member).await?;
        let kafka = config
            .kafka
            .clone()
            .map(|k| Arc::new(crate::kafka::Kafka::new(k)));
        let (consumed_tx, consumed_rx) = mpsc::unbounded_channel();
        let (tell_completions, tell_completions_rx) = mpsc::unbounded_channel();
        let executor = Executor::new(app, config.max_concurrent_tells, tell_completions);
        let runtime = Arc::new(Runtime {
            config,
            node,
            store,
            caller: Caller::new(consumed_tx),
            executor,
            wakes: Wakes::default(),
            mesh: Default::default(),
            mesh_running: Default::default(),
            mesh_latency: Default::default(),
            kafka,
            published: Default::default(),
            lifecycle: Lifecycle {
                shutting_down: watch::Sender::new(false),
                left: watch::Sender::new(false),
                stop_reading: watch::Sender::new(false),
                reading_stopped: watch::Sender::new(false),
                fenced: AtomicBool::new(false),
            },
        });
        for actor_type in runtime.config.actors.clone() {
            tokio::spawn(runtime.clone().check_actor_type(actor_type));
        }
        if runtime.executor.has_component() {
            tokio::spawn(runtime.clone().rebalance_loop());
        }
        if let Some(interval) = runtime.config.actor_collector_interval {
            tokio::spawn(runtime.clone().collect_idle(interval));
        }
        if runtime.executor.has_component() {
            // Members without a component (CLI commands) fire no reminders.
            tokio::spawn(runtime.clone().reminder_loop());
            tokio::spawn(runtime.clone().event_loop());
            tokio::spawn(runtime.clone().retention_loop());
            if let Some(kafka) = runtime.kafka.clone() {
                tokio::spawn(runtime.clone().kafka_bridges(kafka));
            }
        }
        tokio::spawn(runtime.clone().tell_completion_loop(tell_completions_rx));
        tokio::spawn(runtime.clone().inbox_loop(inbox));
        tokio::spawn(runtime.clone().forget_loop(consumed_rx));
        tokio::spawn(runtime.clone().key_sweep_loop());
        tracing::info!(node = %runtime.node, store = %runtime.store.describe(), "joined the mesh");
        Ok(runtime)
    }

    pub fn node(&self) -> &NodeId {
        &self.node
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.config.clock
    }

    /// The live members of the mesh.
    pub async fn members(&self) -> Result<Vec<Member>, RuntimeError> {
        Ok(self.store.members().await?)
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.lifecycle.shutting_down.borrow()
    }

    /// Resolves when shutdown begins.
    pub async fn shutdown_started(&self) {
        let mut rx = self.lifecycle.shutting_down.subscribe();
        let _ = rx.wait_for(|down| *down).await;
    }

    /// Whether the mesh was left: from then on the component's own requests get
    /// `ShuttingDown` (while a graceful leave drains, they still work: the requests
    /// running here may call out).
    pub fn has_left(&self) -> bool {
        *self.lifecycle.left.borrow()
    }

    /// Resolves once the mesh was left.
    /// Resolves once a leave asked the inbox loop to stop reading; the loop then
    /// says so (see [`Runtime::shutdown`]).
    pub(crate) async fn reading_must_stop(&self) {
        let mut rx = self.lifecycle.stop_reading.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
        self.lifecycle.reading_stopped.send_replace(true);
    }

    pub(crate) async fn left(&self) {
        let mut rx = self.lifecycle.left.subscribe();
        let _ = rx.wait_for(|left| *left).await;
    }

    /// Whether the store declared this node dead (lease lost): its component must be
    /// stopped, since the mesh may already run its requests elsewhere.
    pub fn is_fenced(&self) -> bool {
        self.lifecycle.fenced.load(Ordering::SeqCst)
    }

    /// The store declared this node dead: stop (the component must be stopped too).
    pub(crate) fn fence(&self) {
        if !self.lifecycle.fenced.swap(true, Ordering::SeqCst) {
            self.lifecycle.shutting_down.send_replace(true);
            // Nothing can be committed any more: leaving is moot.
            self.lifecycle.left.send_replace(true);
        }
    }

    /// The component is gone (it exited or was killed): requests executing here are
    /// abandoned rather than failed, and leaving the mesh hands them (still queued in
    /// the store) to another member offering their target.
    pub fn component_exited(&self) {
        self.executor.component_gone.send_replace(true);
    }

    /// Runs a background loop until shutdown: `pass` does one round of work and says
    /// how long to sleep after it (`None`: go on at once); `wake` cuts the sleep short.
    pub(crate) async fn run_woken<F, Fut>(&self, wake: &Notify, mut pass: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<Duration>>,
    {
        while !self.is_shutting_down() {
            let Some(sleep) = pass().await else {
                continue;
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = wake.notified() => {}
                _ = self.shutdown_started() => return,
            }
        }
    }

    /// Leaves the mesh gracefully: new requests get `ShuttingDown` and those routed
    /// here are no longer started; the requests executing here get `-shutdown_grace`
    /// to finish (those still running then are left to recovery); the actors no flow
    /// holds are deactivated; then the mesh is left in one store transition that
    /// hands what is queued here, uncharged, to the other members (or parks it).
    /// Every caller returns once the mesh was left.
    pub async fn shutdown(&self) {
        if self.lifecycle.shutting_down.send_replace(true) {
            self.left().await;
            if self.is_fenced() {
                // Fencing skipped leaving, but the executions stopped with the
                // component still end (abandoned, each saying so) before we return,
                // so that no outcome of this member is left half-handled at exit.
                self.executor.all_finished().await;
            }
            return;
        }
        tracing::info!(node = %self.node, "leaving the mesh");
        // The tells queued behind the cap are not started here any more.
        self.drop_queued_tells();
        let began = tokio::time::Instant::now();
        let deadline = began + self.config.shutdown_grace;
        let finished = tokio::time::timeout_at(deadline, self.executor.all_finished()).await;
        if finished.is_err() {
            tracing::warn!(
                running = self.executor.running().len(),
                "requests still running after the grace period ({:?}): left to recovery",
                self.config.shutdown_grace
            );
        }
        let component_alive = !*self.executor.component_gone.borrow();
        let deactivated = if component_alive && !self.is_fenced() {
            self.deactivate_for_leave(deadline).await
        } else {
            0
        };
        let mut handed_over = 0;
        if !self.is_fenced() {
            // The inbox loop stops reading first, after the batch it is handling:
            // every request read from here on was handled (started, or listed as
            // unstarted below), and what it never read stays unread for the leave
            // to hand over uncharged. Without this, a request read between listing
            // the unstarted ones and the leave was charged an attempt (CI rehearsal:
            // `a_rolling_restart_fails_nothing::redis`).
            self.lifecycle.stop_reading.send_replace(true);
            let mut stopped = self.lifecycle.reading_stopped.subscribe();
            let _ = tokio::time::timeout(READING_STOP_PATIENCE, stopped.wait_for(|s| *s)).await;
            // Requests abandoned before they reached the component are not charged
            // an attempt (their executor did not die running them).
            let unstarted = std::mem::take(
                &mut *self
                    .executor
                    .unstarted
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()),
            );
            handed_over = unstarted.len();
            if let Err(e) = self.store.leave_releasing(&self.node, &unstarted).await {
                tracing::error!("cannot leave the mesh: {e}");
            }
        }
        tracing::info!(
            node = %self.node,
            deactivated,
            handed_over,
            "left the mesh in {:?}",
            began.elapsed()
        );
        self.lifecycle.left.send_replace(true);
    }
}
