//! Membership leases of the members joined through a handle: the renewal task of
//! each (which also finds the members whose leases expired, and starts their
//! recovery), and the local fencing that holds even when Redis cannot be reached.
//!
//! # The fencing margin
//!
//! A member's lease is `lease` long on the Redis clock, from the moment Redis ran its
//! last renewal; a member that cannot renew must have stopped its component (and
//! abandoned its attempts) before anyone else runs those attempts again. With the
//! margin `m` ([`fence_margin`]):
//!
//! * the member fences itself at `S + lease − m` on its own monotonic clock, `S` being
//!   when its last successful renewal was *sent* (Redis ran it later, so its lease
//!   ends at `E ≥ S + lease` on the Redis clock);
//! * the others recover it only once `E + m` has passed on the Redis clock
//!   (`recover.lua`, `renew.lua`: the margin is stored with the member at join).
//!
//! So between the fence and the earliest recovery lie at least `2m`, provided the
//! member's monotonic clock and the Redis clock advance at the same rate within
//! `m / lease` over one lease (NTP-disciplined clocks drift by parts per million; a
//! step of the Redis host's wall clock, which `TIME` follows, by more than `m` breaks
//! it), and the member's stop (timer, signal, `kill`) takes less than `m`. The clocks'
//! absolute values never matter: no time is ever compared across hosts. A member that
//! was stopped altogether (SIGSTOP) cannot stop its component meanwhile; its
//! transitions stay fenced on Redis, and it fences itself the moment it resumes.
//!
//! # Renewals that get through short partitions
//!
//! A renewal that gets no answer is not waited for: every [`RETRY`] (at most a
//! twelfth of the lease) another attempt starts on a fresh connection (the
//! [`MAX_ATTEMPTS`] latest are kept), and the first answer wins. A connection whose packets were
//! dropped would otherwise only carry the next renewal after TCP's retransmission
//! back-off (seconds), and a partition shorter than the lease would fence the member
//! needlessly.
//!
//! # Renewals that request work cannot starve
//!
//! Each member's renewal runs on an OS thread of its own, with a single-threaded
//! tokio runtime ([`spawn`]), and opens its connections there (a connection's driver
//! runs on the runtime that opened it): a sidecar whose runtime is swamped by request
//! work (thousands of runnable tasks after a burst of due reminders) still renews in
//! time, instead of fencing itself while alive and well. The recoveries it starts run
//! on the store's runtime.

use super::connect::Connector;
use super::replication::{StoreConn, Wait};
use super::scripts::RENEW;
use super::{adoption, recovery, Keys};
use crate::StoreError;
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tokio::time::Instant;

/// A member joined through this handle.
pub(super) struct LocalMember {
    pub(super) renew: AbortHandle,
    pub(super) fenced: watch::Receiver<bool>,
    /// When the member fences itself at the latest (the last successful renewal
    /// *sent*, plus the lease, minus the margin), kept by the renewal task.
    pub(super) lease_end: Arc<Mutex<Instant>>,
    /// The last inbox entry the member read (see [`super::inbox::ReadMark`]).
    pub(super) read_mark: super::inbox::ReadMark,
}

impl LocalMember {
    /// Whether the member must commit nothing more: the renewal task said so, or the
    /// lease (less the margin) ran out while nothing renewed it (say the process was
    /// stopped: this holds the moment it resumes, before the renewal task runs again).
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

/// The fencing margin when none is configured, unless the lease is short.
pub(crate) const DEFAULT_MARGIN: Duration = Duration::from_millis(500);

/// The fencing margin for `lease`: `configured`, or [`DEFAULT_MARGIN`] but at most a
/// quarter of the lease. A margin of half the lease or more leaves no time to renew.
pub(super) fn fence_margin(
    lease: Duration,
    configured: Option<Duration>,
) -> Result<Duration, StoreError> {
    match configured {
        None => Ok(DEFAULT_MARGIN.min(lease / 4)),
        Some(margin) if margin < lease / 2 => Ok(margin),
        Some(margin) => Err(StoreError::Config(format!(
            "the fencing margin ({margin:?}) must be less than half the lease ({lease:?})"
        ))),
    }
}

/// How long after another member becomes recoverable a renewal looks for it (the
/// local and the server's clocks tick at the same rate, but the reply took some time
/// to arrive).
const EXPIRY_MARGIN: Duration = Duration::from_millis(10);
/// Most renewal attempts in flight at once (the latest ones).
pub(crate) const MAX_ATTEMPTS: usize = 4;
/// Longest wait for an answer before another renewal attempt starts.
pub(crate) const RETRY: Duration = Duration::from_millis(250);

/// A connection for renewals: short timeouts, since a renewal that takes long is
/// replaced by another attempt anyway.
pub(super) async fn connect(
    client: &Connector,
    lease: Duration,
) -> Result<MultiplexedConnection, redis::RedisError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(lease))
        .set_response_timeout(Some(lease));
    client.connect(&config).await
}

