//! The component host: serves the app-side contract of spec §3 (`/kar/impl/v1/...`)
//! and plain service routes, over HTTP/1.1 and h2c on one port.

use crate::actor::{ActorHandle, State};
use crate::client::{Client, Response, KAR_JSON};
use crate::error::{Error, Result};
use async_trait::async_trait;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::Method;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

const ACTOR_PREFIX: &str = "/kar/impl/v1/actor/";
const HEALTH: &str = "/kar/impl/v1/system/health";
const TEXT: &str = "text/plain; charset=utf-8";
/// The sidecar multiplexes every request to the component on one HTTP/2 connection
/// with `-h2c`, some of them blocked for minutes in re-entrant chains.
const MAX_CONCURRENT_STREAMS: u32 = 100_000;
/// How long [`ServerHandle::shutdown`] waits for requests in progress.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// An actor type's behaviour. One value per active instance (type, id), made by the
/// type's factory (see [`Server::actor`]) when the runtime activates the instance.
///
/// Methods take `&self`: the runtime runs one flow at a time per instance, but within
/// that flow a method may be re-entered (A calls B, which calls A back), so an
/// instance is shared while its methods run. Keep in-memory state behind a
/// `std::sync::Mutex` (never held across an `.await`) or in the actor's persistent
/// [`State`].
///
/// ```
/// use kar_sdk::{async_trait, Actor, Context, Error, Outcome};
/// use serde_json::Value;
/// use std::sync::Mutex;
///
/// #[derive(Default)]
/// struct Counter {
///     count: Mutex<i64>,
/// }
///
/// #[async_trait]
/// impl Actor for Counter {
///     async fn invoke(&self, _ctx: &Context, method: &str, args: Vec<Value>) -> Result<Outcome, Error> {
///         match method {
///             "add" => {
///                 let by = args.first().and_then(Value::as_i64).unwrap_or(1);
///                 let mut count = self.count.lock().unwrap();
///                 *count += by;
///                 Outcome::value(*count)
///             }
///             other => Err(Error::no_such_method(other)),
///         }
///     }
/// }
/// ```
#[async_trait]
pub trait Actor: Send + Sync + 'static {
    /// Runs when the instance is activated, before its first method. An error fails
    /// the activation: the caller gets the error and the next request tries again.
    async fn activate(&self, ctx: &Context) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Runs when the instance is deactivated (idle, or removed).
    async fn deactivate(&self, ctx: &Context) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Runs method `method` with the caller's arguments. Return
    /// [`Error::no_such_method`] for methods the type does not have; any other error
    /// reaches the caller as [`Error::Failed`].
    async fn invoke(&self, ctx: &Context, method: &str, args: Vec<Value>) -> Result<Outcome>;
}

/// What an actor method produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A result for the caller.
    Value(Value),
    /// No result (the caller gets `null`; on the wire a `204`).
    Void,
    /// Continue the same request with another method (spec §4.3).
    TailCall(TailCall),
}

impl Outcome {
    /// `Outcome::Value` of anything serializable.
    pub fn value(value: impl serde::Serialize) -> Result<Outcome> {
        serde_json::to_value(value)
            .map(Outcome::Value)
            .map_err(Error::Encode)
    }
}

/// The continuation of a tail call (spec §4.3): the runtime continues the same request
/// (same caller waiting, same flow) with this target instead of answering.
#[derive(Clone, Debug, PartialEq)]
pub enum TailCall {
    /// Another actor method (possibly of the same instance).
    Actor {
        /// Target type.
        actor_type: String,
        /// Target id.
        id: String,
        /// Target method.
        method: String,
        /// Its arguments.
        args: Vec<Value>,
        /// Release the instance lock first (only matters for the same instance: by
        /// default the lock is handed over, so no other flow can run in between).
        release_lock: bool,
    },
    /// A service: `POST` to `path` with `body` as JSON. A `200` answer is the
    /// caller's result.
    Service {
        /// The service name.
        service: String,
        /// The path on the service.
        path: String,
        /// The body, sent as JSON.
        body: Value,
    },
}

impl TailCall {
    /// Continue with `method(args)` of actor (`actor_type`, `id`).
    pub fn actor(actor_type: &str, id: &str, method: &str, args: Vec<Value>) -> TailCall {
        TailCall::Actor {
            actor_type: actor_type.to_string(),
            id: id.to_string(),
            method: method.to_string(),
            args,
            release_lock: false,
        }
    }

