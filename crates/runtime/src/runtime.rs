//! One mesh member: makes requests on behalf of its component, executes the requests
//! routed to it, and hands outcomes back to the callers waiting for them.

use crate::actors::Actors;
use crate::envelope::{self, Continuation, Interpretation};
use crate::{AppClient, AwaitError, RuntimeConfig, RuntimeError};
use bytes::Bytes;
use kar_protocol::paths::{actor_method_path, actor_path, encode_segment, session_query};
use kar_protocol::time::format_go_time;
use kar_protocol::{
    now_millis, ActorRef, FlowId, Invocation, Member, NodeId, Outcome, Reply, Request, RequestId,
    RequestKind, Target,
};
use kar_store_api::{Inbox, Message, Routing, Store, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch, Notify};

/// What the caller gets back when a request was accepted.
#[derive(Debug)]
pub enum Accepted {
    /// The reply of a synchronous call.
    Reply(Reply),
    /// A tell or a promise was durably queued under this id.
    Queued(RequestId),
}

/// Who waits for the outcome of a request made here.
enum Waiter {
    Call(oneshot::Sender<Outcome>),
    Promise(PromiseSlot),
}

enum PromiseSlot {
    /// Not complete yet; `Some` once somebody awaits it.
    Pending(Option<oneshot::Sender<Outcome>>),
    Ready(Outcome),
}

pub struct Runtime {
    config: RuntimeConfig,
    node: NodeId,
    store: Arc<dyn Store>,
    app: Option<Arc<dyn AppClient>>,
    waiters: Mutex<HashMap<RequestId, Waiter>>,
    /// Outcomes consumed by their caller, to be deleted from the store in batches.
    consumed: mpsc::UnboundedSender<RequestId>,
    shutting_down: watch::Sender<bool>,
    /// Set once the mesh was left (or leaving failed for good).
    left: watch::Sender<bool>,
    /// Set when the component is gone: executions in flight are abandoned (not
    /// completed), so that leaving the mesh hands them to another member.
    component_gone: watch::Sender<bool>,
    /// Set when the store declared this node dead: it must stop its component.
    fenced: std::sync::atomic::AtomicBool,
    /// Requests being executed here; leaving the mesh waits for them.
    executing: AtomicUsize,
    executing_done: Notify,
    actors: Actors,
    metrics: crate::metrics::Metrics,
    /// Wakes the reminder loop early (a reminder was scheduled here).
    reminders_wake: Notify,
    /// Wakes the event delivery loop early (an event was published here, or a tell
    /// finished here: possibly a delivery, after which the next event may go).
    events_wake: Notify,
}

