//! The executor side: the inbox loop, and the execution of the requests routed to
//! this member up to their completion (one store transition). Actor requests take
//! their steps in `actor_steps.rs`; which requests run at once is `admission.rs`;
//! recording outcomes (and the group commit of tells) is `completion.rs`; invoking
//! the component (and its spans) is `invoke.rs`.

use crate::actor_steps::Finished;
use crate::actor_table::ActorTable;
use crate::admission::{Admission, Admitted};
use crate::completion::TellCompletion;
use crate::envelope;
use crate::fast_map::FastMap;
use crate::metrics::{Label, Metrics, StoreGauges};
use crate::retry::{Backoff, Policy};
use crate::telemetry::{self, Span};
use crate::{AppClient, Runtime};
use kar_protocol::{Outcome, Reply, Request, RequestId, RequestKind, Target, TraceContext};
use kar_store_api::{Inbox, Message};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, oneshot, watch, Notify};

/// Content type of actor method invocations and replies.
pub(crate) const KAR_JSON: &str = "application/kar+json";

/// What executes here: the component, the actor instances it hosts, and the requests
/// in flight.
pub(crate) struct Executor {
    pub(crate) app: Option<Arc<dyn AppClient>>,
    pub actors: ActorTable,
    pub(crate) metrics: Metrics,
    /// Set when the component is gone: executions in flight are abandoned (not
    /// completed), so that leaving the mesh hands them to another member.
    pub component_gone: watch::Sender<bool>,
    /// Requests being executed here; leaving the mesh waits for them.
    executing: AtomicUsize,
    executing_done: Notify,
    /// Requests abandoned here before they were handed to the component: leaving the
    /// mesh re-delivers them without charging an attempt (`leave_releasing`).
    pub unstarted: Mutex<Vec<RequestId>>,
    /// Requests executing here (one map, one lock per step of a request's life).
    in_flight: Mutex<FastMap<RequestId, InFlight>>,
    next_token: AtomicU64,
    /// While tracing is on: the component-call span of each request the component
    /// is executing here, the parent of the nested requests it makes.
    pub(crate) traced: Mutex<FastMap<RequestId, (TraceContext, Target)>>,
    /// Back-pressure on tells (`-max_concurrent_tells`).
    pub(crate) admission: Admission,
    /// Outcomes of tells to record, group-committed by `tell_completion_loop`.
    pub(crate) tell_completions: mpsc::UnboundedSender<TellCompletion>,
}

/// One execution of a request here.
struct InFlight {
    /// Tells two executions of one id apart.
    token: u64,
    /// Abandons the execution (an operator killed or paused it: `Signal::Abandon`).
    abandon: oneshot::Sender<()>,
    /// Handed to the component (no longer waiting for the actor lock or its back-off).
    started: bool,
}

impl Executor {
    /// `max_concurrent_tells`: 0 = no cap. Tell outcomes go to `tell_completions`
    /// (read by [`Runtime::tell_completion_loop`]).
    pub(crate) fn new(
        app: Option<Arc<dyn AppClient>>,
        max_concurrent_tells: usize,
        tell_completions: mpsc::UnboundedSender<TellCompletion>,
    ) -> Self {
        Executor {
            app,
            actors: ActorTable::new(),
            metrics: Metrics::default(),
            component_gone: watch::Sender::new(false),
            executing: AtomicUsize::new(0),
            executing_done: Notify::new(),
            unstarted: Mutex::new(Vec::new()),
            in_flight: Mutex::new(FastMap::default()),
            next_token: AtomicU64::new(0),
            traced: Mutex::new(FastMap::default()),
            admission: Admission::new(max_concurrent_tells),
            tell_completions,
        }
    }

