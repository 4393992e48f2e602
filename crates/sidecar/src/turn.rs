//! Polling parts of one task that wake each other, without waking the task.
//!
//! A task that is woken while tokio polls it is queued again after the poll, as if it
//! had yielded, and tokio wakes another worker thread to look: a futex call and a
//! context switch. Futures that drive each other inside one task do exactly that: a
//! request handed to a connection polled by the same task wakes the connection, a
//! response read by it wakes the request. [`Turn::poll`] gives them a waker that, from
//! inside the poll, only asks for one more round of it; from anywhere else it wakes the
//! task as usual.

use futures::task::AtomicWaker;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

/// Rounds of polling in one turn at most: tokio's budget makes its resources wake a
/// task that used it up, which only a new turn of the task resets.
const MAX_ROUNDS: usize = 4;

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN: u8 = 2;

/// Polls futures of one task with a waker of its own (see the module).
#[derive(Clone)]
pub(crate) struct Turn {
    shared: Arc<Shared>,
    /// Wakes `shared`: the waker the futures are polled with.
    waker: Waker,
}

#[derive(Default)]
struct Shared {
    /// `IDLE`, `POLLING` (inside [`Turn::poll`]) or `WOKEN` (woken inside it).
    state: AtomicU8,
    /// The task, woken by wake-ups from outside the poll.
    task: AtomicWaker,
}

impl Default for Turn {
    fn default() -> Self {
        let shared = Arc::new(Shared::default());
        Turn {
            waker: Waker::from(shared.clone()),
            shared,
        }
    }
}

impl Turn {
    /// Calls `round` with this turn's waker, again while it was woken meanwhile.
    pub(crate) fn poll<T>(
        &self,
        cx: &Context<'_>,
        mut round: impl FnMut(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let shared = &self.shared;
        shared.task.register(cx.waker());
        let mut inner = Context::from_waker(&self.waker);
        for _ in 0..MAX_ROUNDS {
            // Set before each round, so a wake-up that finds it is seen by that round.
            shared.state.store(POLLING, Ordering::SeqCst);
            let polled = round(&mut inner);
            let woken = shared.state.swap(IDLE, Ordering::SeqCst) == WOKEN;
            if polled.is_ready() || !woken {
                return polled;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }

    /// Wakes as the futures' waker does: another round if inside [`Turn::poll`],
    /// else the task.
    pub(crate) fn wake(&self) {
        self.waker.wake_by_ref();
    }
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let inside =
            self.state
                .compare_exchange(POLLING, WOKEN, Ordering::SeqCst, Ordering::SeqCst);
        if inside.is_err() && self.state.load(Ordering::SeqCst) == IDLE {
            self.task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A wake-up from inside the poll makes another round instead of waking the task;
    /// one from outside wakes the task.
    #[test]
    fn wake_ups_inside_the_poll_make_another_round() {
        let turn = Turn::default();
        let rounds = AtomicUsize::new(0);
        let task_wakes = Arc::new(AtomicUsize::new(0));
        let counting = Waker::from(Arc::new(Counting(task_wakes.clone())));
        let cx = Context::from_waker(&counting);
        let polled = turn.poll(&cx, |inner| {
            // Woken once from inside, then done on the second round.
            if rounds.fetch_add(1, Ordering::SeqCst) == 0 {
                inner.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(())
        });
        assert!(polled.is_ready());
        assert_eq!(rounds.load(Ordering::SeqCst), 2);
        assert_eq!(task_wakes.load(Ordering::SeqCst), 0);

        // Pending and not woken inside: one round; a wake-up afterwards reaches the task.
        let polled = turn.poll(&cx, |_| Poll::<()>::Pending);
        assert!(polled.is_pending());
        turn.wake();
        assert_eq!(task_wakes.load(Ordering::SeqCst), 1);

        // Woken in every round: after the last, the task is woken to come back.
        let polled = turn.poll(&cx, |inner| {
            inner.waker().wake_by_ref();
            Poll::<()>::Pending
        });
        assert!(polled.is_pending());
        assert_eq!(task_wakes.load(Ordering::SeqCst), 2);
    }

    struct Counting(Arc<AtomicUsize>);

    impl Wake for Counting {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}
