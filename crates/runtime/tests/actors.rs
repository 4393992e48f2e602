//! Actor semantics of the runtime on the real embedded store, with an in-process
//! component (an `AppClient` written here) instead of an HTTP app.

mod common;

use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::paths::actor_method_path;
use kar_protocol::{deferred_state, ActorRef, FlowId, Invocation, Reply, RequestKind, Target};
use kar_runtime::{Accepted, AppClient, AppError, AppReply, Runtime, RuntimeConfig, RuntimeError};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

/// A component hosting actor type `A` and `B`.
#[derive(Default)]
struct TestApp {
    runtime: OnceLock<Weak<Runtime>>,
    /// Invocations currently running per actor id, and the most ever seen at once.
    running: Mutex<HashMap<String, usize>>,
    max_overlap: AtomicUsize,
    activations: AtomicUsize,
    deactivations: AtomicUsize,
    deactivated: tokio::sync::Notify,
}

fn json_reply(value: &str) -> Reply {
    Reply::new(
        200,
        Some("application/kar+json"),
        format!("{{\"value\":{value}}}"),
    )
}

fn call_invocation(actor_type: &str, id: &str, method: &str, body: &str) -> Invocation {
    Invocation {
        method: "POST".into(),
        path: actor_method_path(actor_type, id, method),
        query: None,
        headers: vec![("Content-Type".into(), "application/kar+json".into())],
        body: Bytes::from(body.to_string()),
    }
}

impl TestApp {
    fn runtime(&self) -> Arc<Runtime> {
        self.runtime
            .get()
            .and_then(Weak::upgrade)
            .expect("runtime alive")
    }

    async fn nested_call(&self, flow: &str, actor_type: &str, id: &str, method: &str) -> Reply {
        let result = self
            .runtime()
            .request(
                Target::Actor {
                    actor_type: actor_type.into(),
                    id: id.into(),
                },
                call_invocation(actor_type, id, method, "[]"),
                RequestKind::Call,
                Some(FlowId::from(flow)),
                None,
            )
            .await;
        match result {
            Ok(Accepted::Reply(reply)) => reply,
            other => Reply::text(500, format!("nested call failed: {other:?}")),
        }
    }
}

#[async_trait]
impl AppClient for TestApp {
    async fn invoke(&self, invocation: &Invocation) -> Result<AppReply, AppError> {
        if invocation.path.ends_with("/incr") {
            return Ok(self.increment(invocation).await);
        }
        self.answer(invocation).await.map(AppReply::from)
    }
}

