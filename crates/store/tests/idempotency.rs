//! Conformance of idempotency keys (`IdempotencyStore`), on both engines like
//! `conformance.rs`: the key's transition in `enqueue_keyed`, the outcome recorded by
//! `complete`, expiry and the sweep.

mod support;

use kar_protocol::{NodeId, Outcome, Request, RequestId, RequestKind, Target};
use kar_store::{Keyed, KeyedRequest, Killed, Message, Routing, KILLED};
use std::time::Duration;
use support::*;

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(&super::Engine::embedded()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(&super::Engine::redis()).await;
                }
            )*
        }
    };
}

conformance!(
    duplicate_attaches_then_gets_the_recorded_outcome,
    same_key_for_another_target_is_another_request,
    outcome_survives_the_callers_departure_and_forget,
    expired_keys_are_free_and_swept,
    key_of_a_request_that_ended_without_outcome_is_free,
    a_killed_request_records_the_killed_outcome_with_its_key,
);

const DAY: Duration = Duration::from_secs(86_400);

fn actor_call(actor_type: &str, id: &str, caller: &str) -> Request {
    let mut r = request(RequestKind::Call, actor_type, caller);
    r.target = Target::Actor {
        actor_type: actor_type.into(),
        id: id.into(),
    };
    r
}

/// Sends a tell to `node-e` and checks that it is the next thing its inbox holds:
/// whatever was enqueued before it and not delivered was never enqueued.
async fn nothing_else_queued(store: &dyn kar_store::Store, inbox: &mut Box<dyn kar_store::Inbox>) {
    let marker = request(RequestKind::Tell, "svc", "node-m");
    store.enqueue(&marker).await.unwrap();
    let (got, _) = recv_n(inbox, 1).await;
    assert_eq!(executed(&got), vec![marker.id]);
}

async fn duplicate_attaches_then_gets_the_recorded_outcome(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut executor = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let _ = recv_members_changed(&mut caller).await;
    let first = request(RequestKind::Call, "svc", "node-c");
    let node_e = NodeId("node-e".into());
    assert_eq!(
        store.enqueue_keyed(&first, "order-42", DAY).await.unwrap(),
        Keyed::New(Routing::Assigned(node_e.clone()))
    );
    let (got, _) = recv_n(&mut executor, 1).await;
    assert_eq!(executed(&got), vec![first.id.clone()]);
    // While it runs, a duplicate (another caller, another kind) attaches to it and
    // enqueues nothing.
    let pending = KeyedRequest {
        id: first.id.clone(),
        outcome: None,
    };
    for kind in [RequestKind::Call, RequestKind::Tell, RequestKind::Promise] {
        let duplicate = request(kind, "svc", "node-d");
        assert_eq!(
            store
                .enqueue_keyed(&duplicate, "order-42", DAY)
                .await
                .unwrap(),
            Keyed::Existing(pending.clone())
        );
        assert!(!engine.request_exists("app", &duplicate.id));
    }
    nothing_else_queued(store.as_ref(), &mut executor).await;
    let target = first.target.clone();
    assert_eq!(
        store.keyed(&target, "order-42").await.unwrap(),
        Some(pending)
    );
    // The completion records the outcome with the key, and the caller still gets
    // its Completed.
    let outcome = reply("charged");
    assert!(store.complete(&node_e, &first.id, &outcome).await.unwrap());
    let (got, _) = recv_n(&mut caller, 1).await;
    assert_eq!(
        got,
        vec![Message::Completed {
            id: first.id.clone(),
            kind: RequestKind::Call,
            outcome: outcome.clone(),
        }]
    );
    let done = KeyedRequest {
        id: first.id.clone(),
        outcome: Some(outcome),
    };
    assert_eq!(
        store.keyed(&target, "order-42").await.unwrap(),
        Some(done.clone())
    );
    let late = request(RequestKind::Call, "svc", "node-d");
    assert_eq!(
        store.enqueue_keyed(&late, "order-42", DAY).await.unwrap(),
        Keyed::Existing(done)
    );
    nothing_else_queued(store.as_ref(), &mut executor).await;
    // Another key is another request; an unknown key maps to nothing.
    let other = request(RequestKind::Call, "svc", "node-c");
    assert!(matches!(
        store.enqueue_keyed(&other, "order-43", DAY).await.unwrap(),
        Keyed::New(_)
    ));
    assert_eq!(store.keyed(&target, "order-44").await.unwrap(), None);
}