    /// The execution `token` of request `id` ended (or will never start here).
    pub(crate) fn finished(&self, id: &RequestId, token: u64) {
        self.untrack(id, token);
        if self.executing.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.executing_done.notify_waiters();
        }
    }

    /// The component-call span of request `id` if the component executes it here.
    pub(crate) fn traced(&self, id: &RequestId) -> Option<TraceContext> {
        lock(&self.traced).get(id).map(|(context, _)| *context)
    }

    /// The component-call span of a request the component executes here for
    /// `target` (an actor: its calls to the sidecar, scheduling a reminder say, are
    /// made for that request).
    pub(crate) fn traced_for(&self, target: &Target) -> Option<TraceContext> {
        lock(&self.traced)
            .values()
            .find(|(_, t)| t == target)
            .map(|(context, _)| *context)
    }

    /// Request `id` starts executing here (not handed to the component yet).
    /// Returns its token and what resolves when an operator abandons it.
    fn track(&self, id: &RequestId) -> (u64, oneshot::Receiver<()>) {
        let token = self.next_token.fetch_add(1, Ordering::Relaxed);
        let (abandon, abandoned) = oneshot::channel();
        lock(&self.in_flight).insert(
            id.clone(),
            InFlight {
                token,
                abandon,
                started: false,
            },
        );
        (token, abandoned)
    }

    /// The execution `token` of request `id` ended.
    fn untrack(&self, id: &RequestId, token: u64) {
        let mut in_flight = lock(&self.in_flight);
        if in_flight.get(id).is_some_and(|e| e.token == token) {
            in_flight.remove(id);
        }
    }

    /// An operator killed or paused request `id`: its execution here, if any, stops.
    pub(crate) fn abandon(&self, id: &RequestId) -> bool {
        match lock(&self.in_flight).remove(id) {
            Some(execution) => execution.abandon.send(()).is_ok(),
            None => false,
        }
    }

    /// The requests executing here that were handed to the component (not waiting
    /// for an actor lock or a back-off).
    pub(crate) fn running(&self) -> Vec<RequestId> {
        let mut running: Vec<RequestId> = lock(&self.in_flight)
            .iter()
            .filter(|(_, execution)| execution.started)
            .map(|(id, _)| id.clone())
            .collect();
        running.sort();
        running
    }

    /// Request `id` is about to reach the component.
    pub(crate) fn started(&self, id: &RequestId) {
        if let Some(execution) = lock(&self.in_flight).get_mut(id) {
            execution.started = true;
        }
    }

    /// Whether request `id`, executing here, was handed to the component.
    fn has_started(&self, id: &RequestId) -> bool {
        lock(&self.in_flight).get(id).is_some_and(|e| e.started)
    }

    /// Request `id` was abandoned here before it reached the component.
    pub(crate) fn not_started(&self, id: &RequestId) {
        lock(&self.unstarted).push(id.clone());
    }

    pub(crate) fn has_component(&self) -> bool {
        self.app.is_some()
    }

    /// Resolves once no request executes here.
    pub(crate) async fn all_finished(&self) {
        loop {
            let done = self.executing_done.notified();
            if self.executing.load(Ordering::SeqCst) == 0 {
                return;
            }
            done.await;
        }
    }
}

impl Runtime {
    pub(crate) async fn inbox_loop(self: Arc<Self>, mut inbox: Box<dyn Inbox>) {
        let mut backoff = Backoff::new(Policy::KEEP_READING);
        loop {
            // The inbox is held until the mesh was left: requests still executing
            // get their nested outcomes, and on the embedded store the liveness lock
            // it holds makes the others see a leave, not a death.
            let messages = tokio::select! {
                messages = inbox.recv() => messages,
                _ = self.left() => return,
                // Leaving: no more reads (a cancelled `recv` loses nothing), but the
                // inbox is held until the mesh was left.
                _ = self.reading_must_stop() => {
                    self.left().await;
                    return;
                }
            };
            match messages {
                Ok(messages) => {
                    backoff.reset();
                    for message in messages {
                        self.handle(message);
                    }
                }
                Err(e) => {
                    if self
                        .back_off(&mut backoff, "cannot read inbox", e)
                        .await
                        .is_err()
                    {
                        // Fenced: nothing more can be committed.
                        return;
                    }
                }
            }
        }
    }

