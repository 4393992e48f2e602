//! When server apps stopped running code, on the clock the apps stamp their events with.
//!
//! An attempt that logged `enter` but no `exit` ends when its process stopped running:
//! when SIGKILL was sent to it (a process with a pending SIGKILL never runs user code
//! again), not when it is seen gone — tearing down a large process can take tens of
//! milliseconds on a loaded machine, during which it still looks alive in /proc but is
//! long dead for the mesh. The test knows bounds of that moment: the app could still
//! run at `alive` and could not any more at `dead`:
//!
//! * a kill by the test: just before and just after the signal (for a kill of the
//!   sidecar alone: after its exit was reaped, by which time its parent-death signal
//!   was sent to the app);
//! * a crash (the fault-injection point): given by the test;
//! * any other death, seen by a watcher polling /proc: `alive` unknown (0).

use kar_tests::{monotonic_ns, pid_is_gone};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// The app could run code at `alive` and not any more at `dead` (ns, CLOCK_MONOTONIC;
/// `alive` 0: unknown).
#[derive(Clone, Copy, Debug)]
pub struct Death {
    pub alive: u64,
    pub dead: u64,
}

impl Death {
    /// Both bounds hold: keep the tighter of each.
    fn narrow(self, other: Death) -> Death {
        Death {
            alive: self.alive.max(other.alive),
            dead: self.dead.min(other.dead),
        }
    }
}

/// The watched processes and, once dead, their death bounds.
#[derive(Clone, Default)]
pub struct Deaths(Arc<Mutex<HashMap<u32, Option<Death>>>>);

impl Deaths {
    /// Starts watching `pid` (polled every millisecond until it dies).
    pub fn watch(&self, pid: u32) {
        self.track(pid);
        let deaths = self.clone();
        thread::spawn(move || {
            while !pid_is_gone(pid) {
                thread::sleep(Duration::from_millis(1));
            }
            deaths.record(
                pid,
                Death {
                    alive: 0,
                    dead: monotonic_ns(),
                },
            );
        });
    }

    /// Knows `pid` as alive (its death is recorded by [`Deaths::record`]).
    pub(crate) fn track(&self, pid: u32) {
        self.0.lock().unwrap().insert(pid, None);
    }

    /// Sends SIGKILL through `kill` (to `pid` itself, or to its parent, whose death
    /// kills it), records the bounds of its death and waits until it is gone.
    pub fn kill(&self, pid: u32, kill: impl FnOnce(), timeout: Duration) -> Death {
        assert!(!pid_is_gone(pid), "pid {pid} died before its kill");
        let alive = monotonic_ns();
        kill();
        let death = self.record(
            pid,
            Death {
                alive,
                dead: monotonic_ns(),
            },
        );
        let started = Instant::now();
        while !pid_is_gone(pid) {
            assert!(
                started.elapsed() < timeout,
                "pid {pid} still alive {timeout:?} after its kill"
            );
            thread::sleep(Duration::from_millis(1));
        }
        death
    }

    pub(crate) fn record(&self, pid: u32, death: Death) -> Death {
        let mut map = self.0.lock().unwrap();
        let entry = map.entry(pid).or_insert(None);
        let narrowed = entry.map_or(death, |known| known.narrow(death));
        *entry = Some(narrowed);
        narrowed
    }

    /// `None` while alive; panics if `pid` was never watched.
    pub fn get(&self, pid: u32) -> Option<Death> {
        *self
            .0
            .lock()
            .unwrap()
            .get(&pid)
            .unwrap_or_else(|| panic!("pid {pid} was never watched"))
    }

    pub fn is_watched(&self, pid: u32) -> bool {
        self.0.lock().unwrap().contains_key(&pid)
    }
}
