//! Shared test harness: a tiny in-process component (hyper, HTTP/1.1 and h2c), a real
//! runtime on the embedded store serving `/kar/v1`, and real HTTP clients.
#![allow(dead_code)]

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use kar_protocol::paths::{encode_query_value, encode_segment};
use kar_runtime::{Runtime, RuntimeConfig};
use kar_sidecar::{serve, AppClientConfig, HttpAppClient, ServerConfig, ServerHandle};
use kar_store::StoreConfig;
use percent_encoding::percent_decode_str;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Barrier};

/// What the test component saw of one `/record` request.
#[derive(Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Bytes,
}

/// What the test component saw of one `/kar/impl/v1/actor/...` request.
#[derive(Clone, Debug)]
pub struct ActorEvent {
    /// `HEAD` (type check), `GET` (activation), `POST` (method), `DELETE` (deactivation).
    pub method: String,
    pub actor_type: String,
    pub id: Option<String>,
    /// The actor method path, still percent-encoded as received.
    pub name: Option<String>,
    /// The decoded `session` query parameter.
    pub session: Option<String>,
    pub body: Bytes,
}

/// The test component. Actor routes under `/kar/impl/v1/actor/` (spec §3), any type:
/// * `HEAD /{type}`: 200, except 404 for type `Unknown`.
/// * `GET /{type}/{id}`: activation, 201 `activated`; 409 `cannot activate` for id
///   `broken`.
/// * `DELETE /{type}/{id}`: deactivation, 200 `deleted`.
/// * `POST /{type}/{id}/{method...}`, answering `application/kar+json`:
///   * `echo...`: `{"value": {type, id, method, path, session, contentType, headers,
///     body}}` describing the request;
///   * `nothing`: 204;
///   * `tail`: a tail call to `echo` of the same instance with payload `["tailed"]`;
///   * `nested`: calls `echo` of the same instance through the sidecar (set
///     [`TestApp::sidecar`]) with the session it got, and relays that reply;
///   * anything else: 404 `no <method> in actor with type T and id I`.
///
/// Every actor request is reported on [`TestApp::actor_events`] before it is answered.
///
/// Other routes (by path prefix):
/// * `/echo`: 200, the request's Content-Type (if any) and body.
/// * `/noct`: 200 `raw` without Content-Type.
/// * `/nocontent`: 204.
/// * `/teapot`: 418 `short and stout` (text/plain).
/// * `/inspect`: 200 JSON `{method, path, query, headers, body}` of the request.
/// * `/record`: reports the request on the channel, then 200 `recorded`.
/// * `/barrier`: waits until `barrier` parties have arrived, then 200 `released`.
/// * `/hang`: never answers.
///
/// Every response also carries `x-app-extra: 1`, which callers must not see.
pub struct TestApp {
    pub port: u16,
    pub recorded: mpsc::UnboundedReceiver<Recorded>,
    pub actor_events: mpsc::UnboundedReceiver<ActorEvent>,
    /// The sidecar's base URL, for actor methods that call back (`nested`).
    pub sidecar: Arc<OnceLock<String>>,
}

impl TestApp {
    /// The actor events reported so far. The component reports an event before it
    /// answers, so once a call returned, its events are all here.
    pub fn take_events(&mut self) -> Vec<ActorEvent> {
        let mut events = Vec::new();
        while let Ok(event) = self.actor_events.try_recv() {
            events.push(event);
        }
        events
    }

    /// Waits for the next actor event (tells: the component runs them later).
    pub async fn next_event(&mut self) -> ActorEvent {
        tokio::time::timeout(Duration::from_secs(30), self.actor_events.recv())
            .await
            .expect("an actor event within 30 s")
            .expect("the component is running")
    }
}

/// What every request of the test component shares.
struct Shared {
    recorded: mpsc::UnboundedSender<Recorded>,
    actor_events: mpsc::UnboundedSender<ActorEvent>,
    barrier: Barrier,
    sidecar: Arc<OnceLock<String>>,
}

pub async fn start_app(barrier: usize) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_app_on(listener, barrier)
}

pub fn start_app_on(listener: TcpListener, barrier: usize) -> TestApp {
    let port = listener.local_addr().unwrap().port();
    let (tx, recorded) = mpsc::unbounded_channel();
    let (actor_tx, actor_events) = mpsc::unbounded_channel();
    let sidecar = Arc::new(OnceLock::new());
    let shared = Arc::new(Shared {
        recorded: tx,
        actor_events: actor_tx,
        barrier: Barrier::new(barrier.max(1)),
        sidecar: sidecar.clone(),
    });
    tokio::spawn(async move {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http2().max_concurrent_streams(100_000);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let shared = shared.clone();
            let service = service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(app_handler(req, &shared).await) }
            });
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            tokio::spawn(conn);
        }
    });
    TestApp {
        port,
        recorded,
        actor_events,
        sidecar,
    }
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment)
        .decode_utf8()
        .unwrap()
        .into_owned()
}

