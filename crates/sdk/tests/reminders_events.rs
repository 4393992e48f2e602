//! Reminders, topics, subscriptions and publishing through the SDK client, fired and
//! delivered by a real sidecar to actors hosted by `kar_sdk::Server`.

mod common;

use common::Harness;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime};

/// The next `record ...` the component saw, skipping activations.
async fn next_record(h: &mut Harness) -> String {
    loop {
        let event = h.next_event().await;
        if !event.starts_with("activate ") {
            return event;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reminders() {
    let mut h = Harness::start(true).await;
    let actor = h.client.actor("Test", "rem");

    // A periodic reminder far in the future: its shape, as listed and as one.
    let later = SystemTime::now() + Duration::from_secs(3600);
    actor
        .schedule_reminder(
            "later",
            "record",
            later,
            Some(Duration::from_millis(1500)),
            ("later",),
        )
        .await
        .unwrap();
    let one = actor
        .reminder("later")
        .await
        .unwrap()
        .expect("the reminder");
    assert_eq!(one["Actor"], json!({"Type": "Test", "ID": "rem"}));
    assert_eq!(one["id"], "later");
    assert_eq!(one["path"], "/record");
    assert_eq!(one["period"], 1_500_000_000u64);
    assert_eq!(one["encodedData"], r#"["later"]"#);
    assert!(one["targetTime"].as_str().unwrap().ends_with('Z'), "{one}");
    assert_eq!(actor.reminder("none").await.unwrap(), None);
    let all = actor.reminders().await.unwrap();
    assert_eq!(all, vec![one]);

    // A one-shot reminder due now fires once (a tell of `record`), then is gone.
    actor
        .schedule_reminder("now", "record", "1970-01-01T00:00:00Z", None, ("tick", 1))
        .await
        .unwrap();
    assert_eq!(next_record(&mut h).await, r#"record ["tick",1]"#);
    // Deleted after firing (the store transition precedes the tell's execution).
    assert_eq!(actor.reminder("now").await.unwrap(), None);

    // Cancelling.
    assert!(actor.cancel_reminder("later").await.unwrap());
    assert!(!actor.cancel_reminder("later").await.unwrap());
    assert_eq!(actor.reminders().await.unwrap(), Vec::<Value>::new());
    for id in ["a", "b"] {
        actor
            .schedule_reminder(id, "record", later, None, ())
            .await
            .unwrap();
    }
    assert_eq!(actor.cancel_reminders().await.unwrap(), 2);
    assert_eq!(actor.cancel_reminders().await.unwrap(), 0);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events() {
    let mut h = Harness::start(true).await;
    let client = h.client.clone();
    let actor = client.actor("Test", "sub");

    assert!(client.create_topic("orders").await.unwrap());
    assert!(!client.create_topic("orders").await.unwrap());

    actor
        .subscribe("orders-sub", "record", "orders", None)
        .await
        .unwrap();
    let one = actor
        .subscription("orders-sub")
        .await
        .unwrap()
        .expect("the subscription");
    assert_eq!(one["actor"], json!({"Type": "Test", "ID": "sub"}));
    assert_eq!(one["id"], "orders-sub");
    assert_eq!(one["path"], "/record");
    assert_eq!(one["topic"], "orders");
    assert_eq!(actor.subscription("none").await.unwrap(), None);
    assert_eq!(actor.subscriptions().await.unwrap(), vec![one]);

    // Two events, delivered in order, each as the method's one argument.
    client.publish("orders", json!({"n": 1})).await.unwrap();
    client.publish("orders", json!({"n": 2})).await.unwrap();
    assert_eq!(next_record(&mut h).await, r#"record [{"n":1}]"#);
    assert_eq!(next_record(&mut h).await, r#"record [{"n":2}]"#);

    // A non-JSON content type: the event arrives as a JSON string.
    actor
        .subscribe("text-sub", "record", "orders", Some("text/plain"))
        .await
        .unwrap();
    assert_eq!(actor.subscriptions().await.unwrap().len(), 2);
    assert!(actor.cancel_subscription("orders-sub").await.unwrap());
    assert!(!actor.cancel_subscription("orders-sub").await.unwrap());
    client.publish("orders", "hi").await.unwrap();
    assert_eq!(next_record(&mut h).await, r#"record ["\"hi\""]"#);

    assert_eq!(actor.cancel_subscriptions().await.unwrap(), 1);
    assert_eq!(actor.cancel_subscriptions().await.unwrap(), 0);
    client.delete_topic("orders").await.unwrap();
    client.delete_topic("orders").await.unwrap();
    h.stop().await;
}
