//! Conformance of the dashboard's read-only views (`AdminStore::list_placements`,
//! `AdminStore::subscription_lags`), on both engines like `conformance.rs`.

mod support;

use bytes::Bytes;
use kar_protocol::{ActorRef, NodeId, RequestKind, Subscription, Target};
use kar_store::{Delivery, EventRequestBuilder, Routing, StoreError};
use std::collections::BTreeSet;
use std::sync::Arc;
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
    placements_page_through_every_placement_once,
    subscription_lags_follow_publishes_and_deliveries,
);

/// A tell to actor `actor_type[id]`.
fn tell(actor_type: &str, id: &str) -> kar_protocol::Request {
    let mut r = request(RequestKind::Tell, actor_type, "node-c");
    r.target = Target::Actor {
        actor_type: actor_type.into(),
        id: id.into(),
    };
    r
}

async fn placements_page_through_every_placement_once(engine: &Engine) {
    let store = engine.open("app").await;
    let _inbox = store
        .join(&member("node-a", "sa", &["T", "U"]))
        .await
        .unwrap();
    let mut placed = BTreeSet::new();
    // More than Redis keeps in a compact hash (`hash-max-listpack-entries`, 512 in
    // Debian's build), which HSCAN returns whole.
    for n in 0..600 {
        store.enqueue(&tell("T", &format!("t{n}"))).await.unwrap();
        placed.insert(ActorRef::new("T", format!("t{n}")));
    }
    for n in 0..5 {
        store.enqueue(&tell("U", &format!("u{n}"))).await.unwrap();
        placed.insert(ActorRef::new("U", format!("u{n}")));
    }
    // Another application's placements are not listed.
    let other = engine.open("other").await;
    let _other_inbox = other.join(&member("node-o", "so", &["T"])).await.unwrap();
    other.enqueue(&tell("T", "elsewhere")).await.unwrap();

    // Redis scans a large hash: its COUNT is a hint (a small one it pages exactly).
    let exact_pages = !engine.is_redis();
    let read_all = |actor_type: Option<&'static str>| {
        let store = store.clone();
        async move {
            let (mut seen, mut pages) = (Vec::new(), 0);
            let mut cursor: Option<String> = None;
            for _ in 0..10_000 {
                let page = store
                    .list_placements(actor_type, cursor.as_deref(), 7)
                    .await
                    .unwrap();
                pages += 1;
                if exact_pages {
                    assert!(page.placements.len() <= 7, "{page:?}");
                }
                for (actor, node) in page.placements {
                    assert_eq!(node, NodeId("node-a".into()));
                    seen.push(actor);
                }
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => return (seen, pages),
                }
            }
            panic!("the listing never ended");
        }
    };
    let (all, pages) = read_all(None).await;
    assert_eq!(all.len(), 605, "each placement once");
    assert!(pages > 10, "paged: {pages} pages");
    assert_eq!(all.iter().cloned().collect::<BTreeSet<_>>(), placed);
    let (only_u, _) = read_all(Some("U")).await;
    assert_eq!(only_u.len(), 5, "{only_u:?}");
    assert!(only_u.iter().all(|a| a.actor_type == "U"));
    assert!(read_all(Some("V")).await.0.is_empty());

    // A small set of placements is paged exactly, in order, on both engines.
    let small = engine.open("small").await;
    let _small_inbox = small.join(&member("node-s", "ss", &["T"])).await.unwrap();
    for n in 0..5 {
        small.enqueue(&tell("T", &format!("s{n}"))).await.unwrap();
    }
    let mut cursor: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let page = small
            .list_placements(None, cursor.as_deref(), 2)
            .await
            .unwrap();
        pages.push(
            page.placements
                .iter()
                .map(|(a, _)| a.id.clone())
                .collect::<Vec<_>>(),
        );
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, [vec!["s0", "s1"], vec!["s2", "s3"], vec!["s4"]]);

    // A cursor that no page gave is refused, naming it.
    match store.list_placements(None, Some("not a cursor"), 7).await {
        Err(StoreError::Config(reason)) => assert!(reason.contains("cursor"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn subscription(actor: &str, topic: &str, oldest: bool) -> Subscription {
    Subscription {
        actor: ActorRef::new("S", actor),
        id: "sub".into(),
        path: "/on".into(),
        topic: topic.into(),
        content_type: String::new(),
        group: String::new(),
        oldest,
    }
}

fn builder() -> EventRequestBuilder {
    Arc::new(|s: &Subscription, event: &[u8]| {
        let mut r = tell(&s.actor.actor_type, &s.actor.id);
        r.invocation.path = s.path.clone();
        r.invocation.body = s.event_body(event);
        r
    })
}

async fn subscription_lags_follow_publishes_and_deliveries(engine: &Engine) {
    let store = engine.open("app").await;
    let node = NodeId("node-a".into());
    let _inbox = store.join(&member("node-a", "sa", &["S"])).await.unwrap();
    let topic = "lagging";
    for n in 0..3 {
        store
            .publish(topic, Bytes::from(format!("{{\"n\":{n}}}")))
            .await
            .unwrap();
    }
    store
        .subscribe(&subscription("old", topic, true))
        .await
        .unwrap();
    store
        .subscribe(&subscription("new", topic, false))
        .await
        .unwrap();
    let lags = |store: Arc<dyn kar_store::Store>| async move {
        store
            .subscription_lags()
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.subscription.actor.id, l.position, l.lag, l.in_flight))
            .collect::<Vec<_>>()
    };
    // Sorted by actor: "new" before "old". The newest-first one starts at the end.
    assert_eq!(
        lags(store.clone()).await,
        vec![("new".into(), 3, 0, false), ("old".into(), 0, 3, false)]
    );
    let old = ActorRef::new("S", "old");
    let Delivery::Delivered {
        request, routing, ..
    } = store.deliver_event(&old, "sub", &builder()).await.unwrap()
    else {
        panic!("expected a delivery");
    };
    assert_eq!(routing, Routing::Assigned(node.clone()));
    assert_eq!(
        lags(store.clone()).await[1],
        ("old".into(), 1, 2, true),
        "one delivered, in flight"
    );
    store
        .complete(&node, &request.id, &reply("ok"))
        .await
        .unwrap();
    store
        .publish(topic, Bytes::from_static(b"{}"))
        .await
        .unwrap();
    assert_eq!(
        lags(store.clone()).await,
        vec![("new".into(), 3, 1, false), ("old".into(), 1, 3, false)]
    );
    // A deleted topic has nothing left to deliver.
    store.topic_delete(topic).await.unwrap();
    assert_eq!(
        lags(store.clone()).await,
        vec![("new".into(), 3, 0, false), ("old".into(), 1, 0, false)]
    );
}
