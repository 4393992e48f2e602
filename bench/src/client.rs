//! HTTP clients: HTTP/1.1 keep-alive to the component (baseline) and to Restate's
//! ingress, h2c with one multiplexed connection to the sidecar (as the JS SDK does).

use anyhow::{bail, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;

/// Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
    base: String,
    content_type: &'static str,
}

/// Without TCP_NODELAY, an h2 request's HEADERS and DATA frames meet Nagle's
/// algorithm and the peer's delayed ACK: 40 ms per call.
fn connector() -> HttpConnector {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector
}

impl Client {
    pub fn http1(port: u16) -> Client {
        let inner = HyperClient::builder(TokioExecutor::new())
            .pool_max_idle_per_host(256)
            .build(connector());
        Client::on_port(inner, port)
    }

    pub fn h2c(port: u16) -> Client {
        let inner = HyperClient::builder(TokioExecutor::new())
            .http2_only(true)
            .http2_max_concurrent_reset_streams(1024)
            .build(connector());
        Client::on_port(inner, port)
    }

    fn on_port(inner: HyperClient<HttpConnector, Full<Bytes>>, port: u16) -> Client {
        Client {
            inner,
            base: format!("http://127.0.0.1:{port}"),
            content_type: "application/kar+json",
        }
    }

    /// Requests with this Content-Type (Restate's ingress wants `application/json`).
    pub fn with_content_type(mut self, content_type: &'static str) -> Client {
        self.content_type = content_type;
        self
    }

    pub async fn post(&self, path: String, body: &'static [u8]) -> Result<()> {
        self.post_bytes(path, Bytes::from_static(body))
            .await
            .map(drop)
    }

    /// POST with an `Idempotency-Key`; fails on a non-2xx status.
    pub async fn post_keyed(&self, path: String, body: &'static [u8], key: String) -> Result<()> {
        let request = hyper::Request::builder()
            .method(hyper::Method::POST)
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", self.content_type)
            .header("Idempotency-Key", key)
            .body(Full::new(Bytes::from_static(body)))?;
        let response = self.inner.request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{path}: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }

    /// A tell (`Pragma: async`): fails unless the sidecar accepted it (202).
    pub async fn tell(&self, path: String, body: Bytes) -> Result<()> {
        let request = hyper::Request::builder()
            .method(hyper::Method::POST)
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", self.content_type)
            .header("Pragma", "async")
            .body(Full::new(body))?;
        let response = self.inner.request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if status != hyper::StatusCode::ACCEPTED {
            bail!("{path}: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }

    /// POST that fails on a non-2xx status and returns the response body.
    pub async fn post_bytes(&self, path: String, body: Bytes) -> Result<Bytes> {
        self.send(hyper::Method::POST, path, body).await
    }

    /// Any method; fails on a non-2xx status and returns the response body.
    pub async fn send(&self, method: hyper::Method, path: String, body: Bytes) -> Result<Bytes> {
        let request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("Content-Type", self.content_type)
            .body(Full::new(body))?;
        let response = self.inner.request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{path}: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(body)
    }
}
