//! The executor side of actors: a request runs under the instance lock (one flow at a
//! time, spec §4.2), activates the instance first, and follows tail calls (spec §4.3);
//! plus deactivation, removal and idle collection (spec §4.1).

use crate::actor_table::Hold;
use crate::actors::ActorRemoval;
use crate::envelope::{self, Continuation, Interpretation};
use crate::executor::KAR_JSON;
use crate::metrics::Label;
use crate::retry::Policy;
use crate::telemetry::{self, Relation, Span};
use crate::{AppReply, Clock, Runtime};
use bytes::Bytes;
use kar_protocol::paths::{actor_method_path, actor_path, encode_segment, session_query};
use kar_protocol::state_ops::parse_update;
use kar_protocol::{
    deferred_state, ActorRef, FlowId, Invocation, NodeId, Outcome, Reply, Request, RequestKind,
    StateUpdate, Target,
};
use kar_store_api::StoreError;
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// What one actor step produced.
enum Step {
    /// The outcome, with the state writes the method handed over with its reply.
    Done(Outcome, Option<StateUpdate>),
    /// Continue with this request; `true` keeps the instance lock.
    Continue(Box<Request>, bool),
}

/// How an actor request ended here: the outcome to record.
pub(crate) struct Finished<'a> {
    pub(crate) outcome: Outcome,
    /// The method's state writes, to commit in the transition that records the outcome.
    pub(crate) state: Option<StateWrites<'a>>,
}

impl From<Outcome> for Finished<'_> {
    fn from(outcome: Outcome) -> Self {
        Finished {
            outcome,
            state: None,
        }
    }
}

/// State writes to commit with a request's outcome (see
/// [`kar_protocol::deferred_state`]), and the instance lock, kept until they are
/// committed: the instance's next flow must find them.
pub(crate) struct StateWrites<'a> {
    pub(crate) actor: ActorRef,
    pub(crate) update: StateUpdate,
    pub(crate) _lock: Hold<'a>,
}

fn actor_of(request: &Request) -> Option<ActorRef> {
    match &request.target {
        Target::Actor { actor_type, id } => Some(ActorRef::new(actor_type.clone(), id.clone())),
        Target::Service { .. } => None,
    }
}

