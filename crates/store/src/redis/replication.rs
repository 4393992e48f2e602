//! The replication wait (`-redis_wait_replicas N`, `-redis_wait_timeout T`): after
//! every script (every transition) and every lease renewal, `WAIT N T`, and the
//! transition counts as done only if N replicas acknowledged it.
//!
//! What each setting guarantees. Redis replicates asynchronously: without the wait
//! (N = 0, the default), a transition acknowledged by the primary can be lost when a
//! replica is promoted (Sentinel failover) before it received it: an accepted request
//! may vanish, a completed one run again, and a renewal the member counted on may be
//! missing on the new primary, which then sees that member as dead while it still
//! runs its component. With N ≥ 1, kar acknowledges a transition (to a component, to
//! another sidecar) and counts a renewal only once N replicas have it, so a failover
//! to any of those replicas loses nothing kar acknowledged. If the replicas do not
//! confirm within T the transition fails with "store unavailable" (it was applied on
//! the primary and may or may not survive a failover), as when the primary cannot be
//! reached; a renewal that is not confirmed is retried, and fences the member at its
//! deadline. `WAIT` does not make Redis strongly consistent (a promoted replica that
//! did not acknowledge can still lose writes): give Sentinel's failover the same
//! replicas, e.g. by having exactly N replicas.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};
use std::time::Duration;

/// `WAIT replicas timeout` after each write.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Wait {
    pub(crate) replicas: u32,
    pub(crate) timeout: Duration,
}

impl Wait {
    /// The wait of `replicas` (none for 0).
    pub(crate) fn of(replicas: u32, timeout: Duration) -> Option<Wait> {
        (replicas > 0).then_some(Wait { replicas, timeout })
    }

    /// Waits until `replicas` replicas have every write made so far on `conn`.
    pub(crate) async fn apply(self, conn: &mut impl ConnectionLike) -> Result<(), RedisError> {
        let timeout = u64::try_from(self.timeout.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let acked: i64 = redis::cmd("WAIT")
            .arg(self.replicas)
            .arg(timeout)
            .query_async(conn)
            .await?;
        if acked < i64::from(self.replicas) {
            return Err(RedisError::from((
                ErrorKind::Io,
                "replication wait",
                format!(
                    "{acked} of {} replicas acknowledged within {:?}",
                    self.replicas, self.timeout
                ),
            )));
        }
        Ok(())
    }
}

/// The shared connection of a store handle: the connection manager, and the
/// replication wait after every script (reads included: a read-only script costs
/// one extra round trip, and cannot tell the client it wrote nothing).
#[derive(Clone)]
pub(crate) struct StoreConn {
    inner: ConnectionManager,
    wait: Option<Wait>,
}

impl StoreConn {
    pub(crate) fn new(inner: ConnectionManager, wait: Option<Wait>) -> Self {
        StoreConn { inner, wait }
    }
}

/// Whether `cmd` runs a script.
fn is_script(cmd: &Cmd) -> bool {
    matches!(
        cmd.args_iter().next(),
        Some(redis::Arg::Simple(name)) if name.eq_ignore_ascii_case(b"EVALSHA") || name.eq_ignore_ascii_case(b"EVAL")
    )
}

impl ConnectionLike for StoreConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let value = self.inner.req_packed_command(cmd).await?;
            if let (Some(wait), true) = (self.wait, is_script(cmd)) {
                wait.apply(&mut self.inner).await?;
            }
            Ok(value)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let values = self
                .inner
                .req_packed_commands(pipeline, offset, count)
                .await?;
            if let Some(wait) = self.wait {
                wait.apply(&mut self.inner).await?;
            }
            Ok(values)
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