/// The test component's actor routes; see [`TestApp`].
async fn actor_handler(
    parts: &http::request::Parts,
    body: Bytes,
    shared: &Shared,
) -> (u16, Option<String>, Bytes) {
    let path = parts.uri.path();
    let rest = path.strip_prefix("/kar/impl/v1/actor/").unwrap();
    let mut segments = rest.splitn(3, '/');
    let actor_type = decode(segments.next().unwrap());
    let id = segments.next().map(decode);
    let name = segments.next().map(str::to_string);
    let session = parts.uri.query().and_then(|query| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("session="))
            .map(decode)
    });
    let content_type = parts
        .headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    // The type checks sent at start-up (spec §3.1) are not events of any request.
    let type_check = parts.method == http::Method::HEAD && id.is_none();
    if !type_check {
        let _ = shared.actor_events.send(ActorEvent {
            method: parts.method.to_string(),
            actor_type: actor_type.clone(),
            id: id.clone(),
            name: name.clone(),
            session: session.clone(),
            body: body.clone(),
        });
    }
    let text =
        |status: u16, body: String| (status, Some("text/plain".to_string()), Bytes::from(body));
    let kar_json = |value: serde_json::Value| {
        (
            200,
            Some("application/kar+json".to_string()),
            Bytes::from(value.to_string()),
        )
    };
    let method = parts.method.as_str();
    let (id, name) = match (method, id, name) {
        ("HEAD", None, None) if actor_type == "Unknown" => return text(404, String::new()),
        ("HEAD", None, None) => return (200, None, Bytes::new()),
        ("GET", Some(id), None) if id == "broken" => return text(409, "cannot activate".into()),
        ("GET", Some(_), None) => return text(201, "activated".into()),
        ("DELETE", Some(_), None) => return text(200, "deleted".into()),
        ("POST", Some(id), Some(name)) => (id, name),
        _ => return text(404, "no such actor route".into()),
    };
    if name.starts_with("echo") {
        let headers: Vec<String> = parts.headers.keys().map(|n| n.to_string()).collect();
        return kar_json(serde_json::json!({"value": {
            "type": actor_type,
            "id": id,
            "method": name,
            "path": path,
            "session": session,
            "contentType": content_type,
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        }}));
    }
    match name.as_str() {
        "nothing" => (204, None, Bytes::new()),
        "tail" => kar_json(serde_json::json!({"tailCall": true, "value": {
            "actorType": actor_type,
            "actorId": id,
            "path": "/echo",
            "payload": "[\"tailed\"]",
        }})),
        "nested" => {
            let url = format!(
                "{}/kar/v1/actor/{}/{}/call/echo?session={}",
                shared.sidecar.get().expect("TestApp::sidecar is set"),
                encode_segment(&actor_type),
                encode_segment(&id),
                encode_query_value(session.as_deref().unwrap_or_default()),
            );
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let request = Request::post(url)
                .header("content-type", "application/kar+json")
                .body(Full::new(Bytes::from_static(b"[\"inner\"]")))
                .unwrap();
            let response = client.request(request).await.unwrap();
            let status = response.status().as_u16();
            let content_type = response
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string());
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, content_type, body)
        }
        _ => text(
            404,
            format!("no {name} in actor with type {actor_type} and id {id}"),
        ),
    }
}

async fn app_handler(req: Request<Incoming>, shared: &Shared) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let path = parts.uri.path().to_string();
    let mut response = Response::builder().header("x-app-extra", "1");
    let (status, content_type, body): (u16, Option<String>, Bytes) =
        if path.starts_with("/kar/impl/v1/actor/") {
            actor_handler(&parts, body, shared).await
        } else if path.starts_with("/echo") {
            let ct = parts
                .headers
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string());
            (200, ct, body)
        } else if path.starts_with("/noct") {
            (200, None, Bytes::from_static(b"raw"))
        } else if path.starts_with("/nocontent") {
            (204, None, Bytes::new())
        } else if path.starts_with("/teapot") {
            (
                418,
                Some("text/plain".into()),
                Bytes::from_static(b"short and stout"),
            )
        } else if path.starts_with("/inspect") {
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let json = serde_json::json!({
                "method": parts.method.as_str(),
                "path": path,
                "query": parts.uri.query(),
                "headers": headers,
                "body": String::from_utf8_lossy(&body),
            });
            (
                200,
                Some("application/json".into()),
                Bytes::from(json.to_string()),
            )
        } else if path.starts_with("/record") {
            let _ = shared.recorded.send(Recorded {
                method: parts.method.to_string(),
                path,
                body,
            });
            (
                200,
                Some("text/plain".into()),
                Bytes::from_static(b"recorded"),
            )
        } else if path.starts_with("/barrier") {
            shared.barrier.wait().await;
            (
                200,
                Some("text/plain".into()),
                Bytes::from_static(b"released"),
            )
        } else if path.starts_with("/hang") {
            std::future::pending::<()>().await;
            unreachable!()
        } else {
            (
                404,
                Some("text/plain".into()),
                Bytes::from_static(b"no such route"),
            )
        };
    if let Some(ct) = content_type {
        response = response.header("content-type", ct);
    }
    response.status(status).body(Full::new(body)).unwrap()
}

