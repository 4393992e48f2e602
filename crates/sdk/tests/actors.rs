//! Actor calls through the SDK client and actor components hosted by
//! `kar_sdk::Server`, against a real sidecar (runtime → component over HTTP/1.1 and
//! h2c).

mod common;

use common::Harness;
use kar_sdk::Error;
use serde_json::{json, Value};

async fn actor_scenarios(h2c: bool) {
    let mut h = Harness::start(h2c).await;
    let client = h.client.clone();
    let a = client.actor("Test", "a");

    // First call activates (once), values come back decoded.
    let echoed: Vec<Value> = a
        .call("echo", (1, "two", json!({"three": 3})))
        .await
        .unwrap();
    assert_eq!(echoed, vec![json!(1), json!("two"), json!({"three": 3})]);
    assert_eq!(h.next_event().await, "activate Test a");
    let typed: (i64, String) = a.call("echo", (7, "x")).await.unwrap();
    assert_eq!(typed, (7, "x".to_string()));
    a.call::<()>("nothing", ()).await.unwrap();
    let who: Value = a.call("whoami", ()).await.unwrap();
    assert_eq!(who["id"], "a");
    assert_eq!(who["calls"], 4, "one instance kept across calls: {who}");
    let session = who["session"].as_str().unwrap();
    assert!(
        session.starts_with("flow-") && session.contains(":req-"),
        "{session}"
    );

    // Errors: the envelope becomes Error::Failed; unknown methods are 404s with the
    // spec's text; a panic is an error, not a broken connection.
    match a.call::<Value>("fail", ("why",)).await {
        Err(Error::Failed { message, stack }) => {
            assert_eq!(message, "boom: \"why\"");
            assert!(stack.contains("Test[a].fail"), "{stack}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    match a.call::<Value>("nope", ()).await {
        Err(Error::Status { status: 404, body }) => {
            assert_eq!(body, "no nope in actor with type Test and id a")
        }
        other => panic!("expected 404, got {other:?}"),
    }
    match a.call::<Value>("panic", ()).await {
        Err(Error::Failed { message, .. }) => {
            assert!(message.contains("the method panicked"), "{message}")
        }
        other => panic!("expected Failed, got {other:?}"),
    }
    // A nested failure propagated with `?` keeps the callee's message.
    match a.call::<Value>("callFailing", ()).await {
        Err(Error::Failed { message, .. }) => assert_eq!(message, "Other failed"),
        other => panic!("expected Failed, got {other:?}"),
    }
    // A failing activation reaches the caller; the next call tries again.
    for _ in 0..2 {
        match client.actor("Broken", "1").call::<Value>("m", ()).await {
            Err(Error::Failed { message, .. }) => {
                assert!(message.contains("cannot start"), "{message}")
            }
            other => panic!("expected a failed activation, got {other:?}"),
        }
    }

    // Re-entrancy: Test a → Other b → Test a, in one flow.
    let answer: Value = a.call("callOther", ()).await.unwrap();
    assert_eq!(answer, json!({"viaOther": "re-entered a"}));

    // Tail calls: 10 self tail calls, to another type, releasing the lock, to a
    // service (its JSON answer is the result).
    assert_eq!(a.call::<i64>("count", (0, 10)).await.unwrap(), 100);
    assert_eq!(
        a.call::<String>("tailOther", ("you",)).await.unwrap(),
        "Other greets \"you\""
    );
    assert_eq!(
        a.call::<Vec<String>>("tailReleasing", ()).await.unwrap(),
        vec!["released"]
    );
    assert_eq!(
        a.call::<Value>("tailService", (5,)).await.unwrap(),
        json!({"from": "tail", "arg": 5})
    );
    // A method calling a service.
    assert_eq!(
        a.call::<String>("callService", ("Bilbo",)).await.unwrap(),
        "Hello Bilbo"
    );

    // State from inside methods, visible from outside.
    a.call::<()>("setState", ("k", json!({"v": 1})))
        .await
        .unwrap();
    assert_eq!(
        a.state().get::<Value>("k").await.unwrap(),
        Some(json!({"v": 1}))
    );
    assert_eq!(
        a.call::<Value>("getState", ("k",)).await.unwrap(),
        json!({"v": 1})
    );

    // tell: queued, runs later.
    a.tell("record", ("told",)).await.unwrap();
    assert_eq!(h.next_event().await, r#"record ["told"]"#);

    // async_call: a promise for the method's result, including its errors.
    let promise = a.async_call("count", (1, 3)).await.unwrap();
    assert_eq!(promise.await_result::<i64>().await.unwrap(), 31);
    let promise = a.async_call("fail", ("later",)).await.unwrap();
    assert!(matches!(
        promise.await_result::<Value>().await,
        Err(Error::Failed { .. })
    ));

    // call_in_session: the session given is the one the actor sees.
    let session = "flow-explicit:req-parent";
    let who: Value = a.call_in_session(session, "whoami", ()).await.unwrap();
    assert!(
        who["session"]
            .as_str()
            .unwrap()
            .starts_with("flow-explicit:"),
        "{who}"
    );

    // remove: deactivates the instance and drops its state; the next call makes a
    // fresh instance.
    a.remove().await.unwrap();
    assert_eq!(h.next_event().await, "deactivate Test a");
    let who: Value = a.call("whoami", ()).await.unwrap();
    assert_eq!(who["calls"], 1, "a fresh instance: {who}");
    assert_eq!(h.next_event().await, "activate Test a");
    assert_eq!(a.state().get::<Value>("k").await.unwrap(), None);

    // Ids with any character.
    let odd = client.actor("Test", "a/b ?#ü");
    let who: Value = odd.call("whoami", ()).await.unwrap();
    assert_eq!(who["id"], "a/b ?#ü");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_over_http1() {
    actor_scenarios(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_over_h2c() {
    actor_scenarios(true).await;
}