    /// Like [`TailCall::actor`], releasing the instance lock first.
    pub fn actor_releasing_lock(
        actor_type: &str,
        id: &str,
        method: &str,
        args: Vec<Value>,
    ) -> TailCall {
        TailCall::Actor {
            actor_type: actor_type.to_string(),
            id: id.to_string(),
            method: method.to_string(),
            args,
            release_lock: true,
        }
    }

    /// Continue with `POST path` of `service`, `body` as JSON.
    pub fn service(service: &str, path: &str, body: Value) -> TailCall {
        TailCall::Service {
            service: service.to_string(),
            path: path.to_string(),
            body,
        }
    }

    /// The `{"tailCall":true,"value":{...}}` envelope of spec §3.3.
    fn envelope(&self) -> Value {
        let value = match self {
            TailCall::Actor {
                actor_type,
                id,
                method,
                args,
                release_lock,
            } => {
                let mut value = json!({
                    "actorType": actor_type,
                    "actorId": id,
                    "path": format!("/{}", method.trim_start_matches('/')),
                    "payload": Value::Array(args.clone()).to_string(),
                });
                if *release_lock {
                    value["releaseLock"] = json!("true");
                }
                value
            }
            TailCall::Service {
                service,
                path,
                body,
            } => json!({
                "serviceName": service,
                "path": format!("/{}", path.trim_start_matches('/')),
                "payload": body.to_string(),
                "method": "POST",
            }),
        };
        json!({"tailCall": true, "value": value})
    }
}

/// What an actor method knows of its invocation: the instance, the session, and a
/// [`Client`] whose actor calls made through [`Context::actor`] stay in this flow.
#[derive(Clone, Debug)]
pub struct Context {
    actor_type: String,
    id: String,
    session: Option<String>,
    client: Client,
}

impl Context {
    /// The type of the instance running.
    pub fn actor_type(&self) -> &str {
        &self.actor_type
    }

    /// The id of the instance running.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The session (`<flow>:<request>`) the runtime passed, if any (deactivations have
    /// none).
    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The client of the sidecar (calls made with it directly start new flows).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A handle on another actor whose calls carry this session: they may re-enter
    /// instances this flow holds (A→B→A).
    pub fn actor(&self, actor_type: &str, id: &str) -> ActorHandle {
        ActorHandle::new(self.client.clone(), actor_type, id, self.session.clone())
    }

    /// A handle on this very instance, in this session.
    pub fn this(&self) -> ActorHandle {
        self.actor(&self.actor_type, &self.id)
    }

    /// This instance's persistent state.
    pub fn state(&self) -> State {
        self.this().state()
    }
}

/// A service request as a [`Server`] route handler sees it.
#[derive(Clone, Debug)]
pub struct ServiceRequest {
    /// The HTTP method.
    pub method: String,
    /// The path (percent-encoded as received), e.g. `/helloText`.
    pub path: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Bytes,
    /// The client of the sidecar, for calls the handler makes.
    pub client: Client,
}

