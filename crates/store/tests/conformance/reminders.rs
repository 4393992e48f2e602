use super::*;

// ----- reminders -----

pub(crate) fn reminder(actor: (&str, &str), id: &str, target: i64, period: i64) -> Reminder {
    Reminder {
        actor: ActorRef::new(actor.0, actor.1),
        id: id.into(),
        path: format!("/{id}"),
        target,
        target_text: Some(format!("text of {target}")),
        period,
        data: Bytes::from(format!("[\"{id}\"]")),
        trace: None,
    }
}

/// The firing request the runtime would make: a tell to the actor's `path`.
pub(crate) fn tell_builder() -> RequestBuilder {
    Arc::new(|r: &Reminder| {
        let mut request = actor_request(
            RequestKind::Tell,
            &r.actor.actor_type,
            &r.actor.id,
            "node-f",
        );
        request.invocation.path = r.path.clone();
        request.invocation.body = r.data.clone();
        request
    })
}

pub(crate) const SECOND: i64 = 1_000_000_000;

pub(crate) async fn reminders_schedule_replace_get_cancel(engine: &Engine) {
    let store = engine.open("app").await;
    let a = ActorRef::new("T", "a");
    // Ids with separators and braces do not collide with other actors' reminders.
    let odd = ActorRef::new("T:1", "{x}_y");
    assert_eq!(store.reminders().get(&a, "r1").await.unwrap(), None);
    assert!(store.reminders().list(&a).await.unwrap().is_empty());
    let r1 = reminder(("T", "a"), "r1", 5_000, 0);
    assert!(!store.reminder_schedule(&r1).await.unwrap());
    assert_eq!(
        store.reminders().get(&a, "r1").await.unwrap(),
        Some(r1.clone())
    );
    // Replacing: same key, new content.
    let mut r1b = reminder(("T", "a"), "r1", 7_000, 3 * SECOND);
    r1b.target_text = None;
    r1b.data = Bytes::new();
    assert!(store.reminder_schedule(&r1b).await.unwrap());
    assert_eq!(
        store.reminders().get(&a, "r1").await.unwrap(),
        Some(r1b.clone())
    );
    let r0 = reminder(("T", "a"), "r0", 9_000, 0);
    store.reminder_schedule(&r0).await.unwrap();
    let r_odd = reminder(("T:1", "{x}_y"), "r1", 1_000, 0);
    store.reminder_schedule(&r_odd).await.unwrap();
    // Another handle sees the same reminders; all of an actor come by id.
    let other = engine.open("app").await;
    assert_eq!(
        other.reminders().list(&a).await.unwrap(),
        vec![r0.clone(), r1b.clone()]
    );
    assert_eq!(
        other.reminders().list(&odd).await.unwrap(),
        vec![r_odd.clone()]
    );
    // All of the application, by actor type, actor id and id.
    assert_eq!(
        other.reminders().list_all().await.unwrap(),
        vec![r0.clone(), r1b.clone(), r_odd.clone()]
    );
    assert_eq!(store.next_due().await.unwrap(), Some(1_000));
    assert!(store.reminders().cancel(&odd, "r1").await.unwrap());
    assert!(!store.reminders().cancel(&odd, "r1").await.unwrap());
    assert_eq!(store.next_due().await.unwrap(), Some(7_000));
    assert_eq!(store.reminders().cancel_all(&a).await.unwrap(), 2);
    assert_eq!(store.reminders().cancel_all(&a).await.unwrap(), 0);
    assert!(store.reminders().list(&a).await.unwrap().is_empty());
    assert_eq!(store.next_due().await.unwrap(), None);
    // Purge takes reminders too.
    store.reminder_schedule(&r0).await.unwrap();
    store.purge().await.unwrap();
    assert!(store.reminders().list(&a).await.unwrap().is_empty());
    assert_eq!(store.next_due().await.unwrap(), None);
}

