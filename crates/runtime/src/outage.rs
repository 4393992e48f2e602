//! The log of a background loop's store failures (the reminder loop retries every
//! `-actor_reminder_interval`, 100 ms by default): the first failure is logged at
//! once, then one summary per [`SUMMARY_EVERY`] while the failures last, and the
//! recovery once, with how long the outage lasted. An outage of minutes gives a
//! handful of lines, not thousands.

use std::fmt::Display;
use std::time::Duration;
use tokio::time::Instant;

/// How often a lasting outage is logged again.
pub(crate) const SUMMARY_EVERY: Duration = Duration::from_secs(10);

/// The failures of one loop since its last success.
pub(crate) struct OutageLog {
    what: &'static str,
    outage: Option<Outage>,
}

struct Outage {
    since: Instant,
    failures: u64,
    logged: Instant,
}

impl OutageLog {
    /// `what` names the loop, e.g. "reminder loop".
    pub(crate) fn new(what: &'static str) -> Self {
        OutageLog { what, outage: None }
    }

    /// Counts a failure; logs it if it starts an outage or a summary is due.
    /// Returns whether it logged.
    pub(crate) fn failed(&mut self, error: &dyn Display) -> bool {
        let now = Instant::now();
        match &mut self.outage {
            None => {
                self.outage = Some(Outage {
                    since: now,
                    failures: 1,
                    logged: now,
                });
                tracing::error!("{}: {error} (retrying)", self.what);
                true
            }
            Some(outage) => {
                outage.failures += 1;
                if now.duration_since(outage.logged) < SUMMARY_EVERY {
                    return false;
                }
                outage.logged = now;
                tracing::error!(
                    failures = outage.failures,
                    "{}: {error} (failing for {:?}; retrying)",
                    self.what,
                    now.duration_since(outage.since)
                );
                true
            }
        }
    }

    /// Ends an outage, if one was going on: logs how long it lasted and returns it.
    pub(crate) fn succeeded(&mut self) -> Option<Duration> {
        let outage = self.outage.take()?;
        let lasted = outage.since.elapsed();
        tracing::info!(
            failures = outage.failures,
            "{}: recovered after {lasted:?}",
            self.what
        );
        Some(lasted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_outage_is_logged_when_it_starts_then_every_summary_period() {
        let mut log = OutageLog::new("reminder loop");
        assert_eq!(log.succeeded(), None, "no outage, nothing to report");
        assert!(log.failed(&"store unavailable"));
        let mut logged = 0;
        // 25 s of failures every 100 ms: the summaries at 10 s and 20 s.
        for _ in 0..250 {
            tokio::time::advance(Duration::from_millis(100)).await;
            if log.failed(&"store unavailable") {
                logged += 1;
            }
        }
        assert_eq!(logged, 2);
        assert_eq!(log.succeeded(), Some(Duration::from_secs(25)));
        assert_eq!(log.succeeded(), None, "the outage is over");
        assert!(log.failed(&"again"), "a new outage is logged at once");
    }
}
