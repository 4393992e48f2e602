//! Runs the futures hyper starts for one HTTP/2 connection inside one task.
//!
//! hyper hands what an HTTP/2 connection needs running beside it to an executor: on
//! the server, every stream (one request and its response); on the client, the
//! connection itself and a pipe for each request body. With tokio's, each is a task
//! of its own: a request crosses from the connection's task to the stream's, its
//! response back, a wake-up each way and often one of the other worker thread too.
//! The JS SDK sends every call of a component over one HTTP/2 connection, so that is
//! every call's path. Here one task polls them all ([`serve`]), with a waker
//! (`turn.rs`) that lets a stream that answered wake the connection to write the
//! response in the same turn.
//!
//! The streams of one connection then share one thread at a time, as the requests
//! of an HTTP/1.1 connection always did; a handler spends its time waiting on the
//! runtime, not computing.

use crate::turn::Turn;
use futures::future::FutureExt;
use futures::stream::{FuturesUnordered, StreamExt};
use std::future::{poll_fn, Future};
use std::panic::AssertUnwindSafe;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex};
use std::task::Poll;

type Stream = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The executor given to hyper for one connection (server) or one client (h2c to the
/// component): it queues what hyper starts, which [`serve`] then polls.
#[derive(Clone, Default)]
pub(crate) struct Streams {
    /// Streams hyper started since [`serve`] last looked.
    started: Arc<Mutex<Vec<Stream>>>,
    /// The waker of the connection and its streams (`turn.rs`): a stream that
    /// answers wakes the connection, which writes the response in the same turn.
    turn: Turn,
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
                tracing::error!("an HTTP/2 stream's task panicked: the stream is dropped");
            }
        });
        self.started
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Box::pin(stream));
        // Inside `serve`'s poll this only asks for another round; from elsewhere (a
        // client starting a connection, maybe on another thread while `serve` polls)
        // it makes sure the task looks.
        self.turn.wake();
    }
}

impl Streams {
    fn take_started(&self) -> Vec<Stream> {
        std::mem::take(
            &mut *self
                .started
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

/// Drives `connection` and what is started on `streams` until the connection ends
/// and the last of those finished; returns the connection's output. A client's
/// driver passes a future that ends when the client is dropped.
pub(crate) async fn serve<C: Future>(connection: C, streams: Streams) -> C::Output {
    let mut connection = pin!(connection);
    let mut running = FuturesUnordered::<Stream>::new();
    let mut ended = None;
    poll_fn(|cx| {
        streams.turn.poll(cx, |polled| {
            if ended.is_none() {
                if let Poll::Ready(output) = connection.as_mut().poll(polled) {
                    ended = Some(output);
                }
            }
            running.extend(streams.take_started());
            while let Poll::Ready(Some(())) = running.poll_next_unpin(polled) {}
            match ended.take() {
                Some(output) if running.is_empty() => Poll::Ready(output),
                other => {
                    ended = other;
                    Poll::Pending
                }
            }
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::rt::Executor;
    use std::sync::atomic::{AtomicUsize, Ordering};
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
