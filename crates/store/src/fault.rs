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
//! And [`end_join_adoption_after`] cuts the adoption of parked requests that a given
//! member starts at join short, to show that the live members resume it.
//!
//! Compiled in only with the cargo feature `fault-injection` (which the `kar`
//! package forwards and the tests enable): without it the hooks are empty functions,
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

/// Members whose adoption started at join ends after so many batches (transactions,
/// scripts), as though their process had died in the middle of it: see
/// [`end_join_adoption_after`].
#[cfg(feature = "fault-injection")]
static JOIN_ADOPTION_LIMITS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<String, u32>>,
> = std::sync::LazyLock::new(Default::default);

/// Fault injection for the adoption tests: the adoption of the requests parked for
/// its names that member `node` starts when it joins (through any handle of this
/// process) ends after `batches` batches, leaving the rest parked; its later
/// adoptions (resumed by the sweeps of live members) are not limited. Unlike an
/// abort, it hits one member of the process, which the tests then kill as they please.
#[cfg(feature = "fault-injection")]
pub fn end_join_adoption_after(node: &str, batches: u32) {
    JOIN_ADOPTION_LIMITS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(node.to_string(), batches);
}

/// The batches after which the join adoption of `node` ends, if limited.
#[cfg(feature = "fault-injection")]
pub(crate) fn join_adoption_limit(node: &str) -> Option<u32> {
    JOIN_ADOPTION_LIMITS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(node)
        .copied()
}

/// Never limited (see [`end_join_adoption_after`]).
#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn join_adoption_limit(_node: &str) -> Option<u32> {
    None
}
