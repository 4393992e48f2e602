//! The accept loop: HTTP/1.1 and HTTP/2 with prior knowledge on one port (spec §1.1).

use crate::streams::{self, Streams};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use kar_runtime::Runtime;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Settings of the `/kar/v1` server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Request bodies larger than this get `413`.
    pub max_body_bytes: usize,
    /// When set, peers other than 127.0.0.1/::1 must present it (`guard.rs`).
    pub api_token: Option<crate::ApiToken>,
}

/// The default of `-max_body_bytes`: 16 MiB. A request's body is held in memory and
/// written to the store, maybe more than once; large payloads belong elsewhere.
pub const DEFAULT_MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            api_token: None,
        }
    }
}

/// What every handler gets.
pub(crate) struct Ctx {
    pub runtime: Arc<Runtime>,
    pub config: ServerConfig,
    /// Serving `kar dashboard` (the page and the admin API only), not a sidecar.
    pub dashboard: bool,
}

/// A running server. Dropping the handle leaves the server running; call
/// [`ServerHandle::shutdown`] to stop it.
pub struct ServerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    local_addr: Option<SocketAddr>,
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Stops accepting connections and waits for in-flight requests to finish. Idle
    /// HTTP/1.1 connections are closed; HTTP/2 connections get a GOAWAY. Requests
    /// blocked in the runtime finish once the runtime shuts down (they get 503), so
    /// start [`Runtime::shutdown`] before or alongside this.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.task.await {
            tracing::error!("the server task failed: {e}");
        }
    }
}

/// HTTP/2 streams one connection may have open at once: the JS SDK multiplexes every
/// call of a component on one connection, some blocking for minutes (Go: 262144).
const MAX_CONCURRENT_STREAMS: u32 = 262_144;
/// Flow-control windows large enough that a 16+ MiB body is not throttled by window
/// updates; the memory is only used when a peer actually sends that much.
const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;
/// Go's default limit on request headers (`http.DefaultMaxHeaderBytes`).
const MAX_HEADER_BYTES: usize = 1024 * 1024;

/// Serves `/kar/v1` on `listener` (already bound by the caller) until
/// [`ServerHandle::shutdown`].
pub fn serve(listener: TcpListener, runtime: Arc<Runtime>, config: ServerConfig) -> ServerHandle {
    start(
        listener,
        Ctx {
            runtime,
            config,
            dashboard: false,
        },
    )
}

/// Serves the dashboard (`kar dashboard`): its page at `/` and the admin API under
/// `/kar/admin/v1` over `runtime` (a member without a component), nothing else.
pub fn serve_dashboard(
    listener: TcpListener,
    runtime: Arc<Runtime>,
    config: ServerConfig,
) -> ServerHandle {
    start(
        listener,
        Ctx {
            runtime,
            config,
            dashboard: true,
        },
    )
}

fn start(listener: TcpListener, ctx: Ctx) -> ServerHandle {
    let local_addr = listener.local_addr().ok();
    let ctx = Arc::new(ctx);
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(accept_loop(listener, ctx, stop_rx));
    ServerHandle {
        stop,
        task,
        local_addr,
    }
}

/// A connection's builder: its HTTP/2 streams run on the connection's task
/// (`streams.rs`).
fn builder(streams: Streams) -> auto::Builder<Streams> {
    let mut builder = auto::Builder::new(streams);
    builder
        .http1()
        .keep_alive(true)
        // No timeouts (spec §1.1): callers may block for minutes.
        .header_read_timeout(None)
        .max_buf_size(MAX_HEADER_BYTES + 64 * 1024);
    builder
        .http2()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEADER_BYTES as u32)
        .max_send_buf_size(1024 * 1024);
    builder
}

async fn accept_loop(listener: TcpListener, ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let graceful = GracefulShutdown::new();
    // Like Go's server: back off on accept errors (e.g. out of file descriptors)
    // instead of spinning or giving up.
    let mut accept_delay = Duration::ZERO;
    loop {
        let accepted = tokio::select! {
            // `Err`: the handle was dropped without `shutdown`; keep serving.
            Ok(_) = stop.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => {
                accept_delay = Duration::ZERO;
                (stream, Some(peer))
            }
            Err(e) => {
                accept_delay =
                    (accept_delay * 2).clamp(Duration::from_millis(5), Duration::from_secs(1));
                tracing::error!("accept failed (retrying in {accept_delay:?}): {e}");
                tokio::time::sleep(accept_delay).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let ctx = ctx.clone();
        let service = service_fn(move |request| {
            let ctx = ctx.clone();
            async move { Ok::<_, Infallible>(crate::guard::serve(&ctx, peer, request).await) }
        });
        let streams = Streams::default();
        let connection = builder(streams.clone())
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = streams::serve(connection, streams).await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
    drop(listener);
    tracing::debug!(
        connections = graceful.count(),
        "stopped accepting; draining connections"
    );
    graceful.shutdown().await;
}
