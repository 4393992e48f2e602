//! Plain service routes: the request a route handler sees ([`ServiceRequest`]) and
//! the boxed handler type a [`super::Server`] keeps per (path, method).

use crate::client::{Client, Response};
use crate::error::{Error, Result};
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A service request as a [`crate::Server`] route handler sees it.
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

pub(super) type HandlerFuture = Pin<Box<dyn Future<Output = Result<Response>> + Send>>;
pub(super) type Handler = Arc<dyn Fn(ServiceRequest) -> HandlerFuture + Send + Sync>;
