use super::*;

pub(crate) fn actor_request(
    kind: RequestKind,
    actor_type: &str,
    id: &str,
    caller: &str,
) -> kar_protocol::Request {
    let mut r = request(kind, actor_type, caller);
    r.target = Target::Actor {
        actor_type: actor_type.into(),
        id: id.into(),
    };
    r
}

pub(crate) async fn actor_placement_is_sticky_and_moves_on_departure(engine: &Engine) {
    let store = engine.open("app").await;
    let mut a = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let mut b = store.join(&member("node-b", "sb", &["T"])).await.unwrap();
    let mut ids = Vec::new();
    let mut placed = None;
    for _ in 0..10 {
        let r = actor_request(RequestKind::Tell, "T", "x", "node-c");
        let Routing::Assigned(node) = store.enqueue(&r).await.unwrap() else {
            panic!("parked");
        };
        // Every request of one actor goes to the same member.
        assert_eq!(*placed.get_or_insert(node.clone()), node);
        ids.push(r.id);
    }
    let placed = placed.unwrap();
    assert_eq!(
        store.placements().await.unwrap(),
        vec![(ActorRef::new("T", "x"), placed.clone())]
    );
    let (gone, heir, heir_inbox) = if placed.0 == "node-a" {
        (a, "node-b", &mut b)
    } else {
        (b, "node-a", &mut a)
    };
    store.leave(&placed).await.unwrap();
    drop(gone);
    let (got, _) = recv_n(heir_inbox, 10).await;
    assert_eq!(executed(&got), ids);
    assert_eq!(
        store.placements().await.unwrap(),
        vec![(ActorRef::new("T", "x"), NodeId(heir.into()))]
    );
    // Removing the actor forgets its placement.
    store.remove_actor(&ActorRef::new("T", "x")).await.unwrap();
    assert!(store.placements().await.unwrap().is_empty());
}

/// `move_actor`: refused while a request of the actor is queued on its host, then
/// moves it to a live member offering its type (or drops the placement), and only
/// its host may move it.
pub(crate) async fn actor_moves_only_between_flows(engine: &Engine) {
    let store = engine.open("app").await;
    let _a = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let _b = store.join(&member("node-b", "sb", &["T"])).await.unwrap();
    let _c = store.join(&member("node-c", "sc", &[])).await.unwrap();
    let actor = ActorRef::new("T", "x");
    let first = actor_request(RequestKind::Tell, "T", "x", "node-c");
    let Routing::Assigned(host) = store.enqueue(&first).await.unwrap() else {
        panic!("parked");
    };
    let other = NodeId(
        if host.0 == "node-a" {
            "node-b"
        } else {
            "node-a"
        }
        .into(),
    );
    // A request of it is queued on its host: it stays.
    assert!(!store.move_actor(&host, &actor, Some(&other)).await.unwrap());
    assert_eq!(
        store.placements().await.unwrap(),
        vec![(actor.clone(), host.clone())]
    );
    assert!(store
        .complete(&host, &first.id, &reply("done"))
        .await
        .unwrap());
    // Between two flows it moves, and the next request goes to its new host.
    assert!(store.move_actor(&host, &actor, Some(&other)).await.unwrap());
    assert_eq!(
        store.placements().await.unwrap(),
        vec![(actor.clone(), other.clone())]
    );
    let next = actor_request(RequestKind::Tell, "T", "x", "node-c");
    assert_eq!(
        store.enqueue(&next).await.unwrap(),
        Routing::Assigned(other.clone())
    );
    // Only its host moves it.
    assert!(!store.move_actor(&host, &actor, None).await.unwrap());
    assert!(store
        .complete(&other, &next.id, &reply("done"))
        .await
        .unwrap());
    // To a member that does not offer the type: the placement is dropped.
    let not_offering = NodeId("node-c".into());
    assert!(store
        .move_actor(&other, &actor, Some(&not_offering))
        .await
        .unwrap());
    assert!(store.placements().await.unwrap().is_empty());
    // A member that is gone is fenced.
    let gone = store
        .move_actor(&NodeId("node-gone".into()), &actor, None)
        .await;
    assert!(matches!(gone, Err(StoreError::Fenced(_))), "{gone:?}");
}

