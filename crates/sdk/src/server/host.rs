//! Dispatch of the component's requests: the actor routes of spec §3.1–3.4
//! (activation, invocation, deactivation of hosted instances) and the plain service
//! routes.

use super::actor::{Actor, Context, Outcome};
use super::http::{catch_panic, decode_segment, error_envelope, text};
use super::service::{Handler, ServiceRequest};
use super::Factory;
use crate::actor::{state_path, ActorHandle};
use crate::client::{Client, Response, KAR_JSON};
use crate::error::Error;
use crate::held::HeldWrites;
use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use kar_protocol::deferred_state;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

const ACTOR_PREFIX: &str = "/kar/impl/v1/actor/";
const HEALTH: &str = "/kar/impl/v1/system/health";

/// The served component.
pub(super) struct Host {
    pub(super) factories: HashMap<String, Factory>,
    pub(super) routes: HashMap<String, HashMap<String, Handler>>,
    pub(super) instances: Mutex<HashMap<(String, String), Arc<dyn Actor>>>,
    pub(super) client: Client,
}

/// The instance and method an invocation names, and the caller's session.
struct Invoked<'a> {
    actor_type: &'a str,
    id: &'a str,
    method: &'a str,
    session: Option<String>,
}

/// An answer to the sidecar: the response, and the state writes an actor method
/// hands over with it (see `held.rs`).
pub(super) struct Answer {
    pub(super) response: Response,
    pub(super) state_update: Option<Bytes>,
}

impl From<Response> for Answer {
    fn from(response: Response) -> Self {
        Answer {
            response,
            state_update: None,
        }
    }
}

impl Host {
    pub(super) async fn handle(self: Arc<Self>, request: http::Request<Incoming>) -> Answer {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) => return text(400, format!("cannot read the request body: {e}")).into(),
        };
        let path = parts.uri.path();
        if let Some(rest) = path.strip_prefix(ACTOR_PREFIX) {
            let session = session_of(parts.uri.query());
            let offered = parts.headers.contains_key(deferred_state::OFFER);
            return self
                .actor_route(&parts.method, rest, session, offered, body)
                .await;
        }
        self.service_route(parts, body).await.into()
    }

    /// A plain service route.
    async fn service_route(&self, parts: http::request::Parts, body: Bytes) -> Response {
        let path = parts.uri.path();
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

    /// `/kar/impl/v1/actor/` + `rest` (spec §3.1–3.4). `offered`: the sidecar takes
    /// a method's state writes with its reply.
    async fn actor_route(
        self: Arc<Self>,
        method: &Method,
        rest: &str,
        session: Option<String>,
        offered: bool,
        body: Bytes,
    ) -> Answer {
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
            return text(404, format!("no actor type {actor_type}")).into();
        };
        let ctx = |id: &str| {
            Context::new(ActorHandle::new(
                self.client.clone(),
                &actor_type,
                id,
                session.clone(),
            ))
        };
        let response = match (method.as_str(), id, name) {
            ("HEAD", None, None) => Response::empty(200),
            ("GET", Some(id), None) => {
                if self.instance(&actor_type, &id).is_some() {
                    return text(200, "existing instance").into();
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
                    return text(404, format!("no actor with type {actor_type} and id {id}"))
                        .into();
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
                    Err(reason) => return text(400, reason).into(),
                };
                // The runtime activates before the first method; if this process
                // lost the instance (it restarted), activate it again here.
                let actor = match self.instance(&actor_type, &id) {
                    Some(actor) => actor,
                    None => match self.activate(&factory, ctx(&id)).await {
                        Ok(actor) => actor,
                        Err(response) => return response.into(),
                    },
                };
                let target = Invoked {
                    actor_type: &actor_type,
                    id: &id,
                    method: &name,
                    session,
                };
                return self.invoke_method(actor, target, args, offered).await;
            }
            _ => text(404, format!("no route for {method} {ACTOR_PREFIX}{rest}")),
        };
        response.into()
    }

    /// Runs a method of an active instance. `offered`: its writes of the instance's
    /// own state are held back and handed over with the answer (see `held.rs`).
    async fn invoke_method(
        &self,
        actor: Arc<dyn Actor>,
        target: Invoked<'_>,
        args: Vec<Value>,
        offered: bool,
    ) -> Answer {
        let Invoked {
            actor_type,
            id,
            method,
            session,
        } = target;
        let held = offered.then(|| Arc::new(HeldWrites::new(state_path(actor_type, id))));
        let client = match &held {
            Some(held) => self.client.holding(held.clone()),
            None => self.client.clone(),
        };
        let ctx = Context::new(ActorHandle::new(client.clone(), actor_type, id, session));
        let name = method.to_string();
        let mut outcome = catch_panic(async move { actor.invoke(&ctx, &name, args).await }).await;
        if let Ok(Outcome::TailCall(_)) = outcome {
            // The runtime commits held writes with a result, not with a continuation:
            // they go through the state API first.
            if let Err(e) = client.flush_held().await {
                outcome = Err(e);
            }
        }
        let state_update = held.and_then(|held| held.close());
        let response = match outcome {
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
            Err(e) => error_envelope(200, &e, &format!("{actor_type}[{id}].{method}")),
        };
        Answer {
            response,
            state_update,
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
        let actor: Arc<dyn Actor> = Arc::from(factory(ctx.id()));
        let key = (ctx.actor_type().to_string(), ctx.id().to_string());
        let location = format!("{}[{}].activate", ctx.actor_type(), ctx.id());
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

/// The decoded `session` parameter of a query string.
fn session_of(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix("session="))
        .map(|value| decode_segment(&value.replace('+', " ")))
}

#[cfg(test)]
mod tests {
    use super::*;

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
