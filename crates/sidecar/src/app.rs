//! The runtime's HTTP client to its component (spec §1.3).

use crate::app_pool::Http1Pool;
use crate::streams::{self, Streams};
use async_trait::async_trait;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use http::{HeaderMap, Method, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioTimer;
use kar_protocol::{deferred_state, Invocation, Reply};
use kar_runtime::{AppClient, AppError, AppReply};
use rand::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};

/// How to reach the component.
#[derive(Clone, Debug)]
pub struct AppClientConfig {
    pub app_port: u16,
    /// HTTP/2 with prior knowledge instead of HTTP/1.1 (`-h2c`).
    pub h2c: bool,
    /// Per-request timeout and retry window when `Some` (from `-request_retry_limit`
    /// ≥ 0). A zero duration means no timeout and no retries.
    pub request_retry_limit: Option<Duration>,
}

/// Retry window for transport errors when `-request_retry_limit` is negative.
const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Backoff between attempts once the component has answered at least once.
const BACKOFF_INITIAL: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Backoff while the component has never answered: it is most likely still
/// starting (the sidecar starts first), so look again soon and often.
const STARTING_BACKOFF_INITIAL: Duration = Duration::from_millis(50);
const STARTING_BACKOFF_MAX: Duration = Duration::from_secs(1);
const BACKOFF_MULTIPLIER: f64 = 1.5;
/// Each delay is randomised by ±50% so that retries of many requests spread out.
const BACKOFF_JITTER: f64 = 0.5;

/// HTTP/2 flow-control windows sized for large bodies (see the server's).
const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;
/// Idle keep-alive connections kept to the component (Go: 256).
const MAX_IDLE_CONNECTIONS: usize = 256;

