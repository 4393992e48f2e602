//! The client of the sidecar's `/kar/v1` API (spec §2): services, promises, system.

use crate::actor::ActorHandle;
use crate::connection::{describe, Connection};
use crate::error::{Error, Result};
use crate::held::HeldWrites;
use bytes::Bytes;
use http::header::{HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE, PRAGMA};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use kar_protocol::paths::encode_segment;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

pub(crate) const KAR_JSON: &str = "application/kar+json";
const JSON: &str = "application/json";
const TEXT: &str = "text/plain";

/// An answer: status, Content-Type (absent when none was sent) and body.
///
/// [`Client::invoke`] returns it as received; service handlers of a
/// [`crate::Server`] return one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
}

impl Response {
    /// An answer with this status, content type and body.
    pub fn new(status: u16, content_type: Option<&str>, body: impl Into<Bytes>) -> Response {
        Response {
            status,
            content_type: content_type.map(str::to_string),
            body: body.into(),
        }
    }

    /// `200 application/json` with `value` encoded as JSON.
    ///
    /// ```
    /// let r = kar_sdk::Response::json(&serde_json::json!({"a": 1})).unwrap();
    /// assert_eq!(r.status, 200);
    /// assert_eq!(&r.body[..], br#"{"a":1}"#);
    /// ```
    pub fn json(value: &impl Serialize) -> Result<Response> {
        let body = serde_json::to_vec(value).map_err(Error::Encode)?;
        Ok(Response::new(200, Some(JSON), body))
    }

    /// `200 text/plain` with this text.
    pub fn text(text: impl Into<String>) -> Response {
        Response::new(200, Some("text/plain; charset=utf-8"), text.into())
    }

    /// This status with no body and no content type (e.g. `204`).
    pub fn empty(status: u16) -> Response {
        Response::new(status, None, Bytes::new())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text_body(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded from JSON.
    pub fn json_body<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode(format!("{e}")))
    }
}

/// A connection to the sidecar: one multiplexed HTTP/2 connection (h2c with prior
/// knowledge, `TCP_NODELAY`) to `127.0.0.1:<runtime port>`, opened on first use and
/// re-opened if it breaks. Cloning is cheap and shares the connection.
///
/// ```no_run
/// # async fn demo() -> kar_sdk::Result<()> {
/// let client = kar_sdk::Client::from_env()?;
/// let greeting: String = client.call("greeter", "helloText", "Gandalf").await?;
/// println!("{greeting}");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// The state writes held back by the actor method this client belongs to (see
    /// `held.rs`): sent before any other request through it.
    held: Option<Arc<HeldWrites>>,
}

struct Inner {
    connection: Connection,
    base: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base)
            .finish()
    }
}

/// How a promise's answer is interpreted: like a service call or like an actor call.
#[derive(Clone, Copy, Debug)]
enum PromiseKind {
    Service,
    Actor,
}

/// A request made with `async_call`: the sidecar holds its answer until
/// [`Promise::await_result`] asks for it (once).
#[derive(Debug)]
pub struct Promise {
    client: Client,
    id: String,
    kind: PromiseKind,
}

impl Promise {
    /// The request id (`req-<uuid>`) the sidecar gave the promise.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Waits for the answer (`POST /kar/v1/await`) and interprets it like the
    /// corresponding synchronous call would.
    pub async fn await_result<T: DeserializeOwned>(self) -> Result<T> {
        let response = self
            .client
            .send(
                Method::POST,
                "/kar/v1/await",
                &[(CONTENT_TYPE, TEXT)],
                Bytes::from(self.id),
            )
            .await?;
        match self.kind {
            PromiseKind::Service => parse_service(response),
            PromiseKind::Actor => parse_actor(response),
        }
    }
}

impl Client {
    /// A client of the sidecar listening on `127.0.0.1:<runtime_port>`. Nothing is
    /// connected until the first request.
    pub fn new(runtime_port: u16) -> Client {
        Client {
            inner: Arc::new(Inner {
                connection: Connection::new(runtime_port),
                base: format!("http://127.0.0.1:{runtime_port}"),
            }),
            held: None,
        }
    }

    /// This client, inside an actor method that holds back its state writes.
    pub(crate) fn holding(&self, held: Arc<HeldWrites>) -> Client {
        Client {
            inner: self.inner.clone(),
            held: Some(held),
        }
    }

    /// The held writes of the actor method this client belongs to, if any.
    pub(crate) fn held(&self) -> Option<&HeldWrites> {
        self.held.as_deref()
    }

