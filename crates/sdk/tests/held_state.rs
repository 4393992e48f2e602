//! An actor method's writes of its own state are held back and handed to the sidecar
//! with its reply, which commits them with the request's outcome
//! (`kar_protocol::deferred_state`): read back inside the method, invisible outside
//! until it answers, sent first when the method calls out or tail-calls, committed
//! with an error result too; against a real sidecar over HTTP/1.1 and h2c.

mod common;

use common::Harness;
use serde_json::{json, Value};

async fn held_writes(h2c: bool) {
    let mut h = Harness::start(h2c).await;
    let actor = h.client.actor("Test", &format!("held {h2c}"));
    let state = actor.state();
    state.set("unrelated", 0).await.unwrap();

    // A method answering 204 with held writes: the caller still gets nothing back.
    let answer: Value = actor.call("heldWrites", ()).await.unwrap();
    assert_eq!(answer, Value::Null);
    let event = loop {
        let event = h.next_event().await;
        if let Some(report) = event.strip_prefix("held ") {
            break serde_json::from_str::<Value>(report).unwrap();
        }
    };
    assert_eq!(
        event,
        json!({
            "created": true, "readBack": 1, "createdAgain": false, "contains": true,
            "removed": true, "afterRemoval": null, "removedAgain": false,
            "containsAfterRemoval": false, "setB": true,
            // Not committed before the method answered.
            "outsideSeesB": null,
            "beforeUpdate": null, "updateAdded": 1, "createdAfterUpdate": false,
        })
    );
    assert_eq!(
        Value::Object(state.get_all().await.unwrap()),
        json!({"unrelated": 0, "b": {"x": 1}, "u": 2})
    );

    // Calls one after another see the previous call's writes.
    for expected in 1..=3 {
        let count: i64 = actor.call("add", ()).await.unwrap();
        assert_eq!(count, expected);
    }
    // Concurrent calls queue on the instance: each finds the writes of the one before.
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let actor = actor.clone();
            tokio::spawn(async move { actor.call::<i64>("add", ()).await })
        })
        .collect();
    let mut counts = Vec::new();
    for call in calls {
        counts.push(call.await.unwrap().unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, (4..=19).collect::<Vec<i64>>());
    assert_eq!(state.get::<i64>("count").await.unwrap(), Some(19));

    // A call out of the method sends the held writes first: the callee reads them.
    let seen: Value = actor.call("setThenCallOther", ()).await.unwrap();
    assert_eq!(seen, json!(7));

    // So does a tail call; the continuation answers.
    let greeting: String = actor.call("setThenTail", ()).await.unwrap();
    assert_eq!(greeting, r#"Other greets "after a write""#);
    assert_eq!(state.get::<i64>("t").await.unwrap(), Some(1));

    // A method that fails after a write: the write stays, as it would have had it
    // gone through the state API.
    let failed = actor.call::<Value>("setThenFail", ()).await;
    assert!(
        matches!(&failed, Err(kar_sdk::Error::Failed { message, .. }) if message.contains("failed after a write")),
        "{failed:?}"
    );
    assert_eq!(state.get::<i64>("f").await.unwrap(), Some(1));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_writes_over_http1() {
    held_writes(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_writes_over_h2c() {
    held_writes(true).await;
}
