//! Recording the outcome of a request executed here: one store transition each for
//! calls and promises (their callers wait), and a group commit for tells.

use crate::retry::Policy;
use crate::Runtime;
use kar_protocol::{ActorRef, Outcome, RequestId, StateUpdate};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// The outcome of a tell executed here, to be recorded with the others ready at the
/// same moment; the answer says whether that batch recorded it (`false`: the
/// execution records it on its own, retrying as usual).
pub(crate) type TellCompletion = (RequestId, Outcome, oneshot::Sender<bool>);

/// Most tell outcomes recorded by one store transition.
const TELL_COMPLETION_BATCH: usize = 256;

impl Runtime {
    /// Records an outcome. Retried while the store is unreachable: an executed
    /// request is never dropped because the store was briefly away.
    pub(crate) async fn complete(&self, id: &RequestId, outcome: &Outcome) {
        self.record(id, outcome, None).await
    }

    /// Records the outcome of an actor request together with the state writes its
    /// method handed over with its reply, in one store transition (the writes are
    /// committed if and only if the outcome is). Retried like [`Runtime::complete`].
    pub(crate) async fn complete_with_state(
        &self,
        id: &RequestId,
        outcome: &Outcome,
        actor: &ActorRef,
        update: &StateUpdate,
    ) {
        self.record(id, outcome, Some((actor, update))).await
    }

    async fn record(
        &self,
        id: &RequestId,
        outcome: &Outcome,
        state: Option<(&ActorRef, &StateUpdate)>,
    ) {
        self.executor.metrics.completed(outcome);
        let what = RecordOutcome(id);
        let store = self.store.as_ref();
        let completed = self
            .retry(Policy::UNTIL_STORE_IS_BACK, &what, || async move {
                match state {
                    None => store.complete(&self.node, id, outcome).await,
                    Some((actor, update)) => {
                        store
                            .complete_with_state(&self.node, id, outcome, actor, update)
                            .await
                    }
                }
            })
            .await;
        if let Err(e) = completed {
            // Fenced (this runtime stops), or an error waiting cannot heal.
            tracing::error!(request = %id, "{what}, giving up: {e}");
        }
    }

    /// Records the outcome of a tell together with the other tells' outcomes ready at
    /// the same moment (one store transition for all: a burst of reminder firings
    /// otherwise costs one per firing). Returns once it is recorded, like
    /// [`Runtime::complete`], to which it falls back if the batch failed.
    pub(crate) async fn complete_tell(&self, id: &RequestId, outcome: Outcome) {
        let (recorded, answer) = oneshot::channel();
        // A copy stays here in case the batch fails.
        let sent = self
            .executor
            .tell_completions
            .send((id.clone(), outcome.clone(), recorded));
        if sent.is_ok() && answer.await == Ok(true) {
            return;
        }
        // The batch failed (or its loop is gone): recorded on its own, with the
        // retries of a single completion.
        self.complete(id, &outcome).await;
    }

    /// Group commit of tell outcomes (see [`Runtime::complete_tell`]): takes what is
    /// ready, records it in one transition, and meanwhile the next batch gathers.
    pub(crate) async fn tell_completion_loop(
        self: Arc<Self>,
        mut ready: mpsc::UnboundedReceiver<TellCompletion>,
    ) {
        let mut batch = Vec::with_capacity(TELL_COMPLETION_BATCH);
        while ready.recv_many(&mut batch, TELL_COMPLETION_BATCH).await > 0 {
            let (completions, waiters): (Vec<_>, Vec<_>) = batch
                .drain(..)
                .map(|(id, outcome, waiter)| ((id, outcome), waiter))
                .unzip();
            let recorded = match self.store.complete_all(&self.node, &completions).await {
                Ok(_) => {
                    for (_, outcome) in &completions {
                        self.executor.metrics.completed(outcome);
                    }
                    true
                }
                Err(e) => {
                    tracing::debug!(
                        "cannot record {} tell outcomes together, each on its own: {e}",
                        completions.len()
                    );
                    false
                }
            };
            for waiter in waiters {
                let _ = waiter.send(recorded);
            }
        }
    }
}

/// What `complete` retries, for its log lines.
struct RecordOutcome<'a>(&'a RequestId);

impl std::fmt::Display for RecordOutcome<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot record outcome of {}", self.0)
    }
}