impl ServiceRequest {
    /// The body decoded from JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode(format!("request body: {e}")))
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Factory = Arc<dyn Fn(&str) -> Box<dyn Actor> + Send + Sync>;
type HandlerFuture = Pin<Box<dyn Future<Output = Result<Response>> + Send>>;
type Handler = Arc<dyn Fn(ServiceRequest) -> HandlerFuture + Send + Sync>;

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
        let task = tokio::spawn(accept_loop(listener, host, stop_rx));
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

/// The served component.
struct Host {
    factories: HashMap<String, Factory>,
    routes: HashMap<String, HashMap<String, Handler>>,
    instances: Mutex<HashMap<(String, String), Arc<dyn Actor>>>,
    client: Client,
}

async fn accept_loop(listener: TcpListener, host: Arc<Host>, mut stop: watch::Receiver<bool>) {
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

fn into_http(response: Response) -> http::Response<Full<Bytes>> {
    let mut http = http::Response::new(Full::new(response.body));
    *http.status_mut() = http::StatusCode::from_u16(response.status)
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(content_type) = response.content_type {
        if let Ok(value) = http::HeaderValue::from_str(&content_type) {
            http.headers_mut().insert(CONTENT_TYPE, value);
        }
    }
    http
}

fn text(status: u16, body: impl Into<String>) -> Response {
    Response::new(status, Some(TEXT), body.into())
}

fn decode_segment(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// The decoded `session` parameter of a query string.
fn session_of(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("session="))
        .map(|value| decode_segment(&value.replace('+', " ")))
}

/// Runs `future` in its own task so that a panic in user code becomes an error
/// answer instead of tearing down the connection (and every stream on it).
async fn catch_panic<T: Send + 'static>(
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
fn error_envelope(status: u16, error: &Error, location: &str) -> Response {
    let message = error.to_string();
    let stack = match error {
        Error::Failed { stack, .. } if !stack.is_empty() => stack.clone(),
        _ => format!("Error: {message}\n    at {location}"),
    };
    let body = json!({"error": true, "message": message, "stack": stack});
    Response::new(status, Some(KAR_JSON), body.to_string())
}

impl Host {
    async fn handle(self: Arc<Self>, request: http::Request<Incoming>) -> Response {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) => return text(400, format!("cannot read the request body: {e}")),
        };
        let path = parts.uri.path();
        if let Some(rest) = path.strip_prefix(ACTOR_PREFIX) {
            let session = session_of(parts.uri.query());
            return self.actor_route(&parts.method, rest, session, body).await;
        }
        if path == HEALTH && parts.method == Method::GET {
            return text(200, "Peachy Keen!");
        }
        let Some(methods) = self.routes.get(path) else {
            return text(404, format!("no route for {} {path}", parts.method));
        };
        let Some(handler) = methods.get(parts.method.as_str()) else {
            return text(405, format!("{} is not supported on {path}", parts.method));
        };
        let request = ServiceRequest {
            method: parts.method.to_string(),
            path: path.to_string(),
            query: parts.uri.query().map(str::to_string),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body,
            client: self.client.clone(),
        };
        match catch_panic(handler(request)).await {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!("service handler for {} {path} failed: {e}", parts.method);
                text(500, e.to_string())
            }
        }
    }

    /// `/kar/impl/v1/actor/` + `rest` (spec §3.1–3.4).
    async fn actor_route(
        self: Arc<Self>,
        method: &Method,
        rest: &str,
        session: Option<String>,
        body: Bytes,
    ) -> Response {
        let mut segments = rest.splitn(3, '/');
        let actor_type = decode_segment(segments.next().unwrap_or_default());
        let id = segments.next().map(decode_segment);
        let name = segments.next().map(|name| {
            name.split('/')
                .map(decode_segment)
                .collect::<Vec<_>>()
                .join("/")
        });
        let Some(factory) = self.factories.get(&actor_type).cloned() else {
            return text(404, format!("no actor type {actor_type}"));
        };
        let ctx = |id: &str| Context {
            actor_type: actor_type.clone(),
            id: id.to_string(),
            session: session.clone(),
            client: self.client.clone(),
        };
        match (method.as_str(), id, name) {
            ("HEAD", None, None) => Response::empty(200),
            ("GET", Some(id), None) => {
                if self.instance(&actor_type, &id).is_some() {
                    return text(200, "existing instance");
                }
                match self.activate(&factory, ctx(&id)).await {
                    Ok(_) => text(201, "activated"),
                    Err(response) => response,
                }
            }
            ("DELETE", Some(id), None) => {
                let removed = self
                    .instances
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&(actor_type.clone(), id.clone()));
                let Some(actor) = removed else {
                    return text(404, format!("no actor with type {actor_type} and id {id}"));
                };
                let ctx = ctx(&id);
                match catch_panic(async move { actor.deactivate(&ctx).await }).await {
                    Ok(()) => text(200, "deleted"),
                    Err(e) => {
                        tracing::warn!("deactivation of {actor_type} {id} failed: {e}");
                        text(500, format!("deactivation failed: {e}"))
                    }
                }
            }
            ("POST", Some(id), Some(name)) if !name.is_empty() => {
                let args = match parse_args(&body) {
                    Ok(args) => args,
                    Err(reason) => return text(400, reason),
                };
                // The runtime activates before the first method; if this process
                // lost the instance (it restarted), activate it again here.
                let actor = match self.instance(&actor_type, &id) {
                    Some(actor) => actor,
                    None => match self.activate(&factory, ctx(&id)).await {
                        Ok(actor) => actor,
                        Err(response) => return response,
                    },
                };
                let ctx = ctx(&id);
                let method = name.clone();
                let outcome =
                    catch_panic(async move { actor.invoke(&ctx, &method, args).await }).await;
                match outcome {
                    Ok(Outcome::Value(value)) => {
                        Response::new(200, Some(KAR_JSON), json!({ "value": value }).to_string())
                    }
                    Ok(Outcome::Void) => Response::empty(204),
                    Ok(Outcome::TailCall(tail)) => {
                        Response::new(200, Some(KAR_JSON), tail.envelope().to_string())
                    }
                    Err(Error::NoSuchMethod { method }) => text(
                        404,
                        format!("no {method} in actor with type {actor_type} and id {id}"),
                    ),
                    Err(e) => error_envelope(200, &e, &format!("{actor_type}[{id}].{name}")),
                }
            }
            _ => text(404, format!("no route for {method} {ACTOR_PREFIX}{rest}")),
        }
    }

    fn instance(&self, actor_type: &str, id: &str) -> Option<Arc<dyn Actor>> {
        self.instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(actor_type.to_string(), id.to_string()))
            .cloned()
    }

    /// Makes and activates the instance of `ctx`; a failure is the answer to relay
    /// (status ≥ 400, so the runtime counts the activation as failed and retries it
    /// with the next request).
    async fn activate(&self, factory: &Factory, ctx: Context) -> Result<Arc<dyn Actor>, Response> {
        let actor: Arc<dyn Actor> = Arc::from(factory(&ctx.id));
        let key = (ctx.actor_type.clone(), ctx.id.clone());
        let location = format!("{}[{}].activate", ctx.actor_type, ctx.id);
        let activating = actor.clone();
        if let Err(e) = catch_panic(async move { activating.activate(&ctx).await }).await {
            tracing::warn!("activation of {location} failed: {e}");
            let e = Error::msg(format!("activation failed: {e}"));
            return Err(error_envelope(500, &e, &location));
        }
        let mut instances = self
            .instances
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Should two activations have raced, the first one stays.
        Ok(instances.entry(key).or_insert(actor).clone())
    }
}

