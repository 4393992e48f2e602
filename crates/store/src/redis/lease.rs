//! Membership leases of the members joined through a handle: the renewal task of
//! each (which also finds the members whose leases expired, and starts their
//! recovery), and the local fencing that holds even when Redis cannot be reached.

use super::scripts::RENEW;
use super::{recovery, Keys};
use redis::aio::ConnectionManager;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// A member joined through this handle.
pub(super) struct LocalMember {
    pub(super) renew: AbortHandle,
    pub(super) fenced: watch::Receiver<bool>,
    /// When its lease ends at the latest (the last successful renewal *sent*, plus
    /// the lease), kept by the renewal task.
    pub(super) lease_end: Arc<Mutex<Instant>>,
}

impl LocalMember {
    /// Whether the member must commit nothing more: the renewal task said so, or the
    /// lease ran out while nothing renewed it (say the process was stopped: this
    /// holds the moment it resumes, before the renewal task runs again).
    pub(super) fn is_fenced(&self) -> bool {
        let lease_end = *self.lease_end.lock().unwrap_or_else(|e| e.into_inner());
        *self.fenced.borrow() || Instant::now() >= lease_end
    }
}

pub(super) type LocalMembers = Arc<Mutex<HashMap<String, LocalMember>>>;

pub(super) fn lock(
    members: &LocalMembers,
) -> std::sync::MutexGuard<'_, HashMap<String, LocalMember>> {
    // The map stays consistent even if a holder panicked.
    members.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn lease_millis(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis()).unwrap_or(u64::MAX)
}

/// How long after another member's lease ends a renewal looks for it (the local and
/// the server's clocks tick at the same rate, but the reply took some time to arrive).
const EXPIRY_MARGIN: Duration = Duration::from_millis(10);

/// The lease renewal of one member joined through this handle. Renewals also report
/// the members whose leases expired: this member then recovers them (each recovery
/// in a task of its own, on the shared connection, so renewals never wait for one).
pub(super) struct Renewal {
    pub(super) conn: ConnectionManager,
    pub(super) recovery_conn: ConnectionManager,
    pub(super) recoveries: recovery::Recoveries,
    pub(super) keys: Arc<Keys>,
    pub(super) node: String,
    pub(super) lease: Duration,
    pub(super) lease_end: Arc<Mutex<Instant>>,
}

impl Renewal {
    /// Renews the lease every lease/3 until the task is aborted (leave, inbox
    /// dropped) or the member is fenced.
    pub(super) async fn run(mut self, joined: Instant, fenced: watch::Sender<bool>) {
        let node = self.node.clone();
        let lease = self.lease;
        let period = lease / 3;
        let retry = (period / 4).max(Duration::from_millis(10));
        // When the last successful renewal (or the join) was sent: the server's lease
        // expires at least `lease` after that instant.
        let mut last_ok = joined;
        let mut next = joined + period;
        loop {
            let deadline = last_ok + lease;
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
            let sent = Instant::now();
            let mut invocation = RENEW.invocation(&self.keys);
            invocation.arg(&node).arg(lease_millis(lease));
            let result = tokio::select! {
                result = invocation.invoke_async::<Vec<String>>(&mut self.conn) => result,
                _ = tokio::time::sleep_until(deadline) => break,
            };
            match result {
                Ok(reply) if reply.first().is_some_and(|ok| ok == "1") => {
                    last_ok = sent;
                    next = sent + period;
                    // Look again as soon as another member's lease runs out, so that
                    // its death is seen within a few milliseconds of its lease rather
                    // than up to a renewal period later.
                    if let Some(expiry) = reply
                        .get(1)
                        .and_then(|ms| ms.parse::<u64>().ok())
                        .map(|ms| sent + Duration::from_millis(ms) + EXPIRY_MARGIN)
                    {
                        next = next.min(expiry);
                    }
                    *self.lease_end.lock().unwrap_or_else(|e| e.into_inner()) = sent + lease;
                    let expired = reply.into_iter().skip(2).collect::<Vec<_>>();
                    if !expired.is_empty() {
                        self.recoveries.start(
                            &self.recovery_conn,
                            &self.keys,
                            &node,
                            expired,
                            lease,
                        );
                    }
                }
                Ok(_) => {
                    tracing::error!(
                        node,
                        "the lease of this member expired: it was removed from the mesh"
                    );
                    let _ = fenced.send(true);
                    return;
                }
                Err(e) => {
                    tracing::warn!(node, "cannot renew the membership lease (retrying): {e}");
                    next = Instant::now() + retry;
                }
            }
        }
        tracing::error!(
            node,
            "could not renew the membership lease in time: fencing this member"
        );
        let _ = fenced.send(true);
    }
}