pub(crate) async fn tail_calls_complete_one_step_and_route_the_next(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut first = store.join(&member("node-1", "s1", &[])).await.unwrap();
    let mut second = store.join(&member("node-2", "s2", &[])).await.unwrap();
    let _ = recv_members_changed(&mut caller).await;
    let node_1 = NodeId("node-1".into());
    let node_2 = NodeId("node-2".into());

    let r = request(RequestKind::Call, "s1", "node-c");
    store.enqueue(&r).await.unwrap();
    recv_n(&mut first, 1).await;
    // Step 1 goes to another service.
    let mut next = request(RequestKind::Call, "s2", "node-c");
    next.id = r.id.clone();
    next.step = 1;
    // Only the assignee may take the step.
    let err = store.tail_call(&node_2, &next, false).await.unwrap_err();
    assert!(matches!(err, StoreError::NotAssigned(_)), "{err:?}");
    assert_eq!(
        store.tail_call(&node_1, &next, false).await.unwrap(),
        Routing::Assigned(node_2.clone())
    );
    let (got, _) = recv_n(&mut second, 1).await;
    assert_eq!(got, vec![Message::Execute(Box::new(next.clone()))]);
    // Step 0 is over: its executor can no longer complete or continue it.
    let err = store.tail_call(&node_1, &next, false).await.unwrap_err();
    assert!(matches!(err, StoreError::NotAssigned(_)), "{err:?}");

    // A local continuation stays on its node and is put in no inbox.
    let mut local = next.clone();
    local.step = 2;
    assert_eq!(
        store.tail_call(&node_2, &local, true).await.unwrap(),
        Routing::Assigned(node_2.clone())
    );
    assert!(store.complete(&node_2, &r.id, &reply("end")).await.unwrap());
    let (got, _) = recv_n(&mut caller, 1).await;
    assert_eq!(
        got,
        vec![Message::Completed {
            id: r.id.clone(),
            kind: RequestKind::Call,
            outcome: reply("end"),
        }]
    );
    let marker = request(RequestKind::Tell, "s2", "node-c");
    store.enqueue(&marker).await.unwrap();
    let (got, _) = recv_n(&mut second, 1).await;
    assert_eq!(executed(&got), vec![marker.id]);

    // A continuation nobody serves is parked.
    let t = request(RequestKind::Tell, "s1", "node-c");
    store.enqueue(&t).await.unwrap();
    recv_n(&mut first, 1).await;
    let mut lost = request(RequestKind::Tell, "nobody", "node-c");
    lost.id = t.id.clone();
    lost.step = 1;
    assert_eq!(
        store.tail_call(&node_1, &lost, false).await.unwrap(),
        Routing::Parked
    );
    assert!(store.expire_parked(&t.id).await.unwrap());

    // A removed node is fenced.
    let u = request(RequestKind::Tell, "s1", "node-c");
    store.enqueue(&u).await.unwrap();
    recv_n(&mut first, 1).await;
    store.leave(&node_1).await.unwrap();
    let mut after = u.clone();
    after.step = 1;
    let err = store.tail_call(&node_1, &after, false).await.unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
}

pub(crate) fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

