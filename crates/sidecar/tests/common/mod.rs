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
use kar_runtime::{Runtime, RuntimeConfig};
use kar_sidecar::{serve, AppClientConfig, HttpAppClient, ServerConfig, ServerHandle};
use kar_store::StoreConfig;
use std::convert::Infallible;
use std::sync::Arc;
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

/// The test component. Routes (by path prefix):
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
}

pub async fn start_app(barrier: usize) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    start_app_on(listener, barrier)
}

pub fn start_app_on(listener: TcpListener, barrier: usize) -> TestApp {
    let port = listener.local_addr().unwrap().port();
    let (tx, recorded) = mpsc::unbounded_channel();
    let barrier = Arc::new(Barrier::new(barrier.max(1)));
    tokio::spawn(async move {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http2().max_concurrent_streams(100_000);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let tx = tx.clone();
            let barrier = barrier.clone();
            let service = service_fn(move |req| {
                let tx = tx.clone();
                let barrier = barrier.clone();
                async move { Ok::<_, Infallible>(app_handler(req, tx, barrier).await) }
            });
            let conn = builder
                .serve_connection(TokioIo::new(stream), service)
                .into_owned();
            tokio::spawn(conn);
        }
    });
    TestApp { port, recorded }
}

async fn app_handler(
    req: Request<Incoming>,
    tx: mpsc::UnboundedSender<Recorded>,
    barrier: Arc<Barrier>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let path = parts.uri.path().to_string();
    let mut response = Response::builder().header("x-app-extra", "1");
    let (status, content_type, body): (u16, Option<String>, Bytes) = if path.starts_with("/echo") {
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
        let _ = tx.send(Recorded {
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
        barrier.wait().await;
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
}

impl SidecarOptions {
    pub fn new(app_port: u16) -> Self {
        SidecarOptions {
            app_port,
            h2c: false,
            max_body_bytes: ServerConfig::default().max_body_bytes,
        }
    }
}

pub async fn start_sidecar(options: SidecarOptions) -> Sidecar {
    let dir = tempfile::tempdir().unwrap();
    let store = kar_store::open(
        &StoreConfig::Embedded {
            dir: dir.path().to_path_buf(),
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
