//! One mesh member: makes requests on behalf of its component, executes the requests
//! routed to it, and hands outcomes back to the callers waiting for them.

use crate::{AppClient, AwaitError, RuntimeConfig, RuntimeError};
use kar_protocol::time::format_go_time;
use kar_protocol::{
    now_millis, FlowId, Invocation, Member, NodeId, Outcome, Reply, Request, RequestId,
    RequestKind, Target,
};
use kar_store::{Inbox, Message, Routing, Store, StoreError};
use std::collections::HashMap;
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
    /// Requests being executed here; leaving the mesh waits for them.
    executing: AtomicUsize,
    executing_done: Notify,
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
            executing: AtomicUsize::new(0),
            executing_done: Notify::new(),
        });
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
        let deadline = self
            .config
            .missing_component_timeout
            .map(|t| now_millis() + t.as_millis() as u64);
        let request = Request {
            id: RequestId::generate(),
            kind,
            target,
            invocation,
            caller: self.node.clone(),
            flow: flow.unwrap_or_else(FlowId::generate),
            parent,
            deadline,
            step: 0,
            wrap_reply: false,
        };
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

    /// Leaves the mesh: new requests get `ShuttingDown`, requests executing here are
    /// finished first.
    pub async fn shutdown(&self) {
        if self.shutting_down.send_replace(true) {
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
        if let Err(e) = self.store.leave(&self.node).await {
            tracing::error!("cannot leave the mesh: {e}");
        }
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

    /// Fails a parked request at its start deadline unless a member adopted it.
    async fn expire_when_due(self: Arc<Self>, request: Request, deadline: u64) {
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
        loop {
            let messages = tokio::select! {
                messages = inbox.recv() => messages,
                _ = self.shutdown_started() => {
                    // Keep reading outcomes of requests that are still executing.
                    if self.executing.load(Ordering::SeqCst) == 0 { return; }
                    inbox.recv().await
                }
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
                    self.shutting_down.send_replace(true);
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
            Message::Execute(request) => {
                self.executing.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(self.clone().execute(*request));
            }
            Message::Completed { id, outcome, .. } => self.deliver(&id, outcome),
            Message::MembersChanged => tracing::debug!("mesh membership changed"),
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
        let now = now_millis();
        let outcome =
            if let Some(deadline) = request.deadline.filter(|_| request.deadline_passed(now)) {
                Outcome::Failed(deadline_reason(deadline))
            } else {
                match &self.app {
                    Some(app) => match app.invoke(&request.invocation).await {
                        Ok(reply) => Outcome::Reply(reply),
                        Err(e) => Outcome::Failed(e.to_string()),
                    },
                    None => Outcome::Failed(format!(
                        "node {} has no component to serve {}",
                        self.node,
                        request.target.routing_name()
                    )),
                }
            };
        if request.kind == RequestKind::Tell {
            match &outcome {
                Outcome::Reply(reply) if !reply.is_success() => tracing::warn!(
                    request = %request.id,
                    "tell to {} answered {}: {}",
                    request.target.routing_name(),
                    reply.status,
                    String::from_utf8_lossy(&reply.body)
                ),
                Outcome::Failed(reason) => {
                    tracing::error!(request = %request.id, "tell failed: {reason}")
                }
                _ => {}
            }
        }
        self.complete(&request.id, &outcome).await;
        if self.executing.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.executing_done.notify_waiters();
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