/// Hop-by-hop headers are never forwarded to the component; `Host` and
/// `Content-Length` are set by the client for the new request.
const NOT_FORWARDED: &[&str] = &[
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Invokes the component at `http://127.0.0.1:<app_port>` over a keep-alive pool
/// (HTTP/1.1) or one multiplexed HTTP/2 connection (`h2c`).
pub struct HttpAppClient {
    transport: Transport,
    base: String,
    timeout: Option<Duration>,
    retry_window: Duration,
    /// Whether the component has ever answered.
    reached: AtomicBool,
    stop: watch::Sender<bool>,
}

enum Transport {
    /// Our own pool (`app_pool.rs`): no task spawned per request.
    Http1(Http1Pool),
    /// hyper-util's client, whose HTTP/2 connection is shared by all requests. What
    /// it starts (the connection, a pipe for each request body) runs in one task of
    /// its own (`streams.rs`), which ends once the client is dropped (`_driver`).
    H2c {
        client: Client<HttpConnector, Full<Bytes>>,
        _driver: oneshot::Sender<()>,
    },
}

impl HttpAppClient {
    pub fn new(config: AppClientConfig) -> Self {
        let transport = if config.h2c {
            let mut connector = HttpConnector::new();
            connector.set_nodelay(true);
            let streams = Streams::default();
            let (driver, dropped) = oneshot::channel::<()>();
            tokio::spawn(streams::serve(dropped, streams.clone()));
            let mut builder = Client::builder(streams);
            builder
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS)
                .http2_only(true)
                .http2_initial_stream_window_size(STREAM_WINDOW)
                .http2_initial_connection_window_size(CONNECTION_WINDOW)
                .http2_max_header_list_size(1024 * 1024);
            Transport::H2c {
                client: builder.build(connector),
                _driver: driver,
            }
        } else {
            Transport::Http1(Http1Pool::new(config.app_port, MAX_IDLE_CONNECTIONS))
        };
        let (timeout, retry_window) = match config.request_retry_limit {
            Some(limit) if limit.is_zero() => (None, Duration::ZERO),
            Some(limit) => (Some(limit), limit),
            None => (None, DEFAULT_RETRY_WINDOW),
        };
        HttpAppClient {
            transport,
            base: format!("http://127.0.0.1:{}", config.app_port),
            timeout,
            retry_window,
            reached: AtomicBool::new(false),
            stop: watch::Sender::new(false),
        }
    }

    /// Makes failing invocations give up at once instead of retrying for the rest
    /// of the retry window (for shutdown: the component may be gone for good).
    pub fn stop_retrying(&self) {
        self.stop.send_replace(true);
    }

    /// The absolute URL of an invocation (HTTP/2 requests and error messages).
    fn url(&self, invocation: &Invocation) -> String {
        let mut url = self.base.clone();
        push_target(&mut url, invocation);
        url
    }

    /// The request target: origin-form (`/path?query`) on HTTP/1.1, where the pool
    /// sets `Host`; absolute for hyper-util's HTTP/2 client.
    fn uri(&self, invocation: &Invocation) -> Result<Uri, AppError> {
        let target = match self.transport {
            Transport::Http1(_) => {
                let mut target = String::with_capacity(
                    invocation.path.len() + invocation.query.as_ref().map_or(0, |q| q.len()) + 2,
                );
                push_target(&mut target, invocation);
                target
            }
            Transport::H2c { .. } => self.url(invocation),
        };
        target.parse().map_err(|e| {
            let url = self.url(invocation);
            AppError::Unreachable(format!("invalid URL {url:?}: {e}"))
        })
    }

    /// One exchange: the request, then the whole response body.
    async fn attempt(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<AppReply, String> {
        let mut request = http::Request::new(Full::new(body));
        *request.method_mut() = method.clone();
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers.clone();
        let (parts, body) = match &self.transport {
            Transport::Http1(pool) => pool.exchange(request).await.map_err(|e| describe(&e))?,
            Transport::H2c { client, .. } => {
                let response = client.request(request).await.map_err(|e| describe(&e))?;
                let (parts, body) = response.into_parts();
                // A body cut short (reset, Content-Length mismatch) is a transport
                // error too.
                let body = body.collect().await.map_err(|e| describe(&e))?.to_bytes();
                (parts, body)
            }
        };
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let (state_update, body, status) = match split_hand_over(&parts, body) {
            Ok(split) => split,
            Err(reason) => return Ok(Reply::text(500, format!("{reason}\n")).into()),
        };
        Ok(AppReply {
            reply: Reply {
                status,
                content_type,
                body,
            },
            state_update,
        })
    }
}

/// Splits an actor method's state writes, handed over with its reply
/// (`kar_protocol::deferred_state`), from the body: (writes, the reply's body, the
/// reply's status). A hand-over that does not add up is an error, never a silently
/// shortened reply.
fn split_hand_over(
    parts: &http::response::Parts,
    body: Bytes,
) -> Result<(Option<Bytes>, Bytes, u16), String> {
    let Some(length) = parts.headers.get(deferred_state::UPDATE_LENGTH) else {
        return Ok((None, body, parts.status.as_u16()));
    };
    let (update, body) = deferred_state::split(body, length.as_bytes())?;
    let status = match parts.headers.get(deferred_state::REPLY_STATUS) {
        None => parts.status.as_u16(),
        Some(status) => status
            .to_str()
            .ok()
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|status| (100..600).contains(status))
            .ok_or_else(|| format!("{} is not a status", deferred_state::REPLY_STATUS))?,
    };
    Ok((Some(update), body, status))
}

