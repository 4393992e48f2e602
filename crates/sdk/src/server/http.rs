//! HTTP plumbing of the component host: the accept loop (HTTP/1.1 and h2c on one
//! port, graceful drain), conversion of answers to hyper responses, and the helpers
//! every route uses (plain-text answers, the error envelope, panic isolation).

use super::host::{Answer, Host};
use crate::client::{Response, KAR_JSON};
use crate::error::{Error, Result};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use kar_protocol::deferred_state;
use percent_encoding::percent_decode_str;
use serde_json::json;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

const TEXT: &str = "text/plain; charset=utf-8";
/// The sidecar multiplexes every request to the component on one HTTP/2 connection
/// with `-h2c`, some of them blocked for minutes in re-entrant chains.
const MAX_CONCURRENT_STREAMS: u32 = 100_000;
/// How long [`super::ServerHandle::shutdown`] waits for requests in progress.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub(super) async fn accept_loop(
    listener: TcpListener,
    host: Arc<Host>,
    mut stop: watch::Receiver<bool>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true);
    builder
        .http2()
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            // `Err`: the handle was dropped without `shutdown`; keep serving.
            Ok(_) = stop.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // E.g. out of file descriptors: wait a little instead of spinning.
                tracing::error!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let host = host.clone();
        let service = service_fn(move |request| {
            let host = host.clone();
            async move { Ok::<_, Infallible>(into_http(host.handle(request).await)) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("component connection ended: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in progress after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
}

fn into_http(answer: Answer) -> http::Response<Full<Bytes>> {
    let Answer {
        response,
        state_update,
    } = answer;
    let mut status = response.status;
    let mut headers = http::HeaderMap::new();
    let body = match state_update {
        None => response.body,
        // The held state writes first, then the reply (see `held.rs`).
        Some(update) => {
            headers.insert(deferred_state::UPDATE_LENGTH, update.len().into());
            if status == 204 {
                headers.insert(deferred_state::REPLY_STATUS, status.into());
                status = 200;
            }
            let mut body = Vec::with_capacity(update.len() + response.body.len());
            body.extend_from_slice(&update);
            body.extend_from_slice(&response.body);
            Bytes::from(body)
        }
    };
    let mut http = http::Response::new(Full::new(body));
    *http.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(content_type) = response.content_type {
        if let Ok(value) = http::HeaderValue::from_str(&content_type) {
            headers.insert(CONTENT_TYPE, value);
        }
    }
    *http.headers_mut() = headers;
    http
}

pub(super) fn text(status: u16, body: impl Into<String>) -> Response {
    Response::new(status, Some(TEXT), body.into())
}

pub(super) fn decode_segment(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// Runs `future` in its own task so that a panic in user code becomes an error
/// answer instead of tearing down the connection (and every stream on it).
pub(super) async fn catch_panic<T: Send + 'static>(
    future: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    match tokio::spawn(future).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(Error::msg(format!("panicked: {}", panic_text(e)))),
        Err(e) => Err(Error::msg(format!("cancelled: {e}"))),
    }
}

fn panic_text(error: tokio::task::JoinError) -> String {
    let payload = error.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

/// The `{"error":true,...}` envelope of a failed method (spec §3.3).
pub(super) fn error_envelope(status: u16, error: &Error, location: &str) -> Response {
    let message = error.to_string();
    let stack = match error {
        Error::Failed { stack, .. } if !stack.is_empty() => stack.clone(),
        _ => format!("Error: {message}\n    at {location}"),
    };
    let body = json!({"error": true, "message": message, "stack": stack});
    Response::new(status, Some(KAR_JSON), body.to_string())
}