impl TestApp {
    /// `incr`: reads the instance's entry `n` from the store and hands `n + 1` over with
    /// its reply (`kar_protocol::deferred_state`), as the Rust SDK does; answers `n + 1`.
    async fn increment(&self, invocation: &Invocation) -> AppReply {
        let offered = invocation
            .headers
            .iter()
            .any(|(name, value)| name == deferred_state::OFFER && value == "1");
        if !offered {
            return Reply::text(500, "the hand-over of state writes was not offered").into();
        }
        let rest = invocation.path.trim_start_matches("/kar/impl/v1/actor/");
        let parts: Vec<&str> = rest.split('/').collect();
        let actor = ActorRef::new(parts[0], parts[1]);
        let runtime = self.runtime();
        let read = runtime.state().entry(&actor, "n", None).get().await;
        let n: u64 = match read {
            Ok(value) => value
                .and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok())
                .unwrap_or(0),
            Err(e) => return Reply::text(500, e.to_string()).into(),
        };
        AppReply {
            reply: json_reply(&(n + 1).to_string()),
            state_update: Some(Bytes::from(format!(r#"{{"updates":{{"n":{}}}}}"#, n + 1))),
        }
    }
}

impl TestApp {
    async fn answer(&self, invocation: &Invocation) -> Result<Reply, AppError> {
        let rest = invocation
            .path
            .strip_prefix("/kar/impl/v1/actor/")
            .unwrap_or("");
        let parts: Vec<&str> = rest.split('/').collect();
        let session = invocation.query.clone().unwrap_or_default();
        let flow = session
            .trim_start_matches("session=")
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        match (invocation.method.as_str(), parts.as_slice()) {
            ("GET", [_, _]) => {
                self.activations.fetch_add(1, Ordering::SeqCst);
                Ok(Reply::new(201, Some("text/plain"), "created"))
            }
            ("DELETE", [_, _]) => {
                self.deactivations.fetch_add(1, Ordering::SeqCst);
                self.deactivated.notify_one();
                Ok(Reply::new(200, Some("text/plain"), "deleted"))
            }
            ("POST", [t, id, method]) => {
                let key = format!("{t}/{id}");
                let now = {
                    let mut running = self.running.lock().unwrap();
                    let n = running.entry(key.clone()).or_default();
                    *n += 1;
                    *n
                };
                self.max_overlap.fetch_max(now, Ordering::SeqCst);
                let reply = match *method {
                    "echo" => json_reply(std::str::from_utf8(&invocation.body).unwrap_or("null")),
                    "slow" => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        json_reply("\"slow\"")
                    }
                    // A → B → A in one flow: must re-enter A.
                    "reenter" => {
                        // Leave the overlap count while we wait for the nested calls:
                        // re-entrancy legitimately runs A again meanwhile.
                        self.running
                            .lock()
                            .unwrap()
                            .entry(key.clone())
                            .and_modify(|n| *n -= 1);
                        let reply = self.nested_call(&flow, "B", id, "callback").await;
                        self.running
                            .lock()
                            .unwrap()
                            .entry(key.clone())
                            .and_modify(|n| *n += 1);
                        reply
                    }
                    "callback" => self.nested_call(&flow, "A", id, "echo").await,
                    // A self-call in a fresh flow deadlocks until the busy timeout.
                    "selfcall" => self.nested_call(&FlowId::generate().0, t, id, "echo").await,
                    "count" => {
                        let n: u64 = std::str::from_utf8(&invocation.body)
                            .ok()
                            .and_then(|b| b.trim_matches(|c| c == '[' || c == ']').parse().ok())
                            .unwrap_or(0);
                        if n >= 10 {
                            json_reply(&n.to_string())
                        } else {
                            let tail = format!(
                                r#"{{"tailCall":true,"value":{{"actorType":"{t}","actorId":"{id}","path":"/count","payload":"[{}]"}}}}"#,
                                n + 1
                            );
                            Reply::new(200, Some("application/kar+json"), tail)
                        }
                    }
                    _ => Reply::text(
                        404,
                        format!("no {method} in actor with type {t} and id {id}"),
                    ),
                };
                self.running
                    .lock()
                    .unwrap()
                    .entry(key)
                    .and_modify(|n| *n -= 1);
                Ok(reply)
            }
            _ => Ok(Reply::text(404, "no route")),
        }
    }
}

async fn start(
    dir: &std::path::Path,
    app: &Arc<TestApp>,
    tweak: impl FnOnce(&mut RuntimeConfig),
) -> Arc<Runtime> {
    let runtime = common::start_runtime(dir, "actors-test", &["A", "B"], app.clone(), tweak).await;
    let _ = app.runtime.set(Arc::downgrade(&runtime));
    runtime
}

async fn call(
    runtime: &Arc<Runtime>,
    actor_type: &str,
    id: &str,
    method: &str,
    body: &str,
) -> Result<Reply, RuntimeError> {
    match runtime
        .request(
            Target::Actor {
                actor_type: actor_type.into(),
                id: id.into(),
            },
            call_invocation(actor_type, id, method, body),
            RequestKind::Call,
            None,
            None,
        )
        .await?
    {
        Accepted::Reply(reply) => Ok(reply),
        Accepted::Queued(id) => panic!("call answered as queued {id}"),
    }
}

#[tokio::test]
async fn activation_then_method_and_unknown_method_relayed() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TestApp::default());
    let runtime = start(dir.path(), &app, |_| {}).await;
    let reply = call(&runtime, "A", "1", "echo", "[42]").await.unwrap();
    assert_eq!(reply.body, Bytes::from_static(b"{\"value\":[42]}"));
    call(&runtime, "A", "1", "echo", "[1]").await.unwrap();
    assert_eq!(app.activations.load(Ordering::SeqCst), 1, "activated once");
    let reply = call(&runtime, "A", "1", "nope", "[]").await.unwrap();
    assert_eq!(reply.status, 404);
    assert_eq!(runtime.activated_actors(), vec![ActorRef::new("A", "1")]);
}

