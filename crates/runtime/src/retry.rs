//! Retrying store transitions, with one back-off and an explicit policy per call site.
//!
//! Only transient failures ([`StoreError::is_retryable`]: the store is unreachable or
//! busy) are worth retrying. [`StoreError::Fenced`] means this node is no longer a
//! member: the runtime fences itself and commits nothing more. Any other error
//! (corrupt record, bad configuration, a stale attempt) will not heal by waiting: it
//! is returned at once, unless the policy says the call site must keep trying.
//!
//! Also here: [`Redelivery`], the wait before a step re-delivered after its executor
//! died starts again (issue 9: deaths are not retried 4 ms apart).

use crate::Runtime;
use kar_store_api::StoreError;
use std::future::Future;
use std::time::Duration;

/// How one call site retries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// First delay; doubles up to `max`.
    pub initial: Duration,
    pub max: Duration,
    /// Retry non-transient errors too (never `Fenced`).
    pub every_error: bool,
    /// Give up (returning the last error) once a retry would start this long after
    /// the first try; `None`: never.
    pub give_up_after: Option<Duration>,
}

impl Policy {
    /// Transient failures are retried until the store is back: for transitions that
    /// must not be lost (an executed request's outcome, a tail call's next step).
    pub(crate) const UNTIL_STORE_IS_BACK: Policy = Policy {
        initial: Duration::from_millis(50),
        max: Duration::from_secs(2),
        every_error: false,
        give_up_after: None,
    };

    /// Transient failures are retried for a few seconds, then answered: for the state
    /// API, whose caller (a component's handler) waits for the answer. A restart of
    /// Redis from its AOF, or a Sentinel failover, then does not fail the handler; a
    /// longer outage still gets its 5xx. Safe because every state operation is
    /// idempotent: setting or removing entries twice leaves what once does (only the
    /// counts a retried write returns may differ: what the first try had done).
    pub(crate) const BRIEF_OUTAGE: Policy = Policy {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(500),
        every_error: false,
        give_up_after: Some(Duration::from_secs(5)),
    };

    /// Every error but `Fenced` is retried: reading the inbox. A member that gives up
    /// reading it stays a member (its lease lives on) yet executes nothing, which is
    /// worse than logging the same error at the longest back-off.
    pub(crate) const KEEP_READING: Policy = Policy {
        every_error: true,
        ..Policy::UNTIL_STORE_IS_BACK
    };

    fn retries(&self, e: &StoreError) -> bool {
        match e {
            StoreError::Fenced(_) => false,
            e => self.every_error || e.is_retryable(),
        }
    }
}

/// The back-off state of one call site.
pub(crate) struct Backoff {
    policy: Policy,
    delay: Duration,
}

impl Backoff {
    pub(crate) fn new(policy: Policy) -> Self {
        Backoff {
            policy,
            delay: policy.initial,
        }
    }

    /// The transition succeeded: the next failure starts from the first delay.
    pub(crate) fn reset(&mut self) {
        self.delay = self.policy.initial;
    }
}

impl Runtime {
    /// Runs `transition` under `policy`, logging each retry with `what`. A `Fenced`
    /// error fences this runtime before it is returned.
    /// `what` is only written out if an attempt fails (no text built per call).
    pub(crate) async fn retry<T, F, Fut, W>(
        &self,
        policy: Policy,
        what: &W,
        mut transition: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
        W: std::fmt::Display + ?Sized,
    {
        let mut backoff = Backoff::new(policy);
        let started = tokio::time::Instant::now();
        loop {
            match transition().await {
                Ok(value) => return Ok(value),
                Err(e) if policy.give_up_after.is_some_and(|d| started.elapsed() >= d) => {
                    return Err(e)
                }
                Err(e) => self.back_off(&mut backoff, what, e).await?,
            }
        }
    }

    /// After a failed attempt: waits for the next one if the policy retries `e`;
    /// otherwise returns `e`, having fenced this runtime if it is `Fenced`.
    pub(crate) async fn back_off<W: std::fmt::Display + ?Sized>(
        &self,
        backoff: &mut Backoff,
        what: &W,
        e: StoreError,
    ) -> Result<(), StoreError> {
        if backoff.policy.retries(&e) {
            let delay = backoff.delay;
            tracing::error!("{what} (retrying in {delay:?}): {e}");
            tokio::time::sleep(delay).await;
            backoff.delay = (delay * 2).min(backoff.policy.max);
            return Ok(());
        }
        if let StoreError::Fenced(node) = &e {
            tracing::error!("{what}: this sidecar ({node}) was removed from the mesh; stopping");
            self.fence();
        }
        Err(e)
    }
}

/// The back-off of a step re-delivered by recovery (`Request::attempt` ≥ 1: its
/// executor died `attempt` times): before invoking the component, its executor waits
/// a delay drawn uniformly in `[0, min(cap, base·2^(attempt−1))]` ("full jitter", so
/// that replicas recovering together do not retry in lockstep). Derived from the
/// stored attempt, so it survives crashes; a step at attempt 0 starts at once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Redelivery {
    pub base: Duration,
    pub cap: Duration,
}

