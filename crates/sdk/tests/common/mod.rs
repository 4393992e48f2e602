//! Test harness: a real runtime on a temporary embedded store, its `/kar/v1` server
//! (`kar_sidecar::serve`), and a `kar_sdk::Server` component it invokes over HTTP
//! (`HttpAppClient`, HTTP/1.1 or h2c). The SDK client talks to the sidecar over h2c.
#![allow(dead_code)]

use kar_runtime::{Runtime, RuntimeConfig};
use kar_sdk::{async_trait, Actor, Client, Context, Error, Outcome, Response, Server, TailCall};
use kar_sidecar::{serve, AppClientConfig, HttpAppClient, ServerConfig};
use kar_store::StoreConfig;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// The service name the test component offers.
pub const SERVICE: &str = "svc";

pub struct Harness {
    pub client: Client,
    pub runtime: Arc<Runtime>,
    /// What the component saw: `activate T I`, `deactivate T I`, `record <body>`, ...
    pub events: mpsc::UnboundedReceiver<String>,
    sidecar: Option<kar_sidecar::ServerHandle>,
    app: Option<kar_sdk::ServerHandle>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start(h2c: bool) -> Harness {
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
        let app_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let app_port = app_listener.local_addr().unwrap().port();
        let sidecar_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let runtime_port = sidecar_listener.local_addr().unwrap().port();
        let client = Client::new(runtime_port);
        let (tx, events) = mpsc::unbounded_channel();
        let app = component(tx, client.clone()).serve(app_listener, client.clone());

        let mut config = RuntimeConfig::new("app");
        config.service = SERVICE.into();
        config.runtime_port = runtime_port;
        config.actors = vec!["Test".into(), "Other".into(), "Broken".into()];
        // Deactivations only when a test removes an actor.
        config.actor_collector_interval = None;
        let app_client = Arc::new(HttpAppClient::new(AppClientConfig {
            app_port,
            h2c,
            request_retry_limit: None,
        }));
        let runtime = Runtime::start(config, store, Some(app_client))
            .await
            .unwrap();
        let sidecar = serve(sidecar_listener, runtime.clone(), ServerConfig::default());
        Harness {
            client,
            runtime,
            events,
            sidecar: Some(sidecar),
            app: Some(app),
            _dir: dir,
        }
    }

    /// The next thing the component saw (tells run later than they return).
    pub async fn next_event(&mut self) -> String {
        tokio::time::timeout(Duration::from_secs(30), self.events.recv())
            .await
            .expect("a component event within 30 s")
            .expect("the component is running")
    }

    pub async fn stop(mut self) {
        self.runtime.shutdown().await;
        if let Some(sidecar) = self.sidecar.take() {
            sidecar.shutdown().await;
        }
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }
}

/// The test component: actor types `Test`, `Other`, `Broken` and service routes.
fn component(events: mpsc::UnboundedSender<String>, plain: Client) -> Server {
    let for_test = events.clone();
    let for_other = events.clone();
    let for_routes = events.clone();
    Server::new()
        .actor("Test", move |id| {
            Box::new(Tester {
                id: id.to_string(),
                events: for_test.clone(),
                calls: Mutex::new(0),
                plain: plain.clone(),
            })
        })
        .actor("Other", move |_| {
            Box::new(Other {
                events: for_other.clone(),
            })
        })
        .actor("Broken", |_| Box::new(Broken))
        .route("POST", "/echoJson", |request| async move {
            let body: Value = request.json()?;
            Response::json(&body)
        })
        .route("POST", "/hello", |request| async move {
            let name: String = request.json()?;
            Ok(Response::text(format!("Hello {name}")))
        })
        .route("POST", "/record", move |request| {
            let events = for_routes.clone();
            async move {
                let _ = events.send(format!("record {}", request.text()));
                Ok(Response::text("recorded"))
            }
        })
        .route("GET", "/inspect", |request| async move {
            Response::json(&json!({
                "method": request.method,
                "path": request.path,
                "query": request.query,
                "x-test": request.header("x-test"),
                "body": request.text(),
            }))
        })
        .route("PUT", "/inspect", |request| async move {
            Ok(Response::new(
                200,
                Some("text/plain"),
                format!("put {}", request.text()),
            ))
        })
        .route("POST", "/teapot", |_| async move {
            Ok(Response::new(418, Some("text/plain"), "short and stout"))
        })
        .route(
            "POST",
            "/empty",
            |_| async move { Ok(Response::empty(204)) },
        )
        .route("POST", "/fail", |_| async move {
            Err::<Response, _>(Error::msg("the handler failed"))
        })
        .route("POST", "/callActor", |request| async move {
            // A service calling an actor back through the sidecar.
            let id: String = request.json()?;
            let answer: Value = request
                .client
                .actor("Test", &id)
                .call("echo", ("from service",))
                .await?;
            Response::json(&answer)
        })
}

