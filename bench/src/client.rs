//! HTTP clients: HTTP/1.1 keep-alive to the component (baseline), h2c with one
//! multiplexed connection to the sidecar (as the JS SDK does).

use anyhow::{bail, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;

pub struct Client {
    inner: HyperClient<HttpConnector, Full<Bytes>>,
    base: String,
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
        Client {
            inner,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub fn h2c(port: u16) -> Client {
        let inner = HyperClient::builder(TokioExecutor::new())
            .http2_only(true)
            .http2_max_concurrent_reset_streams(1024)
            .build(connector());
        Client {
            inner,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    pub async fn post(&self, path: &str, body: &'static [u8]) -> Result<()> {
        self.post_owned(path.to_string(), body).await
    }

    pub async fn post_owned(&self, path: String, body: &'static [u8]) -> Result<()> {
        let request = hyper::Request::post(format!("{}{path}", self.base))
            .header("Content-Type", "application/kar+json")
            .body(Full::new(Bytes::from_static(body)))?;
        let response = self.inner.request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!("{path}: {status}: {}", String::from_utf8_lossy(&body));
        }
        Ok(())
    }
}