impl Redelivery {
    pub(crate) const DEFAULT: Redelivery = Redelivery {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(10),
    };

    /// The longest wait before attempt `attempt`: `min(cap, base·2^(attempt−1))`,
    /// zero for attempt 0.
    pub(crate) fn ceiling(&self, attempt: u32) -> Duration {
        if attempt == 0 {
            return Duration::ZERO;
        }
        let doublings = (attempt - 1).min(30);
        self.base
            .checked_mul(1 << doublings)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The wait before attempt `attempt` for a jitter `fraction` in `[0, 1]`.
    pub(crate) fn delay_at(&self, attempt: u32, fraction: f64) -> Duration {
        self.ceiling(attempt).mul_f64(fraction.clamp(0.0, 1.0))
    }

    /// The wait before attempt `attempt`, with a random jitter.
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        self.delay_at(attempt, rand::random::<f64>())
    }
}

impl Runtime {
    /// Waits the [`Redelivery`] back-off of `request` (nothing for attempt 0) on tokio
    /// time, right before the request reaches the component. Returns `false` if
    /// shutdown began meanwhile: the step is then not started here (leaving the mesh
    /// re-delivers it, without charging an attempt). The component's death cancels the
    /// wait like the execution itself (the caller runs inside `Runtime::execute`, which
    /// also leaves it uncharged).
    pub(crate) async fn redelivery_backoff(&self, request: &kar_protocol::Request) -> bool {
        // First attempts (nearly every request) draw no random number.
        let delay = match request.attempt {
            0 => Duration::ZERO,
            attempt => Redelivery::DEFAULT.delay(attempt),
        };
        if delay.is_zero() {
            self.executor.started(&request.id);
            return true;
        }
        tracing::info!(
            request = %request.id,
            "backing off {delay:?} before attempt {} (its executor died {} times)",
            request.attempt + 1,
            request.attempt
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {
                self.executor.started(&request.id);
                true
            }
            _ = self.shutdown_started() => {
                self.executor.not_started(&request.id);
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redelivery_ceiling_doubles_up_to_the_cap() {
        let r = Redelivery::DEFAULT;
        assert_eq!(r.ceiling(0), Duration::ZERO);
        assert_eq!(r.ceiling(1), Duration::from_millis(100));
        assert_eq!(r.ceiling(2), Duration::from_millis(200));
        assert_eq!(r.ceiling(3), Duration::from_millis(400));
        assert_eq!(r.ceiling(7), Duration::from_millis(6400));
        assert_eq!(r.ceiling(8), Duration::from_secs(10));
        let ceilings: Vec<_> = (0..=100).chain([u32::MAX]).map(|a| r.ceiling(a)).collect();
        assert!(ceilings.windows(2).all(|w| w[0] <= w[1]), "monotone");
        assert!(ceilings.iter().all(|c| *c <= r.cap), "capped");
    }

    #[test]
    fn redelivery_jitter_stays_within_bounds() {
        let r = Redelivery::DEFAULT;
        for attempt in [0, 1, 2, 5, 40, u32::MAX] {
            assert_eq!(r.delay_at(attempt, 0.0), Duration::ZERO);
            assert_eq!(r.delay_at(attempt, 1.0), r.ceiling(attempt));
            assert_eq!(r.delay_at(attempt, 7.0), r.ceiling(attempt), "clamped");
            for _ in 0..200 {
                assert!(r.delay(attempt) <= r.ceiling(attempt));
            }
        }
        assert_eq!(r.delay_at(3, 0.5), Duration::from_millis(200));
    }

    /// On paused tokio time the wait takes exactly the drawn delay, and each
    /// attempt's worst case follows the ceiling.
    #[tokio::test(start_paused = true)]
    async fn redelivery_waits_on_tokio_time() {
        let r = Redelivery::DEFAULT;
        let mut previous = Duration::ZERO;
        for attempt in 1..=10 {
            let delay = r.delay_at(attempt, 1.0);
            let start = tokio::time::Instant::now();
            tokio::time::sleep(delay).await;
            assert_eq!(start.elapsed(), delay);
            assert!(delay >= previous && delay <= r.cap);
            previous = delay;
        }
        assert_eq!(previous, r.cap);
    }

    #[test]
    fn which_errors_are_retried() {
        let unavailable = StoreError::unavailable("down");
        let corrupt = StoreError::Corrupt {
            key: "k".into(),
            reason: "r".into(),
        };
        let fenced = StoreError::Fenced("n".into());
        let p = Policy::UNTIL_STORE_IS_BACK;
        assert!(p.retries(&unavailable));
        assert!(!p.retries(&corrupt));
        assert!(!p.retries(&fenced));
        let p = Policy::KEEP_READING;
        assert!(p.retries(&corrupt));
        assert!(!p.retries(&fenced));
    }
}