impl Runtime {
    /// Runs an actor request under the instance lock, following tail calls that keep
    /// the lock. Returns `None` when the request continued elsewhere.
    pub(crate) async fn execute_actor(self: &Arc<Self>, request: &Request) -> Option<Finished<'_>> {
        // Borrowed for the first step (nearly every request has only one); owned from
        // the first tail call that keeps the lock on.
        let mut request = Cow::Borrowed(request);
        let mut actor = actor_of(&request)?;
        if let Some(failed) = self.check_deadline(&request) {
            return Some(failed.into());
        }
        let actors = &self.executor.actors;
        let flow = request.flow.clone();
        if let Err(busy) = actors
            .acquire(&actor, &flow, self.config.actor_busy_timeout)
            .await
        {
            return Some(
                Outcome::Failed(format!(
                    "Possible deadlock: timed out waiting in instance queue for {{{} {} {} {}}}",
                    actor.actor_type,
                    actor.id,
                    flow,
                    busy.holder.map(|f| f.0).unwrap_or_default()
                ))
                .into(),
            );
        }
        // Released however this ends, an abandoned request (dropped) included.
        let hold = actors.hold(actor.clone(), flow.clone());
        // A re-delivered step backs off holding the instance lock: the actor's later
        // requests stay behind it (per-actor arrival order), at the cost of the actor
        // being busy for the wait (at most `Redelivery::cap`). Shutdown meanwhile: not
        // started here, leaving re-delivers it.
        if !self.redelivery_backoff(&request).await {
            return None;
        }
        loop {
            let (next, keep_lock) = match self.run_actor_step(&request, &actor).await {
                Step::Done(outcome, None) => return Some(outcome.into()),
                Step::Done(outcome, Some(update)) => {
                    let state = StateWrites {
                        actor,
                        update,
                        _lock: hold,
                    };
                    return Some(Finished {
                        outcome,
                        state: Some(state),
                    });
                }
                Step::Continue(next, keep_lock) => (*next, keep_lock),
            };
            if let Err(e) = self.persist_tail_call(&next, keep_lock).await {
                tracing::error!(request = %request.id, "tail call dropped: {e}");
                return None;
            }
            if !keep_lock {
                return None;
            }
            // Same instance, lock handed over: run the continuation here at once.
            if let Some(next_actor) = actor_of(&next) {
                actor = next_actor;
            }
            request = Cow::Owned(next);
        }
    }

    /// One step of an actor request: activation if needed, then the method (or the
    /// removal of the actor).
    async fn run_actor_step(&self, request: &Request, actor: &ActorRef) -> Step {
        let mut span = self.attempt_span(request);
        let step = self.run_actor_step_in(request, actor, &span).await;
        if let Step::Done(outcome, _) = &step {
            telemetry::outcome(&mut span, outcome);
        }
        step
    }

    async fn run_actor_step_in(&self, request: &Request, actor: &ActorRef, span: &Span) -> Step {
        if request.is_actor_removal() {
            return Step::Done(self.remove_actor_here(actor).await, None);
        }
        let session = session_query(&request.flow.0, &request.id.0);
        let actors = &self.executor.actors;
        if !actors.is_activated(actor) {
            let activation = Invocation {
                method: "GET".to_string(),
                path: actor_path(&actor.actor_type, &actor.id),
                query: Some(session.clone()),
                headers: Vec::new(),
                body: Bytes::new(),
            };
            let label = Label {
                owner: &actor.actor_type,
                what: "activate",
            };
            let activated = self.invoke_traced(&activation, label, span, request).await;
            match activated.map(AppReply::without_state) {
                Ok(reply) if reply.status >= 400 => return Step::Done(Outcome::Reply(reply), None),
                Ok(_) => actors.set_activated(actor, true),
                Err(failed) => return Step::Done(failed, None),
            }
        }
        let mut invocation = request.invocation.clone();
        invocation.query = Some(session);
        invocation
            .headers
            .push((deferred_state::OFFER.to_string(), "1".to_string()));
        let base = actor_path(&actor.actor_type, &actor.id);
        let method = invocation
            .path
            .strip_prefix(&base)
            .unwrap_or(&invocation.path);
        let label = Label {
            owner: &actor.actor_type,
            what: method.trim_start_matches('/'),
        };
        let AppReply {
            reply,
            state_update,
        } = match self.invoke_traced(&invocation, label, span, request).await {
            Ok(answer) => answer,
            Err(failed) => return Step::Done(failed, None),
        };
        let state = match state_update.as_deref().map(parse_update) {
            None => None,
            Some(Ok(update)) => Some(update),
            Some(Err(_)) => {
                let reason = "the method's state writes are not a stateUpdateOp\n";
                return Step::Done(Outcome::Reply(Reply::text(500, reason)), None);
            }
        };
        match envelope::interpret(reply.status, &reply.body) {
            Interpretation::Final => Step::Done(Outcome::Reply(reply), state),
            Interpretation::Malformed(reason) => Step::Done(
                Outcome::Reply(Reply::text(500, format!("malformed tail call: {reason}\n"))),
                state,
            ),
            Interpretation::TailCall(continuation) => {
                if let Some(update) = &state {
                    // Not committed with the continuation (the Rust SDK writes through
                    // the state API before a tail call): committed before it.
                    if let Err(e) = self.state().update(actor, update).await {
                        let reason = format!("cannot commit the method's state writes: {e}");
                        return Step::Done(Outcome::Failed(reason), None);
                    }
                }
                let (mut next, keep_lock) = self.continuation(request, actor, continuation);
                next.trace = self.tail_call_span(span, &next).context().or(next.trace);
                Step::Continue(Box::new(next), keep_lock)
            }
        }
    }

    /// The span of a tail call to step `next`, a child of the attempt span of the
    /// step that made it; the next step's attempts are its children.
    fn tail_call_span(&self, attempt: &Span, next: &Request) -> Span {
        let Some(parent) = attempt.context() else {
            return Span::default();
        };
        telemetry::start(
            || format!("tail call {}", telemetry::target_label(next)),
            telemetry::Kind::Producer,
            Relation::ChildOf(parent),
            || telemetry::request_attributes(&self.config.app, next),
        )
    }

    /// The next step of `request`: same id, caller and flow; a new target.
    fn continuation(
        &self,
        request: &Request,
        actor: &ActorRef,
        continuation: Continuation,
    ) -> (Request, bool) {
        let fresh_deadline = self.start_deadline();
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
        let what = format!("cannot record tail call of {}", next.id);
        self.retry(Policy::UNTIL_STORE_IS_BACK, &what, || {
            self.store.tail_call(&self.node, next, local)
        })
        .await
        .map(|_routing| ())
    }

    /// Removal of an actor (spec §2.2) on its host: deactivate it if active, then drop
    /// its state and placement.
    async fn remove_actor_here(&self, actor: &ActorRef) -> Outcome {
        if self.executor.actors.is_activated(actor) {
            self.deactivate(actor).await;
        }
        match self.store.remove_actor(actor).await {
            Ok(()) => Outcome::Reply(Reply::text(200, "OK")),
            Err(e) => Outcome::Failed(format!("cannot remove actor: {e}")),
        }
    }

    /// `DELETE /kar/impl/v1/actor/T/I` (spec §3.4). The instance counts as inactive
    /// afterwards whatever the component answered.
    pub(crate) async fn deactivate(&self, actor: &ActorRef) {
        let invocation = Invocation {
            method: "DELETE".to_string(),
            path: actor_path(&actor.actor_type, &actor.id),
            query: None,
            headers: Vec::new(),
            body: Bytes::new(),
        };
        self.executor.actors.set_activated(actor, false);
        let label = Label {
            owner: &actor.actor_type,
            what: "deactivate",
        };
        match self.invoke_app(&invocation, Some(label)).await {
            Ok(answer) if answer.reply.status >= 400 => tracing::warn!(
                "deactivation of {} {} answered {}",
                actor.actor_type,
                actor.id,
                answer.reply.status
            ),
            Ok(_) => {}
            Err(Outcome::Failed(reason)) => tracing::warn!("deactivation failed: {reason}"),
            Err(_) => {}
        }
    }

    /// Asks the component whether it knows `actor_type` (spec §3.1); the answer is
    /// only logged.
    pub(crate) async fn check_actor_type(self: Arc<Self>, actor_type: String) {
        let invocation = Invocation {
            method: "HEAD".to_string(),
            path: format!("/kar/impl/v1/actor/{}", encode_segment(&actor_type)),
            query: None,
            headers: Vec::new(),
            body: Bytes::new(),
        };
        match self.invoke_app(&invocation, None).await {
            Ok(answer) if answer.reply.status == 200 => {
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
    pub(crate) async fn collect_idle(self: Arc<Self>, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        let actors = &self.executor.actors;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = self.shutdown_started() => return,
            }
            for actor in actors.idle_instances(interval) {
                let flow = FlowId(format!(
                    "flow-deactivate-{}",
                    FlowId::generate().0.trim_start_matches("flow-")
                ));
                if actors.try_acquire_idle(&actor, &flow) {
                    self.deactivate(&actor).await;
                    actors.release(&actor, &flow);
                }
            }
        }
    }

    /// What reminder firings and event deliveries are made of (see [`ActorTells`]).
    pub(crate) fn actor_tells(&self) -> ActorTells {
        ActorTells {
            caller: self.node.clone(),
            clock: self.clock().clone(),
            timeout: self.config.missing_component_timeout,
        }
    }
}

/// Makes tells of a body to a path below an actor's path (appended verbatim, spec
/// §2.5, §2.6) as JSON method calls, each in a fresh flow with the usual start
/// deadline: how reminders fire and events are delivered. Owned, so that the store
/// can call it inside a transition.
pub(crate) struct ActorTells {
    caller: NodeId,
    clock: Clock,
    timeout: Option<Duration>,
}

impl ActorTells {
    /// A tell made by `origin` (`reminder`, `event`), which its flow id names
    /// (`flow-<origin>-<uuid>`) so that listings tell firings and deliveries apart.
    pub(crate) fn tell(&self, origin: &str, actor: &ActorRef, path: &str, body: Bytes) -> Request {
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
            self.caller.clone(),
            FlowId(format!(
                "flow-{origin}-{}",
                FlowId::generate().0.trim_start_matches("flow-")
            )),
            None,
            self.clock.deadline_after(self.timeout),
        )
    }
}
