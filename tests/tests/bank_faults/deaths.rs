//! When server processes died, on the clock the apps stamp their events with.
//!
//! An attempt that logged `enter` but no `exit` ends when its process died. The test
//! only knows bounds of that moment: the process was seen alive at `alive` and dead at
//! `dead`. Right after a kill the death is awaited by spinning, so the bounds are tight;
//! a background watcher per process catches deaths the test did not cause (the
//! fault-injection crash) within about a millisecond.

use rustix::time::{clock_gettime, ClockId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// CLOCK_MONOTONIC in ns: the clock of Node's `process.hrtime.bigint()`.
pub fn monotonic_ns() -> u64 {
    let now = clock_gettime(ClockId::Monotonic);
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

/// Whether `pid` is running (a zombie is dead: it runs nothing any more).
fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.trim_start().chars().next()
        })
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// The process died after `alive` and before `dead` (ns, CLOCK_MONOTONIC).
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
            let mut alive = monotonic_ns();
            loop {
                let before = monotonic_ns();
                if !is_alive(pid) {
                    deaths.record(
                        pid,
                        Death {
                            alive,
                            dead: monotonic_ns(),
                        },
                    );
                    return;
                }
                alive = before;
                thread::sleep(Duration::from_millis(1));
            }
        });
    }

    /// Knows `pid` as alive (its death is recorded by [`Deaths::record`]).
    pub(crate) fn track(&self, pid: u32) {
        self.0.lock().unwrap().insert(pid, None);
    }

    /// Sends SIGKILL through `kill` (to `pid` itself or to its parent, whose death
    /// kills it) and spins until `pid` is dead.
    pub fn kill(&self, pid: u32, kill: impl FnOnce(), timeout: Duration) -> Death {
        assert!(is_alive(pid), "pid {pid} died before its kill");
        let mut alive = monotonic_ns();
        kill();
        let started = Instant::now();
        loop {
            let before = monotonic_ns();
            if !is_alive(pid) {
                return self.record(
                    pid,
                    Death {
                        alive,
                        dead: monotonic_ns(),
                    },
                );
            }
            alive = before;
            assert!(
                started.elapsed() < timeout,
                "pid {pid} still alive {timeout:?} after its kill"
            );
            thread::yield_now();
        }
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