/// Delay before retrying a store transition that failed because the store was
/// unreachable; doubles up to the maximum.
const STORE_RETRY_INITIAL: Duration = Duration::from_millis(50);
const STORE_RETRY_MAX: Duration = Duration::from_secs(2);

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
        let (consumed_tx, consumed_rx) = mpsc::unbounded_channel();
        let runtime = Arc::new(Runtime {
            config,
            node,
            store,
            app,
            waiters: Mutex::new(HashMap::new()),
            consumed: consumed_tx,
            shutting_down: watch::Sender::new(false),
            left: watch::Sender::new(false),
            component_gone: watch::Sender::new(false),
            fenced: std::sync::atomic::AtomicBool::new(false),
            executing: AtomicUsize::new(0),
            executing_done: Notify::new(),
            actors: Actors::new(),
            metrics: Default::default(),
            reminders_wake: Notify::new(),
            events_wake: Notify::new(),
        });
        for actor_type in runtime.config.actors.clone() {
            tokio::spawn(runtime.clone().check_actor_type(actor_type));
        }
        if let Some(interval) = runtime.config.actor_collector_interval {
            tokio::spawn(runtime.clone().collect_idle(interval));
        }
        if runtime.app.is_some() {
            // Members without a component (CLI commands) fire no reminders.
            tokio::spawn(runtime.clone().reminder_loop());
            tokio::spawn(runtime.clone().event_loop());
        }
        tokio::spawn(runtime.clone().inbox_loop(inbox));
        tokio::spawn(runtime.clone().forget_loop(consumed_rx));
        tracing::info!(node = %runtime.node, store = %runtime.store.describe(), "joined the mesh");
        Ok(runtime)
    }

    pub fn node(&self) -> &NodeId {
        &self.node
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn is_shutting_down(&self) -> bool {
        *self.shutting_down.borrow()
    }

    /// Resolves when shutdown begins.
    pub async fn shutdown_started(&self) {
        let mut rx = self.shutting_down.subscribe();
        let _ = rx.wait_for(|down| *down).await;
    }

    /// The live members of the mesh.
    pub async fn members(&self) -> Result<Vec<Member>, RuntimeError> {
        Ok(self.store.members().await?)
    }

    /// Makes a request to `target`. A call waits for the reply; a tell or a promise
    /// returns once the request is durably queued.
    pub async fn request(
        self: &Arc<Self>,
        target: Target,
        invocation: Invocation,
        kind: RequestKind,
        flow: Option<FlowId>,
        parent: Option<RequestId>,
    ) -> Result<Accepted, RuntimeError> {
        if self.is_shutting_down() {
            return Err(RuntimeError::ShuttingDown);
        }
        let request = Request::new(
            kind,
            target,
            invocation,
            self.node.clone(),
            flow.unwrap_or_else(FlowId::generate),
            parent,
            start_deadline(self.config.missing_component_timeout),
        );
        let id = request.id.clone();
        let reply_rx = match kind {
            RequestKind::Call => {
                let (tx, rx) = oneshot::channel();
                self.insert_waiter(&id, Waiter::Call(tx));
                Some(rx)
            }
            RequestKind::Promise => {
                self.insert_waiter(&id, Waiter::Promise(PromiseSlot::Pending(None)));
                None
            }
            RequestKind::Tell => None,
        };
        let routing = match self.store.enqueue(&request).await {
            Ok(routing) => routing,
            Err(e) => {
                self.remove_waiter(&id);
                return Err(e.into());
            }
        };
        if routing == Routing::Parked {
            tracing::info!(request = %id, target = request.target.routing_name(), "no member offers the target: request parked");
            if let Some(deadline) = request.deadline {
                tokio::spawn(self.clone().expire_when_due(request.clone(), deadline));
            }
        }
        let Some(reply_rx) = reply_rx else {
            return Ok(Accepted::Queued(id));
        };
        let mut shutdown = self.shutting_down.subscribe();
        let outcome = tokio::select! {
            outcome = reply_rx => outcome.map_err(|_| RuntimeError::ShuttingDown)?,
            _ = shutdown.wait_for(|down| *down) => {
                self.remove_waiter(&id);
                return Err(RuntimeError::ShuttingDown);
            }
        };
        let _ = self.consumed.send(id);
        match outcome {
            Outcome::Reply(reply) => Ok(Accepted::Reply(reply)),
            Outcome::Failed(reason) => Err(RuntimeError::Failed(reason)),
        }
    }

    /// Waits for the outcome of a promise made here (spec §2.3, §9.6).
    pub async fn await_promise(&self, id: &str) -> Result<Reply, AwaitError> {
        let id = RequestId::from(id.trim());
        let rx = {
            let mut waiters = self.lock_waiters();
            match waiters.remove(&id) {
                Some(Waiter::Promise(PromiseSlot::Ready(outcome))) => {
                    drop(waiters);
                    let _ = self.consumed.send(id);
                    return promise_result(outcome);
                }
                Some(Waiter::Promise(PromiseSlot::Pending(None))) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.insert(id.clone(), Waiter::Promise(PromiseSlot::Pending(Some(tx))));
                    rx
                }
                Some(other) => {
                    // Already awaited by somebody else, or not a promise.
                    waiters.insert(id.clone(), other);
                    return Err(AwaitError::Unknown(id.0));
                }
                None => return Err(AwaitError::Unknown(id.0)),
            }
        };
        let mut shutdown = self.shutting_down.subscribe();
        tokio::select! {
            outcome = rx => {
                let _ = self.consumed.send(id);
                promise_result(outcome.map_err(|_| AwaitError::ShuttingDown)?)
            }
            _ = shutdown.wait_for(|down| *down) => Err(AwaitError::ShuttingDown),
        }
    }

    /// The store declared this node dead: stop (the component must be stopped too).
    fn fence(&self) {
        if !self.fenced.swap(true, Ordering::SeqCst) {
            self.shutting_down.send_replace(true);
            // Nothing can be committed any more: leaving is moot.
            self.left.send_replace(true);
        }
    }

    /// Whether the store declared this node dead (lease lost): its component must be
    /// stopped, since the mesh may already run its requests elsewhere.
    pub fn is_fenced(&self) -> bool {
        self.fenced.load(Ordering::SeqCst)
    }

    /// Leaves the mesh: new requests get `ShuttingDown`, requests executing here are
    /// finished first. Every caller returns once the mesh was left.
    pub async fn shutdown(&self) {
        if self.shutting_down.send_replace(true) {
            let mut left = self.left.subscribe();
            let _ = left.wait_for(|left| *left).await;
            return;
        }
        tracing::info!(node = %self.node, "leaving the mesh");
        loop {
            let done = self.executing_done.notified();
            if self.executing.load(Ordering::SeqCst) == 0 {
                break;
            }
            done.await;
        }
        if !self.is_fenced() {
            if let Err(e) = self.store.leave(&self.node).await {
                tracing::error!("cannot leave the mesh: {e}");
            }
        }
        self.left.send_replace(true);
    }

    fn lock_waiters(&self) -> std::sync::MutexGuard<'_, HashMap<RequestId, Waiter>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert_waiter(&self, id: &RequestId, waiter: Waiter) {
        self.lock_waiters().insert(id.clone(), waiter);
    }

    fn remove_waiter(&self, id: &RequestId) {
        self.lock_waiters().remove(id);
    }

    pub(crate) fn wake_reminders(&self) {
        self.reminders_wake.notify_one();
    }

    pub(crate) async fn reminders_woken(&self) {
        self.reminders_wake.notified().await;
    }

    pub(crate) fn wake_events(&self) {
        self.events_wake.notify_one();
    }

    pub(crate) async fn events_woken(&self) {
        self.events_wake.notified().await;
    }

    /// Fails a parked request at its start deadline unless a member adopted it.
    pub(crate) async fn expire_when_due(self: Arc<Self>, request: Request, deadline: u64) {
        let wait = deadline.saturating_sub(now_millis());
        tokio::time::sleep(Duration::from_millis(wait + 1)).await;
        match self.store.expire_parked(&request.id).await {
            Ok(true) => {
                let reason = deadline_reason(deadline);
                if request.kind == RequestKind::Tell {
                    tracing::warn!(request = %request.id, "dropping tell to {}: {reason}", request.target.routing_name());
                } else {
                    self.deliver(&request.id, Outcome::Failed(reason));
                }
            }
            Ok(false) => {}
            Err(e) => tracing::error!(request = %request.id, "cannot expire parked request: {e}"),
        }
    }

    async fn inbox_loop(self: Arc<Self>, mut inbox: Box<dyn Inbox>) {
        let mut retry = STORE_RETRY_INITIAL;
        let mut left = self.left.subscribe();
        loop {
            // The inbox is held until the mesh was left: requests still executing
            // get their nested outcomes, and on the embedded store the liveness lock
            // it holds makes the others see a leave, not a death.
            let messages = tokio::select! {
                messages = inbox.recv() => messages,
                _ = left.wait_for(|left| *left) => return,
            };
            match messages {
                Ok(messages) => {
                    retry = STORE_RETRY_INITIAL;
                    for message in messages {
                        self.handle(message);
                    }
                }
                Err(StoreError::Fenced(node)) => {
                    tracing::error!("this sidecar ({node}) was removed from the mesh; stopping");
                    self.fence();
                    return;
                }
                Err(e) => {
                    tracing::error!("cannot read inbox (retrying in {retry:?}): {e}");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(STORE_RETRY_MAX);
                }
            }
        }
    }

    fn handle(self: &Arc<Self>, message: Message) {
        match message {
            Message::Execute(request) if self.is_shutting_down() => {
                // Still assigned to us in the store: leaving hands it to another member.
                tracing::debug!(request = %request.id, "leaving the mesh: not starting it here");
            }
            Message::Execute(request) => {
                self.executing.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(self.clone().execute(*request));
            }
            Message::Completed { id, outcome, .. } => self.deliver(&id, outcome),
            Message::MembersChanged => tracing::debug!("mesh membership changed"),
            Message::Signal(signal) => tracing::debug!(?signal, "control signal"),
        }
    }

    /// Hands an outcome to whoever waits for it here.
    fn deliver(&self, id: &RequestId, outcome: Outcome) {
        let mut waiters = self.lock_waiters();
        match waiters.remove(id) {
            Some(Waiter::Call(tx)) => {
                if let Err(outcome) = tx.send(outcome) {
                    drop(waiters);
                    tracing::debug!(request = %id, "caller went away before the reply: {outcome:?}");
                    let _ = self.consumed.send(id.clone());
                }
            }
            Some(Waiter::Promise(PromiseSlot::Pending(Some(tx)))) => {
                let _ = tx.send(outcome);
            }
            Some(Waiter::Promise(_)) => {
                waiters.insert(id.clone(), Waiter::Promise(PromiseSlot::Ready(outcome)));
            }
            None => {
                drop(waiters);
                let _ = self.consumed.send(id.clone());
            }
        }
    }

    async fn execute(self: Arc<Self>, request: Request) {
        let mut gone = self.component_gone.subscribe();
        let id = request.id.clone();
        tokio::select! {
            _ = self.clone().execute_to_completion(request) => {}
            _ = gone.wait_for(|gone| *gone) => {
                // The component died with the request: leaving the mesh re-routes it.
                tracing::warn!(request = %id, "component gone: request left for another member");
            }
        }
        if self.executing.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.executing_done.notify_waiters();
        }
    }

    /// The component is gone (it exited or was killed): requests executing here are
    /// abandoned rather than failed, and leaving the mesh hands them (still queued in
    /// the store) to another member offering their target.
    pub fn component_exited(&self) {
        self.component_gone.send_replace(true);
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
        let outcome = match request.target.clone() {
            Target::Service { .. } => Some(self.execute_service(&request).await),
            Target::Actor { actor_type, id } => {
                self.execute_actor(request.clone(), ActorRef::new(actor_type, id))
                    .await
            }
        };
        // `None`: the request went on as a tail call; its last step completes it.
        if let Some(outcome) = outcome {
            if request.kind == RequestKind::Tell {
                log_tell_outcome(&request, &outcome);
            }
            self.complete(&request.id, &outcome).await;
            if request.kind == RequestKind::Tell {
                // It may have been an event delivery: the subscription's next event
                // can go now.
                self.wake_events();
            }
        }
    }

    async fn execute_service(&self, request: &Request) -> Outcome {
        if let Some(failed) = self.check_deadline(request) {
            return failed;
        }
        if request.target.routing_name() == self.node.as_str() {
            return self.answer_system_query(&request.invocation);
        }
        let label = format!(
            "{}:{}",
            request.target.routing_name(),
            request.invocation.path
        );
        let reply = match self.invoke_app(&request.invocation, Some(&label)).await {
            Ok(reply) => reply,
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

    /// Runs an actor request under the instance lock, following tail calls that keep
    /// the lock. Returns `None` when the request continued elsewhere.
    async fn execute_actor(
        self: &Arc<Self>,
        mut request: Request,
        mut actor: ActorRef,
    ) -> Option<Outcome> {
        if let Some(failed) = self.check_deadline(&request) {
            return Some(failed);
        }
        let flow = request.flow.clone();
        if let Err(busy) = self
            .actors
            .acquire(&actor, &flow, self.config.actor_busy_timeout)
            .await
        {
            return Some(Outcome::Failed(format!(
                "Possible deadlock: timed out waiting in instance queue for {{{} {} {} {}}}",
                actor.actor_type,
                actor.id,
                flow,
                busy.holder.map(|f| f.0).unwrap_or_default()
            )));
        }
        loop {
            let step = self.run_actor_step(&request, &actor).await;
            let (next, keep_lock) = match step {
                Step::Done(outcome) => {
                    self.actors.release(&actor, &flow);
                    return Some(outcome);
                }
                Step::Continue(next, keep_lock) => (*next, keep_lock),
            };
            if let Err(e) = self.persist_tail_call(&next, keep_lock).await {
                self.actors.release(&actor, &flow);
                tracing::error!(request = %request.id, "tail call dropped: {e}");
                return None;
            }
            if !keep_lock {
                self.actors.release(&actor, &flow);
                return None;
            }
            // Same instance, lock handed over: run the continuation here at once.
            if let Target::Actor { actor_type, id } = &next.target {
                actor = ActorRef::new(actor_type.clone(), id.clone());
            }
            request = next;
        }
    }

    /// One step of an actor request: activation if needed, then the method (or the
    /// removal of the actor).
    async fn run_actor_step(&self, request: &Request, actor: &ActorRef) -> Step {
        let session = session_query(&request.flow.0, &request.id.0);
        if request.invocation.method == "DELETE" {
            return Step::Done(self.remove_actor(actor).await);
        }
        if !self.actors.is_activated(actor) {
            let activation = Invocation {
                method: "GET".to_string(),
                path: actor_path(&actor.actor_type, &actor.id),
                query: Some(session.clone()),
                headers: Vec::new(),
                body: Bytes::new(),
            };
            let label = format!("{}:activate", actor.actor_type);
            match self.invoke_app(&activation, Some(&label)).await {
                Ok(reply) if reply.status >= 400 => return Step::Done(Outcome::Reply(reply)),
                Ok(_) => self.actors.set_activated(actor, true),
                Err(failed) => return Step::Done(failed),
            }
        }
        let mut invocation = request.invocation.clone();
        invocation.query = Some(session);
        let base = actor_path(&actor.actor_type, &actor.id);
        let method = invocation
            .path
            .strip_prefix(&base)
            .unwrap_or(&invocation.path);
        let label = format!("{}:{}", actor.actor_type, method.trim_start_matches('/'));
        let reply = match self.invoke_app(&invocation, Some(&label)).await {
            Ok(reply) => reply,
            Err(failed) => return Step::Done(failed),
        };
        match envelope::interpret(reply.status, &reply.body) {
            Interpretation::Final => Step::Done(Outcome::Reply(reply)),
            Interpretation::Malformed(reason) => Step::Done(Outcome::Reply(Reply::text(
                500,
                format!("malformed tail call: {reason}\n"),
            ))),
            Interpretation::TailCall(continuation) => {
                let (next, keep_lock) = self.continuation(request, actor, continuation);
                Step::Continue(Box::new(next), keep_lock)
            }
        }
    }

    /// The next step of `request`: same id, caller and flow; a new target.
    fn continuation(
        &self,
        request: &Request,
        actor: &ActorRef,
        continuation: Continuation,
    ) -> (Request, bool) {
        let fresh_deadline = start_deadline(self.config.missing_component_timeout);
        let mut next = request.clone();
        next.step += 1;
        next.attempt = 0;
        next.wrap_reply = false;
        match continuation {
            Continuation::Actor {
                actor_type,
                id,
                path,
                payload,
                release_lock,
            } => {
                let keep_lock = !release_lock && actor.actor_type == actor_type && actor.id == id;
                next.invocation = Invocation {
                    method: "POST".to_string(),
                    path: actor_method_path(&actor_type, &id, &path),
                    query: None,
                    headers: vec![("Content-Type".to_string(), KAR_JSON.to_string())],
                    body: Bytes::from(payload),
                };
                next.target = Target::Actor { actor_type, id };
                // A continuation holding the handed-over lock has no start deadline
                // (spec §4.7); any other starts a new wait for its target.
                next.deadline = if keep_lock { None } else { fresh_deadline };
                (next, keep_lock)
            }
            Continuation::Service {
                name,
                path,
                payload,
                method,
            } => {
                let path = if path.starts_with('/') {
                    path
                } else {
                    format!("/{path}")
                };
                next.invocation = Invocation {
                    method: method.clone().unwrap_or_else(|| "GET".to_string()),
                    path,
                    query: None,
                    headers: if method.is_some() {
                        vec![("Content-Type".to_string(), "application/json".to_string())]
                    } else {
                        Vec::new()
                    },
                    body: Bytes::from(payload),
                };
                next.wrap_reply = method.is_some();
                next.target = Target::Service { name };
                next.deadline = fresh_deadline;
                (next, false)
            }
        }
    }

    /// Completes the current step and enqueues the next one, in one transition;
    /// retried while the store is unreachable.
    async fn persist_tail_call(&self, next: &Request, local: bool) -> Result<(), StoreError> {
        let mut retry = STORE_RETRY_INITIAL;
        loop {
            match self.store.tail_call(&self.node, next, local).await {
                Ok(_) => return Ok(()),
                Err(e) if e.is_retryable() => {
                    tracing::error!(request = %next.id, "cannot record tail call (retrying in {retry:?}): {e}");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(STORE_RETRY_MAX);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Removal of an actor (spec §2.2): deactivate it if active, then drop its state
    /// and placement.
    async fn remove_actor(&self, actor: &ActorRef) -> Outcome {
        if self.actors.is_activated(actor) {
            self.deactivate(actor).await;
        }
        match self.store.remove_actor(actor).await {
            Ok(()) => Outcome::Reply(Reply::text(200, "OK")),
            Err(e) => Outcome::Failed(format!("cannot remove actor: {e}")),
        }
    }

    /// `DELETE /kar/impl/v1/actor/T/I` (spec §3.4). The instance counts as inactive
    /// afterwards whatever the component answered.
    async fn deactivate(&self, actor: &ActorRef) {
        let invocation = Invocation {
            method: "DELETE".to_string(),
            path: actor_path(&actor.actor_type, &actor.id),
            query: None,
            headers: Vec::new(),
            body: Bytes::new(),
        };
        self.actors.set_activated(actor, false);
        let label = format!("{}:deactivate", actor.actor_type);
        match self.invoke_app(&invocation, Some(&label)).await {
            Ok(reply) if reply.status >= 400 => tracing::warn!(
                "deactivation of {} {} answered {}",
                actor.actor_type,
                actor.id,
                reply.status
            ),
            Ok(_) => {}
            Err(Outcome::Failed(reason)) => tracing::warn!("deactivation failed: {reason}"),
            Err(_) => {}
        }
    }

    /// Asks the component whether it knows `actor_type` (spec §3.1); the answer is
    /// only logged.
    async fn check_actor_type(self: Arc<Self>, actor_type: String) {
        let invocation = Invocation {
            method: "HEAD".to_string(),
            path: format!("/kar/impl/v1/actor/{}", encode_segment(&actor_type)),
            query: None,
            headers: Vec::new(),
            body: Bytes::new(),
        };
        match self.invoke_app(&invocation, None).await {
            Ok(reply) if reply.status == 200 => {
                tracing::debug!("actor type {actor_type} is recognized by the component")
            }
            Ok(_) => {
                tracing::error!("Actor type {actor_type} is not recognized by application process!")
            }
            Err(_) => {
                tracing::warn!("cannot check actor type {actor_type}: the component is unreachable")
            }
        }
    }

    /// Deactivates instances idle for one collector interval (spec §4.1).
    async fn collect_idle(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = self.shutdown_started() => return,
            }
            for actor in self.actors.idle_instances(interval) {
                let flow = FlowId(format!(
                    "flow-deactivate-{}",
                    FlowId::generate().0.trim_start_matches("flow-")
                ));
                if self.actors.try_acquire_idle(&actor, &flow) {
                    self.deactivate(&actor).await;
                    self.actors.release(&actor, &flow);
                }
            }
        }
    }

    /// Actor instances activated in the components of every member of the mesh,
    /// by type (spec §2.8 `actors`). Each member is asked through the mesh.
    pub async fn mesh_actors(
        self: &Arc<Self>,
    ) -> Result<BTreeMap<String, Vec<String>>, RuntimeError> {
        let members = self.members().await?;
        let queries = members.iter().map(|member| {
            let invocation = Invocation {
                method: "GET".to_string(),
                path: SIDECAR_ACTORS_QUERY.to_string(),
                query: None,
                headers: Vec::new(),
                body: Bytes::new(),
            };
            let target = Target::Service {
                name: member.node.0.clone(),
            };
            // A member that died a moment ago may still be listed: do not wait for
            // it longer than a live one needs.
            tokio::time::timeout(
                MESH_QUERY_TIMEOUT,
                self.request(target, invocation, RequestKind::Call, None, None),
            )
        });
        let mut merged: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for answer in futures::future::join_all(queries).await {
            let Ok(answer) = answer else {
                tracing::warn!(
                    "a member did not answer the actor listing in {MESH_QUERY_TIMEOUT:?}"
                );
                continue;
            };
            let Accepted::Reply(reply) = answer? else {
                continue;
            };
            let part: BTreeMap<String, Vec<String>> = serde_json::from_slice(&reply.body)
                .map_err(|e| RuntimeError::Failed(format!("malformed actor listing: {e}")))?;
            for (actor_type, ids) in part {
                merged.entry(actor_type).or_default().extend(ids);
            }
        }
        for ids in merged.values_mut() {
            ids.sort();
        }
        Ok(merged)
    }

    /// This runtime's activated actors, by type.
    pub fn local_actors(&self) -> BTreeMap<String, Vec<String>> {
        let mut by_type: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for actor in self.actors.activated() {
            by_type.entry(actor.actor_type).or_default().push(actor.id);
        }
        by_type
    }

    /// Queries addressed to this member itself (its node id is a routing name).
    fn answer_system_query(&self, invocation: &Invocation) -> Outcome {
        if invocation.path == SIDECAR_ACTORS_QUERY {
            let body = serde_json::to_vec(&self.local_actors()).unwrap_or_default();
            return Outcome::Reply(Reply::new(200, Some("application/json"), body));
        }
        if invocation.path == crate::events::EVENTS_WAKE_QUERY {
            self.wake_events();
            return Outcome::Reply(Reply::new(204, None, Bytes::new()));
        }
        Outcome::Reply(Reply::text(
            404,
            format!("unknown system query {}", invocation.path),
        ))
    }

    /// The metrics of this runtime in the Prometheus text format (spec §2.9).
    pub fn metrics_text(&self) -> String {
        self.metrics.render()
    }

    /// Actor instances activated in this runtime's component.
    pub fn activated_actors(&self) -> Vec<ActorRef> {
        self.actors.activated()
    }

    /// A tell of `body` to `path` below `actor`'s path (appended verbatim, spec §2.5,
    /// §2.6) as a JSON method call, in a fresh flow, with the usual start deadline: how
    /// reminders fire and events are delivered.
    pub(crate) fn actor_tell(
        caller: &NodeId,
        timeout: Option<Duration>,
        actor: &ActorRef,
        path: &str,
        body: Bytes,
    ) -> Request {
        Request::new(
            RequestKind::Tell,
            Target::Actor {
                actor_type: actor.actor_type.clone(),
                id: actor.id.clone(),
            },
            Invocation {
                method: "POST".to_string(),
                path: format!("{}{path}", actor_path(&actor.actor_type, &actor.id)),
                query: None,
                headers: vec![("Content-Type".to_string(), KAR_JSON.to_string())],
                body,
            },
            caller.clone(),
            FlowId::generate(),
            None,
            start_deadline(timeout),
        )
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

    fn check_deadline(&self, request: &Request) -> Option<Outcome> {
        if request.attempt > 0 {
            // Re-delivered by recovery: the step may have started before its executor
            // died, and a started request never fails because recovery took time.
            return None;
        }
        let deadline = request.deadline?;
        request
            .deadline_passed(now_millis())
            .then(|| Outcome::Failed(deadline_reason(deadline)))
    }

    /// Sends an invocation to this runtime's component.
    /// Sends an invocation to this runtime's component; `label` names it in the
    /// metrics.
    async fn invoke_app(
        &self,
        invocation: &Invocation,
        label: Option<&str>,
    ) -> Result<Reply, Outcome> {
        match &self.app {
            Some(app) => {
                let started = std::time::Instant::now();
                let result = app.invoke(invocation).await;
                if let (Some(label), Ok(_)) = (label, &result) {
                    self.metrics.observe(label, started.elapsed());
                }
                result.map_err(|e| Outcome::Failed(e.to_string()))
            }
            None => Err(Outcome::Failed(format!(
                "node {} has no component",
                self.node
            ))),
        }
    }

    /// Records an outcome, retrying while the store is unreachable: an executed
    /// request is never silently dropped.
    async fn complete(&self, id: &RequestId, outcome: &Outcome) {
        let mut retry = STORE_RETRY_INITIAL;
        loop {
            match self.store.complete(&self.node, id, outcome).await {
                Ok(_) => return,
                Err(StoreError::Fenced(node)) => {
                    tracing::error!(request = %id, "cannot record outcome: {node} is no longer a member");
                    self.fence();
                    return;
                }
                Err(e) => {
                    tracing::error!(request = %id, "cannot record outcome (retrying in {retry:?}): {e}");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(STORE_RETRY_MAX);
                }
            }
        }
    }

    async fn forget_loop(self: Arc<Self>, mut consumed: mpsc::UnboundedReceiver<RequestId>) {
        let mut batch = Vec::new();
        while consumed.recv_many(&mut batch, 1024).await > 0 {
            if let Err(e) = self.store.forget(&batch).await {
                tracing::warn!("cannot delete {} consumed outcomes: {e}", batch.len());
            }
            batch.clear();
        }
    }
}

/// How long a mesh-wide query waits for one member.
const MESH_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The query a member answers itself with its activated actors.
const SIDECAR_ACTORS_QUERY: &str = "/kar/v1/system/information/sidecar_actors";

/// Content type of actor method invocations and replies.
const KAR_JSON: &str = "application/kar+json";

/// What one actor step produced.
enum Step {
    Done(Outcome),
    /// Continue with this request; `true` keeps the instance lock.
    Continue(Box<Request>, bool),
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

/// The start deadline (Unix ms) of a request made now, `timeout`
/// (`-missing_component_timeout`) from now.
pub(crate) fn start_deadline(timeout: Option<Duration>) -> Option<u64> {
    timeout.map(|t| now_millis() + t.as_millis() as u64)
}

fn deadline_reason(deadline: u64) -> String {
    format!(
        "deadline expired: deadline was {} and it is now {}",
        format_go_time(deadline),
        format_go_time(now_millis())
    )
}

fn promise_result(outcome: Outcome) -> Result<Reply, AwaitError> {
    match outcome {
        Outcome::Reply(reply) => Ok(reply),
        Outcome::Failed(reason) => Err(AwaitError::Failed(reason)),
    }
}
