//! Idempotency keys (issue 9): a request made with a key maps, per application and
//! target, to one request for `-idempotency_retention` (see
//! [`kar_store_api::IdempotencyStore`]; the key is written in the enqueue transition).
//!
//! A duplicate does not run again: a tell is answered at once; a call waits for the
//! outcome of the request the key maps to, and a promise gets a local id that is
//! resolved by it. That request was made by another caller, perhaps on another
//! sidecar, perhaps dead: its `Completed` goes to that caller's inbox, not here. The
//! duplicate therefore waits on the outcome kept with the key in the store: it reads
//! the key, then again after a delay that doubles from [`FIRST_POLL`] up to
//! [`MAX_POLL`] (so it costs one small read per [`MAX_POLL`] while it waits), and it
//! is also woken at once when the request was made through this member and its
//! outcome arrives here. Nothing of the wait lives anywhere but in the store, so it is
//! correct across the death of any sidecar: the original caller's (the request is
//! recovered and its completion records the outcome with the key), the executor's
//! (re-delivered), or the duplicate's own (its component's connection dies with it; a
//! retry through a restarted sidecar attaches again).

use crate::caller::call_result;
use crate::{Accepted, Runtime, RuntimeError};
use kar_protocol::{FlowId, Invocation, Outcome, RequestId, RequestKind, Target};
use kar_store_api::Keyed;
use std::sync::Arc;
use std::time::Duration;

/// Longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 256;

/// First delay between two reads of a key a duplicate waits on.
const FIRST_POLL: Duration = Duration::from_millis(5);
/// Longest delay between two reads of a key a duplicate waits on.
const MAX_POLL: Duration = Duration::from_millis(100);

/// How often a member deletes expired keys (or sooner with a shorter retention).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

impl Runtime {
    /// Like [`Runtime::request`], under idempotency key `key` (at most
    /// [`MAX_IDEMPOTENCY_KEY_BYTES`], checked by the caller): if the key maps to a
    /// request for this target, nothing is enqueued and the answer is that request's
    /// (a tell: accepted; a call: its reply, once it completes; a promise: a new id
    /// of this member whose await gives that reply).
    pub async fn request_keyed(
        self: &Arc<Self>,
        target: Target,
        invocation: Invocation,
        kind: RequestKind,
        flow: Option<FlowId>,
        parent: Option<RequestId>,
        key: &str,
    ) -> Result<Accepted, RuntimeError> {
        if self.has_left() {
            return Err(RuntimeError::ShuttingDown);
        }
        let (request, reply_rx, mut span) =
            self.new_request(target, invocation, kind, flow, parent);
        let retention = self.config.idempotency_retention;
        let existing = match self.store.enqueue_keyed(&request, key, retention).await {
            Ok(Keyed::New(routing)) => {
                return self.accepted(request, routing, reply_rx, span).await
            }
            Ok(Keyed::Existing(existing)) => existing,
            Err(e) => {
                self.caller.remove(&request.id);
                span.fail(e.to_string());
                return Err(e.into());
            }
        };
        span.set("kar.idempotent.existing", existing.id.0.clone());
        self.caller.remove(&request.id);
        tracing::info!(request = %existing.id, "idempotency key {key:?} maps to request {}: not run again", existing.id);
        match kind {
            RequestKind::Tell => Ok(Accepted::Queued(existing.id)),
            RequestKind::Call => {
                let outcome = match existing.outcome {
                    Some(outcome) => outcome,
                    None => self.wait_keyed(&request.target, key, &existing.id).await?,
                };
                call_result(outcome)
            }
            RequestKind::Promise => {
                let local = RequestId::generate();
                let pending = existing.outcome.is_none();
                self.caller.insert_promise(&local, existing.outcome);
                if pending {
                    let runtime = self.clone();
                    let key = key.to_string();
                    let promise = local.clone();
                    tokio::spawn(async move {
                        if let Ok(outcome) = runtime
                            .wait_keyed(&request.target, &key, &existing.id)
                            .await
                        {
                            runtime.caller.deliver(&promise, outcome);
                        }
                    });
                }
                Ok(Accepted::Queued(local))
            }
        }
    }

    /// Waits for the outcome of request `id`, which `key` maps to for `target` (see
    /// the module doc).
    async fn wait_keyed(
        &self,
        target: &Target,
        key: &str,
        id: &RequestId,
    ) -> Result<Outcome, RuntimeError> {
        let mut local = self.caller.attach(id);
        let mut delay = FIRST_POLL;
        loop {
            match self.store.keyed(target, key).await {
                Ok(Some(keyed)) if keyed.id == *id => {
                    if let Some(outcome) = keyed.outcome {
                        return Ok(outcome);
                    }
                }
                // Gone without an outcome: expired while parked, drained, purged,
                // or pending longer than the retention window.
                Ok(_) => {
                    return Ok(Outcome::Failed(format!(
                        "request {id} (idempotency key {key:?}) ended without a recorded outcome"
                    )))
                }
                Err(e) => {
                    tracing::debug!(request = %id, "cannot read idempotency key {key:?}: {e}")
                }
            }
            tokio::select! {
                outcome = &mut local.outcome => {
                    if let Ok(outcome) = outcome {
                        return Ok(outcome);
                    }
                    // The sender went away: keep reading the store.
                    local.renew();
                }
                _ = tokio::time::sleep(delay) => {}
                _ = self.left() => return Err(RuntimeError::ShuttingDown),
            }
            delay = (delay * 2).min(MAX_POLL);
        }
    }

    /// Deletes expired idempotency keys (the embedded store's sweep; a no-op on
    /// Redis, whose keys expire by themselves) every [`SWEEP_EVERY`], or every
    /// retention window if shorter, until shutdown.
    pub(crate) async fn key_sweep_loop(self: Arc<Self>) {
        let every = SWEEP_EVERY
            .min(self.config.idempotency_retention)
            .max(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = self.shutdown_started() => return,
            }
            match self.store.sweep_keys().await {
                Ok(0) => {}
                Ok(n) => tracing::debug!("deleted {n} expired idempotency keys"),
                Err(e) => tracing::debug!("cannot delete expired idempotency keys: {e}"),
            }
        }
    }
}
