//! Fault injection for the failure tests (the conformance suite, the kar-tests
//! crate): with `KAR_FAULT_CRASH_IN_RECOVERY=1` in its environment, a process aborts
//! in the middle of the first recovery of a dead member that it performs, to show
//! that recovery is idempotent and that another member completes it:
//!
//! * embedded engine: inside the recovery transaction, after the dead member's
//!   requests were re-routed, before COMMIT (SQLite rolls the transaction back);
//! * Redis engine: after the first batch script of the recovery, before the others
//!   (the recovery lock expires and another member resumes where it stopped).
//!
//! Graceful departures (`leave`) are not recoveries of a dead member: they never crash.
//!
//! Compiled in only with the cargo feature `fault-injection` (which the `kar`
//! package forwards and the tests enable): without it the hook is an empty function,
//! so a production binary cannot abort through a stray environment variable.

/// The injection point: aborts the process if the fault is armed.
#[cfg(feature = "fault-injection")]
pub(crate) fn crash_in_recovery(node: &str) {
    use std::sync::LazyLock;
    /// Read once: the environment of a process does not change under it.
    static ARMED: LazyLock<bool> =
        LazyLock::new(|| std::env::var("KAR_FAULT_CRASH_IN_RECOVERY").is_ok_and(|v| v == "1"));
    if *ARMED {
        tracing::warn!("fault injection: crashing in the middle of the recovery of {node}");
        std::process::abort();
    }
}

/// The injection point, compiled out (see the module doc).
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn crash_in_recovery(_node: &str) {}