struct Tester {
    id: String,
    events: mpsc::UnboundedSender<String>,
    /// In-memory state, kept across calls while the instance is active.
    calls: Mutex<u64>,
    /// A client outside any method: what the rest of the world sees.
    plain: Client,
}

fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Null)
}

#[async_trait]
impl Actor for Tester {
    async fn activate(&self, ctx: &Context) -> Result<(), Error> {
        let _ = self.events.send(format!("activate Test {}", ctx.id()));
        Ok(())
    }

    async fn deactivate(&self, ctx: &Context) -> Result<(), Error> {
        let _ = self.events.send(format!("deactivate Test {}", ctx.id()));
        Ok(())
    }

    async fn invoke(
        &self,
        ctx: &Context,
        method: &str,
        args: Vec<Value>,
    ) -> Result<Outcome, Error> {
        let calls = {
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            *calls
        };
        match method {
            "echo" => Outcome::value(args),
            "whoami" => {
                Outcome::value(json!({"id": self.id, "session": ctx.session(), "calls": calls}))
            }
            "nothing" => Ok(Outcome::Void),
            "fail" => Err(Error::msg(format!("boom: {}", arg(&args, 0)))),
            "panic" => panic!("the method panicked"),
            "record" => {
                let _ = self.events.send(format!("record {}", Value::Array(args)));
                Ok(Outcome::Void)
            }
            // count(v, n): n self tail calls adding 10 each time.
            "count" => {
                let v = arg(&args, 0).as_i64().unwrap_or(0);
                let n = arg(&args, 1).as_i64().unwrap_or(0);
                if n == 0 {
                    Outcome::value(v)
                } else {
                    Ok(Outcome::TailCall(TailCall::actor(
                        "Test",
                        ctx.id(),
                        "count",
                        vec![json!(v + 10), json!(n - 1)],
                    )))
                }
            }
            // A→B→A: calls Other, which calls back `reentered` on this instance in the
            // same flow.
            "callOther" => {
                let answer: Value = ctx
                    .actor("Other", "b")
                    .call("callBack", ("Test", ctx.id()))
                    .await?;
                Outcome::value(json!({"viaOther": answer}))
            }
            "reentered" => Outcome::value(format!("re-entered {}", self.id)),
            "tailOther" => Ok(Outcome::TailCall(TailCall::actor(
                "Other",
                "t",
                "greet",
                vec![arg(&args, 0)],
            ))),
            "tailReleasing" => Ok(Outcome::TailCall(TailCall::actor_releasing_lock(
                "Test",
                ctx.id(),
                "echo",
                vec![json!("released")],
            ))),
            "tailService" => Ok(Outcome::TailCall(TailCall::service(
                SERVICE,
                "echoJson",
                json!({"from": "tail", "arg": arg(&args, 0)}),
            ))),
            "setState" => {
                let key = arg(&args, 0);
                let key = key.as_str().unwrap_or("key");
                ctx.state().set(key, arg(&args, 1)).await?;
                Ok(Outcome::Void)
            }
            "getState" => {
                let key = arg(&args, 0);
                let value: Option<Value> = ctx.state().get(key.as_str().unwrap_or("key")).await?;
                Outcome::value(value)
            }
            // The state writes of a method, held back until it answers.
            "heldWrites" => {
                let state = ctx.state();
                let outside = self.plain.actor("Test", ctx.id()).state();
                let report = json!({
                    "created": state.set("a", 1).await?,
                    "readBack": state.get::<i64>("a").await?,
                    "createdAgain": state.set("a", 2).await?,
                    "contains": state.contains("a").await?,
                    "removed": state.remove("a").await?,
                    "afterRemoval": state.get::<i64>("a").await?,
                    "removedAgain": state.remove("a").await?,
                    "containsAfterRemoval": state.contains("a").await?,
                    "setB": state.set("b", json!({"x": 1})).await?,
                    "outsideSeesB": outside.get::<Value>("b").await?,
                    "beforeUpdate": state.get::<i64>("u").await?,
                    // Another state operation: held writes first, then it; what the
                    // method read before no longer counts.
                    "updateAdded": state.update(json!({"updates": {"u": 1}})).await?.added,
                    "createdAfterUpdate": state.set("u", 2).await?,
                });
                let _ = self.events.send(format!("held {report}"));
                Ok(Outcome::Void)
            }
            "add" => {
                let state = ctx.state();
                let count = state.get::<i64>("count").await?.unwrap_or(0) + 1;
                state.set("count", count).await?;
                Outcome::value(count)
            }
            // Sets `r`, then asks Other what it reads of it.
            "setThenCallOther" => {
                ctx.state().set("r", 7).await?;
                let seen: Value = ctx
                    .actor("Other", "o")
                    .call("readState", ("Test", ctx.id(), "r"))
                    .await?;
                Outcome::value(seen)
            }
            "setThenTail" => {
                ctx.state().set("t", 1).await?;
                Ok(Outcome::TailCall(TailCall::actor(
                    "Other",
                    "t",
                    "greet",
                    vec![json!("after a write")],
                )))
            }
            "setThenFail" => {
                ctx.state().set("f", 1).await?;
                Err(Error::msg("failed after a write"))
            }
            "callFailing" => {
                // An error of a nested call propagates with `?`.
                let _: Value = ctx.actor("Other", "x").call("fail", ()).await?;
                Ok(Outcome::Void)
            }
            "callService" => {
                let greeting: String = ctx.client().call(SERVICE, "hello", arg(&args, 0)).await?;
                Outcome::value(greeting)
            }
            other => Err(Error::no_such_method(other)),
        }
    }
}