async fn same_key_for_another_target_is_another_request(engine: &Engine) {
    let store = engine.open("app").await;
    let _e = store
        .join(&member("node-e", "svc", &["A", "A1"]))
        .await
        .unwrap();
    let _f = store.join(&member("node-f", "svc2", &[])).await.unwrap();
    // Targets that a naive concatenation would confuse.
    let requests = [
        request(RequestKind::Call, "svc", "node-c"),
        request(RequestKind::Call, "svc2", "node-c"),
        actor_call("A", "1", "node-c"),
        actor_call("A", "2", "node-c"),
        actor_call("A1", "", "node-c"),
    ];
    for r in &requests {
        assert!(
            matches!(
                store.enqueue_keyed(r, "k", DAY).await.unwrap(),
                Keyed::New(Routing::Assigned(_))
            ),
            "{:?}",
            r.target
        );
    }
    for r in &requests {
        let keyed = store.keyed(&r.target, "k").await.unwrap().unwrap();
        assert_eq!(keyed.id, r.id);
    }
    // The same key in another application is another key too.
    let other_app = engine.open("other").await;
    let _g = other_app.join(&member("node-g", "svc", &[])).await.unwrap();
    let r = request(RequestKind::Call, "svc", "node-c");
    assert!(matches!(
        other_app.enqueue_keyed(&r, "k", DAY).await.unwrap(),
        Keyed::New(_)
    ));
}

async fn outcome_survives_the_callers_departure_and_forget(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut executor = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let _ = recv_members_changed(&mut caller).await;
    let node_e = NodeId("node-e".into());
    // One collected and forgotten by its caller, one whose caller left before it
    // completed, one tell.
    let collected = request(RequestKind::Call, "svc", "node-c");
    let orphan = request(RequestKind::Call, "svc", "node-gone");
    let tell = request(RequestKind::Tell, "svc", "node-c");
    let _gone = store.join(&member("node-gone", "x", &[])).await.unwrap();
    for (r, key) in [(&collected, "a"), (&orphan, "b"), (&tell, "c")] {
        store.enqueue_keyed(r, key, DAY).await.unwrap();
    }
    let _ = recv_n(&mut executor, 3).await;
    store.leave(&NodeId("node-gone".into())).await.unwrap();
    for (r, body) in [(&collected, "1"), (&orphan, "2"), (&tell, "3")] {
        assert!(store.complete(&node_e, &r.id, &reply(body)).await.unwrap());
    }
    recv_n(&mut caller, 1).await;
    store
        .forget(std::slice::from_ref(&collected.id))
        .await
        .unwrap();
    // Engines may delete forgotten records with their next transition.
    store.expire_parked(&RequestId::generate()).await.unwrap();
    for (r, key, body) in [
        (&collected, "a", "1"),
        (&orphan, "b", "2"),
        (&tell, "c", "3"),
    ] {
        assert!(!engine.request_exists("app", &r.id));
        let duplicate = request(RequestKind::Call, "svc", "node-c");
        assert_eq!(
            store.enqueue_keyed(&duplicate, key, DAY).await.unwrap(),
            Keyed::Existing(KeyedRequest {
                id: r.id.clone(),
                outcome: Some(reply(body)),
            })
        );
    }
    // A failure is an outcome like any other.
    let failing = request(RequestKind::Call, "svc", "node-c");
    store.enqueue_keyed(&failing, "d", DAY).await.unwrap();
    recv_n(&mut executor, 1).await;
    let failed = Outcome::Failed("boom".into());
    assert!(store.complete(&node_e, &failing.id, &failed).await.unwrap());
    assert_eq!(
        store.keyed(&failing.target, "d").await.unwrap(),
        Some(KeyedRequest {
            id: failing.id.clone(),
            outcome: Some(failed),
        })
    );
}

