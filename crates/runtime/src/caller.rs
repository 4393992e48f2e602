//! The caller side: requests made by this member's component. Each accepted request
//! is a durable record first; a call then waits here for its outcome, a promise
//! parks it here until `/kar/v1/await`, and consumed outcomes are deleted from the
//! store in batches.

use crate::fast_map::FastMap;
use crate::{telemetry, AwaitError, Runtime, RuntimeError};
use kar_protocol::{FlowId, Invocation, Outcome, Reply, Request, RequestId, RequestKind, Target};
use kar_store_api::Routing;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// A wait for the outcome of a request made here by somebody else (see
/// [`Caller::attach`]); dropping it (also when its waiter is cancelled) removes its
/// sender.
pub(crate) struct Attachment<'a> {
    pub(crate) outcome: oneshot::Receiver<Outcome>,
    caller: &'a Caller,
    id: RequestId,
}

impl Attachment<'_> {
    /// A fresh receiver, after the previous one's sender went away.
    pub(crate) fn renew(&mut self) {
        self.outcome = self.caller.attach_receiver(&self.id);
    }
}

impl Drop for Attachment<'_> {
    fn drop(&mut self) {
        // Close the receiver first: detach drops the senders whose receivers are gone.
        self.outcome.close();
        self.caller.detach(&self.id);
    }
}

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

/// The outcomes this member waits for.
pub(crate) struct Caller {
    waiters: Mutex<FastMap<RequestId, Waiter>>,
    /// Duplicates of keyed requests waiting here for the outcome of a request they
    /// did not make (`idempotency.rs`): served too when that request was made here
    /// and its outcome arrives (they also read it from the store).
    attached: Mutex<FastMap<RequestId, Vec<oneshot::Sender<Outcome>>>>,
    /// Outcomes consumed by their caller, to be deleted from the store in batches.
    consumed: mpsc::UnboundedSender<RequestId>,
}

impl Caller {
    pub(crate) fn new(consumed: mpsc::UnboundedSender<RequestId>) -> Self {
        Caller {
            waiters: Mutex::new(FastMap::default()),
            attached: Mutex::new(FastMap::default()),
            consumed,
        }
    }

    fn lock(&self) -> MutexGuard<'_, FastMap<RequestId, Waiter>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.waiters.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self, id: &RequestId, waiter: Waiter) {
        self.lock().insert(id.clone(), waiter);
    }

    pub(crate) fn remove(&self, id: &RequestId) {
        self.lock().remove(id);
    }

    fn consumed(&self, id: RequestId) {
        let _ = self.consumed.send(id);
    }

    /// Hands an outcome to whoever waits for it here.
    pub(crate) fn deliver(&self, id: &RequestId, outcome: Outcome) {
        self.serve_attached(id, &outcome);
        let mut waiters = self.lock();
        match waiters.remove(id) {
            Some(Waiter::Call(tx)) => {
                if let Err(outcome) = tx.send(outcome) {
                    drop(waiters);
                    tracing::debug!(request = %id, "caller went away before the reply: {outcome:?}");
                    self.consumed(id.clone());
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
                self.consumed(id.clone());
            }
        }
    }

    fn lock_attached(&self) -> MutexGuard<'_, FastMap<RequestId, Vec<oneshot::Sender<Outcome>>>> {
        // A poisoned map only held senders: keep using it.
        self.attached.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A receiver of the outcome of request `id` if it reaches this member, until the
    /// attachment is dropped.
    pub(crate) fn attach(&self, id: &RequestId) -> Attachment<'_> {
        Attachment {
            outcome: self.attach_receiver(id),
            caller: self,
            id: id.clone(),
        }
    }

    fn attach_receiver(&self, id: &RequestId) -> oneshot::Receiver<Outcome> {
        let (tx, rx) = oneshot::channel();
        self.lock_attached().entry(id.clone()).or_default().push(tx);
        rx
    }

    /// Drops the senders of `id` whose receivers are gone.
    fn detach(&self, id: &RequestId) {
        let mut attached = self.lock_attached();
        if let Some(senders) = attached.get_mut(id) {
            senders.retain(|tx| !tx.is_closed());
            if senders.is_empty() {
                attached.remove(id);
            }
        }
    }

    fn serve_attached(&self, id: &RequestId, outcome: &Outcome) {
        let mut attached = self.lock_attached();
        if attached.is_empty() {
            return;
        }
        for tx in attached.remove(id).unwrap_or_default() {
            let _ = tx.send(outcome.clone());
        }
    }

    /// Registers promise `id`, made here for a request that another caller made
    /// (`idempotency.rs`): ready with `outcome`, or pending until [`Caller::deliver`].
    pub(crate) fn insert_promise(&self, id: &RequestId, outcome: Option<Outcome>) {
        let slot = match outcome {
            Some(outcome) => PromiseSlot::Ready(outcome),
            None => PromiseSlot::Pending(None),
        };
        self.insert(id, Waiter::Promise(slot));
    }

    /// The outcome of promise `id` if ready, or a receiver for it; `None` if it is
    /// unknown or already awaited.
    fn take_promise(&self, id: &RequestId) -> Option<Result<Outcome, oneshot::Receiver<Outcome>>> {
        let mut waiters = self.lock();
        match waiters.remove(id) {
            Some(Waiter::Promise(PromiseSlot::Ready(outcome))) => Some(Ok(outcome)),
            Some(Waiter::Promise(PromiseSlot::Pending(None))) => {
                let (tx, rx) = oneshot::channel();
                waiters.insert(id.clone(), Waiter::Promise(PromiseSlot::Pending(Some(tx))));
                Some(Err(rx))
            }
            Some(other) => {
                // Already awaited by somebody else, or not a promise.
                waiters.insert(id.clone(), other);
                None
            }
            None => None,
        }
    }
}