/// How one renewal attempt ended: when it was sent, the reply, and the connection if
/// it is still good.
type Attempt = (
    Instant,
    Result<Vec<String>, redis::RedisError>,
    Option<MultiplexedConnection>,
);

/// The lease renewal of one member joined through this handle. Renewals also report
/// the members whose leases expired: this member then recovers them (each recovery
/// in a task of its own, on the shared connection, so renewals never wait for one);
/// and the member's names for which requests are parked: it then adopts them, in a
/// task of its own too, unless it does already (`adoption.rs`).
pub(super) struct Renewal {
    pub(super) client: Connector,
    /// The connection of the last renewal that got through (`None` after an error).
    pub(super) conn: Option<MultiplexedConnection>,
    pub(super) recovery_conn: StoreConn,
    /// The replication wait each renewal must pass to count (`replication.rs`).
    pub(super) wait: Option<Wait>,
    pub(super) recoveries: recovery::Recoveries,
    /// The adoptions of this handle's members: a renewal that finds requests parked
    /// for the member's names starts one unless it runs (`adoption.rs`).
    pub(super) adoptions: adoption::Adoptions,
    pub(super) keys: Arc<Keys>,
    pub(super) node: String,
    pub(super) lease: Duration,
    pub(super) margin: Duration,
    pub(super) lease_end: Arc<Mutex<Instant>>,
    /// The store's runtime: the recoveries and adoptions run there.
    pub(super) main: Handle,
}

/// Why a renewal could not start.
pub(super) enum SpawnError {
    /// No renewal connection could be opened.
    Connect(redis::RedisError),
    /// No thread (or runtime) for it.
    Thread(std::io::Error),
}

/// Starts `renewal` on a thread of its own (see the module doc), once its first
/// connection is open. Aborting the returned task ends the renewal and the thread.
pub(super) async fn spawn(
    mut renewal: Renewal,
    joined: Instant,
    fenced: watch::Sender<bool>,
) -> Result<JoinHandle<()>, SpawnError> {
    let (runtime_tx, runtime_rx) = oneshot::channel();
    // Dropped when the renewal ends (or is aborted): the thread then ends.
    let (done_tx, done_rx) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name(format!("kar-lease-{}", renewal.node))
        .spawn(move || {
            // Built here: a runtime dropped in an async context panics.
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => {
                    if runtime_tx.send(Ok(runtime.handle().clone())).is_ok() {
                        runtime.block_on(async {
                            let _ = done_rx.await;
                        });
                    }
                }
                Err(e) => {
                    let _ = runtime_tx.send(Err(e));
                }
            }
        })
        .map_err(SpawnError::Thread)?;
    let runtime = runtime_rx
        .await
        .map_err(|_| SpawnError::Thread(std::io::Error::other("the lease thread ended")))?
        .map_err(SpawnError::Thread)?;
    let (connected_tx, connected_rx) = oneshot::channel();
    let task = runtime.spawn(async move {
        let _done = done_tx;
        match connect(&renewal.client, renewal.lease).await {
            Ok(conn) => {
                renewal.conn = Some(conn);
                if connected_tx.send(Ok(())).is_err() {
                    // The join was given up.
                    return;
                }
            }
            Err(e) => {
                let _ = connected_tx.send(Err(e));
                return;
            }
        }
        renewal.run(joined, fenced).await;
    });
    match connected_rx.await {
        Ok(Ok(())) => Ok(task),
        Ok(Err(e)) => Err(SpawnError::Connect(e)),
        Err(_) => Err(SpawnError::Thread(std::io::Error::other(
            "the lease thread ended",
        ))),
    }
}

impl Renewal {
    /// Renews the lease every lease/3 until the task is aborted (leave, inbox
    /// dropped) or the member is fenced.
    pub(super) async fn run(mut self, joined: Instant, fenced: watch::Sender<bool>) {
        let node = self.node.clone();
        let lease = self.lease;
        let period = lease / 3;
        let retry = (lease / 12).clamp(Duration::from_millis(10), RETRY);
        // When the last successful renewal (or the join) was sent: the server's lease
        // expires at least `lease` after that instant; we stop `margin` before.
        let mut last_ok = joined;
        let mut next = joined + period;
        loop {
            let deadline = last_ok + lease - self.margin;
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
            let Some((sent, reply)) = self.renew_once(deadline, retry).await else {
                break;
            };
            if reply.first().is_none_or(|ok| ok != "1") {
                tracing::error!(
                    node,
                    "the lease of this member expired: it was removed from the mesh"
                );
                let _ = fenced.send(true);
                return;
            }
            last_ok = sent;
            next = sent + period;
            // Look again as soon as another member becomes recoverable, so that its
            // death is handled within a few milliseconds of its lease and margin
            // rather than up to a renewal period later.
            if let Some(expiry) = reply
                .get(1)
                .and_then(|ms| ms.parse::<u64>().ok())
                .map(|ms| sent + Duration::from_millis(ms) + EXPIRY_MARGIN)
            {
                next = next.min(expiry);
            }
            *self.lease_end.lock().unwrap_or_else(|e| e.into_inner()) = sent + lease - self.margin;
            let recoverable = reply
                .get(2)
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(0);
            let mut rest = reply.into_iter().skip(3);
            let expired = rest.by_ref().take(recoverable).collect::<Vec<_>>();
            let parked = rest.collect::<Vec<_>>();
            if !parked.is_empty() {
                self.adoptions.start(
                    &self.main,
                    &self.recovery_conn,
                    &self.keys,
                    &node,
                    parked,
                    fenced.subscribe(),
                    None,
                );
            }
            if !expired.is_empty() {
                self.recoveries.start(
                    &self.main,
                    &self.recovery_conn,
                    &self.keys,
                    &node,
                    expired,
                    lease,
                );
            }
        }
        tracing::error!(
            node,
            "could not renew the membership lease in time: fencing this member"
        );
        let _ = fenced.send(true);
    }