async fn expired_keys_are_free_and_swept(engine: &Engine) {
    let store = engine.open("app").await;
    let mut executor = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let node_e = NodeId("node-e".into());
    // A window of zero: the key is forgotten at once, pending or complete.
    let first = request(RequestKind::Call, "svc", "node-c");
    assert!(matches!(
        store
            .enqueue_keyed(&first, "k", Duration::ZERO)
            .await
            .unwrap(),
        Keyed::New(_)
    ));
    assert_eq!(store.keyed(&first.target, "k").await.unwrap(), None);
    let second = request(RequestKind::Call, "svc", "node-c");
    assert!(matches!(
        store
            .enqueue_keyed(&second, "k", Duration::ZERO)
            .await
            .unwrap(),
        Keyed::New(_)
    ));
    let (got, _) = recv_n(&mut executor, 2).await;
    assert_eq!(executed(&got), vec![first.id.clone(), second.id.clone()]);
    assert!(store
        .complete(&node_e, &first.id, &reply("x"))
        .await
        .unwrap());
    assert_eq!(store.keyed(&first.target, "k").await.unwrap(), None);
    // A live key stays through the sweep; the expired one goes (embedded: swept;
    // Redis: its TTL).
    let live = request(RequestKind::Call, "svc", "node-c");
    store.enqueue_keyed(&live, "live", DAY).await.unwrap();
    let swept = store.sweep_keys().await.unwrap();
    if engine.is_redis() {
        assert_eq!(swept, 0);
    } else {
        assert_eq!(swept, 1);
    }
    assert_eq!(stored_keys(engine, "app"), 1);
    assert_eq!(store.sweep_keys().await.unwrap(), 0);
    assert_eq!(
        store
            .keyed(&live.target, "live")
            .await
            .unwrap()
            .map(|k| k.id),
        Some(live.id)
    );
}

async fn key_of_a_request_that_ended_without_outcome_is_free(engine: &Engine) {
    let store = engine.open("app").await;
    // Nobody offers `svc`: parked, then expired (its start deadline passed).
    let parked = request(RequestKind::Call, "svc", "node-c");
    assert_eq!(
        store.enqueue_keyed(&parked, "k", DAY).await.unwrap(),
        Keyed::New(Routing::Parked)
    );
    assert!(store.expire_parked(&parked.id).await.unwrap());
    assert_eq!(store.keyed(&parked.target, "k").await.unwrap(), None);
    let again = request(RequestKind::Call, "svc", "node-c");
    assert_eq!(
        store.enqueue_keyed(&again, "k", DAY).await.unwrap(),
        Keyed::New(Routing::Parked)
    );
    assert_eq!(
        store.keyed(&again.target, "k").await.unwrap().map(|k| k.id),
        Some(again.id)
    );
    // Purge takes the keys with everything else.
    store.purge().await.unwrap();
    assert_eq!(stored_keys(engine, "app"), 0);
}

/// An operator's kill ends a keyed request like a completion: a duplicate sent after
/// it gets the killed reply, it does not run the request again.
async fn a_killed_request_records_the_killed_outcome_with_its_key(engine: &Engine) {
    let store = engine.open("app").await;
    let _caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut executor = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let first = request(RequestKind::Call, "svc", "node-c");
    assert!(matches!(
        store.enqueue_keyed(&first, "k", DAY).await.unwrap(),
        Keyed::New(Routing::Assigned(_))
    ));
    let (got, _) = recv_n(&mut executor, 1).await;
    assert_eq!(executed(&got), vec![first.id.clone()]);
    assert!(matches!(
        store.kill(&first.id).await.unwrap(),
        Killed::Killed { .. }
    ));
    let killed = KeyedRequest {
        id: first.id.clone(),
        outcome: Some(Outcome::Failed(KILLED.to_string())),
    };
    let duplicate = request(RequestKind::Call, "svc", "node-d");
    assert_eq!(
        store.enqueue_keyed(&duplicate, "k", DAY).await.unwrap(),
        Keyed::Existing(killed)
    );
    assert!(!engine.request_exists("app", &duplicate.id));
}

/// How many idempotency keys the engine stores for `app` (white box: rows, or Redis
/// keys whatever their expiry).
fn stored_keys(engine: &Engine, app: &str) -> i64 {
    match engine {
        Engine::Embedded(dir) => {
            let conn = rusqlite::Connection::open(dir.path().join("kar.db")).expect("sqlite");
            conn.query_row(
                "SELECT count(*) FROM idempotency WHERE app = ?1",
                [app],
                |row| row.get(0),
            )
            .expect("query")
        }
        Engine::Redis(server) => {
            let client = ::redis::Client::open(format!("redis://127.0.0.1:{}", server.port))
                .expect("client");
            let mut conn = client.get_connection().expect("connect");
            let keys: Vec<String> = ::redis::cmd("KEYS")
                .arg(format!("kar:{{{app}}}:idem:*"))
                .query(&mut conn)
                .expect("KEYS");
            keys.len() as i64
        }
    }
}