pub(crate) async fn actor_state_entries_and_order(engine: &Engine) {
    let store = engine.open("app").await;
    let actor = ActorRef::new("T", "1");
    let neighbour = ActorRef::new("T", "12");
    assert_eq!(store.state_get(&actor, "k", None).await.unwrap(), None);
    assert!(store.state_set(&actor, "k", None, b("1")).await.unwrap());
    assert!(!store.state_set(&actor, "k", None, b("2")).await.unwrap());
    assert_eq!(
        store.state_get(&actor, "k", None).await.unwrap(),
        Some(b("2"))
    );
    // Flat entries and submap entries never collide, whatever the names.
    assert!(store
        .state_set(&actor, "k", Some("k"), b("s"))
        .await
        .unwrap());
    assert!(store.state_set(&actor, "k_k", None, b("f")).await.unwrap());
    assert_eq!(
        store.state_get(&actor, "k", None).await.unwrap(),
        Some(b("2"))
    );
    assert_eq!(
        store.state_get(&actor, "k", Some("k")).await.unwrap(),
        Some(b("s"))
    );
    assert_eq!(store.state_get(&neighbour, "k", None).await.unwrap(), None);
    // Submap entries keep insertion order; replacing keeps the place.
    for sub in ["z", "a", "m"] {
        assert!(store
            .state_set(&actor, "map", Some(sub), b(sub))
            .await
            .unwrap());
    }
    assert!(!store
        .state_set(&actor, "map", Some("z"), b("Z"))
        .await
        .unwrap());
    let entries = store.submap_entries(&actor, "map").await.unwrap();
    assert_eq!(
        entries,
        vec![
            ("z".into(), b("Z")),
            ("a".into(), b("a")),
            ("m".into(), b("m"))
        ]
    );
    assert!(store.state_remove(&actor, "map", Some("a")).await.unwrap());
    assert!(!store.state_remove(&actor, "map", Some("a")).await.unwrap());
    assert!(store
        .state_set(&actor, "map", Some("a"), b("again"))
        .await
        .unwrap());
    let all = store.state_get_all(&actor).await.unwrap();
    assert_eq!(all.flat, vec![("k".into(), b("2")), ("k_k".into(), b("f"))]);
    assert_eq!(
        all.submaps,
        vec![
            ("k".into(), vec![("k".into(), b("s"))]),
            (
                "map".into(),
                vec![
                    ("z".into(), b("Z")),
                    ("m".into(), b("m")),
                    ("a".into(), b("again"))
                ]
            ),
        ]
    );
    assert!(store.state_get_all(&neighbour).await.unwrap().is_empty());
    assert_eq!(store.submap_clear(&actor, "map").await.unwrap(), 3);
    assert!(store
        .submap_entries(&actor, "map")
        .await
        .unwrap()
        .is_empty());
    assert!(store.state_remove(&actor, "k", None).await.unwrap());
    assert!(!store.state_remove(&actor, "k", None).await.unwrap());
    let all = store.state_get_all(&actor).await.unwrap();
    assert_eq!(all.flat, vec![("k_k".into(), b("f"))]);
    assert_eq!(all.submaps.len(), 1);
    // Another application sees none of it.
    let other = engine.open("other").await;
    assert!(other.state_get_all(&actor).await.unwrap().is_empty());
}

