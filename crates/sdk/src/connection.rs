//! The one HTTP/2 connection (h2c with prior knowledge) a [`crate::Client`] keeps to
//! its sidecar: opened on first use, shared by every request, re-opened if it breaks.
//!
//! A pooling client may open a second connection when requests race the first
//! handshake; holding the slot's lock while connecting makes "one connection"
//! a guarantee rather than a likelihood.

use crate::error::{Error, Result};
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::Mutex;

/// HTTP/2 flow-control windows large enough that big bodies are not throttled by
/// window updates (the sidecar uses the same sizes).
const STREAM_WINDOW: u32 = 8 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 32 * 1024 * 1024;

pub(crate) struct Connection {
    port: u16,
    sender: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl Connection {
    pub(crate) fn new(port: u16) -> Connection {
        Connection {
            port,
            sender: Mutex::new(None),
        }
    }

    /// Sends one request. A request that could not be sent because the connection
    /// had just closed is sent again once on a new connection (it never reached the
    /// sidecar, so this cannot duplicate it).
    pub(crate) async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<http::Response<Incoming>> {
        let mut sender = self.sender(false).await?;
        if sender.ready().await.is_err() {
            sender = self.sender(true).await?;
            sender
                .ready()
                .await
                .map_err(|e| Error::Transport(describe(&e)))?;
        }
        sender
            .send_request(request)
            .await
            .map_err(|e| Error::Transport(describe(&e)))
    }

    async fn sender(&self, reconnect: bool) -> Result<SendRequest<Full<Bytes>>> {
        let mut slot = self.sender.lock().await;
        if let Some(sender) = slot.as_ref() {
            if !reconnect && !sender.is_closed() {
                return Ok(sender.clone());
            }
        }
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .map_err(|e| {
                Error::Transport(format!(
                    "cannot connect to the sidecar on port {}: {e}",
                    self.port
                ))
            })?;
        // Small request/answer exchanges: without this, Nagle's algorithm and delayed
        // ACKs add tens of milliseconds to every call.
        stream
            .set_nodelay(true)
            .map_err(|e| Error::Transport(format!("cannot configure the connection: {e}")))?;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .initial_stream_window_size(STREAM_WINDOW)
            .initial_connection_window_size(CONNECTION_WINDOW)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Error::Transport(describe(&e)))?;
        tokio::spawn(async move {
            // Ends when the sidecar closes the connection; the next request reconnects.
            if let Err(e) = connection.await {
                tracing::debug!("connection to the sidecar ended: {e}");
            }
        });
        *slot = Some(sender.clone());
        Ok(sender)
    }
}

/// An error with its chain of causes on one line.
pub(crate) fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
