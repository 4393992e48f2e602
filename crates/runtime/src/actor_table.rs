//! The actor instances hosted by this runtime: their locks (one flow at a time,
//! spec §4.2), whether they are activated in the component, and when they were last
//! used (for idle collection, spec §4.1).

use crate::fast_map::FastMap;
use crate::locks::{Acquire, LockTable, Ticket};
use kar_protocol::{ActorRef, FlowId};
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

struct Instance {
    activated: bool,
    last_used: Instant,
}

struct State {
    locks: LockTable<ActorRef>,
    wakers: FastMap<Ticket, oneshot::Sender<()>>,
    instances: FastMap<ActorRef, Instance>,
}

pub(crate) struct ActorTable {
    state: Mutex<State>,
}

/// A queued request waited longer than `-actor_busy_timeout`.
pub(crate) struct BusyTimeout {
    pub holder: Option<FlowId>,
}

impl ActorTable {
    pub(crate) fn new() -> Self {
        ActorTable {
            state: Mutex::new(State {
                locks: LockTable::new(),
                wakers: FastMap::default(),
                instances: FastMap::default(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves the state consistent, even if one panicked.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until `flow` holds `actor` (at once if it already does: re-entrancy).
    /// Cancel-safe: a wait that is dropped (its request was abandoned) leaves the
    /// queue, or releases the instance if it was granted meanwhile.
    pub(crate) async fn acquire(
        &self,
        actor: &ActorRef,
        flow: &FlowId,
        busy_timeout: Option<Duration>,
    ) -> Result<(), BusyTimeout> {
        let (ticket, granted) = {
            let mut state = self.lock();
            match state.locks.acquire(actor, flow) {
                Acquire::Granted => return Ok(()),
                Acquire::Queued(ticket) => {
                    let (tx, rx) = oneshot::channel();
                    state.wakers.insert(ticket, tx);
                    (ticket, rx)
                }
            }
        };
        let mut waiting = Waiting {
            table: self,
            actor,
            flow,
            ticket,
            armed: true,
        };
        let waited = match busy_timeout {
            Some(limit) => tokio::time::timeout(limit, granted).await.ok(),
            None => Some(granted.await),
        };
        waiting.armed = false;
        if waited.is_some() {
            return Ok(());
        }
        let mut state = self.lock();
        if state.locks.cancel(actor, ticket) {
            state.wakers.remove(&ticket);
            Err(BusyTimeout {
                holder: state.locks.holder(actor).cloned(),
            })
        } else {
            // Granted just as the timeout fired: we hold it now.
            Ok(())
        }
    }

    /// A hold of `flow` on `actor` (just acquired) that is released when dropped,
    /// however the request holding it ends (abandoned by an operator included).
    pub(crate) fn hold(&self, actor: ActorRef, flow: FlowId) -> Hold<'_> {
        Hold {
            table: self,
            actor,
            flow,
        }
    }

    /// Releases one hold of `flow` on `actor` and wakes the next flow, if any.
    pub(crate) fn release(&self, actor: &ActorRef, flow: &FlowId) {
        let mut state = self.lock();
        for grant in state.locks.release(actor, flow) {
            if let Some(waker) = state.wakers.remove(&grant.ticket) {
                let _ = waker.send(());
            }
        }
        if !state.locks.is_busy(actor) {
            if let Some(instance) = state.instances.get_mut(actor) {
                instance.last_used = Instant::now();
            }
        }
    }

    /// Tries to take `actor` for `flow` without waiting (idle collection).
    pub(crate) fn try_acquire_idle(&self, actor: &ActorRef, flow: &FlowId) -> bool {
        let mut state = self.lock();
        if state.locks.is_busy(actor) {
            return false;
        }
        state.locks.acquire(actor, flow) == Acquire::Granted
    }

    /// Whether `flow` holds an instance here: a request of it is running here.
    pub(crate) fn flow_is_running(&self, flow: &FlowId) -> bool {
        self.lock().locks.holds_any(flow)
    }

    pub(crate) fn is_activated(&self, actor: &ActorRef) -> bool {
        self.lock()
            .instances
            .get(actor)
            .is_some_and(|i| i.activated)
    }

    pub(crate) fn set_activated(&self, actor: &ActorRef, activated: bool) {
        let mut state = self.lock();
        if activated {
            state.instances.insert(
                actor.clone(),
                Instance {
                    activated: true,
                    last_used: Instant::now(),
                },
            );
        } else {
            state.instances.remove(actor);
        }
    }

    /// Activated instances not used for `idle` and not busy now.
    pub(crate) fn idle_instances(&self, idle: Duration) -> Vec<ActorRef> {
        let state = self.lock();
        state
            .instances
            .iter()
            .filter(|(actor, i)| {
                i.activated && i.last_used.elapsed() >= idle && !state.locks.is_busy(actor)
            })
            .map(|(actor, _)| actor.clone())
            .collect()
    }

    /// Activated instances, sorted.
    pub(crate) fn activated(&self) -> Vec<ActorRef> {
        let mut list: Vec<ActorRef> = self
            .lock()
            .instances
            .iter()
            .filter(|(_, i)| i.activated)
            .map(|(a, _)| a.clone())
            .collect();
        list.sort();
        list
    }
}

/// See [`ActorTable::hold`].
pub(crate) struct Hold<'a> {
    table: &'a ActorTable,
    actor: ActorRef,
    flow: FlowId,
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.table.release(&self.actor, &self.flow);
    }
}

/// A queued wait for an instance; dropped while armed, it gives its place up.
struct Waiting<'a> {
    table: &'a ActorTable,
    actor: &'a ActorRef,
    flow: &'a FlowId,
    ticket: Ticket,
    armed: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut state = self.table.lock();
        if state.locks.cancel(self.actor, self.ticket) {
            state.wakers.remove(&self.ticket);
        } else {
            // Granted as the wait was dropped: nobody will use it.
            drop(state);
            self.table.release(self.actor, self.flow);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn flow(name: &str) -> FlowId {
        FlowId::from(name)
    }

    /// An abandoned request drops its wait for the instance: it leaves the queue and
    /// the instance goes to the next one (or is free).
    #[tokio::test]
    async fn a_dropped_wait_gives_its_place_up() {
        let table = Arc::new(ActorTable::new());
        let actor = ActorRef::new("T", "1");
        table.acquire(&actor, &flow("f1"), None).await.ok().unwrap();
        let waiting = {
            let (table, actor) = (table.clone(), actor.clone());
            tokio::spawn(async move { table.acquire(&actor, &flow("f2"), None).await.is_ok() })
        };
        let third = {
            let (table, actor) = (table.clone(), actor.clone());
            tokio::spawn(async move { table.acquire(&actor, &flow("f3"), None).await.is_ok() })
        };
        // Both queued behind f1.
        while table.lock().wakers.len() < 2 {
            tokio::task::yield_now().await;
        }
        waiting.abort();
        assert!(waiting.await.is_err(), "aborted");
        table.release(&actor, &flow("f1"));
        // Without the hand-over to f3 this would wait forever: bounded.
        let third = tokio::time::timeout(Duration::from_secs(10), third).await;
        assert!(third.expect("f3 granted").unwrap());
        assert_eq!(table.lock().locks.holder(&actor), Some(&flow("f3")));
        table.release(&actor, &flow("f3"));
        assert!(!table.lock().locks.is_busy(&actor));
    }

    /// A hold is released when dropped, however its request ended.
    #[tokio::test]
    async fn a_dropped_hold_releases_the_instance() {
        let table = ActorTable::new();
        let actor = ActorRef::new("T", "1");
        table.acquire(&actor, &flow("f1"), None).await.ok().unwrap();
        drop(table.hold(actor.clone(), flow("f1")));
        assert!(!table.lock().locks.is_busy(&actor));
    }
}
