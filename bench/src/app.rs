//! The minimal Rust component under test: a service route `POST /echo` and an actor
//! type `Bench` with method `echo`, on the app-side contract of spec §3.

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;

pub struct App {
    pub port: u16,
}

pub async fn start() -> Result<App> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(handle);
                let _ = Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(App { port })
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
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