    /// Sends the held writes, if any, through the state API (before another request
    /// of the method, which must find them).
    pub(crate) async fn flush_held(&self) -> Result<()> {
        let Some(held) = &self.held else {
            return Ok(());
        };
        let Some(taken) = held.take() else {
            return Ok(());
        };
        let path = held.state_path().to_string();
        let sent = self
            .send_now(
                Method::POST,
                &path,
                &[(CONTENT_TYPE, JSON)],
                taken.op.clone(),
            )
            .await
            .and_then(|response| expect_success(&response));
        if sent.is_err() {
            held.restore(taken);
        }
        sent
    }

    /// A client of the sidecar named by `KAR_RUNTIME_PORT` (set by `kar run`).
    pub fn from_env() -> Result<Client> {
        let port = std::env::var("KAR_RUNTIME_PORT").map_err(|_| {
            Error::Config("KAR_RUNTIME_PORT is not set (run under `kar run`)".into())
        })?;
        let port = port
            .trim()
            .parse::<u16>()
            .map_err(|_| Error::Config(format!("KAR_RUNTIME_PORT={port:?} is not a port")))?;
        Ok(Client::new(port))
    }

    /// One exchange with the sidecar, after the held state writes, if any.
    /// `path_and_query` is already encoded.
    pub(crate) async fn send(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(HeaderName, &str)],
        body: Bytes,
    ) -> Result<Response> {
        self.flush_held().await?;
        self.send_now(method, path_and_query, headers, body).await
    }

    /// One exchange with the sidecar, whatever is held.
    pub(crate) async fn send_now(
        &self,
        method: Method,
        path_and_query: &str,
        headers: &[(HeaderName, &str)],
        body: Bytes,
    ) -> Result<Response> {
        let uri: Uri = format!("{}{path_and_query}", self.inner.base)
            .parse()
            .map_err(|e| Error::Config(format!("invalid request path {path_and_query:?}: {e}")))?;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        for (name, value) in headers {
            let value = HeaderValue::from_str(value)
                .map_err(|_| Error::Config(format!("invalid value of header {name}")))?;
            request.headers_mut().append(name.clone(), value);
        }
        let response = self.inner.connection.send(request).await?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|e| Error::Transport(describe(&e)))?
            .to_bytes();
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        Ok(Response {
            status: parts.status.as_u16(),
            content_type,
            body,
        })
    }

    /// A raw service request: `method` to `path` of `service`, with these headers and
    /// body; the answer comes back as received (any status). `path` may carry a query
    /// string (`"items?limit=3"`), which reaches the service.
    ///
    /// ```no_run
    /// # async fn demo(client: kar_sdk::Client) -> kar_sdk::Result<()> {
    /// let r = client.invoke("GET", "greeter", "health", &[("Accept", "text/plain")], "").await?;
    /// assert_eq!(r.status, 200);
    /// # Ok(()) }
    /// ```
    pub async fn invoke(
        &self,
        method: &str,
        service: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Result<Response> {
        let method = Method::from_bytes(method.as_bytes())
            .map_err(|_| Error::Config(format!("invalid HTTP method {method:?}")))?;
        let mut named = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| Error::Config(format!("invalid header name {name:?}")))?;
            named.push((name, *value));
        }
        self.send(method, &service_path(service, path), &named, body.into())
            .await
    }

    /// Calls `path` of `service` with `POST` and `body` as JSON, and waits for the
    /// answer. A JSON answer is decoded into `T`; a text answer is decoded as a JSON
    /// string; an empty answer as `null` (so `T = ()` or `Option<_>` fit). A non-2xx
    /// answer is [`Error::Status`].
    ///
    /// ```no_run
    /// # async fn demo(client: kar_sdk::Client) -> kar_sdk::Result<()> {
    /// let answer: serde_json::Value =
    ///     client.call("greeter", "helloJson", serde_json::json!({"name": "Frodo"})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn call<T: DeserializeOwned>(
        &self,
        service: &str,
        path: &str,
        body: impl Serialize,
    ) -> Result<T> {
        let response = self.service_post(service, path, body, None).await?;
        parse_service(response)
    }

    /// Sends `body` as JSON to `path` of `service` with `POST` without waiting for it to
    /// run: returns once the sidecar has queued the request durably.
    pub async fn tell(&self, service: &str, path: &str, body: impl Serialize) -> Result<()> {
        let response = self
            .service_post(service, path, body, Some("async"))
            .await?;
        expect_accepted(response).map(drop)
    }

    /// Like [`Client::call`], but returns a [`Promise`] as soon as the request is
    /// queued; [`Promise::await_result`] gets the answer.
    ///
    /// ```no_run
    /// # async fn demo(client: kar_sdk::Client) -> kar_sdk::Result<()> {
    /// let promise = client.async_call("greeter", "helloText", "Sam").await?;
    /// let greeting: String = promise.await_result().await?;
    /// # Ok(()) }
    /// ```
    pub async fn async_call(
        &self,
        service: &str,
        path: &str,
        body: impl Serialize,
    ) -> Result<Promise> {
        let response = self
            .service_post(service, path, body, Some("promise"))
            .await?;
        let id = expect_accepted(response)?;
        Ok(Promise {
            client: self.clone(),
            id,
            kind: PromiseKind::Service,
        })
    }

    async fn service_post(
        &self,
        service: &str,
        path: &str,
        body: impl Serialize,
        pragma: Option<&str>,
    ) -> Result<Response> {
        let body = serde_json::to_vec(&body).map_err(Error::Encode)?;
        let mut headers = vec![(CONTENT_TYPE, JSON)];
        if let Some(pragma) = pragma {
            headers.push((PRAGMA, pragma));
        }
        self.send(
            Method::POST,
            &service_path(service, path),
            &headers,
            body.into(),
        )
        .await
    }

    /// A handle on the actor instance (`actor_type`, `id`); nothing is sent until it
    /// is used. Calls made through it start a new flow (no session).
    pub fn actor(&self, actor_type: &str, id: &str) -> ActorHandle {
        ActorHandle::new(self.clone(), actor_type, id, None)
    }

    /// Makes an actor promise from the sidecar's `202 req-...` answer.
    pub(crate) fn actor_promise(&self, response: Response) -> Result<Promise> {
        let id = expect_accepted(response)?;
        Ok(Promise {
            client: self.clone(),
            id,
            kind: PromiseKind::Actor,
        })
    }

    /// `GET /kar/v1/system/health`: the sidecar's answer text (`OK`).
    pub async fn health(&self) -> Result<String> {
        let response = self
            .send(Method::GET, "/kar/v1/system/health", &[], Bytes::new())
            .await?;
        expect_success(&response)?;
        Ok(response.text_body())
    }

    /// `GET /kar/v1/system/information/<component>` as JSON (`id`, `sidecars`,
    /// `actors`, `sidecar_actors`).
    pub async fn information(&self, component: &str) -> Result<Value> {
        let path = format!("/kar/v1/system/information/{}", encode_segment(component));
        let response = self
            .send(Method::GET, &path, &[(ACCEPT, JSON)], Bytes::new())
            .await?;
        expect_success(&response)?;
        response.json_body()
    }

    /// `POST /kar/v1/system/shutdown`: asks the sidecar to shut down (it stops
    /// serving; `kar run` then waits for this process to exit).
    pub async fn shutdown(&self) -> Result<()> {
        let response = self
            .send(Method::POST, "/kar/v1/system/shutdown", &[], Bytes::new())
            .await?;
        expect_success(&response)
    }
}