impl Runtime {
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
        if self.has_left() {
            return Err(RuntimeError::ShuttingDown);
        }
        let (request, reply_rx, mut span) =
            self.new_request(target, invocation, kind, flow, parent);
        let routing = match self.store.enqueue(&request).await {
            Ok(routing) => routing,
            Err(e) => {
                self.caller.remove(&request.id);
                span.fail(e.to_string());
                return Err(e.into());
            }
        };
        self.accepted(request, routing, reply_rx, span).await
    }

    /// A new request made by this member's component, with its waiter registered
    /// (before it is enqueued: the outcome may arrive before the enqueue returns),
    /// and its accepting span (see `telemetry.rs`), which its record refers to.
    pub(crate) fn new_request(
        &self,
        target: Target,
        invocation: Invocation,
        kind: RequestKind,
        flow: Option<FlowId>,
        parent: Option<RequestId>,
    ) -> (Request, Option<oneshot::Receiver<Outcome>>, telemetry::Span) {
        let mut request = Request::new(
            kind,
            target,
            invocation,
            self.node.clone(),
            flow.unwrap_or_else(FlowId::generate),
            parent,
            self.start_deadline(),
        );
        let span = self.accepting_span(&mut request);
        let reply_rx = match kind {
            RequestKind::Call => {
                let (tx, rx) = oneshot::channel();
                self.caller.insert(&request.id, Waiter::Call(tx));
                Some(rx)
            }
            RequestKind::Promise => {
                self.caller
                    .insert(&request.id, Waiter::Promise(PromiseSlot::Pending(None)));
                None
            }
            RequestKind::Tell => None,
        };
        (request, reply_rx, span)
    }

    /// The span of a request accepted here: a child of the `traceparent` the
    /// component sent, or else of the component call of its parent request if that
    /// runs here (an actor's nested call names its parent in its session); its
    /// context goes into the record.
    fn accepting_span(&self, request: &mut Request) -> telemetry::Span {
        if !telemetry::on() {
            return telemetry::Span::default();
        }
        let parent = telemetry::traceparent_of(&request.invocation.headers).or_else(|| {
            let parent = request.parent.as_ref()?;
            self.executor.traced(parent)
        });
        let relation = match parent {
            Some(parent) => telemetry::Relation::ChildOf(parent),
            None => telemetry::Relation::Root,
        };
        let span = telemetry::start(
            || {
                format!(
                    "{} {}",
                    kind_verb(request.kind),
                    telemetry::target_label(request)
                )
            },
            telemetry::Kind::Server,
            relation,
            || {
                let mut attributes = telemetry::request_attributes(&self.config.app, request);
                attributes.push(opentelemetry::KeyValue::new(
                    "kar.sidecar",
                    self.node.0.clone(),
                ));
                attributes
            },
        );
        request.trace = span.context();
        span
    }

    /// After `request` was enqueued: a call waits for its reply; a tell or a promise
    /// is queued.
    pub(crate) async fn accepted(
        self: &Arc<Self>,
        request: Request,
        routing: Routing,
        reply_rx: Option<oneshot::Receiver<Outcome>>,
        mut span: telemetry::Span,
    ) -> Result<Accepted, RuntimeError> {
        self.watch_if_parked(&request, &routing);
        if routing == Routing::Parked {
            span.set("kar.parked", true);
        }
        let id = request.id;
        let Some(reply_rx) = reply_rx else {
            return Ok(Accepted::Queued(id));
        };
        let outcome = tokio::select! {
            outcome = reply_rx => outcome.map_err(|_| RuntimeError::ShuttingDown)?,
            _ = self.left() => {
                self.caller.remove(&id);
                return Err(RuntimeError::ShuttingDown);
            }
        };
        self.caller.consumed(id);
        telemetry::outcome(&mut span, &outcome);
        call_result(outcome)
    }

    /// Waits for the outcome of a promise made here (spec §2.3, §9.6).
    pub async fn await_promise(&self, id: &str) -> Result<Reply, AwaitError> {
        let id = RequestId::from(id.trim());
        let rx = match self.caller.take_promise(&id) {
            None => return Err(AwaitError::Unknown(id.0)),
            Some(Ok(outcome)) => {
                self.caller.consumed(id);
                return promise_result(outcome);
            }
            Some(Err(rx)) => rx,
        };
        tokio::select! {
            outcome = rx => {
                self.caller.consumed(id);
                promise_result(outcome.map_err(|_| AwaitError::ShuttingDown)?)
            }
            _ = self.left() => Err(AwaitError::ShuttingDown),
        }
    }

    /// The start deadline of a request made now (`-missing_component_timeout`).
    pub(crate) fn start_deadline(&self) -> Option<u64> {
        self.clock()
            .deadline_after(self.config.missing_component_timeout)
    }

    /// A request nobody offers the target of waits parked: fail it at its start
    /// deadline unless a member adopts it first.
    pub(crate) fn watch_if_parked(self: &Arc<Self>, request: &Request, routing: &Routing) {
        if *routing != Routing::Parked {
            return;
        }
        tracing::info!(request = %request.id, target = request.target.routing_name(), "no member offers the target: request parked");
        if let Some(deadline) = request.deadline {
            tokio::spawn(self.clone().expire_when_due(request.clone(), deadline));
        }
    }

    async fn expire_when_due(self: Arc<Self>, request: Request, deadline: u64) {
        tokio::time::sleep(self.clock().until_past(deadline)).await;
        match self.store.expire_parked(&request.id).await {
            Ok(true) => {
                let reason = self.clock().deadline_reason(deadline);
                if request.kind == RequestKind::Tell {
                    tracing::warn!(request = %request.id, "dropping tell to {}: {reason}", request.target.routing_name());
                } else {
                    self.caller.deliver(&request.id, Outcome::Failed(reason));
                }
            }
            Ok(false) => {}
            Err(e) => tracing::error!(request = %request.id, "cannot expire parked request: {e}"),
        }
    }

    /// Deletes consumed outcomes from the store, in batches, for as long as the
    /// runtime lives. A batch gathers for [`FORGET_GATHER`] after its first outcome:
    /// a deletion per call cost a store write per call (on Redis with
    /// `appendfsync always`, an fsync the caller's next request then waited for).
    pub(crate) async fn forget_loop(
        self: Arc<Self>,
        mut consumed: mpsc::UnboundedReceiver<RequestId>,
    ) {
        let mut batch = Vec::new();
        while consumed.recv_many(&mut batch, FORGET_BATCH).await > 0 {
            tokio::time::sleep(FORGET_GATHER).await;
            while batch.len() < FORGET_BATCH {
                match consumed.try_recv() {
                    Ok(id) => batch.push(id),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.store.forget(&batch).await {
                tracing::warn!("cannot delete {} consumed outcomes: {e}", batch.len());
            }
            batch.clear();
        }
    }
}

/// Most consumed outcomes deleted by one store call.
const FORGET_BATCH: usize = 1024;

/// How long consumed outcomes wait for others to be deleted with (see
/// [`Runtime::forget_loop`]); they are never delivered again meanwhile.
const FORGET_GATHER: Duration = Duration::from_millis(20);

fn kind_verb(kind: RequestKind) -> &'static str {
    match kind {
        RequestKind::Call => "call",
        RequestKind::Tell => "tell",
        RequestKind::Promise => "promise",
    }
}

/// The answer to a call from its outcome.
pub(crate) fn call_result(outcome: Outcome) -> Result<Accepted, RuntimeError> {
    match outcome {
        Outcome::Reply(reply) => Ok(Accepted::Reply(reply)),
        Outcome::Failed(reason) => Err(RuntimeError::Failed(reason)),
    }
}

fn promise_result(outcome: Outcome) -> Result<Reply, AwaitError> {
    match outcome {
        Outcome::Reply(reply) => Ok(reply),
        Outcome::Failed(reason) => Err(AwaitError::Failed(reason)),
    }
}
