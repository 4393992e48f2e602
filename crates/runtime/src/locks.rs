//! Actor exclusivity as a pure state machine (no I/O, no clock): at most one flow
//! holds an actor instance at a time; requests of other flows wait in FIFO order;
//! requests of the holding flow re-enter at once (spec §4.2).
//!
//! The async side (`actors.rs`) turns [`Grant`]s into wake-ups; the tests below
//! check the grants the table emits.

use crate::fast_map::FastMap;
use kar_protocol::FlowId;
use std::collections::VecDeque;
use std::hash::Hash;

/// Identifies one waiting request.
pub(crate) type Ticket = u64;

/// Result of [`LockTable::acquire`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Acquire {
    /// The flow holds the instance now (fresh or re-entrant).
    Granted,
    /// Another flow holds it: wait for this ticket to be granted.
    Queued(Ticket),
}

/// A queued request that now holds the instance.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Grant {
    pub ticket: Ticket,
}

struct Entry {
    holder: FlowId,
    /// Nested holds of the holding flow (re-entrant calls, kept tail calls).
    depth: u32,
    queue: VecDeque<(Ticket, FlowId)>,
}

pub(crate) struct LockTable<K> {
    entries: FastMap<K, Entry>,
    next_ticket: Ticket,
}

impl<K: Eq + Hash + Clone> LockTable<K> {
    pub(crate) fn new() -> Self {
        LockTable {
            entries: FastMap::default(),
            next_ticket: 1,
        }
    }

    pub(crate) fn acquire(&mut self, key: &K, flow: &FlowId) -> Acquire {
        match self.entries.get_mut(key) {
            None => {
                self.entries.insert(
                    key.clone(),
                    Entry {
                        holder: flow.clone(),
                        depth: 1,
                        queue: VecDeque::new(),
                    },
                );
                Acquire::Granted
            }
            Some(entry) if entry.holder == *flow => {
                entry.depth += 1;
                Acquire::Granted
            }
            Some(entry) => {
                let ticket = self.next_ticket;
                self.next_ticket += 1;
                entry.queue.push_back((ticket, flow.clone()));
                Acquire::Queued(ticket)
            }
        }
    }

    /// Releases one hold of `flow`. When the flow's last hold goes, the first queued
    /// request is granted the instance; the returned grants must be woken up.
    pub(crate) fn release(&mut self, key: &K, flow: &FlowId) -> Vec<Grant> {
        let Some(entry) = self.entries.get_mut(key) else {
            return Vec::new();
        };
        if entry.holder != *flow {
            return Vec::new();
        }
        entry.depth -= 1;
        if entry.depth > 0 {
            return Vec::new();
        }
        self.hand_over(key)
    }

    /// Gives up a queued ticket (busy timeout, caller gone). Returns false if it was
    /// already granted: the caller then holds the instance and must release it.
    pub(crate) fn cancel(&mut self, key: &K, ticket: Ticket) -> bool {
        let Some(entry) = self.entries.get_mut(key) else {
            return false;
        };
        let before = entry.queue.len();
        entry.queue.retain(|(t, _)| *t != ticket);
        before != entry.queue.len()
    }

    /// Whether any flow holds the instance or waits for it.
    pub(crate) fn is_busy(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// The flow holding the instance.
    pub(crate) fn holder(&self, key: &K) -> Option<&FlowId> {
        self.entries.get(key).map(|e| &e.holder)
    }

    /// Whether `flow` holds any instance (a linear scan: for a leave's drain only).
    pub(crate) fn holds_any(&self, flow: &FlowId) -> bool {
        self.entries.values().any(|e| e.holder == *flow)
    }

    fn hand_over(&mut self, key: &K) -> Vec<Grant> {
        let Some(entry) = self.entries.get_mut(key) else {
            return Vec::new();
        };
        let Some((ticket, flow)) = entry.queue.pop_front() else {
            self.entries.remove(key);
            return Vec::new();
        };
        // Queued requests of the same flow keep their place in the queue: they
        // arrived before the flow held the instance, so none of them can be a
        // nested call of the request granted now.
        entry.holder = flow;
        entry.depth = 1;
        vec![Grant { ticket }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(name: &str) -> FlowId {
        FlowId::from(name)
    }

    #[test]
    fn first_flow_is_granted_and_others_queue_in_order() {
        let mut t = LockTable::new();
        assert_eq!(t.acquire(&"a", &flow("f1")), Acquire::Granted);
        let Acquire::Queued(t2) = t.acquire(&"a", &flow("f2")) else {
            panic!()
        };
        let Acquire::Queued(t3) = t.acquire(&"a", &flow("f3")) else {
            panic!()
        };
        assert_eq!(t.release(&"a", &flow("f1")), vec![Grant { ticket: t2 }]);
        assert_eq!(t.holder(&"a"), Some(&flow("f2")));
        assert_eq!(t.release(&"a", &flow("f2")), vec![Grant { ticket: t3 }]);
        assert_eq!(t.release(&"a", &flow("f3")), vec![]);
        assert!(!t.is_busy(&"a"));
    }

    #[test]
    fn holder_flow_reenters_and_keeps_the_lock_until_its_last_release() {
        let mut t = LockTable::new();
        assert_eq!(t.acquire(&"a", &flow("f1")), Acquire::Granted);
        let Acquire::Queued(t2) = t.acquire(&"a", &flow("f2")) else {
            panic!()
        };
        assert_eq!(t.acquire(&"a", &flow("f1")), Acquire::Granted);
        assert_eq!(t.release(&"a", &flow("f1")), vec![]);
        assert_eq!(t.holder(&"a"), Some(&flow("f1")));
        assert_eq!(t.release(&"a", &flow("f1")), vec![Grant { ticket: t2 }]);
    }

    #[test]
    fn instances_are_independent() {
        let mut t = LockTable::new();
        assert_eq!(t.acquire(&"a", &flow("f1")), Acquire::Granted);
        assert_eq!(t.acquire(&"b", &flow("f2")), Acquire::Granted);
    }

    #[test]
    fn cancelled_ticket_is_skipped() {
        let mut t = LockTable::new();
        t.acquire(&"a", &flow("f1"));
        let Acquire::Queued(t2) = t.acquire(&"a", &flow("f2")) else {
            panic!()
        };
        let Acquire::Queued(t3) = t.acquire(&"a", &flow("f3")) else {
            panic!()
        };
        assert!(t.cancel(&"a", t2));
        assert_eq!(t.release(&"a", &flow("f1")), vec![Grant { ticket: t3 }]);
        // Already granted: cancel reports false and the holder must release.
        assert!(!t.cancel(&"a", t3));
    }

    #[test]
    fn queued_requests_of_the_granted_flow_wait_their_turn() {
        let mut t = LockTable::new();
        t.acquire(&"a", &flow("f1"));
        let Acquire::Queued(t2) = t.acquire(&"a", &flow("f2")) else {
            panic!()
        };
        let Acquire::Queued(t3) = t.acquire(&"a", &flow("f3")) else {
            panic!()
        };
        let Acquire::Queued(t4) = t.acquire(&"a", &flow("f2")) else {
            panic!()
        };
        assert_eq!(t.release(&"a", &flow("f1")), vec![Grant { ticket: t2 }]);
        assert_eq!(t.release(&"a", &flow("f2")), vec![Grant { ticket: t3 }]);
        assert_eq!(t.release(&"a", &flow("f3")), vec![Grant { ticket: t4 }]);
    }
}
