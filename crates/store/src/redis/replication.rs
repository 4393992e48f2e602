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

use super::connect::Connector;
use super::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};
use kar_store_api::timing;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, ServerErrorKind,
    Value,
};
use std::sync::Arc;
use std::time::{Duration, Instant};

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

/// The shared connection of a store handle: one multiplexed connection to the
/// primary, made again (through the connector: after a Sentinel failover, to the new
/// primary) after an error that may mean it is broken or no longer the primary's; and
/// the replication wait after every script (reads included: a read-only script
/// costs one extra round trip, and cannot tell the client it wrote nothing). A
/// request that fails is not sent again: the caller decides.
#[derive(Clone)]
pub(crate) struct StoreConn {
    connector: Connector,
    conn: Arc<tokio::sync::Mutex<Option<MultiplexedConnection>>>,
    wait: Option<Wait>,
}

impl StoreConn {
    /// Connects (failing if it cannot).
    pub(crate) async fn open(connector: Connector, wait: Option<Wait>) -> Result<Self, RedisError> {
        let conn = StoreConn {
            connector,
            conn: Arc::default(),
            wait,
        };
        conn.connection().await?;
        Ok(conn)
    }

    async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        let mut held = self.conn.lock().await;
        if let Some(conn) = held.as_ref() {
            return Ok(conn.clone());
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let conn = self.connector.connect(&config).await?;
        *held = Some(conn.clone());
        Ok(conn)
    }

    /// Drops the connection after `e` if `e` may mean it is broken, or that its
    /// server is no longer the primary.
    async fn check(&self, e: &RedisError) {
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || matches!(e.kind(), ErrorKind::Server(ServerErrorKind::ReadOnly))
        {
            *self.conn.lock().await = None;
        }
    }
}

/// Observes one request (a script by its name, another command by its own) in the
/// store metrics when dropped: when it ends, failed or cancelled included.
struct Timed<'a>(Instant, &'a Cmd);

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        let mut args = self.1.args_iter();
        let label = match (args.next(), args.next()) {
            (Some(redis::Arg::Simple(name)), Some(redis::Arg::Simple(sha)))
                if name.eq_ignore_ascii_case(b"EVALSHA") =>
            {
                super::scripts::script_name(sha).unwrap_or("evalsha")
            }
            (Some(redis::Arg::Simple(name)), _) if name.eq_ignore_ascii_case(b"EVAL") => "eval",
            (Some(redis::Arg::Simple(name)), _) if name.eq_ignore_ascii_case(b"SCRIPT") => "script",
            _ => "command",
        };
        timing::observe(timing::REDIS, label, self.0.elapsed());
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
            let _timed = Timed(Instant::now(), cmd);
            let mut conn = self.connection().await?;
            let result = async {
                let value = conn.req_packed_command(cmd).await?;
                if let (Some(wait), true) = (self.wait, is_script(cmd)) {
                    wait.apply(&mut conn).await?;
                }
                Ok(value)
            }
            .await;
            if let Err(e) = &result {
                self.check(e).await;
            }
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let started = Instant::now();
            let mut conn = self.connection().await?;
            let result = async {
                let values = conn.req_packed_commands(pipeline, offset, count).await?;
                if let Some(wait) = self.wait {
                    wait.apply(&mut conn).await?;
                }
                timing::observe(timing::REDIS, "pipeline", started.elapsed());
                Ok(values)
            }
            .await;
            if let Err(e) = &result {
                self.check(e).await;
            }
            result
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}