struct Other {
    events: mpsc::UnboundedSender<String>,
}

#[async_trait]
impl Actor for Other {
    async fn invoke(
        &self,
        ctx: &Context,
        method: &str,
        args: Vec<Value>,
    ) -> Result<Outcome, Error> {
        match method {
            "callBack" => {
                let actor_type = arg(&args, 0);
                let id = arg(&args, 1);
                let answer: String = ctx
                    .actor(
                        actor_type.as_str().unwrap_or_default(),
                        id.as_str().unwrap_or_default(),
                    )
                    .call("reentered", ())
                    .await?;
                Outcome::value(answer)
            }
            "greet" => Outcome::value(format!("Other greets {}", arg(&args, 0))),
            // readState(type, id, key): that actor's entry, as this method reads it.
            "readState" => {
                let (actor_type, id, key) = (arg(&args, 0), arg(&args, 1), arg(&args, 2));
                let value: Option<Value> = ctx
                    .actor(
                        actor_type.as_str().unwrap_or_default(),
                        id.as_str().unwrap_or_default(),
                    )
                    .state()
                    .get(key.as_str().unwrap_or_default())
                    .await?;
                Outcome::value(value)
            }
            "fail" => Err(Error::msg("Other failed")),
            "record" => {
                let _ = self.events.send(format!("other {}", Value::Array(args)));
                Ok(Outcome::Void)
            }
            other => Err(Error::no_such_method(other)),
        }
    }
}

struct Broken;

#[async_trait]
impl Actor for Broken {
    async fn activate(&self, _ctx: &Context) -> Result<(), Error> {
        Err(Error::msg("cannot start"))
    }

    async fn invoke(
        &self,
        _ctx: &Context,
        method: &str,
        _args: Vec<Value>,
    ) -> Result<Outcome, Error> {
        Err(Error::no_such_method(method))
    }
}
