//! Recovery of members whose lease expired (they died, or left), in bounded steps
//! under a lock with a TTL (`lua/recover.lua`): Redis runs one script at a time, so a
//! dead member's whole queue re-routed by one script would stop every other member
//! for as long as it takes. Each step handles [`BATCH`] items; the lock expires if the
//! recoverer dies, and another member resumes where it stopped.

use super::lease::lease_millis;
use super::replication::StoreConn;
use super::scripts::RECOVER;
use super::Keys;
use crate::{RecoveryPolicy, StoreError};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Items (requests re-delivered, outcomes dropped, placements dropped) per script.
pub(crate) const BATCH: usize = 256;

/// Why a member is recovered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Removal {
    Left,
    Died,
}

/// How a call of [`recover`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// This call removed the member (all of its requests were re-delivered).
    Finished,
    /// The member is not (or no longer) there: recovered already.
    Gone,
    /// Another recoverer holds the lock (it finishes, or its lock expires).
    Busy,
    /// The member's lease is valid: it is not dead.
    Live,
}

/// Recovers member `dead` as `owner` (the lock's value), on behalf of `fence` (the
/// recovering member, or '' for a leave), with a lock that expires after `ttl`,
/// pausing the steps that reach `policy.max_attempts`; the requests of `unstarted`
/// (never handed to the component by a member that leaves) are not charged an attempt.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn recover(
    conn: &mut StoreConn,
    keys: &Keys,
    dead: &str,
    owner: &str,
    fence: &str,
    ttl: Duration,
    removal: Removal,
    policy: RecoveryPolicy,
    unstarted: &[kar_protocol::RequestId],
) -> Result<Recovery, StoreError> {
    let mut steps = 0u64;
    loop {
        let mut invocation = RECOVER.fenced_on(keys, fence);
        invocation
            .arg(dead)
            .arg(owner)
            .arg(lease_millis(ttl))
            .arg(BATCH)
            .arg(policy.max_attempts);
        for id in unstarted {
            invocation.arg(&id.0);
        }
        let reply: Vec<String> = invocation.invoke_async(conn).await?;
        let mut reply = reply.into_iter();
        let step: i64 = reply
            .next()
            .and_then(|c| c.parse().ok())
            .unwrap_or(i64::MIN);
        for id in reply {
            crate::codes::log_paused(&keys.app, &id, policy);
        }
        match step {
            1 => {
                steps += 1;
                if steps == 1 && removal == Removal::Died {
                    crate::fault::crash_in_recovery(dead);
                }
            }
            0 => return Ok(Recovery::Finished),
            -1 => return Ok(Recovery::Gone),
            -2 => return Ok(Recovery::Busy),
            -3 => return Ok(Recovery::Live),
            other => {
                return Err(StoreError::Corrupt {
                    key: format!("recovery of {dead}"),
                    reason: format!("unexpected step result {other}"),
                })
            }
        }
    }
}

/// The recoveries running in this process (one task per dead member at most).
#[derive(Clone, Default)]
pub(crate) struct Recoveries(
    pub(crate) Arc<Mutex<HashSet<String>>>,
    pub(crate) RecoveryPolicy,
);

impl Recoveries {
    /// Starts recovering each of `dead` not being recovered by this process already,
    /// on behalf of live member `me`.
    pub(crate) fn start(
        &self,
        runtime: &tokio::runtime::Handle,
        conn: &StoreConn,
        keys: &Arc<Keys>,
        me: &str,
        dead: Vec<String>,
        ttl: Duration,
    ) {
        for node in dead {
            if node == me {
                continue;
            }
            let fresh = self
                .0
                .lock()
                .map(|mut running| running.insert(node.clone()))
                .unwrap_or(false);
            if !fresh {
                continue;
            }
            let (mut conn, keys, me, running) =
                (conn.clone(), keys.clone(), me.to_string(), self.clone());
            let policy = self.1;
            runtime.spawn(async move {
                let result = recover(
                    &mut conn,
                    &keys,
                    &node,
                    &me,
                    &me,
                    ttl,
                    Removal::Died,
                    policy,
                    &[],
                )
                .await;
                match result {
                    Ok(Recovery::Finished) => {
                        tracing::warn!("member {node} died; its requests were re-routed")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(
                        "cannot recover dead member {node} (retried at the next renewal): {e}"
                    ),
                }
                if let Ok(mut running) = running.0.lock() {
                    running.remove(&node);
                }
            });
        }
    }
}
