//! Actor state and submaps through the SDK client, against a real sidecar.

mod common;

use common::Harness;
use kar_sdk::UpdateCounts;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flat_state() {
    let h = Harness::start(false).await;
    let state = h.client.actor("Test", "state/1 odd").state();

    assert_eq!(state.get::<Value>("a").await.unwrap(), None);
    assert!(!state.contains("a").await.unwrap());
    assert!(state.set("a", json!({"x": 1})).await.unwrap(), "new entry");
    assert!(
        !state.set("a", json!({"x": 2})).await.unwrap(),
        "existing entry"
    );
    assert!(state.contains("a").await.unwrap());
    assert_eq!(
        state.get::<Value>("a").await.unwrap(),
        Some(json!({"x": 2}))
    );
    // Typed reads; keys with any character.
    state.set("n/ü ?#", 42).await.unwrap();
    assert_eq!(state.get::<i64>("n/ü ?#").await.unwrap(), Some(42));

    assert!(state.remove("a").await.unwrap());
    assert!(!state.remove("a").await.unwrap());
    assert!(!state.contains("a").await.unwrap());

    assert_eq!(
        state
            .set_multiple(json!({"b": 1, "c": 2, "n/ü ?#": 3}))
            .await
            .unwrap(),
        2
    );
    let all = state.get_all().await.unwrap();
    assert_eq!(Value::Object(all), json!({"b": 1, "c": 2, "n/ü ?#": 3}));
    assert_eq!(state.remove_some(&["b", "zz"]).await.unwrap(), 1);

    let counts = state
        .update(json!({"removals": ["c"], "updates": {"d": true, "n/ü ?#": 4}}))
        .await
        .unwrap();
    assert_eq!(
        counts,
        UpdateCounts {
            removed: 1,
            added: 1
        }
    );
    assert_eq!(
        Value::Object(state.get_all().await.unwrap()),
        json!({"d": true, "n/ü ?#": 4})
    );

    assert!(state.remove_all().await.unwrap());
    assert!(!state.remove_all().await.unwrap());
    assert!(state.get_all().await.unwrap().is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submaps() {
    let h = Harness::start(false).await;
    let state = h.client.actor("Test", "sub").state();
    let map = state.submap("m");

    assert_eq!(map.get::<Value>("k1").await.unwrap(), None);
    assert!(!map.contains("k1").await.unwrap());
    assert!(map.set("k1", "v1").await.unwrap());
    assert!(!map.set("k1", "v1'").await.unwrap());
    assert!(map.set("k2", 2).await.unwrap());
    assert!(map.contains("k1").await.unwrap());
    assert_eq!(
        map.get::<String>("k1").await.unwrap().as_deref(),
        Some("v1'")
    );
    assert_eq!(
        map.set_multiple(json!({"k3": [3], "k2": 22}))
            .await
            .unwrap(),
        1
    );
    assert_eq!(map.keys().await.unwrap(), vec!["k1", "k2", "k3"]);
    assert_eq!(map.size().await.unwrap(), 3);
    assert_eq!(
        Value::Object(map.get_all().await.unwrap()),
        json!({"k1": "v1'", "k2": 22, "k3": [3]})
    );
    // A flat entry of the same name does not collide with the submap.
    state.set("m", "flat").await.unwrap();
    assert_eq!(map.size().await.unwrap(), 3);
    assert_eq!(
        state.get::<String>("m").await.unwrap().as_deref(),
        Some("flat")
    );

    assert!(map.remove("k1").await.unwrap());
    assert!(!map.remove("k1").await.unwrap());
    assert_eq!(map.remove_some(&["k2", "nope"]).await.unwrap(), 1);
    assert_eq!(map.keys().await.unwrap(), vec!["k3"]);
    assert_eq!(map.remove_all().await.unwrap(), 1);
    assert_eq!(map.remove_all().await.unwrap(), 0);
    assert_eq!(map.size().await.unwrap(), 0);
    assert_eq!(
        state.get::<String>("m").await.unwrap().as_deref(),
        Some("flat")
    );
    h.stop().await;
}