/// A runtime with its `/kar/v1` server, offering service `svc`.
pub struct Sidecar {
    pub url: String,
    pub port: u16,
    pub runtime: Arc<Runtime>,
    pub server: Option<ServerHandle>,
    pub app: Arc<HttpAppClient>,
    _dir: tempfile::TempDir,
}

pub struct SidecarOptions {
    pub app_port: u16,
    pub h2c: bool,
    pub max_body_bytes: usize,
    /// The `-actors` types the component hosts.
    pub actors: Vec<String>,
}

impl SidecarOptions {
    pub fn new(app_port: u16) -> Self {
        SidecarOptions {
            app_port,
            h2c: false,
            max_body_bytes: ServerConfig::default().max_body_bytes,
            actors: Vec::new(),
        }
    }

    /// Hosting these actor types.
    pub fn with_actors(app_port: u16, actors: &[&str]) -> Self {
        let mut options = SidecarOptions::new(app_port);
        options.actors = actors.iter().map(|t| t.to_string()).collect();
        options
    }
}

pub async fn start_sidecar(options: SidecarOptions) -> Sidecar {
    let dir = tempfile::tempdir().unwrap();
    let store = kar_store::open(
        &StoreConfig::Embedded {
            dir: dir.path().to_path_buf(),
            sync: Default::default(),
        },
        "app",
    )
    .await
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut config = RuntimeConfig::new("app");
    config.service = "svc".into();
    config.runtime_port = port;
    config.actors = options.actors.clone();
    // No idle collection: deactivations happen only when a test asks for them.
    config.actor_collector_interval = None;
    let app = Arc::new(HttpAppClient::new(AppClientConfig {
        app_port: options.app_port,
        h2c: options.h2c,
        request_retry_limit: None,
    }));
    let runtime = Runtime::start(config, store, Some(app.clone()))
        .await
        .unwrap();
    let server = serve(
        listener,
        runtime.clone(),
        ServerConfig {
            max_body_bytes: options.max_body_bytes,
            ..ServerConfig::default()
        },
    );
    Sidecar {
        url: format!("http://127.0.0.1:{port}"),
        port,
        runtime,
        server: Some(server),
        app,
        _dir: dir,
    }
}

impl Sidecar {
    pub async fn stop(mut self) {
        self.runtime.shutdown().await;
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(body: impl Into<Bytes>) -> Body {
    Full::new(body.into()).boxed()
}

/// A real HTTP client speaking HTTP/1.1 or h2c with prior knowledge.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Body>,
    base: String,
    pub name: &'static str,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .get("content-type")
            .map(|v| v.to_str().unwrap())
    }
}

impl Http {
    pub fn h1(base: &str) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build_http(),
            base: base.to_string(),
            name: "HTTP/1.1",
        }
    }

    pub fn h2(base: &str) -> Http {
        Http {
            client: Client::builder(TokioExecutor::new())
                .http2_only(true)
                .build_http(),
            base: base.to_string(),
            name: "h2c",
        }
    }

    pub fn both(base: &str) -> [Http; 2] {
        [Http::h1(base), Http::h2(base)]
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Answer {
        self.try_send(method, path, headers, body).await.unwrap()
    }

    pub async fn try_send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Body,
    ) -> Result<Answer, String> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base, path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(body).map_err(|e| e.to_string())?;
        let response = tokio::time::timeout(Duration::from_secs(60), self.client.request(request))
            .await
            .expect("no answer within 60 s")
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.map_err(|e| e.to_string())?.to_bytes(),
        })
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(Method::GET, path, &[], full("")).await
    }

    pub async fn post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Answer {
        self.send(Method::POST, path, headers, full(body)).await
    }
}
