//! The minimal Rust component under test: a service route `POST /echo` and an actor
//! type `Bench` with methods `echo`, `tick` (reminder firings, counted), `event`
//! (event deliveries, timed) and `told` (tells of the backlog workload, each
//! numbered, counted per number), on the app-side contract of spec §3.

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::mpsc;

pub struct App {
    pub port: u16,
    /// Reminder firings received by `Bench.tick`, all actors together.
    pub ticks: Arc<AtomicU64>,
    /// One `(published_ns, delivered_ns)` per event received by `Bench.event`, both
    /// in nanoseconds since `base`: the publisher lives in this process, so one
    /// monotonic clock times both ends.
    pub deliveries: mpsc::UnboundedReceiver<(u64, u64)>,
    pub base: Instant,
    /// Executions of `Bench.told` per number (the body `[n]`).
    pub told: Arc<Told>,
}

/// What `Bench.told` received: executions per number, and their total.
#[derive(Default)]
pub struct Told {
    pub total: AtomicU64,
    counts: Mutex<std::collections::HashMap<u64, u32>>,
}

impl Told {
    fn record(&self, n: u64) {
        if let Ok(mut counts) = self.counts.lock() {
            *counts.entry(n).or_default() += 1;
        }
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Forgets every execution (before a new backlog).
    pub fn clear(&self) {
        if let Ok(mut counts) = self.counts.lock() {
            counts.clear();
        }
        self.total.store(0, Ordering::Relaxed);
    }

    /// `(numbers of 0..count never executed, executions beyond the first)`.
    pub fn missing_and_duplicates(&self, count: u64) -> (u64, u64) {
        let Ok(counts) = self.counts.lock() else {
            return (count, 0);
        };
        let missing = (0..count).filter(|n| !counts.contains_key(n)).count() as u64;
        let duplicates = counts.values().map(|c| u64::from(c - 1)).sum();
        (missing, duplicates)
    }
}

impl App {
    pub fn now_ns(&self) -> u64 {
        self.base.elapsed().as_nanos() as u64
    }
}

struct Shared {
    ticks: Arc<AtomicU64>,
    deliveries: mpsc::UnboundedSender<(u64, u64)>,
    base: Instant,
    told: Arc<Told>,
}

pub async fn start() -> Result<App> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    let ticks = Arc::new(AtomicU64::new(0));
    let (sender, deliveries) = mpsc::unbounded_channel();
    let base = Instant::now();
    let told = Arc::new(Told::default());
    let shared = Arc::new(Shared {
        ticks: ticks.clone(),
        deliveries: sender,
        base,
        told: told.clone(),
    });
    tokio::spawn(serve(listener, move |request| {
        handle(shared.clone(), request)
    }));
    Ok(App {
        port,
        ticks,
        deliveries,
        base,
        told,
    })
}

/// Serves `handle` on every connection `listener` accepts (HTTP/1.1 and h2c), forever.
pub async fn serve<H, F>(listener: tokio::net::TcpListener, handle: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: std::future::Future<Output = Result<Response<Full<Bytes>>, hyper::Error>> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(handle);
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let body = request.into_body().collect().await?.to_bytes();
    let reply = |status: StatusCode, content_type: Option<&str>, body: Bytes| {
        let mut response = Response::new(Full::new(body));
        *response.status_mut() = status;
        if let Some(ct) = content_type {
            if let Ok(value) = ct.parse() {
                response
                    .headers_mut()
                    .insert(hyper::header::CONTENT_TYPE, value);
            }
        }
        Ok(response)
    };
    if path == "/echo" {
        return reply(StatusCode::OK, Some("text/plain"), body);
    }
    if let Some(rest) = path.strip_prefix("/kar/impl/v1/actor/") {
        let segments: Vec<&str> = rest.split('/').collect();
        return match (method, segments.as_slice()) {
            (Method::HEAD, ["Bench"]) => reply(StatusCode::OK, None, Bytes::new()),
            (Method::GET, ["Bench", _id]) => reply(
                StatusCode::CREATED,
                Some("text/plain"),
                Bytes::from_static(b"created"),
            ),
            (Method::DELETE, ["Bench", _id]) => reply(
                StatusCode::OK,
                Some("text/plain"),
                Bytes::from_static(b"deleted"),
            ),
            (Method::POST, ["Bench", _id, "echo"]) => {
                let mut value = b"{\"value\":".to_vec();
                value.extend_from_slice(&body);
                value.push(b'}');
                reply(
                    StatusCode::OK,
                    Some("application/kar+json"),
                    Bytes::from(value),
                )
            }
            (Method::POST, ["Bench", _id, "tick"]) => {
                shared.ticks.fetch_add(1, Ordering::Relaxed);
                reply(StatusCode::NO_CONTENT, None, Bytes::new())
            }
            (Method::POST, ["Bench", _id, "told"]) => {
                // The body is `[<n>]`: the arguments of the tell.
                let n = std::str::from_utf8(&body)
                    .ok()
                    .map(|text| text.trim().trim_start_matches('[').trim_end_matches(']'))
                    .and_then(|number| number.trim().parse::<u64>().ok());
                match n {
                    Some(n) => {
                        shared.told.record(n);
                        reply(StatusCode::NO_CONTENT, None, Bytes::new())
                    }
                    None => reply(
                        StatusCode::BAD_REQUEST,
                        Some("text/plain"),
                        Bytes::from_static(b"expected [<n>]"),
                    ),
                }
            }
            (Method::POST, ["Bench", _id, "event"]) => {
                let delivered = shared.base.elapsed().as_nanos() as u64;
                // The body is `[<published_ns>]` (spec §4.6: `[` + record + `]`).
                let published = std::str::from_utf8(&body)
                    .ok()
                    .map(|text| text.trim().trim_start_matches('[').trim_end_matches(']'))
                    .and_then(|number| number.trim().parse::<u64>().ok());
                match published {
                    Some(published) => {
                        let _ = shared.deliveries.send((published, delivered));
                        reply(StatusCode::NO_CONTENT, None, Bytes::new())
                    }
                    None => reply(
                        StatusCode::BAD_REQUEST,
                        Some("text/plain"),
                        Bytes::from_static(b"expected [<nanoseconds>]"),
                    ),
                }
            }
            _ => reply(
                StatusCode::NOT_FOUND,
                Some("text/plain"),
                Bytes::from_static(b"no such actor route"),
            ),
        };
    }
    reply(
        StatusCode::NOT_FOUND,
        Some("text/plain"),
        Bytes::from_static(b"not found"),
    )
}
