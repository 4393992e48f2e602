//! The component host: serves the app-side contract of spec §3 (`/kar/impl/v1/...`)
//! and plain service routes, over HTTP/1.1 and h2c on one port.
//!
//! * `mod.rs`: the [`Server`] builder and the [`ServerHandle`] of a running one;
//! * [`actor`]: what an actor type implements and sees ([`Actor`], [`Context`],
//!   [`Outcome`], [`TailCall`]);
//! * [`service`]: what a service route sees ([`ServiceRequest`]);
//! * [`host`]: dispatch of each request to an actor instance or a route;
//! * [`http`]: the accept loop and the HTTP helpers the routes share.

mod actor;
mod host;
mod http;
mod service;

pub use actor::{Actor, Context, Outcome, TailCall};
pub use service::ServiceRequest;

use crate::client::{Client, Response};
use crate::error::{Error, Result};
use host::Host;
use service::Handler;
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Makes the instance of an id of one actor type.
type Factory = Arc<dyn Fn(&str) -> Box<dyn Actor> + Send + Sync>;

/// A component: actor types and service routes, served to the sidecar on
/// `127.0.0.1:$KAR_APP_PORT` over HTTP/1.1 and h2c (so `kar run` works with and
/// without `-h2c`).
///
/// ```no_run
/// use kar_sdk::{Response, Server};
///
/// # async fn demo() -> kar_sdk::Result<()> {
/// Server::new()
///     .route("POST", "/helloText", |request| async move {
///         let name: String = request.json()?;
///         Ok(Response::text(format!("Hello {name}")))
///     })
///     .run()
///     .await
/// # }
/// ```
#[derive(Default)]
pub struct Server {
    factories: HashMap<String, Factory>,
    /// path → upper-case method → handler
    routes: HashMap<String, HashMap<String, Handler>>,
}

impl Server {
    /// A component with no actor types and no routes.
    pub fn new() -> Server {
        Server::default()
    }

    /// Hosts actor type `actor_type`; `factory` makes the instance of an id when the
    /// runtime activates it.
    ///
    /// ```
    /// # use kar_sdk::{async_trait, Actor, Context, Outcome, Error};
    /// # struct Account { id: String }
    /// # #[async_trait]
    /// # impl Actor for Account {
    /// #     async fn invoke(&self, _: &Context, m: &str, _: Vec<serde_json::Value>) -> Result<Outcome, Error> {
    /// #         Err(Error::no_such_method(m))
    /// #     }
    /// # }
    /// let server = kar_sdk::Server::new()
    ///     .actor("Account", |id| Box::new(Account { id: id.to_string() }));
    /// ```
    pub fn actor<F>(mut self, actor_type: &str, factory: F) -> Server
    where
        F: Fn(&str) -> Box<dyn Actor> + Send + Sync + 'static,
    {
        self.factories
            .insert(actor_type.to_string(), Arc::new(factory));
        self
    }

    /// Serves `path` (exact match, without query) for HTTP method `method` with
    /// `handler`. An error from the handler becomes a `500` with its message.
    pub fn route<F, Fut>(mut self, method: &str, path: &str, handler: F) -> Server
    where
        F: Fn(ServiceRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Response>> + Send + 'static,
    {
        let method = method.to_ascii_uppercase();
        let handler: Handler = Arc::new(move |request| Box::pin(handler(request)));
        self.routes
            .entry(path.to_string())
            .or_default()
            .insert(method, handler);
        self
    }

    /// Serves on `listener` until [`ServerHandle::shutdown`]; actor methods and handlers
    /// reach the sidecar through `client`.
    pub fn serve(self, listener: TcpListener, client: Client) -> ServerHandle {
        let local_addr = listener.local_addr().ok();
        let host = Arc::new(Host {
            factories: self.factories,
            routes: self.routes,
            instances: Mutex::new(HashMap::new()),
            client,
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(http::accept_loop(listener, host, stop_rx));
        ServerHandle {
            stop,
            task,
            local_addr,
        }
    }

    /// Binds `$KAR_APP_HOST` (default `127.0.0.1`) : `$KAR_APP_PORT` (default 8080) and
    /// serves there, with [`Client::from_env`]. Returns once listening.
    pub async fn start(self) -> Result<ServerHandle> {
        let client = Client::from_env()?;
        let port = match std::env::var("KAR_APP_PORT") {
            Ok(port) => port
                .trim()
                .parse::<u16>()
                .map_err(|_| Error::Config(format!("KAR_APP_PORT={port:?} is not a port")))?,
            Err(_) => 8080,
        };
        let host = std::env::var("KAR_APP_HOST").unwrap_or_else(|_| "127.0.0.1".to_string());
        let listener = TcpListener::bind((host.as_str(), port)).await?;
        Ok(self.serve(listener, client))
    }

    /// [`Server::start`], then serves until the process gets Ctrl-C or `SIGTERM`.
    pub async fn run(self) -> Result<()> {
        let handle = self.start().await?;
        wait_for_signal().await;
        handle.shutdown().await;
        Ok(())
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                return;
            }
            Err(e) => tracing::warn!("cannot watch SIGTERM: {e}"),
        }
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!("cannot watch Ctrl-C ({e}); serving until killed");
        std::future::pending::<()>().await;
    }
}

/// A running [`Server`].
pub struct ServerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    local_addr: Option<SocketAddr>,
}

impl ServerHandle {
    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Stops accepting connections and waits (up to 10 s) for requests in progress.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        if let Err(e) = self.task.await {
            tracing::error!("the component server task failed: {e}");
        }
    }
}
