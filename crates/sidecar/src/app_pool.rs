//! The keep-alive pool of HTTP/1.1 connections to the component. hyper-util's pooled
//! client spawns a task per request to put the connection back once the response has
//! been read, and goes through its generic checkout (pool keys, waiters) on every
//! request; the component is one fixed address, so here the idle connections are a
//! stack: a request takes the most recently used one (or connects), and puts it back
//! once its response was read in full. A request abandoned half-way (a timeout, an
//! operator's kill) drops its connection instead, which closes it.

use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Mutex;
use tokio::net::TcpStream;

/// Why an exchange failed; the text follows hyper-util's (`describe` in `app.rs`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("client error (Connect): tcp connect error: {0}")]
    Connect(#[source] std::io::Error),
    #[error("client error (SendRequest): {0}")]
    Http(#[source] hyper::Error),
}

pub(crate) struct Http1Pool {
    addr: SocketAddr,
    host: HeaderValue,
    max_idle: usize,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Http1Pool {
    pub(crate) fn new(port: u16, max_idle: usize) -> Self {
        Http1Pool {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            host: HeaderValue::from_maybe_shared(Bytes::from(format!("127.0.0.1:{port}")))
                .unwrap_or_else(|_| HeaderValue::from_static("127.0.0.1")),
            max_idle,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `request` (origin-form URI) and reads the whole response body.
    pub(crate) async fn exchange(
        &self,
        mut request: http::Request<Full<Bytes>>,
    ) -> Result<(http::response::Parts, Bytes), ExchangeError> {
        request.headers_mut().insert(HOST, self.host.clone());
        loop {
            let (mut sender, reused) = match self.checkout() {
                Some(sender) => (sender, true),
                None => (self.connect().await?, false),
            };
            if let Err(e) = sender.ready().await {
                // An idle connection the component closed meanwhile: try the next one.
                if reused {
                    continue;
                }
                return Err(ExchangeError::Http(e));
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    let body = body.collect().await.map_err(ExchangeError::Http)?;
                    self.checkin(sender);
                    return Ok((parts, body.to_bytes()));
                }
                Err(mut e) => match e.take_message() {
                    // Not written: a reused connection closed under it, as hyper-util
                    // retries too.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(ExchangeError::Http(e.into_error())),
                },
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<SendRequest<Full<Bytes>>>> {
        // A poisoned stack only held connections: keep using it.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used idle connection that is ready for a request; if none
    /// is ready yet (each was put back the moment its response was read, before its
    /// connection task caught up), the most recent one, to wait for.
    fn checkout(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.lock();
        idle.retain(|sender| !sender.is_closed());
        match idle.iter().rposition(|sender| sender.is_ready()) {
            Some(ready) => Some(idle.swap_remove(ready)),
            None => idle.pop(),
        }
    }

    fn checkin(&self, sender: SendRequest<Full<Bytes>>) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(sender);
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ExchangeError> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(ExchangeError::Connect)?;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(ExchangeError::Http)?;
        // One task per connection, for as long as it lives.
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection to the component ended: {e}");
            }
        });
        Ok(sender)
    }
}
