//! The machine-wide monotonic clock, to compare the test's own events (a kill) with
//! the time stamps the apps record.

use rustix::time::{clock_gettime, ClockId};

/// CLOCK_MONOTONIC in nanoseconds: the clock of Node's `process.hrtime.bigint()`,
/// shared by every process of the machine.
pub fn monotonic_ns() -> u64 {
    let now = clock_gettime(ClockId::Monotonic);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Polls `done` every `every` until it holds (`true`) or `timeout` has passed
/// (`false`, after one last try). For conditions no output line announces: a pid gone,
/// a record in a file, a member count; callers assert with what they waited for.
pub fn poll_until(
    timeout: std::time::Duration,
    every: std::time::Duration,
    mut done: impl FnMut() -> bool,
) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(every);
    }
}
