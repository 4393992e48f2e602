//! The keep-alive pool of HTTP/1.1 connections to the component. hyper-util's pooled
//! client spawns a task per request to put the connection back once the response has
//! been read, and goes through its generic checkout (pool keys, waiters) on every
//! request; the component is one fixed address, so here the idle connections are a
//! stack: a request takes the most recently used one (or connects), and puts it back
//! once its response was read in full. A request abandoned half-way (a timeout, an
//! operator's kill) drops its connection instead, which closes it.
//!
//! No task per connection either: the request's own task polls the connection (hyper's
//! `Connection` future, which writes the request and reads the response) next to the
//! exchange. With a connection task, each call crossed tasks twice (the request handed
//! to it, the response handed back), usually between worker threads: ~25 µs of a
//! ~85 µs exchange on a loaded 2-core host (`bench/examples/hop_floor.rs`, issue 11).
//! An idle connection is polled by nobody: a component that closed it is noticed when
//! it is next taken (its connection future ends before the request was written), and
//! the request goes to the next one, as hyper-util retries too.

use crate::turn::Turn;
use bytes::Bytes;
use http::header::{HeaderValue, HOST};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::Mutex;
use std::task::Poll;
use tokio::net::TcpStream;

/// Why an exchange failed; the text follows hyper-util's (`describe` in `app.rs`).
#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    #[error("client error (Connect): tcp connect error: {0}")]
    Connect(#[source] std::io::Error),
    #[error("client error (SendRequest): {0}")]
    Http(#[source] hyper::Error),
}

/// How one attempt on one connection failed.
enum Attempt {
    /// The request was not written: it can go to another connection.
    Unsent(Box<http::Request<Full<Bytes>>>, hyper::Error),
    Failed(ExchangeError),
}

/// One connection: the handle requests go through and the future that does its I/O.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
    io: Connection<TokioIo<TcpStream>, Full<Bytes>>,
    /// Polls `sender`'s exchange and `io` together (`turn.rs`), for every exchange
    /// on this connection.
    turn: Turn,
}

pub(crate) struct Http1Pool {
    addr: SocketAddr,
    host: HeaderValue,
    max_idle: usize,
    idle: Mutex<Vec<Conn>>,
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
            let (conn, reused) = match self.checkout() {
                Some(conn) => (conn, true),
                None => (self.connect().await?, false),
            };
            let Conn {
                mut sender,
                io,
                turn,
            } = conn;
            let mut io = Some(io);
            let result = {
                let mut exchange = pin!(async {
                    if let Err(e) = sender.ready().await {
                        return Err(Attempt::Unsent(Box::new(request), e));
                    }
                    match sender.try_send_request(request).await {
                        Ok(response) => {
                            let (parts, body) = response.into_parts();
                            let body = body
                                .collect()
                                .await
                                .map_err(|e| Attempt::Failed(ExchangeError::Http(e)))?;
                            Ok((parts, body.to_bytes()))
                        }
                        Err(mut e) => Err(match e.take_message() {
                            Some(unsent) => Attempt::Unsent(Box::new(unsent), e.into_error()),
                            None => Attempt::Failed(ExchangeError::Http(e.into_error())),
                        }),
                    }
                });
                // The request and the connection wake each other (the request
                // handed over, the response read): both in one turn of the task.
                // The connection first: a connection the component closed while
                // idle ends here, before the request is handed to it.
                poll_fn(|cx| {
                    turn.poll(cx, |cx| {
                        if let Some(running) = io.as_mut() {
                            if let Poll::Ready(ended) = Pin::new(running).poll(cx) {
                                if let Err(e) = ended {
                                    tracing::debug!("connection to the component ended: {e}");
                                }
                                // Dropped at once: hyper then fails the exchange,
                                // handing back a request it had not written.
                                io = None;
                            }
                        }
                        exchange.as_mut().poll(cx)
                    })
                })
                .await
            };
            match result {
                Ok(reply) => {
                    if let Some(io) = io {
                        self.checkin(Conn { sender, io, turn });
                    }
                    return Ok(reply);
                }
                // Not written: a reused connection the component closed meanwhile;
                // try the next one.
                Err(Attempt::Unsent(unsent, _)) if reused => request = *unsent,
                Err(Attempt::Unsent(_, e)) => return Err(ExchangeError::Http(e)),
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Conn>> {
        // A poisoned stack only held connections: keep using it.
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The most recently used idle connection.
    fn checkout(&self) -> Option<Conn> {
        self.lock().pop()
    }

    fn checkin(&self, conn: Conn) {
        if conn.sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    async fn connect(&self) -> Result<Conn, ExchangeError> {
        let stream = TcpStream::connect(self.addr)
            .await
            .map_err(ExchangeError::Connect)?;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("cannot set TCP_NODELAY: {e}");
        }
        let (sender, io) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(ExchangeError::Http)?;
        Ok(Conn {
            sender,
            io,
            turn: Turn::default(),
        })
    }
}
