//! What an actor type implements ([`Actor`]), what its methods return ([`Outcome`],
//! [`TailCall`]) and what they see of their invocation ([`Context`]).

use crate::actor::{ActorHandle, State};
use crate::client::Client;
use crate::error::{Error, Result};
use async_trait::async_trait;
use serde_json::{json, Value};

/// An actor type's behaviour. One value per active instance (type, id), made by the
/// type's factory (see [`crate::Server::actor`]) when the runtime activates the instance.
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
        TailCall::actor_call(actor_type, id, method, args, false)
    }

    /// Like [`TailCall::actor`], releasing the instance lock first.
    pub fn actor_releasing_lock(
        actor_type: &str,
        id: &str,
        method: &str,
        args: Vec<Value>,
    ) -> TailCall {
        TailCall::actor_call(actor_type, id, method, args, true)
    }

    fn actor_call(
        actor_type: &str,
        id: &str,
        method: &str,
        args: Vec<Value>,
        release_lock: bool,
    ) -> TailCall {
        TailCall::Actor {
            actor_type: actor_type.to_string(),
            id: id.to_string(),
            method: method.to_string(),
            args,
            release_lock,
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
    pub(super) fn envelope(&self) -> Value {
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
///
/// It is the handle on the running instance in the caller's session: every other
/// view (the id, the state, re-entrant calls) derives from it.
#[derive(Clone, Debug)]
pub struct Context {
    this: ActorHandle,
}

impl Context {
    pub(super) fn new(this: ActorHandle) -> Context {
        Context { this }
    }

    /// The type of the instance running.
    pub fn actor_type(&self) -> &str {
        self.this.actor_type()
    }

    /// The id of the instance running.
    pub fn id(&self) -> &str {
        self.this.id()
    }

    /// The session (`<flow>:<request>`) the runtime passed, if any (deactivations have
    /// none).
    pub fn session(&self) -> Option<&str> {
        self.this.session()
    }

    /// The client of the sidecar (calls made with it directly start new flows).
    pub fn client(&self) -> &Client {
        self.this.client()
    }

    /// A handle on another actor whose calls carry this session: they may re-enter
    /// instances this flow holds (A→B→A).
    pub fn actor(&self, actor_type: &str, id: &str) -> ActorHandle {
        let session = self.session().map(str::to_string);
        ActorHandle::new(self.client().clone(), actor_type, id, session)
    }

    /// A handle on this very instance, in this session.
    pub fn this(&self) -> ActorHandle {
        self.this.clone()
    }

    /// This instance's persistent state.
    pub fn state(&self) -> State {
        self.this.state()
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
}
