use super::*;

// ----- recovery (guarantees 2–5) -----

/// Waits (bounded) until member `node` of `app` is fully removed (recovered).
pub(crate) async fn wait_removed(engine: &Engine, app: &str, node: &str) {
    let start = Instant::now();
    loop {
        let left = engine.leftovers(app, node);
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{node} was never removed: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The single `Execute` of `messages`.
pub(crate) fn only_execute(messages: Vec<Message>) -> kar_protocol::Request {
    match <[Message; 1]>::try_from(messages) {
        Ok([Message::Execute(request)]) => *request,
        Ok([other]) => panic!("expected Execute, got {other:?}"),
        Err(messages) => panic!("expected one message, got {messages:?}"),
    }
}

pub(crate) async fn recovery_redelivers_with_the_next_attempt(engine: &Engine) {
    let store = engine.open("app").await;
    let mut first = store.join(&member("node-1", "svc", &[])).await.unwrap();
    let r = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    let (got, _) = recv_n(&mut first, 1).await;
    assert_eq!(only_execute(got).attempt, 0);
    // Each recovery of the step's executor re-delivers it with the next attempt.
    let mut expected = r.clone();
    let mut previous = NodeId("node-1".into());
    for (attempt, node) in [(1, "node-2"), (2, "node-3")] {
        let mut next = store.join(&member(node, "svc", &[])).await.unwrap();
        store.leave(&previous).await.unwrap();
        let (got, _) = recv_n(&mut next, 1).await;
        expected.attempt = attempt;
        assert_eq!(only_execute(got), expected);
        previous = NodeId(node.into());
    }
    // A dead member (killed, not left) is recovered the same way.
    let mut doomed = ChildMember::spawn(engine, "app", "node-doomed", "svc2");
    let t = request(RequestKind::Tell, "svc2", "node-c");
    assert_eq!(
        store.enqueue(&t).await.unwrap(),
        Routing::Assigned(NodeId("node-doomed".into()))
    );
    let mut heir = store.join(&member("node-heir", "svc2", &[])).await.unwrap();
    doomed.kill();
    let (got, _) = recv_n(&mut heir, 1).await;
    let mut expected = t.clone();
    expected.attempt = 1;
    assert_eq!(only_execute(got), expected);
    // Tail calls start the next step at the attempt the continuation carries.
    let mut next = t.clone();
    next.step = 1;
    next.attempt = 0;
    next.target = Target::Service {
        name: "svc2".into(),
    };
    let heir_node = NodeId("node-heir".into());
    store.tail_call(&heir_node, &next, false).await.unwrap();
    let (got, _) = recv_n(&mut heir, 1).await;
    assert_eq!(only_execute(got), next);
}

pub(crate) async fn redelivered_request_waits_for_its_children(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut kids = store.join(&member("node-k", "kids", &[])).await.unwrap();
    let _ = recv_members_changed(&mut caller).await;
    let mut host = store.join(&member("node-1", "s1", &["A"])).await.unwrap();
    // R runs on node-1 and makes a call, a tell and a promise that nobody serves yet.
    let r = actor_request(RequestKind::Call, "A", "1", "node-c");
    store.enqueue(&r).await.unwrap();
    let (got, _) = recv_n(&mut host, 1).await;
    assert_eq!(executed(&got), vec![r.id.clone()]);
    let child = |kind: RequestKind, service: &str| {
        let mut c = request(kind, service, "node-1");
        c.parent = Some(r.id.clone());
        c
    };
    let call = child(RequestKind::Call, "kids");
    let tell = child(RequestKind::Tell, "kids");
    let promise = child(RequestKind::Promise, "nobody");
    store.enqueue(&call).await.unwrap();
    store.enqueue(&tell).await.unwrap();
    assert_eq!(store.enqueue(&promise).await.unwrap(), Routing::Parked);
    let (got, _) = recv_n(&mut kids, 2).await;
    assert_eq!(executed(&got), vec![call.id.clone(), tell.id.clone()]);

    // node-1 goes: R is held (its children run), not re-delivered to node-2.
    let mut heir = store.join(&member("node-2", "s2", &["A"])).await.unwrap();
    store.leave(&NodeId("node-1".into())).await.unwrap();
    // Markers prove that nothing reached node-2 before them (inboxes are ordered).
    let marker = |id: &str| actor_request(RequestKind::Tell, "A", id, "node-c");
    let m1 = marker("marker-1");
    store.enqueue(&m1).await.unwrap();
    let (got, _) = recv_n(&mut heir, 1).await;
    assert_eq!(executed(&got), vec![m1.id]);

    // A tell does not hold R; the call's completion is recorded (its caller is gone:
    // nothing goes to a dead inbox, nothing stays behind) but the promise still runs.
    let node_k = NodeId("node-k".into());
    assert!(store
        .complete(&node_k, &tell.id, &reply("t"))
        .await
        .unwrap());
    assert!(store
        .complete(&node_k, &call.id, &reply("c"))
        .await
        .unwrap());
    assert!(!store
        .complete(&node_k, &call.id, &reply("c"))
        .await
        .unwrap());
    assert!(!engine.request_exists("app", &call.id));
    let m2 = marker("marker-2");
    store.enqueue(&m2).await.unwrap();
    let (got, _) = recv_n(&mut heir, 1).await;
    assert_eq!(executed(&got), vec![m2.id]);

    // The last child ends (its start deadline passed while parked): R is routed, to
    // A's new placement, at its next attempt.
    assert!(store.expire_parked(&promise.id).await.unwrap());
    let (got, _) = recv_n(&mut heir, 1).await;
    let mut expected = r.clone();
    expected.attempt = 1;
    assert_eq!(only_execute(got), expected);
    let node_2 = NodeId("node-2".into());
    assert!(store.complete(&node_2, &r.id, &reply("r")).await.unwrap());
    let (got, _) = recv_n(&mut caller, 1).await;
    assert_eq!(
        got,
        vec![Message::Completed {
            id: r.id.clone(),
            kind: RequestKind::Call,
            outcome: reply("r"),
        }]
    );
    assert!(engine.leftovers("app", "node-1").is_empty());
}

pub(crate) async fn held_request_is_parked_when_released_without_a_host(engine: &Engine) {
    let store = engine.open("app").await;
    let _kids = store.join(&member("node-k", "kids", &[])).await.unwrap();
    let mut solo = store.join(&member("node-1", "solo", &[])).await.unwrap();
    let r = request(RequestKind::Tell, "solo", "node-c");
    store.enqueue(&r).await.unwrap();
    let (got, _) = recv_n(&mut solo, 1).await;
    assert_eq!(executed(&got), vec![r.id.clone()]);
    let mut call = request(RequestKind::Call, "kids", "node-1");
    call.parent = Some(r.id.clone());
    store.enqueue(&call).await.unwrap();
    store.leave(&NodeId("node-1".into())).await.unwrap();
    // Held: neither parked nor queued.
    assert!(!store.expire_parked(&r.id).await.unwrap());
    assert!(engine.request_exists("app", &r.id));
    let node_k = NodeId("node-k".into());
    assert!(store
        .complete(&node_k, &call.id, &reply("c"))
        .await
        .unwrap());
    // Released with nobody to run it: parked, and adopted by the next host.
    let mut heir = store.join(&member("node-2", "solo", &[])).await.unwrap();
    let (got, _) = recv_n(&mut heir, 1).await;
    let mut expected = r.clone();
    expected.attempt = 1;
    assert_eq!(only_execute(got), expected);
}

pub(crate) async fn completion_for_a_dead_caller_leaves_nothing(engine: &Engine) {
    let store = engine.open("app").await;
    let mut executor = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let mut doomed = ChildMember::spawn(engine, "app", "node-doomed", "caller");
    // Completed while the caller lives, then the caller dies with the outcome
    // uncollected; and a call completed after its caller died.
    let before = request(RequestKind::Call, "svc", "node-doomed");
    let after = request(RequestKind::Promise, "svc", "node-doomed");
    store.enqueue(&before).await.unwrap();
    store.enqueue(&after).await.unwrap();
    recv_n(&mut executor, 2).await;
    let node_e = NodeId("node-e".into());
    assert!(store
        .complete(&node_e, &before.id, &reply("b"))
        .await
        .unwrap());
    assert!(engine.request_exists("app", &before.id));
    doomed.kill();
    wait_removed(engine, "app", "node-doomed").await;
    assert!(store
        .complete(&node_e, &after.id, &reply("a"))
        .await
        .unwrap());
    // Never run again, nothing kept for the dead caller.
    assert!(!store
        .complete(&node_e, &after.id, &reply("a"))
        .await
        .unwrap());
    assert!(!engine.request_exists("app", &before.id));
    assert!(!engine.request_exists("app", &after.id));
    assert_eq!(engine.leftovers("app", "node-doomed"), Vec::<String>::new());
}

/// Enqueues `n` tells, round robin over `actors` actors of type `T` (hosted by the
/// only member offering `T`).
pub(crate) async fn queue_actor_tells(
    store: &dyn kar_store::Store,
    actors: usize,
    n: usize,
) -> Vec<kar_protocol::Request> {
    let mut out = Vec::new();
    for i in 0..n {
        let r = actor_request(
            RequestKind::Tell,
            "T",
            &format!("a{}", i % actors),
            "node-c",
        );
        assert!(matches!(
            store.enqueue(&r).await.unwrap(),
            Routing::Assigned(_)
        ));
        out.push(r);
    }
    out
}

/// Receives the `Execute` messages of `n` requests.
pub(crate) async fn recv_requests(
    inbox: &mut Box<dyn kar_store::Inbox>,
    n: usize,
) -> Vec<kar_protocol::Request> {
    let (got, _) = recv_n(inbox, n).await;
    got.into_iter()
        .map(|m| match m {
            Message::Execute(r) => *r,
            other => panic!("expected Execute, got {other:?}"),
        })
        .collect()
}

pub(crate) async fn recovery_keeps_arrival_order(engine: &Engine) {
    // More requests than one recovery step handles on Redis (256).
    const N: usize = 700;
    let store = engine.open("app").await;
    let mut doomed = ChildMember::spawn_with(
        engine,
        "app",
        "node-doomed",
        "svc",
        ChildOptions {
            actors: &["T"],
            ..ChildOptions::default()
        },
    );
    let sent = queue_actor_tells(&*store, 3, N).await;
    let mut heir = store
        .join(&member("node-heir", "sh", &["T"]))
        .await
        .unwrap();
    let killed = Instant::now();
    doomed.kill();
    let got = recv_requests(&mut heir, N).await;
    let recovered = killed.elapsed();
    let expected: Vec<_> = sent
        .into_iter()
        .map(|mut r| {
            r.attempt = 1;
            r
        })
        .collect();
    assert_eq!(got, expected);
    wait_removed(engine, "app", "node-doomed").await;
    assert!(engine.leftovers("app", "node-doomed").is_empty());
    println!("recovery of {N} queued requests: {recovered:?} from the kill to the last delivery");
}

pub(crate) async fn recovery_survives_a_crash_of_the_recoverer(engine: &Engine) {
    const N: usize = 600;
    let store = engine.open("app").await;
    let mut doomed = ChildMember::spawn(engine, "app", "node-doomed", "svc");
    // Joins after node-doomed, so that it watches it (embedded); it serves another
    // name, so that the re-routing it does before crashing parks the requests.
    let mut crasher = ChildMember::spawn_with(
        engine,
        "app",
        "node-crasher",
        "other",
        ChildOptions {
            crash_in_recovery: true,
            ..ChildOptions::default()
        },
    );
    let mut sent = Vec::new();
    for _ in 0..N {
        let r = request(RequestKind::Tell, "svc", "node-c");
        assert_eq!(
            store.enqueue(&r).await.unwrap(),
            Routing::Assigned(NodeId("node-doomed".into()))
        );
        sent.push(r);
    }
    doomed.kill();
    assert!(
        crasher.exited_within(PATIENCE),
        "the recoverer did not crash in the recovery"
    );
    // This member joins only now (it watches both dead members, or recovers them at
    // its renewals once the crashed recoverer's lock has expired).
    let mut heir = store.join(&member("node-heir", "svc", &[])).await.unwrap();
    let got = recv_requests(&mut heir, N).await;
    let expected: Vec<_> = sent
        .into_iter()
        .map(|mut r| {
            r.attempt = 1;
            r
        })
        .collect();
    assert_eq!(got, expected);
    wait_removed(engine, "app", "node-doomed").await;
    wait_removed(engine, "app", "node-crasher").await;
    // Delivered once: nothing follows but a marker.
    let marker = request(RequestKind::Tell, "svc", "node-c");
    store.enqueue(&marker).await.unwrap();
    let (got, _) = recv_n(&mut heir, 1).await;
    assert_eq!(executed(&got), vec![marker.id]);
    assert!(engine.leftovers("app", "node-doomed").is_empty());
    assert!(engine.leftovers("app", "node-crasher").is_empty());
}

pub(crate) async fn completions_only_by_the_assignee(engine: &Engine) {
    let store = engine.open("app").await;
    let mut one = store.join(&member("node-1", "svc", &[])).await.unwrap();
    let _two = store.join(&member("node-2", "other", &[])).await.unwrap();
    let r = request(RequestKind::Tell, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    recv_n(&mut one, 1).await;
    // A live member that does not run the request cannot complete it.
    let node_2 = NodeId("node-2".into());
    assert!(!store.complete(&node_2, &r.id, &reply("no")).await.unwrap());
    assert!(engine.request_exists("app", &r.id));
    assert!(store
        .complete(&NodeId("node-1".into()), &r.id, &reply("ok"))
        .await
        .unwrap());
}

/// A batch of completions (`complete_all`: the group commit of tells) records each as
/// `complete` alone would: in one batch, the requests still queued on the executor
/// are done (a call's outcome reaches its caller), while a request an operator killed
/// meanwhile, one completed already, one queued on another member and an unknown id
/// change nothing. A batch by a member that left is refused whole, and what it held
/// goes on elsewhere.
pub(crate) async fn completions_in_a_batch_are_each_as_alone(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut e = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let mut other = store.join(&member("node-o", "svc2", &[])).await.unwrap();
    let _ = recv_members_changed(&mut caller).await;
    let node_e = NodeId("node-e".into());
    let tell = request(RequestKind::Tell, "svc", "node-c");
    let call = request(RequestKind::Call, "svc", "node-c");
    let killed = request(RequestKind::Tell, "svc", "node-c");
    let done = request(RequestKind::Tell, "svc", "node-c");
    for r in [&tell, &call, &killed, &done] {
        store.enqueue(r).await.unwrap();
    }
    recv_n(&mut e, 4).await;
    let elsewhere = request(RequestKind::Tell, "svc2", "node-c");
    store.enqueue(&elsewhere).await.unwrap();
    recv_n(&mut other, 1).await;
    assert!(matches!(
        store.kill(&killed.id).await.unwrap(),
        Killed::Killed { .. }
    ));
    assert!(store
        .complete(&node_e, &done.id, &reply("once"))
        .await
        .unwrap());
    let batch = [
        (tell.id.clone(), reply("t")),
        (killed.id.clone(), reply("k")),
        (call.id.clone(), reply("c")),
        (done.id.clone(), reply("again")),
        (elsewhere.id.clone(), reply("not mine")),
        (RequestId::generate(), reply("unknown")),
    ];
    assert_eq!(
        store.complete_all(&node_e, &batch).await.unwrap(),
        [true, false, true, false, false, false]
    );
    assert!(!engine.request_exists("app", &tell.id));
    assert!(engine.request_exists("app", &elsewhere.id));
    let (got, _) = recv_n(&mut caller, 1).await;
    assert_eq!(
        got,
        vec![Message::Completed {
            id: call.id.clone(),
            kind: RequestKind::Call,
            outcome: reply("c"),
        }]
    );
    // A member that left: its batch changes nothing, its requests go to the heir.
    let late = request(RequestKind::Tell, "svc2", "node-c");
    store.enqueue(&late).await.unwrap();
    recv_n(&mut other, 1).await;
    let mut heir = store.join(&member("node-h", "svc2", &[])).await.unwrap();
    let node_o = NodeId("node-o".into());
    store.leave(&node_o).await.unwrap();
    let refused = store
        .complete_all(
            &node_o,
            &[
                (elsewhere.id.clone(), reply("late")),
                (late.id.clone(), reply("late")),
            ],
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Fenced(_))), "{refused:?}");
    let mut moved = executed(&recv_n(&mut heir, 2).await.0);
    moved.sort();
    let mut expected = vec![elsewhere.id.clone(), late.id.clone()];
    expected.sort();
    assert_eq!(moved, expected);
    let node_h = NodeId("node-h".into());
    let batch = [
        (elsewhere.id.clone(), reply("h")),
        (late.id.clone(), reply("h")),
    ];
    assert_eq!(
        store.complete_all(&node_h, &batch).await.unwrap(),
        [true, true]
    );
    assert!(!engine.request_exists("app", &late.id));
}

/// Run by a zombie before it is stopped: a due reminder and an undelivered event.
pub(crate) async fn zombie_prepare(store: &dyn kar_store::Store, _node: &str) {
    store
        .reminder_schedule(&reminder(("Z", "1"), "r", 1_000, 0))
        .await
        .unwrap();
    store
        .subscribe(&subscription(("Z", "1"), "s", "zombie-topic", true))
        .await
        .unwrap();
    store
        .publish("zombie-topic", Bytes::from_static(b"e"))
        .await
        .unwrap();
}

pub(crate) const ZOMBIE_ENQUEUED: &str = "req-zombie-enqueued";

/// Run by a zombie after it resumed: every transition a member makes, each reported
/// as `<name>: fenced` or `<name>: <what happened>`.
pub(crate) async fn zombie_transitions(
    store: &dyn kar_store::Store,
    node: &str,
    id: &str,
) -> Vec<String> {
    let me = NodeId(node.into());
    let id = RequestId(id.into());
    let actor = ActorRef::new("Z", "1");
    let mut own = request(RequestKind::Call, "svc", node);
    own.id = RequestId(ZOMBIE_ENQUEUED.into());
    let mut next = request(RequestKind::Call, "svc", node);
    next.id = id.clone();
    next.step = 1;
    fn report<T: std::fmt::Debug>(name: &str, result: Result<T, StoreError>) -> String {
        match result {
            Err(StoreError::Fenced(_)) => format!("{name}: fenced"),
            other => format!("{name}: {other:?}"),
        }
    }
    vec![
        report("enqueue", store.enqueue(&own).await),
        report("complete", store.complete(&me, &id, &reply("zombie")).await),
        report(
            "complete_all",
            store
                .complete_all(&me, &[(id.clone(), reply("zombie"))])
                .await,
        ),
        report("tail_call", store.tail_call(&me, &next, false).await),
        report(
            "state_set",
            store
                .state_set(&actor, "k", None, Bytes::from_static(b"v"))
                .await,
        ),
        report("fire_due", store.fire_due(2_000, 10, &tell_builder()).await),
        report(
            "deliver_event",
            store.deliver_event(&actor, "s", &event_builder()).await,
        ),
        report("remove_actor", store.remove_actor(&actor).await),
        report("forget", store.forget(std::slice::from_ref(&id)).await),
        report("expire_parked", store.expire_parked(&id).await),
    ]
}

/// A member stopped past its lease (SIGSTOP) commits nothing when it resumes: its
/// requests were recovered elsewhere meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn redis_member_stopped_past_its_lease_is_fenced() {
    let engine = Engine::redis();
    let mut zombie = ChildMember::spawn_with(
        &engine,
        "app",
        "node-zombie",
        "svc",
        ChildOptions {
            actors: &["Z"],
            zombie: true,
            ..ChildOptions::default()
        },
    );
    let store = engine.open("app").await;
    let r = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    let mut live = store
        .join(&member("node-live", "svc", &["Z"]))
        .await
        .unwrap();
    zombie.signal(true);
    // Recovered once its lease expired: R is re-delivered here.
    let got = recv_requests(&mut live, 1).await;
    assert_eq!((got[0].id.clone(), got[0].attempt), (r.id.clone(), 1));
    wait_removed(&engine, "app", "node-zombie").await;
    zombie.signal(false);
    let results = zombie.resume_zombie(r.id.as_str());
    assert_eq!(results.len(), 10, "{results:?}");
    for result in &results {
        assert!(result.ends_with(": fenced"), "{results:?}");
    }
    // Nothing it tried was committed.
    assert!(!engine.request_exists("app", &RequestId(ZOMBIE_ENQUEUED.into())));
    let actor = ActorRef::new("Z", "1");
    assert_eq!(store.state_get(&actor, "k", None).await.unwrap(), None);
    assert_eq!(
        store
            .reminders()
            .get(&actor, "r")
            .await
            .unwrap()
            .unwrap()
            .target,
        1_000
    );
    let (offset, _, _) = deliver_one(&store, &actor, "s").await;
    assert_eq!(offset, 1);
    // R is still the live member's to complete.
    assert!(store
        .complete(&NodeId("node-live".into()), &r.id, &reply("ok"))
        .await
        .unwrap());
}