/// `/kar/v1/service/{service}/call/{path}`: each path segment percent-encoded, a query
/// string kept as given.
fn service_path(service: &str, path: &str) -> String {
    let (path, query) = match path.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path, None),
    };
    let mut out = format!(
        "/kar/v1/service/{}/call/{}",
        encode_segment(service),
        encode_path(path)
    );
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A path of one or more segments, each percent-encoded, without a leading `/`.
pub(crate) fn encode_path(path: &str) -> String {
    path.trim_start_matches('/')
        .split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) fn expect_success(response: &Response) -> Result<()> {
    if response.is_success() {
        Ok(())
    } else {
        Err(status_error(response))
    }
}

fn status_error(response: &Response) -> Error {
    Error::Status {
        status: response.status,
        body: response.text_body().trim_end().to_string(),
    }
}

/// A tell or a promise: `202` with `OK` or the request id.
fn expect_accepted(response: Response) -> Result<String> {
    if response.status == 202 {
        Ok(response.text_body().trim().to_string())
    } else if response.is_success() {
        Err(Error::Decode(format!(
            "expected 202 Accepted, got {}",
            response.status
        )))
    } else {
        Err(status_error(&response))
    }
}

pub(crate) fn decode<T: DeserializeOwned>(value: Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Decode(e.to_string()))
}

/// A service answer (like the JS SDK's `parse`, spec §6.1): non-2xx → error; empty →
/// `null`; JSON → decoded; else the text as a string.
pub(crate) fn parse_service<T: DeserializeOwned>(response: Response) -> Result<T> {
    expect_success(&response)?;
    if response.body.is_empty() {
        return decode(Value::Null);
    }
    match serde_json::from_slice::<Value>(&response.body) {
        Ok(value) => decode(value),
        Err(_) => decode(Value::String(response.text_body())),
    }
}