/// `complete_with_state`: the state writes an actor method handed over with its reply
/// are committed in the transition that completes the request, if and only if it
/// completes it: a member that does not run the request, a second completion (a
/// stale attempt) and a member that left write nothing; the call's outcome reaches
/// its caller with the writes.
pub(crate) async fn a_completion_commits_the_state_writes_of_its_reply(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut host = store.join(&member("node-h", "sh", &["T"])).await.unwrap();
    let _other = store.join(&member("node-o", "so", &[])).await.unwrap();
    let (node_h, node_o) = (NodeId("node-h".into()), NodeId("node-o".into()));
    let actor = ActorRef::new("T", "x/1 ?");
    store.state_set(&actor, "gone", None, b("0")).await.unwrap();
    let writes = |n: &str| StateUpdate {
        removals: vec!["gone".into()],
        updates: vec![("n".into(), b(n))],
        submap_updates: vec![("m".into(), vec![("k".into(), b(n))])],
        ..StateUpdate::default()
    };
    let call = actor_request(RequestKind::Call, "T", "x/1 ?", "node-c");
    assert_eq!(
        store.enqueue(&call).await.unwrap(),
        Routing::Assigned(node_h.clone())
    );
    recv_n(&mut host, 1).await;
    let complete = |node: &NodeId, body: &str| {
        let (node, outcome, update) = (node.clone(), reply(body), writes(body));
        let (store, id, actor) = (&store, call.id.clone(), actor.clone());
        async move {
            store
                .complete_with_state(&node, &id, &outcome, &actor, &update)
                .await
        }
    };
    assert!(!complete(&node_o, "9").await.unwrap(), "not its executor");
    assert_eq!(store.state_get(&actor, "n", None).await.unwrap(), None);
    assert!(complete(&node_h, "1").await.unwrap());
    let (got, _) = recv_n(&mut caller, 1).await;
    assert_eq!(
        got,
        vec![Message::Completed {
            id: call.id.clone(),
            kind: RequestKind::Call,
            outcome: reply("1"),
        }]
    );
    let committed = ActorState {
        flat: vec![("n".into(), b("1"))],
        submaps: vec![("m".into(), vec![("k".into(), b("1"))])],
    };
    assert_eq!(store.state_get_all(&actor).await.unwrap(), committed);
    assert!(!complete(&node_h, "2").await.unwrap(), "completed already");
    assert_eq!(store.state_get_all(&actor).await.unwrap(), committed);
    // A member that left is fenced: its late completion writes nothing either.
    let tell = actor_request(RequestKind::Tell, "T", "x/1 ?", "node-c");
    store.enqueue(&tell).await.unwrap();
    recv_n(&mut host, 1).await;
    store.leave(&node_h).await.unwrap();
    let late = store
        .complete_with_state(&node_h, &tell.id, &reply("3"), &actor, &writes("3"))
        .await;
    assert!(matches!(late, Err(StoreError::Fenced(_))), "{late:?}");
    assert_eq!(store.state_get_all(&actor).await.unwrap(), committed);
}

pub(crate) async fn actor_state_update_and_removal(engine: &Engine) {
    let store = engine.open("app").await;
    let actor = ActorRef::new("Account", "a/1 ?");
    store.state_set(&actor, "old", None, b("1")).await.unwrap();
    store.state_set(&actor, "keep", None, b("1")).await.unwrap();
    store
        .state_set(&actor, "m", Some("x"), b("1"))
        .await
        .unwrap();
    let update = StateUpdate {
        removals: vec!["old".into(), "missing".into()],
        submap_removals: vec![("m".into(), vec!["x".into(), "y".into()])],
        updates: vec![("keep".into(), b("2")), ("new".into(), b("3"))],
        submap_updates: vec![("m".into(), vec![("y".into(), b("4")), ("x".into(), b("5"))])],
    };
    assert_eq!(
        store.state_update(&actor, &update).await.unwrap(),
        UpdateCounts {
            removed: 2,
            added: 3
        }
    );
    let all = store.state_get_all(&actor).await.unwrap();
    assert_eq!(
        all.flat,
        vec![("keep".into(), b("2")), ("new".into(), b("3"))]
    );
    assert_eq!(
        all.submaps,
        vec![("m".into(), vec![("y".into(), b("4")), ("x".into(), b("5"))])]
    );
    assert_eq!(store.state_remove_all(&actor).await.unwrap(), 4);
    assert!(store.state_get_all(&actor).await.unwrap().is_empty());
    store.state_set(&actor, "k", None, b("1")).await.unwrap();
    store.remove_actor(&actor).await.unwrap();
    assert!(store.state_get_all(&actor).await.unwrap().is_empty());
    // Purge removes state too.
    store.state_set(&actor, "k", None, b("1")).await.unwrap();
    assert!(store.purge().await.unwrap() > 0);
    assert!(store.state_get_all(&actor).await.unwrap().is_empty());
}