/// A database made by the previous version (no `parent` column) is migrated on open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn embedded_database_of_the_previous_version_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let old = request(RequestKind::Tell, "late", "node-c");
    {
        let conn = rusqlite::Connection::open(dir.path().join("kar.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE requests (
                seq INTEGER PRIMARY KEY, app TEXT NOT NULL, id TEXT NOT NULL,
                name TEXT NOT NULL, actor_type TEXT, actor_id TEXT, status TEXT NOT NULL,
                kind INTEGER NOT NULL, assignee TEXT, caller TEXT NOT NULL,
                record BLOB NOT NULL, outcome BLOB, UNIQUE (app, id))",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO requests (app, id, name, status, kind, caller, record)
             VALUES ('app', ?1, 'late', 'parked', 1, 'node-c', ?2)",
            rusqlite::params![old.id.as_str(), postcard::to_stdvec(&old).unwrap()],
        )
        .unwrap();
    }
    let engine = Engine::Embedded(dir);
    let store = engine.open("app").await;
    // Opening twice is harmless (the migration is idempotent).
    let store2 = engine.open("app").await;
    let mut inbox = store.join(&member("node-l", "late", &[])).await.unwrap();
    let (got, _) = recv_n(&mut inbox, 1).await;
    assert_eq!(executed(&got), vec![old.id.clone()]);
    // Parent links work on the migrated table.
    let mut child = request(RequestKind::Call, "late", "node-l");
    child.parent = Some(old.id.clone());
    store2.enqueue(&child).await.unwrap();
    recv_n(&mut inbox, 1).await;
}

/// A database made by a newer kar (a schema version this build does not know) is
/// refused with a configuration error, and left as it was.
#[tokio::test]
pub(crate) async fn embedded_database_of_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kar.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 9999)
        .unwrap();
    let config = kar_store::StoreConfig::Embedded {
        dir: dir.path().to_path_buf(),
        sync: Default::default(),
    };
    let err = match kar_store::open(&config, "app").await {
        Ok(_) => panic!("a database of a newer version was opened"),
        Err(e) => e,
    };
    assert!(
        matches!(&err, StoreError::Config(m) if m.contains("9999")),
        "{err}"
    );
    let version: u32 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 9999);
}
