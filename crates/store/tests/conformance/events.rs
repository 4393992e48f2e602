use super::*;

// ----- events -----

pub(crate) fn subscription(
    actor: (&str, &str),
    id: &str,
    topic: &str,
    oldest: bool,
) -> Subscription {
    Subscription {
        actor: ActorRef::new(actor.0, actor.1),
        id: id.into(),
        path: format!("/on/{id}"),
        topic: topic.into(),
        content_type: String::new(),
        group: String::new(),
        oldest,
    }
}

/// The delivery request the runtime would make: a tell to the subscriber's `path`
/// with body `[<event>]`.
pub(crate) fn event_builder() -> EventRequestBuilder {
    Arc::new(|s: &Subscription, event: &[u8]| {
        let mut request = actor_request(
            RequestKind::Tell,
            &s.actor.actor_type,
            &s.actor.id,
            "node-d",
        );
        request.invocation.path = s.path.clone();
        request.invocation.body = s.event_body(event);
        request
    })
}

/// Delivers one event, expecting one; returns (offset, request id, body).
pub(crate) async fn deliver_one(
    store: &Arc<dyn kar_store::Store>,
    actor: &ActorRef,
    id: &str,
) -> (u64, RequestId, Bytes) {
    match store
        .deliver_event(actor, id, &event_builder())
        .await
        .unwrap()
    {
        Delivery::Delivered {
            offset, request, ..
        } => (offset, request.id, request.invocation.body),
        other => panic!("expected a delivery, got {other:?}"),
    }
}

pub(crate) async fn events_topics_create_delete_publish(engine: &Engine) {
    let store = engine.open("app").await;
    // Topic names with braces and separators are fine.
    for topic in ["t", "{odd}:topic_"] {
        assert!(store.topic_create(topic).await.unwrap());
        assert!(!store.topic_create(topic).await.unwrap());
        for n in 1..=3 {
            assert_eq!(
                store
                    .publish(topic, Bytes::from(format!("e{n}")))
                    .await
                    .unwrap(),
                n
            );
        }
        assert!(store.topic_delete(topic).await.unwrap());
        assert!(!store.topic_delete(topic).await.unwrap());
        // Publishing creates a missing topic; offsets keep growing after a deletion.
        assert_eq!(store.publish(topic, b("e4")).await.unwrap(), 4);
        assert!(!store.topic_create(topic).await.unwrap());
    }
    // A subscriber from the oldest event sees only what survived the deletion.
    let _inbox = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let actor = ActorRef::new("T", "1");
    store
        .subscribe(&subscription(("T", "1"), "s", "t", true))
        .await
        .unwrap();
    let (offset, _, body) = deliver_one(&store, &actor, "s").await;
    assert_eq!((offset, body), (4, b("[e4]")));
    // Publishing to a never-created topic creates it.
    assert_eq!(store.publish("fresh", b("x")).await.unwrap(), 1);
    assert!(!store.topic_create("fresh").await.unwrap());
}

pub(crate) async fn events_subscriptions_subscribe_replace_get_cancel(engine: &Engine) {
    let store = engine.open("app").await;
    let a = ActorRef::new("T", "a");
    let odd = ActorRef::new("T:1", "{x}_y");
    assert_eq!(store.subscriptions().get(&a, "s1").await.unwrap(), None);
    assert!(store.subscriptions().list(&a).await.unwrap().is_empty());
    let s1 = subscription(("T", "a"), "s1", "t1", false);
    assert!(!store.subscribe(&s1).await.unwrap());
    assert_eq!(
        store.subscriptions().get(&a, "s1").await.unwrap(),
        Some(s1.clone())
    );
    let mut s1b = subscription(("T", "a"), "s1", "t2", true);
    s1b.content_type = "text/plain".into();
    s1b.group = "g".into();
    assert!(store.subscribe(&s1b).await.unwrap());
    assert_eq!(
        store.subscriptions().get(&a, "s1").await.unwrap(),
        Some(s1b.clone())
    );
    let s0 = subscription(("T", "a"), "s0", "t1", false);
    store.subscribe(&s0).await.unwrap();
    let s_odd = subscription(("T:1", "{x}_y"), "s1", "t1", false);
    store.subscribe(&s_odd).await.unwrap();
    let other = engine.open("app").await;
    assert_eq!(
        other.subscriptions().list(&a).await.unwrap(),
        vec![s0.clone(), s1b.clone()]
    );
    assert_eq!(
        other.subscriptions().list(&odd).await.unwrap(),
        vec![s_odd.clone()]
    );
    assert_eq!(
        other.subscriptions().list_all().await.unwrap(),
        vec![s0.clone(), s1b.clone(), s_odd.clone()]
    );
    assert!(store.subscriptions().cancel(&odd, "s1").await.unwrap());
    assert!(!store.subscriptions().cancel(&odd, "s1").await.unwrap());
    assert_eq!(store.subscriptions().cancel_all(&a).await.unwrap(), 2);
    assert_eq!(store.subscriptions().cancel_all(&a).await.unwrap(), 0);
    assert!(store.subscriptions().list_all().await.unwrap().is_empty());
    assert_eq!(
        store
            .deliver_event(&a, "s1", &event_builder())
            .await
            .unwrap(),
        Delivery::Gone
    );
    // Purge takes subscriptions too.
    store.subscribe(&s0).await.unwrap();
    store.purge().await.unwrap();
    assert!(store.subscriptions().list_all().await.unwrap().is_empty());
}

