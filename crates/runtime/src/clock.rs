//! Time, in one place. Two kinds of time meet in the runtime:
//!
//! * **wall time** (Unix milliseconds): what the store records and compares across
//!   members (request start deadlines, reminder targets);
//! * **timers** (sleeps, idle times, busy timeouts): always tokio time
//!   (`tokio::time::Instant`, `sleep`), never `std::time::Instant`, so that a test on
//!   paused tokio time drives every timer of the runtime.
//!
//! A [`Clock`] reads the wall time. The system clock is the default; a test clock is
//! a base plus the tokio time elapsed since it was made, so with
//! `#[tokio::test(start_paused = true)]` the wall time the runtime sees advances
//! exactly with the paused tokio clock.

use kar_protocol::time::format_go_time;
use std::fmt;
use std::time::Duration;
use tokio::time::Instant;

/// The wall clock of a runtime ([`crate::RuntimeConfig::clock`]).
#[derive(Clone)]
pub struct Clock(Source);

#[derive(Clone)]
enum Source {
    System,
    /// `base` Unix ms at tokio instant `start`.
    Tokio {
        base: u64,
        start: Instant,
    },
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock(Source::System)
    }

    /// A test clock: `base` (Unix ms) now, then advancing with tokio time (paused or
    /// not). Make it inside the tokio runtime whose time it should follow.
    pub fn tokio_time_from(base: u64) -> Clock {
        Clock(Source::Tokio {
            base,
            start: Instant::now(),
        })
    }

    /// The wall time, in Unix milliseconds.
    pub fn now_millis(&self) -> u64 {
        match &self.0 {
            Source::System => kar_protocol::now_millis(),
            Source::Tokio { base, start } => base + start.elapsed().as_millis() as u64,
        }
    }

    /// The start deadline (Unix ms) of a request made now: `timeout` from now
    /// (`-missing_component_timeout`); `None` = no deadline.
    pub(crate) fn deadline_after(&self, timeout: Option<Duration>) -> Option<u64> {
        timeout.map(|t| self.now_millis() + t.as_millis() as u64)
    }

    /// How long until wall time `at` (Unix ms); zero if it has come.
    pub(crate) fn until(&self, at: u64) -> Duration {
        Duration::from_millis(at.saturating_sub(self.now_millis()))
    }

    /// How long until wall time `at` (Unix ms) is past; zero if it is.
    pub(crate) fn until_past(&self, at: u64) -> Duration {
        // +1: a timer that fires at `at` exactly would find `now == at`, not past.
        self.until(at.saturating_add(1))
    }

    /// Why a request whose start `deadline` passed failed (Go's wording).
    pub(crate) fn deadline_reason(&self, deadline: u64) -> String {
        format!(
            "deadline expired: deadline was {} and it is now {}",
            format_go_time(deadline),
            format_go_time(self.now_millis())
        )
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::System => f.write_str("Clock::system"),
            Source::Tokio { base, .. } => write!(f, "Clock::tokio_time_from({base})"),
        }
    }
}

/// The longest a loop that is otherwise woken by notifications (reminders, events)
/// sleeps: a safety net for wake-ups that can be lost (a member busy or restarting
/// when another one published). Long enough not to be polling; short enough that a
/// lost wake-up costs about a second.
pub(crate) const SAFETY_RECHECK: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = Clock::tokio_time_from(1_000);
        assert_eq!(clock.now_millis(), 1_000);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(clock.now_millis(), 1_250);
        assert_eq!(
            clock.deadline_after(Some(Duration::from_secs(1))),
            Some(2_250)
        );
        assert_eq!(clock.until_past(1_300), Duration::from_millis(51));
        assert_eq!(clock.until_past(1_000), Duration::ZERO);
        assert_eq!(clock.until(1_300), Duration::from_millis(50));
    }
}
