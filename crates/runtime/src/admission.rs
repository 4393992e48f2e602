//! Back-pressure on tells (`-max_concurrent_tells`): which requests routed here run
//! now and which wait, in arrival order.

use crate::executor::lock;
use crate::fast_map::FastMap;
use crate::Runtime;
use kar_protocol::{Request, Target};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Caps the tells (requests nobody waits for: `Pragma: async` tells, reminder
/// firings, event deliveries) executing here at once: a due burst of reminders would
/// otherwise become as many tasks at once, whose store transitions pile up and time
/// out and whose scheduling starves everything else. The tells beyond the cap wait
/// in a FIFO queue, already accepted (durable in the store) and tracked, so they are
/// abandoned, handed over on leave and counted like any request executing here.
///
/// Requests somebody waits for (calls, promises) are never queued: a tell may wait
/// for one (a nested call), so queueing them behind tells could deadlock. To keep an
/// actor's arrival order (guarantee 7), a call to an actor first admits the tells
/// to it that arrived before it, over the cap if need be: nothing a call waits for
/// ever waits for the cap.
pub(crate) struct Admission {
    /// Most tells executing at once (`usize::MAX`: no cap).
    pub(crate) cap: usize,
    pub(crate) state: Mutex<AdmissionState>,
}

#[derive(Default)]
pub(crate) struct AdmissionState {
    /// Tells admitted and not finished (above `cap` after a call admitted some).
    running: usize,
    queue: VecDeque<Admitted>,
    /// How many tells to each actor wait in `queue`.
    queued_actors: FastMap<Target, usize>,
}

impl Admission {
    /// `max_concurrent_tells`: 0 = no cap.
    pub(crate) fn new(max_concurrent_tells: usize) -> Self {
        Admission {
            cap: match max_concurrent_tells {
                0 => usize::MAX,
                cap => cap,
            },
            state: Mutex::new(AdmissionState::default()),
        }
    }
}

/// A request accepted here, tracked, and not executing yet.
pub(crate) struct Admitted {
    pub(crate) request: Box<Request>,
    pub(crate) token: u64,
    pub(crate) abandoned: oneshot::Receiver<()>,
}

impl AdmissionState {
    fn push(&mut self, admitted: Admitted) {
        if matches!(admitted.request.target, Target::Actor { .. }) {
            *self
                .queued_actors
                .entry(admitted.request.target.clone())
                .or_default() += 1;
        }
        self.queue.push_back(admitted);
    }

    fn pop(&mut self) -> Option<Admitted> {
        let admitted = self.queue.pop_front()?;
        self.unqueued(&admitted.request.target);
        Some(admitted)
    }

    fn unqueued(&mut self, target: &Target) {
        if let Some(n) = self.queued_actors.get_mut(target) {
            *n -= 1;
            if *n == 0 {
                self.queued_actors.remove(target);
            }
        }
    }

    /// Takes the queued tells to `target` (in order).
    fn take_for(&mut self, target: &Target) -> VecDeque<Admitted> {
        if !self.queued_actors.contains_key(target) {
            return VecDeque::new();
        }
        let (taken, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.queue)
            .into_iter()
            .partition(|a| &a.request.target == target);
        self.queue = kept;
        self.queued_actors.remove(target);
        taken
    }
}

impl Runtime {
    /// A tell runs now if the cap allows and none waits before it, else queues.
    pub(crate) fn admit_tell(self: &Arc<Self>, admitted: Admitted) {
        let admission = &self.executor.admission;
        let mut state = lock(&admission.state);
        if state.running < admission.cap && state.queue.is_empty() {
            state.running += 1;
            // Spawned under the lock: tasks start in admission order.
            self.spawn_execution(admitted, true);
        } else {
            state.push(admitted);
        }
    }

    /// A call or promise runs now, after the tells queued for its actor (arrival
    /// order), which are admitted over the cap.
    pub(crate) fn admit_awaited(self: &Arc<Self>, admitted: Admitted) {
        if matches!(admitted.request.target, Target::Actor { .. }) {
            let mut state = lock(&self.executor.admission.state);
            let before = state.take_for(&admitted.request.target);
            state.running += before.len();
            for tell in before {
                self.spawn_execution(tell, true);
            }
        }
        self.spawn_execution(admitted, false);
    }

    /// A capped tell finished: the next queued ones may run (or, while leaving the
    /// mesh, are left for another member without starting here).
    pub(crate) fn release_tell(self: &Arc<Self>) {
        let admission = &self.executor.admission;
        let mut state = lock(&admission.state);
        state.running -= 1;
        while state.running < admission.cap {
            let Some(next) = state.pop() else { break };
            if self.is_shutting_down() && !self.executor.actors.flow_is_running(&next.request.flow)
            {
                self.not_started_here(next);
                continue;
            }
            state.running += 1;
            self.spawn_execution(next, true);
        }
    }

    /// Leaving the mesh: the queued tells are not started here; leaving hands them
    /// to another member, uncharged.
    pub(crate) fn drop_queued_tells(&self) {
        let mut state = lock(&self.executor.admission.state);
        let queued = std::mem::take(&mut state.queue);
        state.queued_actors.clear();
        for admitted in queued {
            if self.executor.actors.flow_is_running(&admitted.request.flow) {
                // A flow running here goes on here (as in `handle`).
                state.push(admitted);
            } else {
                self.not_started_here(admitted);
            }
        }
    }

    fn not_started_here(&self, admitted: Admitted) {
        let id = &admitted.request.id;
        tracing::debug!(request = %id, "leaving the mesh: not starting it here");
        self.executor.not_started(id);
        self.executor.finished(id, admitted.token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kar_protocol::{FlowId, NodeId};
    use kar_protocol::{Invocation, RequestId, RequestKind};

    fn queued(actor: &str) -> Admitted {
        let request = Request::new(
            RequestKind::Tell,
            Target::Actor {
                actor_type: "A".to_string(),
                id: actor.to_string(),
            },
            Invocation {
                method: "POST".to_string(),
                path: format!("/actor/A/{actor}/m"),
                query: None,
                headers: Vec::new(),
                body: bytes::Bytes::new(),
            },
            NodeId("n".to_string()),
            FlowId::generate(),
            None,
            None,
        );
        Admitted {
            request: Box::new(request),
            token: 0,
            abandoned: oneshot::channel().1,
        }
    }

    fn target(actor: &str) -> Target {
        Target::Actor {
            actor_type: "A".to_string(),
            id: actor.to_string(),
        }
    }

    /// The queue is FIFO, and a call takes the tells queued for its actor, in order,
    /// leaving the others in theirs.
    #[test]
    fn admission_queue_keeps_arrival_order() {
        let mut state = AdmissionState::default();
        let tells: Vec<Admitted> = ["1", "2", "1", "3", "1"].map(queued).into();
        let ids: Vec<RequestId> = tells.iter().map(|t| t.request.id.clone()).collect();
        for tell in tells {
            state.push(tell);
        }
        let taken: Vec<RequestId> = state
            .take_for(&target("1"))
            .into_iter()
            .map(|t| t.request.id)
            .collect();
        assert_eq!(taken, [ids[0].clone(), ids[2].clone(), ids[4].clone()]);
        assert!(state.take_for(&target("1")).is_empty());
        assert_eq!(state.pop().map(|t| t.request.id), Some(ids[1].clone()));
        assert_eq!(state.queued_actors.get(&target("3")), Some(&1));
        assert_eq!(state.pop().map(|t| t.request.id), Some(ids[3].clone()));
        assert!(state.pop().is_none());
        assert!(state.queued_actors.is_empty());
    }
}