    /// One renewal: the first answer of the attempts started `retry` apart (the
    /// first on the last good connection, the others on fresh ones; the
    /// [`MAX_ATTEMPTS`] latest are kept, older ones are abandoned), with the instant
    /// its attempt was sent; `None` if `deadline` came first.
    async fn renew_once(
        &mut self,
        deadline: Instant,
        retry: Duration,
    ) -> Option<(Instant, Vec<String>)> {
        let mut attempts: JoinSet<Attempt> = JoinSet::new();
        let mut latest: VecDeque<AbortHandle> = VecDeque::new();
        let mut started = 0usize;
        let mut next_attempt = Instant::now();
        let mut warned = false;
        loop {
            if next_attempt <= Instant::now() {
                if latest.len() == MAX_ATTEMPTS {
                    // Its connection most likely lost its packets: TCP would only
                    // retry it after a growing back-off.
                    if let Some(oldest) = latest.pop_front() {
                        oldest.abort();
                    }
                }
                let conn = self.conn.take();
                latest.push_back(attempts.spawn(self.attempt(conn)));
                started += 1;
                next_attempt = Instant::now() + retry;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return None,
                _ = tokio::time::sleep_until(next_attempt) => {}
                Some(joined) = attempts.join_next_with_id() => {
                    let Ok((id, (sent, result, conn))) = joined else { continue };
                    latest.retain(|handle| handle.id() != id);
                    match result {
                        Ok(reply) => {
                            if started > 1 {
                                tracing::info!(
                                    node = self.node,
                                    "lease renewed at attempt {started} (the first ones got no answer in time)"
                                );
                            }
                            self.conn = conn;
                            // The other attempts are dropped: a late one only extends
                            // the lease on Redis (never the local one), which is safe.
                            return Some((sent, reply));
                        }
                        Err(e) => {
                            if !warned {
                                tracing::warn!(
                                    node = self.node,
                                    "cannot renew the membership lease (retrying): {e}"
                                );
                                warned = true;
                            }
                            // The next attempt may start sooner (not at once: a
                            // refused connection fails in microseconds).
                            next_attempt = next_attempt.min(Instant::now() + retry / 5);
                        }
                    }
                }
            }
        }
    }

    /// One attempt, on `conn` or (`None`) on a fresh connection.
    fn attempt(
        &self,
        conn: Option<MultiplexedConnection>,
    ) -> impl std::future::Future<Output = Attempt> + Send + 'static {
        let (client, keys, node, lease, wait) = (
            self.client.clone(),
            self.keys.clone(),
            self.node.clone(),
            self.lease,
            self.wait,
        );
        async move {
            let sent = Instant::now();
            let mut conn = match conn {
                Some(conn) => conn,
                None => match connect(&client, lease).await {
                    Ok(conn) => conn,
                    Err(e) => return (sent, Err(e), None),
                },
            };
            let mut invocation = RENEW.invocation(&keys);
            invocation.arg(&node).arg(lease_millis(lease));
            let renewed = match invocation.invoke_async::<Vec<String>>(&mut conn).await {
                // A renewal counts once the replicas have it: a failover must not
                // bring back an older lease than the one this member counts on.
                Ok(reply) => match wait {
                    Some(wait) => wait.apply(&mut conn).await.map(|()| reply),
                    None => Ok(reply),
                },
                Err(e) => Err(e),
            };
            match renewed {
                Ok(reply) => (sent, Ok(reply), Some(conn)),
                Err(e) => (sent, Err(e), None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        assert_eq!(fence_margin(s(3), None).unwrap(), ms(500));
        assert_eq!(fence_margin(ms(600), None).unwrap(), ms(150));
        assert_eq!(fence_margin(s(3), Some(ms(1200))).unwrap(), ms(1200));
        assert_eq!(
            fence_margin(s(3), Some(Duration::ZERO)).unwrap(),
            Duration::ZERO
        );
        assert!(fence_margin(s(3), Some(ms(1500))).is_err());
    }
}