/// An actor answer (like the JS SDK's `parseActor`, spec §6.1): non-2xx → error (an
/// error envelope → [`Error::Failed`]); 204 → `null`; 202 → the text; else the
/// envelope: `error` → [`Error::Failed`], otherwise its `value`.
pub(crate) fn parse_actor<T: DeserializeOwned>(response: Response) -> Result<T> {
    if !response.is_success() {
        return Err(match envelope_error(&response) {
            Some(error) => error,
            None => status_error(&response),
        });
    }
    match response.status {
        204 => return decode(Value::Null),
        202 => return decode(Value::String(response.text_body())),
        _ => {}
    }
    let envelope: Value = serde_json::from_slice(&response.body).map_err(|e| {
        Error::Decode(format!(
            "actor answer is not JSON ({e}): {}",
            response.text_body()
        ))
    })?;
    if let Some(error) = failed(&envelope) {
        return Err(error);
    }
    match envelope {
        Value::Object(mut map) => decode(map.remove("value").unwrap_or(Value::Null)),
        other => Err(Error::Decode(format!(
            "actor answer is not an envelope: {other}"
        ))),
    }
}

/// The error of an `application/kar+json` error envelope, if `response` is one.
fn envelope_error(response: &Response) -> Option<Error> {
    let content_type = response.content_type.as_deref()?;
    if !content_type.starts_with(KAR_JSON) {
        return None;
    }
    failed(&serde_json::from_slice(&response.body).ok()?)
}

/// `{"error": true, "message": M, "stack": S}` as [`Error::Failed`]. The Python SDK
/// sends no `message`: the stack's first line stands in for it.
fn failed(envelope: &Value) -> Option<Error> {
    let truthy = match envelope.get("error")? {
        Value::Bool(b) => *b,
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Number(n) => n.as_f64() != Some(0.0),
        _ => true,
    };
    if !truthy {
        return None;
    }
    let stack = envelope
        .get("stack")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let message = match envelope.get("message").and_then(Value::as_str) {
        Some(message) => message.to_string(),
        None => stack
            .lines()
            .next()
            .unwrap_or("actor method failed")
            .to_string(),
    };
    Some(Error::Failed { message, stack })
}

/// An error with its sources: hyper's top-level messages alone ("client error
/// (Connect)") do not say what happened.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_paths_are_encoded_per_segment() {
        assert_eq!(
            service_path("greeter", "/a b/c?x=1&y=2"),
            "/kar/v1/service/greeter/call/a%20b/c?x=1&y=2"
        );
        assert_eq!(service_path("s/t", "p"), "/kar/v1/service/s%2Ft/call/p");
    }

    #[test]
    fn actor_answers() {
        let ok = Response::new(200, Some(KAR_JSON), r#"{"value":[1,2]}"#);
        assert_eq!(parse_actor::<Vec<u8>>(ok).unwrap(), vec![1, 2]);
        let void = Response::empty(204);
        parse_actor::<()>(void).unwrap();
        let error = Response::new(
            200,
            Some(KAR_JSON),
            r#"{"error":true,"message":"boom","stack":"s"}"#,
        );
        match parse_actor::<Value>(error) {
            Err(Error::Failed { message, stack }) => {
                assert_eq!((message.as_str(), stack.as_str()), ("boom", "s"))
            }
            other => panic!("{other:?}"),
        }
        let python = Response::new(
            200,
            Some(KAR_JSON),
            r#"{"error":true,"stack":"Traceback\nx"}"#,
        );
        assert!(
            matches!(parse_actor::<Value>(python), Err(Error::Failed { message, .. }) if message == "Traceback")
        );
        let missing = Response::new(404, Some(TEXT), "no m in actor with type T and id I");
        assert_eq!(
            parse_actor::<Value>(missing).unwrap_err().status(),
            Some(404)
        );
    }

    #[test]
    fn service_answers() {
        let text = Response::new(200, Some(TEXT), "Hello Gandalf");
        assert_eq!(parse_service::<String>(text).unwrap(), "Hello Gandalf");
        let json = Response::new(200, Some(JSON), r#"{"a":1}"#);
        assert_eq!(parse_service::<Value>(json).unwrap()["a"], 1);
        parse_service::<()>(Response::empty(204)).unwrap();
        let teapot = Response::new(418, Some(TEXT), "short and stout\n");
        assert!(
            matches!(parse_service::<Value>(teapot), Err(Error::Status { status: 418, body }) if body == "short and stout")
        );
    }
}