#[tokio::test]
async fn reentrant_flow_does_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TestApp::default());
    let runtime = start(dir.path(), &app, |_| {}).await;
    let reply = tokio::time::timeout(
        Duration::from_secs(10),
        call(&runtime, "A", "x", "reenter", "[]"),
    )
    .await
    .expect("no deadlock")
    .unwrap();
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn one_flow_at_a_time_per_instance() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TestApp::default());
    let runtime = start(dir.path(), &app, |_| {}).await;
    let calls = (0..20).map(|_| call(&runtime, "A", "busy", "slow", "[]"));
    for reply in futures::future::join_all(calls).await {
        assert_eq!(reply.unwrap().status, 200);
    }
    assert_eq!(
        app.max_overlap.load(Ordering::SeqCst),
        1,
        "invocations of one instance overlapped"
    );
}

#[tokio::test]
async fn ten_self_tail_calls_keep_the_request() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TestApp::default());
    let runtime = start(dir.path(), &app, |_| {}).await;
    let reply = call(&runtime, "A", "t", "count", "[0]").await.unwrap();
    assert_eq!(reply.body, Bytes::from_static(b"{\"value\":10}"));
}

#[tokio::test]
async fn self_call_in_a_new_flow_hits_the_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TestApp::default());
    let runtime = start(dir.path(), &app, |c| {
        c.actor_busy_timeout = Some(Duration::from_millis(500))
    })
    .await;
    let reply = call(&runtime, "A", "d", "selfcall", "[]").await.unwrap();
    let body = String::from_utf8_lossy(&reply.body).to_string();
    assert!(
        body.contains("Possible deadlock: timed out waiting in instance queue"),
        "{body}"
    );
}

#[tokio::test]
async fn removal_deactivates_and_drops_state() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TestApp::default());
    let runtime = start(dir.path(), &app, |_| {}).await;
    let actor = ActorRef::new("A", "r");
    call(&runtime, "A", "r", "echo", "[]").await.unwrap();
    runtime
        .state()
        .entry(&actor, "k", None)
        .set(Bytes::from_static(b"1"))
        .await
        .unwrap();
    let removal = Invocation {
        method: "DELETE".into(),
        path: kar_protocol::paths::actor_path("A", "r"),
        query: None,
        headers: vec![],
        body: Bytes::new(),
    };
    let accepted = runtime
        .request(
            Target::Actor {
                actor_type: "A".into(),
                id: "r".into(),
            },
            removal,
            RequestKind::Call,
            None,
            None,
        )
        .await
        .unwrap();
    assert!(matches!(accepted, Accepted::Reply(r) if r.status == 200));
    assert_eq!(app.deactivations.load(Ordering::SeqCst), 1);
    assert_eq!(
        runtime
            .state()
            .entry(&actor, "k", None)
            .get()
            .await
            .unwrap(),
        None
    );
    assert!(runtime.activated_actors().is_empty());
}

#[tokio::test]
async fn idle_instances_are_deactivated() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TestApp::default());
    let runtime = start(dir.path(), &app, |c| {
        c.actor_collector_interval = Some(Duration::from_millis(100))
    })
    .await;
    call(&runtime, "A", "idle", "echo", "[]").await.unwrap();
    tokio::time::timeout(Duration::from_secs(5), app.deactivated.notified())
        .await
        .expect("idle instance never deactivated");
    assert!(runtime.activated_actors().is_empty());
}

/// The state writes a method hands over with its reply are committed with its outcome
/// before the instance's next request reads them: concurrent increments, each reading
/// what the one before wrote, lose none. (The instance lock is held until that commit;
/// here the database thread's FIFO order would also keep a read behind the commit
/// before it, so this proves the property, not which of the two provides it: the lock
/// is what holds while a completion is retried through a store outage.)
#[tokio::test]
async fn state_handed_over_with_a_reply_is_committed_before_the_next_request() {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TestApp::default());
    let runtime = start(dir.path(), &app, |_| {}).await;
    let calls = (0..20).map(|_| call(&runtime, "A", "counter", "incr", "[]"));
    let mut answers = Vec::new();
    for reply in futures::future::join_all(calls).await {
        let reply = reply.unwrap();
        assert_eq!(reply.status, 200, "{reply:?}");
        answers.push(String::from_utf8(reply.body.to_vec()).unwrap());
    }
    // In numeric order: shorter first, then by text.
    answers.sort_by_key(|a| (a.len(), a.clone()));
    let expected: Vec<String> = (1..=20).map(|n| format!("{{\"value\":{n}}}")).collect();
    assert_eq!(answers, expected);
    let actor = ActorRef::new("A", "counter");
    let stored = runtime
        .state()
        .entry(&actor, "n", None)
        .get()
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(&b"20"[..]));
}