pub(crate) async fn events_delivered_in_order_one_at_a_time(engine: &Engine) {
    let store = engine.open("app").await;
    let mut inbox = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let node_a = NodeId("node-a".into());
    let build = event_builder();
    store.publish("t", b(r#"{"n":1}"#)).await.unwrap();
    let newest = ActorRef::new("T", "newest");
    let oldest = ActorRef::new("T", "oldest");
    let mut text = subscription(("T", "text"), "s", "t", true);
    text.content_type = "text/plain".into();
    store
        .subscribe(&subscription(("T", "newest"), "s", "t", false))
        .await
        .unwrap();
    store
        .subscribe(&subscription(("T", "oldest"), "s", "t", true))
        .await
        .unwrap();
    store.subscribe(&text).await.unwrap();
    assert_eq!(
        store.deliver_event(&newest, "s", &build).await.unwrap(),
        Delivery::UpToDate
    );
    store.publish("t", b(r#"{"n":2}"#)).await.unwrap();
    store.publish("t", b(r#"{"n":3}"#)).await.unwrap();

    // The newest subscriber starts after event 1; one delivery at a time.
    let delivered = store.deliver_event(&newest, "s", &build).await.unwrap();
    let Delivery::Delivered {
        offset,
        request,
        routing,
    } = delivered
    else {
        panic!("expected a delivery, got {delivered:?}");
    };
    assert_eq!(offset, 2);
    assert_eq!(routing, Routing::Assigned(node_a.clone()));
    assert_eq!(request.invocation.body, b(r#"[{"n":2}]"#));
    assert_eq!(request.invocation.path, "/on/s");
    assert_eq!(request.kind, RequestKind::Tell);
    let (got, _) = recv_n(&mut inbox, 1).await;
    assert_eq!(executed(&got), vec![request.id.clone()]);
    assert_eq!(
        store.deliver_event(&newest, "s", &build).await.unwrap(),
        Delivery::InFlight
    );
    // Once the tell finished, the next one goes.
    assert!(store
        .complete(&node_a, &request.id, &reply("ok"))
        .await
        .unwrap());
    let (offset, id, body) = deliver_one(&store, &newest, "s").await;
    assert_eq!((offset, body), (3, b(r#"[{"n":3}]"#)));
    store.complete(&node_a, &id, &reply("ok")).await.unwrap();
    assert_eq!(
        store.deliver_event(&newest, "s", &build).await.unwrap(),
        Delivery::UpToDate
    );

    // The oldest subscriber gets all three, in order; the text one JSON-string-encoded.
    for n in 1..=3u64 {
        let (offset, id, body) = deliver_one(&store, &oldest, "s").await;
        assert_eq!((offset, body), (n, Bytes::from(format!("[{{\"n\":{n}}}]"))));
        store.complete(&node_a, &id, &reply("ok")).await.unwrap();
        let (offset, id, body) = deliver_one(&store, &text.actor, "s").await;
        assert_eq!(
            (offset, body),
            (n, Bytes::from(format!("[\"{{\\\"n\\\":{n}}}\"]")))
        );
        store.complete(&node_a, &id, &reply("ok")).await.unwrap();
    }
    // Replacing on the same topic and group keeps the position.
    store
        .subscribe(&subscription(("T", "oldest"), "s", "t", true))
        .await
        .unwrap();
    assert_eq!(
        store.deliver_event(&oldest, "s", &build).await.unwrap(),
        Delivery::UpToDate
    );
    // On another consumer group it starts over (from the oldest event here).
    let mut regrouped = subscription(("T", "oldest"), "s", "t", true);
    regrouped.group = "g2".into();
    store.subscribe(&regrouped).await.unwrap();
    let (offset, id, _) = deliver_one(&store, &oldest, "s").await;
    assert_eq!(offset, 1);
    store.complete(&node_a, &id, &reply("ok")).await.unwrap();
}

pub(crate) async fn events_delivered_once_under_concurrent_deliverers(engine: &Engine) {
    let setup = engine.open("app").await;
    let _inbox = setup.join(&member("node-a", "sa", &["T"])).await.unwrap();
    const EVENTS: u64 = 30;
    for n in 1..=EVENTS {
        setup
            .publish("t", Bytes::from(format!("{n}")))
            .await
            .unwrap();
    }
    for id in ["s1", "s2"] {
        setup
            .subscribe(&subscription(("T", "x"), id, "t", true))
            .await
            .unwrap();
    }
    // Two members (separate handles) deliver concurrently, each finishing the tells
    // it enqueued, until both subscriptions are up to date.
    let mut deliverers = Vec::new();
    for _ in 0..2 {
        let store = engine.open("app").await;
        deliverers.push(tokio::spawn(async move {
            let build = event_builder();
            let actor = ActorRef::new("T", "x");
            let node_a = NodeId("node-a".into());
            let mut delivered = Vec::new();
            let mut done = [false, false];
            while done != [true, true] {
                for (k, id) in ["s1", "s2"].into_iter().enumerate() {
                    match store.deliver_event(&actor, id, &build).await.unwrap() {
                        Delivery::Delivered {
                            offset, request, ..
                        } => {
                            delivered.push((id, offset, request.invocation.body));
                            store
                                .complete(&node_a, &request.id, &reply("ok"))
                                .await
                                .unwrap();
                        }
                        Delivery::UpToDate => done[k] = true,
                        Delivery::InFlight => tokio::task::yield_now().await,
                        Delivery::Gone => panic!("subscription gone"),
                    }
                }
            }
            delivered
        }));
    }
    let mut all = Vec::new();
    for deliverer in deliverers {
        all.extend(deliverer.await.unwrap());
    }
    all.sort();
    for id in ["s1", "s2"] {
        let got: Vec<_> = all
            .iter()
            .filter(|(s, _, _)| *s == id)
            .map(|(_, offset, body)| (*offset, body.clone()))
            .collect();
        let expected: Vec<_> = (1..=EVENTS)
            .map(|n| (n, Bytes::from(format!("[{n}]"))))
            .collect();
        assert_eq!(got, expected, "each event once per subscription");
    }
}

pub(crate) async fn events_topics_shared_subscriptions_isolated(engine: &Engine) {
    let a = engine.open("app-a").await;
    let b_store = engine.open("app-b").await;
    let _inbox = b_store.join(&member("node-b", "sb", &["T"])).await.unwrap();
    let actor = ActorRef::new("T", "1");
    // A topic created by one application exists for the other.
    assert!(a.topic_create("shared").await.unwrap());
    assert!(!b_store.topic_create("shared").await.unwrap());
    a.subscribe(&subscription(("T", "1"), "s", "shared", true))
        .await
        .unwrap();
    b_store
        .subscribe(&subscription(("T", "1"), "s", "shared", true))
        .await
        .unwrap();
    a.publish("shared", b("from-a")).await.unwrap();
    // Application b delivers its own subscription only.
    let (offset, id, body) = deliver_one(&b_store, &actor, "s").await;
    assert_eq!((offset, body), (1, b("[from-a]")));
    b_store
        .complete(&NodeId("node-b".into()), &id, &reply("ok"))
        .await
        .unwrap();
    assert_eq!(b_store.subscriptions().list_all().await.unwrap().len(), 1);
    // Purging b keeps a's subscription and the shared topic.
    b_store.purge().await.unwrap();
    assert!(b_store.subscriptions().list_all().await.unwrap().is_empty());
    assert_eq!(a.subscriptions().list(&actor).await.unwrap().len(), 1);
    assert!(!a.topic_create("shared").await.unwrap());
    // a's subscription is still at the start: nobody delivered it (no member of a).
    // (b_store's own member was purged: its writes are fenced; another handle's are not.)
    let b_again = engine.open("app-b").await;
    assert!(!b_again.subscriptions().cancel(&actor, "s").await.unwrap());
    assert_eq!(a.subscriptions().cancel_all(&actor).await.unwrap(), 1);
}

/// Topics are global: a subscription of another application keeps its events from
/// being trimmed from the moment it is written, before that application ever ran a
/// trim pass of its own.
pub(crate) async fn a_new_subscription_of_another_app_holds_trimming_back(engine: &Engine) {
    let store = engine.open("app").await;
    let other = engine.open("other").await;
    let _inbox = other.join(&member("node-o", "so", &["T"])).await.unwrap();
    let node_o = NodeId("node-o".into());
    for n in 1..=3 {
        store
            .publish("shared", Bytes::from(format!("{n}")))
            .await
            .unwrap();
    }
    other
        .subscribe(&subscription(("T", "r"), "s", "shared", true))
        .await
        .unwrap();
    // `app` reads nothing of the topic, yet trims nothing: `other` has not read it.
    assert_eq!(store.trim("shared", Duration::ZERO, 100).await.unwrap(), 0);
    let reader = ActorRef::new("T", "r");
    for n in 1..=2 {
        let (offset, id, _) = deliver_one(&other, &reader, "s").await;
        assert_eq!(offset, n);
        other.complete(&node_o, &id, &reply("ok")).await.unwrap();
    }
    // Once `other` passed two of them (and said so with a trim pass), they go.
    assert_eq!(other.trim("shared", Duration::ZERO, 100).await.unwrap(), 2);
    assert_eq!(store.trim("shared", Duration::ZERO, 100).await.unwrap(), 0);
    let (offset, id, _) = deliver_one(&other, &reader, "s").await;
    assert_eq!(offset, 3);
    other.complete(&node_o, &id, &reply("ok")).await.unwrap();
}

pub(crate) async fn events_trimmed_once_passed_and_past_retention(engine: &Engine) {
    let store = engine.open("app").await;
    let _inbox = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let node_a = NodeId("node-a".into());
    let reader = ActorRef::new("T", "r");
    store
        .subscribe(&subscription(("T", "r"), "s", "kept", true))
        .await
        .unwrap();
    for n in 1..=3 {
        store
            .publish("kept", Bytes::from(format!("{n}")))
            .await
            .unwrap();
    }
    const HOUR: Duration = Duration::from_secs(3600);
    // Nothing passed yet: nothing goes, whatever the retention.
    assert_eq!(store.trim("kept", Duration::ZERO, 100).await.unwrap(), 0);
    for n in 1..=2 {
        let (offset, id, _) = deliver_one(&store, &reader, "s").await;
        assert_eq!(offset, n);
        store.complete(&node_a, &id, &reply("ok")).await.unwrap();
    }
    // Passed, but within the retention: kept.
    assert_eq!(store.trim("kept", HOUR, 100).await.unwrap(), 0);
    // Passed and past it: the two delivered events go, the third stays.
    assert_eq!(store.trim("kept", Duration::ZERO, 100).await.unwrap(), 2);
    assert_eq!(store.trim("kept", Duration::ZERO, 100).await.unwrap(), 0);
    // Offsets go on; a subscription from the oldest starts after the trimmed ones.
    assert_eq!(store.publish("kept", b("4")).await.unwrap(), 4);
    let late = ActorRef::new("T", "late");
    store
        .subscribe(&subscription(("T", "late"), "s", "kept", true))
        .await
        .unwrap();
    let (offset, id, body) = deliver_one(&store, &late, "s").await;
    assert_eq!((offset, body), (3, b("[3]")));
    store.complete(&node_a, &id, &reply("ok")).await.unwrap();
    let (offset, id, _) = deliver_one(&store, &reader, "s").await;
    assert_eq!(offset, 3);
    store.complete(&node_a, &id, &reply("ok")).await.unwrap();
    // A topic nobody subscribes to is trimmed on age alone, `max` at a time.
    for n in 1..=5 {
        store
            .publish("lonely", Bytes::from(format!("{n}")))
            .await
            .unwrap();
    }
    assert_eq!(store.trim("lonely", Duration::ZERO, 2).await.unwrap(), 2);
    assert_eq!(store.trim("lonely", Duration::ZERO, 10).await.unwrap(), 3);
    assert_eq!(store.trim("lonely", Duration::ZERO, 10).await.unwrap(), 0);
    assert_eq!(store.publish("lonely", b("6")).await.unwrap(), 6);
}

pub(crate) async fn events_bridge_appends_once_and_is_taken_over(engine: &Engine) {
    let a = engine.open("app").await;
    let b_store = engine.open("app").await;
    let _inbox_a = a.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let _inbox_b = b_store.join(&member("node-b", "sb", &["T"])).await.unwrap();
    let bridge = Bridge {
        topic: "k".into(),
        source: "kafka:k".into(),
        partition: 0,
    };
    // A lease long enough for the first part; the takeover waits for its end.
    let lease = Duration::from_secs(2);
    assert_eq!(
        a.bridge_claim(&bridge, "node-a", lease).await.unwrap(),
        Claim::Mine(None)
    );
    assert_eq!(
        b_store
            .bridge_claim(&bridge, "node-b", lease)
            .await
            .unwrap(),
        Claim::Owned("node-a".into())
    );
    let append = |store: &Arc<dyn kar_store::Store>, node: &str, from, next, events: &[&str]| {
        let (store, bridge, node) = (store.clone(), bridge.clone(), node.to_string());
        let events: Vec<Bytes> = events.iter().map(|e| b(e)).collect();
        async move {
            store
                .bridge_append(&bridge, &node, lease, from, next, events)
                .await
                .unwrap()
        }
    };
    assert!(append(&a, "node-a", None, 2, &["e0", "e1"]).await);
    // The same batch again (a retry after a lost reply, say): refused.
    assert!(!append(&a, "node-a", None, 2, &["e0", "e1"]).await);
    // A non-owner cannot append.
    assert!(!append(&b_store, "node-b", Some(2), 3, &["x"]).await);
    assert!(append(&a, "node-a", Some(2), 3, &["e2"]).await);
    assert_eq!(
        a.bridge_claim(&bridge, "node-a", lease).await.unwrap(),
        Claim::Mine(Some(3))
    );
    // node-a goes away: node-b takes over where it stopped (at once on the embedded
    // store, once the bridge lease ran out on Redis).
    a.leave(&NodeId("node-a".into())).await.unwrap();
    let start = Instant::now();
    loop {
        match b_store
            .bridge_claim(&bridge, "node-b", lease)
            .await
            .unwrap()
        {
            Claim::Mine(next) => {
                assert_eq!(next, Some(3));
                break;
            }
            Claim::Owned(owner) => assert_eq!(owner, "node-a"),
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the bridge was never taken over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The former owner, waking up late, appends nothing.
    let late = engine.open("app").await;
    assert!(!append(&late, "node-a", Some(3), 4, &["stale"]).await);
    assert!(append(&b_store, "node-b", Some(3), 4, &["e3"]).await);
    // Each record once, in order.
    b_store
        .subscribe(&subscription(("T", "r"), "s", "k", true))
        .await
        .unwrap();
    let reader = ActorRef::new("T", "r");
    for (n, event) in ["e0", "e1", "e2", "e3"].into_iter().enumerate() {
        let (offset, id, body) = deliver_one(&b_store, &reader, "s").await;
        assert_eq!(
            (offset, body),
            (n as u64 + 1, Bytes::from(format!("[{event}]")))
        );
        b_store
            .complete(&NodeId("node-b".into()), &id, &reply("ok"))
            .await
            .unwrap();
    }
    assert_eq!(
        b_store
            .deliver_event(&reader, "s", &event_builder())
            .await
            .unwrap(),
        Delivery::UpToDate
    );
}