    fn handle(self: &Arc<Self>, message: Message) {
        match message {
            // While a graceful leave drains, the calls of flows running here (a
            // session re-entering its actor, a nested call in the flow) still run
            // here: the running requests wait for them.
            Message::Execute(request)
                if self.is_shutting_down()
                    && !self.executor.actors.flow_is_running(&request.flow) =>
            {
                // Still assigned to us in the store: leaving hands it to another member.
                tracing::debug!(request = %request.id, "leaving the mesh: not starting it here");
                self.executor.not_started(&request.id);
            }
            Message::Execute(request) => {
                self.executor.executing.fetch_add(1, Ordering::SeqCst);
                // Tracked before the next message is handled: an Abandon right
                // behind it in the inbox finds it (queued or not).
                let (token, abandoned) = self.executor.track(&request.id);
                let admitted = Admitted {
                    request,
                    token,
                    abandoned,
                };
                if admitted.request.kind.expects_reply() {
                    self.admit_awaited(admitted);
                } else {
                    self.admit_tell(admitted);
                }
            }
            Message::Completed { id, outcome, .. } => self.caller.deliver(&id, outcome),
            Message::MembersChanged => {
                tracing::debug!("mesh membership changed");
                // The reminders of a member that left are everybody's now.
                self.wakes.reminders.notify_one();
                // So are the Kafka partitions it bridged.
                self.wakes.bridges.notify_waiters();
                // A member that joined may take a share of the actors (`rebalance.rs`).
                self.wakes.rebalance.notify_one();
            }
            Message::Signal(signal) => self.on_signal(signal),
        }
    }

    pub(crate) fn spawn_execution(self: &Arc<Self>, admitted: Admitted, capped: bool) {
        let Admitted {
            request,
            token,
            abandoned,
        } = admitted;
        let runtime = self.clone();
        tokio::spawn(async move {
            runtime.clone().execute(*request, token, abandoned).await;
            if capped {
                runtime.release_tell();
            }
        });
    }