#[async_trait]
impl AppClient for HttpAppClient {
    async fn invoke(&self, invocation: &Invocation) -> Result<AppReply, AppError> {
        let method = Method::from_bytes(invocation.method.as_bytes()).map_err(|_| {
            AppError::Unreachable(format!("invalid HTTP method {:?}", invocation.method))
        })?;
        let uri = self.uri(invocation)?;
        let headers = forwarded_headers(&invocation.headers);
        let started = Instant::now();
        let mut backoff = Backoff::new(self.reached.load(Ordering::Relaxed));
        let mut stop = self.stop.subscribe();
        loop {
            let attempt = self.attempt(&method, &uri, &headers, invocation.body.clone());
            let result = match self.timeout {
                Some(timeout) => match tokio::time::timeout(timeout, attempt).await {
                    Ok(result) => result,
                    // A timeout is not an error but a reply (spec §1.3).
                    Err(_) => {
                        return Ok(Reply::new(
                            408,
                            Some("text/plain"),
                            format!("{} \"{}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)", go_op(&method), self.url(invocation)),
                        ).into())
                    }
                },
                None => attempt.await,
            };
            let error = match result {
                Ok(reply) => {
                    self.reached.store(true, Ordering::Relaxed);
                    return Ok(reply);
                }
                Err(error) => format!("{} \"{}\": {error}", go_op(&method), self.url(invocation)),
            };
            let delay = backoff.next();
            if *stop.borrow() || started.elapsed() + delay > self.retry_window {
                tracing::warn!("giving up on the component: {error}");
                return Err(AppError::Unreachable(error));
            }
            tracing::debug!("cannot reach the component (retrying in {delay:?}): {error}");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|stop| *stop) => {
                    return Err(AppError::Unreachable(error));
                }
            }
        }
    }
}

/// Appends `/path[?query]` of an invocation.
fn push_target(out: &mut String, invocation: &Invocation) {
    if !invocation.path.starts_with('/') {
        out.push('/');
    }
    out.push_str(&invocation.path);
    if let Some(query) = &invocation.query {
        out.push('?');
        out.push_str(query);
    }
}

/// The headers of an invocation as a header map; invalid names or values (which
/// an HTTP server would not have accepted in the first place) are skipped.
fn forwarded_headers(headers: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            tracing::debug!("not forwarding invalid header name {name:?}");
            continue;
        };
        if name == HOST || name == CONTENT_LENGTH || NOT_FORWARDED.contains(&name.as_str()) {
            continue;
        }
        let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) else {
            tracing::debug!("not forwarding invalid value of header {name}");
            continue;
        };
        map.append(name, value);
    }
    map
}

/// Go's `url.Error` operation name: `Post`, `Get`, ...
fn go_op(method: &Method) -> String {
    let method = method.as_str();
    let mut chars = method.chars();
    match chars.next() {
        Some(first) => first.to_string() + &chars.as_str().to_ascii_lowercase(),
        None => String::new(),
    }
}

/// An error and its chain of causes on one line.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their cause in their own message.
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Exponential backoff with jitter (cenkalti/backoff semantics as in Go KAR).
struct Backoff {
    interval: Duration,
    max: Duration,
}

impl Backoff {
    fn new(reached: bool) -> Self {
        if reached {
            Backoff {
                interval: BACKOFF_INITIAL,
                max: BACKOFF_MAX,
            }
        } else {
            Backoff {
                interval: STARTING_BACKOFF_INITIAL,
                max: STARTING_BACKOFF_MAX,
            }
        }
    }

    fn next(&mut self) -> Duration {
        let factor = rand::rng().random_range(1.0 - BACKOFF_JITTER..=1.0 + BACKOFF_JITTER);
        let delay = self.interval.mul_f64(factor);
        self.interval = self.interval.mul_f64(BACKOFF_MULTIPLIER).min(self.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_op_names() {
        assert_eq!(go_op(&Method::POST), "Post");
        assert_eq!(go_op(&Method::DELETE), "Delete");
    }

    #[test]
    fn backoff_grows_to_its_cap() {
        let mut backoff = Backoff::new(true);
        let first = backoff.next();
        assert!(first >= Duration::from_millis(250) && first <= Duration::from_millis(750));
        for _ in 0..100 {
            assert!(backoff.next() <= BACKOFF_MAX.mul_f64(1.0 + BACKOFF_JITTER));
        }
        let mut starting = Backoff::new(false);
        assert!(starting.next() <= Duration::from_millis(75));
    }

    #[test]
    fn skips_connection_headers() {
        let headers = forwarded_headers(&[
            ("Host".into(), "x".into()),
            ("content-length".into(), "3".into()),
            ("Connection".into(), "close".into()),
            ("X-A".into(), "1".into()),
            ("bad name".into(), "1".into()),
            ("x-b".into(), "bad\nvalue".into()),
        ]);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers["x-a"], "1");
    }
}