pub(crate) async fn reminders_fire_in_due_order_and_advance(engine: &Engine) {
    let store = engine.open("app").await;
    let mut inbox = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let build = tell_builder();
    for (id, target) in [("c", 3_000), ("a", 1_000), ("b", 2_000), ("later", 60_000)] {
        store
            .reminder_schedule(&reminder(("T", id), id, target, 0))
            .await
            .unwrap();
    }
    assert_eq!(store.next_due().await.unwrap(), Some(1_000));
    // Nothing due yet.
    assert!(store.fire_due(999, 10, &build).await.unwrap().is_empty());
    // Due at exactly the target time; at most `limit` per call, earliest first.
    let fired = store.fire_due(5_000, 2, &build).await.unwrap();
    let ids: Vec<_> = fired.iter().map(|f| f.reminder.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    let fired_rest = store.fire_due(5_000, 10, &build).await.unwrap();
    assert_eq!(fired_rest.len(), 1);
    assert_eq!(fired_rest[0].reminder.id, "c");
    assert!(store.fire_due(5_000, 10, &build).await.unwrap().is_empty());
    let node_a = NodeId("node-a".into());
    for f in fired.iter().chain(&fired_rest) {
        assert_eq!(f.routing, Routing::Assigned(node_a.clone()));
        assert_eq!(f.request.invocation.path, f.reminder.path);
        assert_eq!(f.request.invocation.body, f.reminder.data);
    }
    // The requests arrive in due order, as enqueued; one-shots are gone.
    let (got, _) = recv_n(&mut inbox, 3).await;
    let expected: Vec<_> = fired
        .iter()
        .chain(&fired_rest)
        .map(|f| f.request.id.clone())
        .collect();
    assert_eq!(executed(&got), expected);
    for id in ["a", "b", "c"] {
        assert_eq!(
            store
                .reminders()
                .get(&ActorRef::new("T", id), id)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(store.next_due().await.unwrap(), Some(60_000));
}

/// The pending firings (`firings_pending`): those `fire_due` enqueued and that did not
/// finish, counted up to the bound, per application; other requests do not count.
pub(crate) async fn reminders_pending_firings_are_counted_until_they_finish(engine: &Engine) {
    let store = engine.open("app").await;
    let mut inbox = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let node_a = NodeId("node-a".into());
    let build = tell_builder();
    assert_eq!(store.firings_pending(10).await.unwrap(), 0);
    let tell = actor_request(RequestKind::Tell, "T", "x", "node-f");
    store.enqueue(&tell).await.unwrap();
    for id in ["a", "b", "c"] {
        store
            .reminder_schedule(&reminder(("T", id), id, 1_000, SECOND))
            .await
            .unwrap();
    }
    let fired = store.fire_due(2_000, 10, &build).await.unwrap();
    assert_eq!(fired.len(), 3);
    assert_eq!(store.firings_pending(10).await.unwrap(), 3);
    assert_eq!(store.firings_pending(2).await.unwrap(), 2);
    let other = engine.open("other").await;
    assert_eq!(other.firings_pending(10).await.unwrap(), 0);
    recv_n(&mut inbox, 4).await;
    assert!(store
        .complete(&node_a, &tell.id, &reply("done"))
        .await
        .unwrap());
    assert!(store
        .complete(&node_a, &fired[0].request.id, &reply("done"))
        .await
        .unwrap());
    assert_eq!(store.firings_pending(10).await.unwrap(), 2);
    // Firing again (the periodic reminders advanced) counts the new firings.
    assert_eq!(store.fire_due(3_000, 10, &build).await.unwrap().len(), 3);
    assert_eq!(store.firings_pending(10).await.unwrap(), 5);
}

/// Redis: a firing pass claims the reminders it read for a moment (`reminders_due`),
/// so the passes of the other members skip them meanwhile; a pass that fails between
/// reading and firing only delays the firing until its claim ends (1 s), for the
/// reminder's own target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn redis_reminders_claimed_by_a_failed_pass_fire_once_the_claim_ends() {
    use futures::FutureExt;
    let engine = Engine::redis();
    let store = engine.open("app").await;
    let mut host = store.join(&member("node-h", "svc", &["A"])).await.unwrap();
    store
        .reminder_schedule(&reminder(("A", "1"), "r", 1_000, 0))
        .await
        .unwrap();
    let failing: RequestBuilder = Arc::new(|_: &Reminder| panic!("the pass fails after reading"));
    let failed = std::panic::AssertUnwindSafe(store.fire_due(1_000, 10, &failing))
        .catch_unwind()
        .await;
    assert!(failed.is_err());
    assert!(store
        .fire_due(1_500, 10, &tell_builder())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.next_due().await.unwrap(), Some(2_000));
    let fired = store.fire_due(2_000, 10, &tell_builder()).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].reminder.target, 1_000);
    assert_eq!(
        executed(&recv_n(&mut host, 1).await.0),
        vec![fired[0].request.id.clone()]
    );
    assert_eq!(store.next_due().await.unwrap(), None);
}

