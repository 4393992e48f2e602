//! The machine-wide monotonic clock, to compare the test's own events (a kill) with
//! the time stamps the apps record.

use rustix::time::{clock_gettime, ClockId};

/// CLOCK_MONOTONIC in nanoseconds: the clock of Node's `process.hrtime.bigint()`,
/// shared by every process of the machine.
pub fn monotonic_ns() -> u64 {
    let now = clock_gettime(ClockId::Monotonic);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