    async fn execute(
        self: Arc<Self>,
        request: Request,
        token: u64,
        abandoned: oneshot::Receiver<()>,
    ) {
        let mut gone = self.executor.component_gone.subscribe();
        let id = request.id.clone();
        let abandoned = async {
            // A dropped trigger (replaced by a later execution of the id) is no abandon.
            if abandoned.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        // Biased: a tell that waited in the queue may have been abandoned, or its
        // component may have gone, meanwhile; it must not start then.
        tokio::select! {
            biased;
            _ = abandoned => {
                // Dropping the execution drops the call to the component (which may
                // still finish its own work) and releases the actor lock; the store
                // already completed or paused the request, so nothing is recorded.
                tracing::info!("request {id} abandoned: an operator killed or paused it");
            }
            _ = gone.wait_for(|gone| *gone) => {
                // The component died with the request: leaving the mesh re-routes it.
                tracing::warn!(request = %id, "component gone: request left for another member");
                if !self.executor.has_started(&id) {
                    // It never reached the component: not charged an attempt.
                    self.executor.not_started(&id);
                }
            }
            // Its entry (started or not) goes with `finished` below.
            _ = self.clone().execute_to_completion(request) => {}
        }
        self.executor.finished(&id, token);
    }

    async fn execute_to_completion(self: Arc<Self>, request: Request) {
        if request.attempt > 0 {
            tracing::info!(
                request = %request.id,
                "retrying step {} of {} (attempt {}): its previous executor died",
                request.step,
                request.target.routing_name(),
                request.attempt + 1
            );
            if let Some(cancelled) = self.cancel_orphan(&request).await {
                self.complete(&request.id, &cancelled).await;
                return;
            }
        }
        let finished = match &request.target {
            Target::Service { .. } => {
                // A re-delivered step backs off first (issue 9); the actor path does
                // it under the instance lock (`execute_actor`).
                if !self.redelivery_backoff(&request).await {
                    return;
                }
                let mut span = self.attempt_span(&request);
                let outcome = self.execute_service(&request, &span).await;
                telemetry::outcome(&mut span, &outcome);
                Some(outcome.into())
            }
            Target::Actor { .. } => self.execute_actor(&request).await,
        };
        // `None`: the request went on as a tail call; its last step completes it.
        let Some(Finished { outcome, state }) = finished else {
            return;
        };
        let tell = request.kind == RequestKind::Tell;
        if tell {
            log_tell_outcome(&request, &outcome);
        }
        match state {
            // The instance lock is released once the writes are committed.
            Some(writes) => {
                self.complete_with_state(&request.id, &outcome, &writes.actor, &writes.update)
                    .await
            }
            None if tell => self.complete_tell(&request.id, outcome).await,
            None => self.complete(&request.id, &outcome).await,
        }
        if tell && is_event_delivery(&request) {
            // The subscription's next event can go now. Only then: every other tell
            // (a burst of reminder firings) would run a delivery pass each.
            self.wakes.events.notify_one();
        }
    }

    async fn execute_service(&self, request: &Request, attempt: &Span) -> Outcome {
        if let Some(failed) = self.check_deadline(request) {
            return failed;
        }
        let label = Label {
            owner: request.target.routing_name(),
            what: &request.invocation.path,
        };
        let reply = match self
            .invoke_traced(&request.invocation, label, attempt, request)
            .await
        {
            Ok(answer) => answer.without_state(),
            Err(failed) => return failed,
        };
        if request.wrap_reply && reply.status == 200 {
            return Outcome::Reply(Reply::new(
                200,
                Some(KAR_JSON),
                envelope::wrap_value(&reply.body),
            ));
        }
        Outcome::Reply(reply)
    }

    /// With `-cancel` (spec §4.8): a recovered call whose caller is gone is not
    /// executed again; nobody waits for its answer.
    async fn cancel_orphan(&self, request: &Request) -> Option<Outcome> {
        if !self.config.cancel || request.kind != RequestKind::Call || request.caller == self.node {
            return None;
        }
        let members = match self.store.members().await {
            Ok(members) => members,
            // In doubt, execute: the request is retried, never lost.
            Err(_) => return None,
        };
        if members.iter().any(|m| m.node == request.caller) {
            return None;
        }
        tracing::info!(request = %request.id, "not retried: its caller {} is gone (-cancel)", request.caller);
        Some(Outcome::Failed(format!(
            "cancelled: the caller {} is gone",
            request.caller
        )))
    }

    /// A request that did not start by its start deadline fails.
    pub(crate) fn check_deadline(&self, request: &Request) -> Option<Outcome> {
        if request.attempt > 0 {
            // Re-delivered by recovery: the step may have started before its executor
            // died, and a started request never fails because recovery took time.
            return None;
        }
        let deadline = request.deadline?;
        request
            .deadline_passed(self.clock().now_millis())
            .then(|| Outcome::Failed(self.clock().deadline_reason(deadline)))
    }

    /// The metrics of this runtime in the Prometheus text format (spec §2.9); the
    /// gauges read from the store are left out if it cannot be read.
    pub async fn metrics_text(&self) -> String {
        let reminders = self.store.reminders().list_all().await;
        let paused = kar_store_api::RequestFilter {
            status: Some(kar_store_api::PendingStatus::Paused),
            ..Default::default()
        };
        let paused = self.count_requests(&paused).await;
        let lags = self.store.subscription_lags().await.ok();
        let store = StoreGauges {
            active_reminders: reminders.ok().map(|all| all.len() as u64),
            paused_requests: paused,
            subscription_lags: lags,
            inbox_depth: Some(self.executor.executing.load(Ordering::Relaxed) as u64),
        };
        self.executor.metrics.render(&store)
    }

    /// Counts the requests `filter` keeps, page by page (`None`: the store failed).
    async fn count_requests(&self, filter: &kar_store_api::RequestFilter) -> Option<u64> {
        let mut count = 0;
        let mut after = None;
        loop {
            let page = self.store.list_requests(filter, after, 1000).await.ok()?;
            count += page.requests.len() as u64;
            match page.next {
                Some(next) => after = Some(next),
                None => return Some(count),
            }
        }
    }

    /// A reminder was cancelled through this runtime (`kar_actors_cancelled_reminders_gauge`).
    pub(crate) fn reminders_cancelled(&self, n: u64) {
        self.executor
            .metrics
            .cancelled_reminders
            .fetch_add(n, Ordering::Relaxed);
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether `request` delivers an event: its flow is named after its origin
/// (`flow-event-<uuid>`, `ActorTells::tell`), and tail calls keep the flow.
fn is_event_delivery(request: &Request) -> bool {
    request.flow.0.starts_with("flow-event-")
}

fn log_tell_outcome(request: &Request, outcome: &Outcome) {
    match outcome {
        Outcome::Reply(reply) if !reply.is_success() => tracing::warn!(
            request = %request.id,
            "tell to {} answered {}: {}",
            request.target.routing_name(),
            reply.status,
            String::from_utf8_lossy(&reply.body)
        ),
        Outcome::Reply(reply) if reply.body.starts_with(b"{\"error\":true") => tracing::warn!(
            request = %request.id,
            "tell to {} failed: {}",
            request.target.routing_name(),
            String::from_utf8_lossy(&reply.body)
        ),
        Outcome::Failed(reason) => tracing::error!(request = %request.id, "tell failed: {reason}"),
        _ => {}
    }
}
