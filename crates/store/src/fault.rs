//! Fault injection for the failure tests (the kar-tests crate): with
//! `KAR_FAULT_CRASH_IN_RECOVERY=1` in its environment, a process aborts in the middle
//! of the first recovery of a dead member that it performs, to show that recovery is
//! idempotent and that another member completes it:
//!
//! * embedded engine: inside the recovery transaction, after the dead member's
//!   requests were re-routed, before COMMIT (SQLite rolls the transaction back);
//! * Redis engine: after the first batch script of the recovery, before the others
//!   (the recovery lock expires and another member resumes where it stopped).
//!
//! Graceful departures (`leave`) are not recoveries of a dead member: they never crash.

use std::sync::LazyLock;

const ENV: &str = "KAR_FAULT_CRASH_IN_RECOVERY";

/// Read once: the environment of a process does not change under it.
static CRASH_IN_RECOVERY: LazyLock<bool> =
    LazyLock::new(|| std::env::var(ENV).is_ok_and(|v| v == "1"));

/// The injection point: aborts the process if the fault is armed.
pub(crate) fn crash_in_recovery(node: &str) {
    if *CRASH_IN_RECOVERY {
        tracing::warn!("fault injection: crashing in the middle of the recovery of {node}");
        std::process::abort();
    }
}