pub(crate) async fn reminders_periodic_skip_forward_after_downtime(engine: &Engine) {
    let store = engine.open("app").await;
    let _inbox = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let build = tell_builder();
    let actor = ActorRef::new("T", "p");
    let r = reminder(("T", "p"), "tick", 1_000, SECOND);
    store.reminder_schedule(&r).await.unwrap();
    // On time: the next target is the previous one plus the period (no drift).
    let fired = store.fire_due(1_250, 10, &build).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].reminder, r);
    let now = store
        .reminders()
        .get(&actor, "tick")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.target, 2_000);
    // The original text is echoed only until the first advance.
    assert_eq!(now.target_text, None);
    assert_eq!((now.path.as_str(), now.period), (r.path.as_str(), r.period));
    assert_eq!(now.data, r.data);
    assert!(store.fire_due(1_999, 10, &build).await.unwrap().is_empty());
    // Down for 8.5 periods: one firing, then the first target after now.
    let fired = store.fire_due(10_500, 10, &build).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].reminder.target, 2_000);
    assert!(store.fire_due(10_999, 10, &build).await.unwrap().is_empty());
    assert_eq!(store.next_due().await.unwrap(), Some(11_000));
    assert_eq!(store.fire_due(11_000, 10, &build).await.unwrap().len(), 1);
    assert_eq!(
        store
            .reminders()
            .get(&actor, "tick")
            .await
            .unwrap()
            .unwrap()
            .target,
        12_000
    );
}

pub(crate) async fn reminders_fire_once_under_concurrent_firers(engine: &Engine) {
    let setup = engine.open("app").await;
    let mut inbox = setup.join(&member("node-a", "sa", &["T"])).await.unwrap();
    const ONE_SHOTS: usize = 60;
    for n in 0..ONE_SHOTS {
        let id = format!("r{n}");
        setup
            .reminder_schedule(&reminder(
                ("T", &format!("x{}", n % 7)),
                &id,
                1_000 + n as i64,
                0,
            ))
            .await
            .unwrap();
    }
    setup
        .reminder_schedule(&reminder(("T", "p"), "periodic", 1_000, 10 * SECOND))
        .await
        .unwrap();
    // Two members (separate handles, as separate processes) fire concurrently, in
    // small batches, until nothing is due.
    let mut firers = Vec::new();
    for _ in 0..2 {
        let store = engine.open("app").await;
        firers.push(tokio::spawn(async move {
            let build = tell_builder();
            let mut fired = Vec::new();
            loop {
                let batch = store.fire_due(5_000, 4, &build).await.unwrap();
                if batch.is_empty() {
                    return fired;
                }
                fired.extend(batch.into_iter().map(|f| f.reminder.id));
            }
        }));
    }
    let mut all = Vec::new();
    for firer in firers {
        all.extend(firer.await.unwrap());
    }
    all.sort();
    let mut unique = all.clone();
    unique.dedup();
    assert_eq!(all, unique, "a firing was made twice");
    assert_eq!(all.len(), ONE_SHOTS + 1);
    let (got, _) = recv_n(&mut inbox, ONE_SHOTS + 1).await;
    let mut ids = executed(&got);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), ONE_SHOTS + 1);
    assert_eq!(setup.next_due().await.unwrap(), Some(11_000));
}

pub(crate) async fn reminders_firings_park_without_a_host(engine: &Engine) {
    let store = engine.open("app").await;
    let build = tell_builder();
    store
        .reminder_schedule(&reminder(("Absent", "1"), "r", 1_000, 0))
        .await
        .unwrap();
    let fired = store.fire_due(2_000, 10, &build).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].routing, Routing::Parked);
    // The reminder has fired (the firing waits, parked, for a host).
    assert_eq!(store.next_due().await.unwrap(), None);
    let mut inbox = store
        .join(&member("node-h", "sh", &["Absent"]))
        .await
        .unwrap();
    let (got, _) = recv_n(&mut inbox, 1).await;
    assert_eq!(executed(&got), vec![fired[0].request.id.clone()]);
}

pub(crate) async fn reminders_are_isolated_between_applications(engine: &Engine) {
    let a = engine.open("app-a").await;
    let b = engine.open("app-b").await;
    let build = tell_builder();
    let actor = ActorRef::new("T", "1");
    a.reminder_schedule(&reminder(("T", "1"), "r", 1_000, 0))
        .await
        .unwrap();
    assert!(b.reminders().list(&actor).await.unwrap().is_empty());
    assert!(b.reminders().list_all().await.unwrap().is_empty());
    assert_eq!(b.reminders().get(&actor, "r").await.unwrap(), None);
    assert_eq!(b.next_due().await.unwrap(), None);
    assert!(b.fire_due(5_000, 10, &build).await.unwrap().is_empty());
    assert!(!b.reminders().cancel(&actor, "r").await.unwrap());
    assert_eq!(b.reminders().cancel_all(&actor).await.unwrap(), 0);
    b.purge().await.unwrap();
    assert_eq!(a.next_due().await.unwrap(), Some(1_000));
    assert_eq!(a.fire_due(5_000, 10, &build).await.unwrap().len(), 1);
}
