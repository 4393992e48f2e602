//! Runs the HTTP/2 streams of a connection inside the connection's own task.
//!
//! hyper's HTTP/2 server hands every stream (one request and its response) to an
//! executor. With tokio's, each stream is a task of its own: a request crosses from
//! the connection's task to the stream's, its response back, a wake-up each way and
//! often one of the other worker thread too. The JS SDK sends every call of a
//! component over one HTTP/2 connection, so that is every call's path. Here the
//! connection's task polls its streams itself: a stream woken by the runtime (its
//! call completed) wakes the connection's task, which writes the response in the
//! same poll.
//!
//! The streams of one connection then share one thread at a time, as the requests
//! of an HTTP/1.1 connection always did; a handler spends its time waiting on the
//! runtime, not computing.

use futures::future::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::task::AtomicWaker;
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

type Stream = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The executor given to hyper for one connection: it queues the streams that
/// [`serve`] then polls.
#[derive(Clone, Default)]
pub(crate) struct Streams {
    shared: Arc<Shared>,
}

/// What the executor and the connection's waker share with [`serve`].
///
/// The connection registers its waker with its socket and for its streams. Woken
/// while [`serve`] polls, that waker only asks for one more poll of the connection:
/// waking the task from inside its own poll would make tokio queue it again and
/// wake the other worker thread to look, a futex call and a context switch per
/// response.
#[derive(Default)]
struct Shared {
    /// Streams hyper started since the connection's task last looked.
    started: Mutex<Vec<Stream>>,
    /// `IDLE`, `POLLING` (inside [`serve`]'s poll) or `WOKEN` (woken inside it).
    state: AtomicU8,
    /// The connection's task.
    task: AtomicWaker,
}

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const WOKEN: u8 = 2;

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // From POLLING, the poll under way polls the connection once more; set back
        // to POLLING before each poll of the connection, so a wake that finds it
        // so is seen by that poll.
        let polling =
            self.state
                .compare_exchange(POLLING, WOKEN, Ordering::SeqCst, Ordering::SeqCst);
        if polling.is_err() && self.state.load(Ordering::SeqCst) == IDLE {
            self.task.wake();
        }
    }
}

impl<F> hyper::rt::Executor<F> for Streams
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        // A handler that panics (a bug) loses its own stream, as it would in a task
        // of its own, not the connection with every other call on it.
        let stream = AssertUnwindSafe(stream).catch_unwind().map(|ended| {
            if ended.is_err() {
                tracing::error!("a request handler panicked: its HTTP/2 stream is reset");
            }
        });
        self.shared
            .started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Box::pin(stream));
        // hyper starts streams while `serve` polls the connection, and `serve`
        // takes them right after; a wake-up is only a safeguard.
        if self.shared.state.load(Ordering::SeqCst) == IDLE {
            self.shared.task.wake();
        }
    }
}

impl Streams {
    fn take_started(&self) -> Vec<Stream> {
        std::mem::take(
            &mut *self
                .shared
                .started
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

/// Polls of the connection and its streams in one turn of the task at most.
const MAX_ROUNDS: usize = 4;

/// Drives `connection` and the streams it starts on `streams` until the connection
/// ends and its last stream finished; returns the connection's output.
pub(crate) async fn serve<C: Future>(connection: C, streams: Streams) -> C::Output {
    let mut connection = pin!(connection);
    let mut running = FuturesUnordered::<Stream>::new();
    let mut ended = None;
    let shared = streams.shared.clone();
    let waker = Waker::from(shared.clone());
    poll_fn(|cx| {
        shared.task.register(cx.waker());
        let mut polled = Context::from_waker(&waker);
        for round in 1.. {
            shared.state.store(POLLING, Ordering::SeqCst);
            if ended.is_none() {
                if let Poll::Ready(output) = connection.as_mut().poll(&mut polled) {
                    ended = Some(output);
                }
            }
            running.extend(streams.take_started());
            while let Poll::Ready(Some(())) = running.poll_next_unpin(&mut polled) {}
            if shared.state.swap(IDLE, Ordering::SeqCst) != WOKEN {
                break;
            }
            // Woken meanwhile: a stream answered (its response is for the
            // connection to write), or the connection gave a stream what it waited
            // for. Again in this turn, but only a few times: tokio's budget makes
            // its resources wake a task that used it up, which only a new turn
            // resets.
            if round == MAX_ROUNDS {
                cx.waker().wake_by_ref();
                break;
            }
        }
        match ended.take() {
            Some(output) if running.is_empty() => Poll::Ready(output),
            other => {
                ended = other;
                Poll::Pending
            }
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Executor;
    use std::sync::atomic::AtomicUsize;
    use tokio::sync::oneshot;

    /// Streams run to the end on the connection's task, also after the connection
    /// itself ended, and the connection's output comes back only then.
    #[tokio::test]
    async fn streams_run_on_the_connection_task_until_the_last_one_ends() {
        let streams = Streams::default();
        let done = Arc::new(AtomicUsize::new(0));
        let (release, released) = oneshot::channel::<()>();
        let connection = {
            let streams = streams.clone();
            let done = done.clone();
            async move {
                let quick = done.clone();
                streams.execute(async move {
                    quick.fetch_add(1, Ordering::SeqCst);
                });
                let slow = done.clone();
                streams.execute(async move {
                    let _ = released.await;
                    slow.fetch_add(1, Ordering::SeqCst);
                });
                "ended"
            }
        };
        let served = tokio::spawn(serve(connection, streams));
        tokio::task::yield_now().await;
        assert!(!served.is_finished(), "a stream is still running");
        assert_eq!(done.load(Ordering::SeqCst), 1);
        release.send(()).unwrap();
        assert_eq!(served.await.unwrap(), "ended");
        assert_eq!(done.load(Ordering::SeqCst), 2);
    }

    /// A stream that panics ends alone: the others and the connection go on.
    #[tokio::test]
    async fn a_panicking_stream_ends_alone() {
        let streams = Streams::default();
        let done = Arc::new(AtomicUsize::new(0));
        let connection = {
            let streams = streams.clone();
            let done = done.clone();
            async move {
                streams.execute(async { panic!("a handler's bug") });
                let after = done.clone();
                streams.execute(async move {
                    tokio::task::yield_now().await;
                    after.fetch_add(1, Ordering::SeqCst);
                });
                tokio::task::yield_now().await;
                "ended"
            }
        };
        assert_eq!(serve(connection, streams).await, "ended");
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }
}