/// The arguments of a method invocation: a JSON array, the Python SDK's
/// `{"args": [...], "kwargs": {...}}` (kwargs are dropped), or nothing.
fn parse_args(body: &[u8]) -> std::result::Result<Vec<Value>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(args)) => Ok(args),
        Ok(Value::Object(mut map)) => match map.remove("args") {
            Some(Value::Array(args)) => Ok(args),
            _ => Err("actor arguments must be a JSON array".to_string()),
        },
        Ok(_) => Err("actor arguments must be a JSON array".to_string()),
        Err(_) => Err("message data not in JSON format".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_call_envelopes() {
        let tail = TailCall::actor("T", "1", "m", vec![json!(1), json!("x")]);
        assert_eq!(
            tail.envelope(),
            json!({"tailCall": true, "value": {"actorType": "T", "actorId": "1", "path": "/m", "payload": "[1,\"x\"]"}})
        );
        let release = TailCall::actor_releasing_lock("T", "1", "m", vec![]);
        assert_eq!(release.envelope()["value"]["releaseLock"], "true");
        let service = TailCall::service("svc", "echo", json!({"a": 1}));
        assert_eq!(
            service.envelope(),
            json!({"tailCall": true, "value": {"serviceName": "svc", "path": "/echo", "payload": "{\"a\":1}", "method": "POST"}})
        );
    }

    #[test]
    fn arguments() {
        assert_eq!(parse_args(b"").unwrap(), Vec::<Value>::new());
        assert_eq!(parse_args(b"[1,2]").unwrap(), vec![json!(1), json!(2)]);
        assert_eq!(
            parse_args(br#"{"args":[3],"kwargs":{}}"#).unwrap(),
            vec![json!(3)]
        );
        assert!(parse_args(b"5").is_err());
        assert!(parse_args(b"nope").is_err());
    }

    #[test]
    fn sessions() {
        assert_eq!(
            session_of(Some("a=1&session=flow-1%3Areq-2")),
            Some("flow-1:req-2".to_string())
        );
        assert_eq!(session_of(Some("a=1")), None);
        assert_eq!(session_of(None), None);
    }
}
