//! Retrying store transitions, with one back-off and an explicit policy per call site.
//!
//! Only transient failures ([`StoreError::is_retryable`]: the store is unreachable or
//! busy) are worth retrying. [`StoreError::Fenced`] means this node is no longer a
//! member: the runtime fences itself and commits nothing more. Any other error
//! (corrupt record, bad configuration, a stale attempt) will not heal by waiting: it
//! is returned at once, unless the policy says the call site must keep trying.

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
}

impl Policy {
    /// Transient failures are retried until the store is back: for transitions that
    /// must not be lost (an executed request's outcome, a tail call's next step).
    pub(crate) const UNTIL_STORE_IS_BACK: Policy = Policy {
        initial: Duration::from_millis(50),
        max: Duration::from_secs(2),
        every_error: false,
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
    pub(crate) async fn retry<T, F, Fut>(
        &self,
        policy: Policy,
        what: &str,
        mut transition: F,
    ) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut backoff = Backoff::new(policy);
        loop {
            match transition().await {
                Ok(value) => return Ok(value),
                Err(e) => self.back_off(&mut backoff, what, e).await?,
            }
        }
    }

    /// After a failed attempt: waits for the next one if the policy retries `e`;
    /// otherwise returns `e`, having fenced this runtime if it is `Fenced`.
    pub(crate) async fn back_off(
        &self,
        backoff: &mut Backoff,
        what: &str,
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

#[cfg(test)]
mod tests {
    use super::*;

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
