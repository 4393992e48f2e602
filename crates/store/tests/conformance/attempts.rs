use super::*;

// ----- attempt cap: paused requests and resume (issue 9) -----

pub(crate) fn cap(max_attempts: u32) -> RecoveryPolicy {
    RecoveryPolicy { max_attempts }
}

/// Re-delivers request `r`, queued on `previous` (whose inbox is given, already
/// drained of it), through `rounds` recoveries by `store` (leave after a successor
/// joined); returns the last successor's node and inbox, and the attempts seen.
pub(crate) async fn kill_executors(
    store: &dyn kar_store::Store,
    service: &str,
    mut previous: String,
    rounds: u32,
) -> (String, Box<dyn kar_store::Inbox>, Vec<u32>) {
    let mut attempts = Vec::new();
    let mut last = None;
    for round in 1..=rounds {
        let node = format!("{previous}-{round}");
        let mut next = store.join(&member(&node, service, &[])).await.unwrap();
        store.leave(&NodeId(previous.clone())).await.unwrap();
        if round < rounds {
            let (got, _) = recv_n(&mut next, 1).await;
            attempts.push(only_execute(got).attempt);
        }
        previous = node.clone();
        last = Some((node, next));
    }
    let (node, inbox) = last.expect("at least one round");
    (node, inbox, attempts)
}

/// The next request executed by `inbox` once `marker` was enqueued behind whatever
/// else may have been routed to it: `marker` itself proves nothing else was.
pub(crate) async fn only_marker_arrives(
    store: &dyn kar_store::Store,
    inbox: &mut Box<dyn kar_store::Inbox>,
    service: &str,
) {
    let marker = request(RequestKind::Tell, service, "node-c");
    store.enqueue(&marker).await.unwrap();
    let (got, _) = recv_n(inbox, 1).await;
    assert_eq!(
        only_execute(got).id,
        marker.id,
        "only the marker is delivered"
    );
}

pub(crate) async fn recovery_pauses_a_step_at_max_attempts(engine: &Engine) {
    let store = engine.open_with("app", cap(3)).await;
    let _caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut first = store.join(&member("node-1", "svc", &[])).await.unwrap();
    let r = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    assert_eq!(only_execute(recv_n(&mut first, 1).await.0).attempt, 0);
    // Its executor dies 3 times: attempts 1 and 2 are delivered, the third death
    // pauses it (it would have started attempt 3).
    let (last, mut inbox, attempts) = kill_executors(&*store, "svc", "node-1".into(), 3).await;
    assert_eq!(attempts, [1, 2]);
    only_marker_arrives(&*store, &mut inbox, "svc").await;
    // Paused: not completable by anyone, not an expirable parked request.
    let last = NodeId(last);
    assert!(!store.complete(&last, &r.id, &reply("no")).await.unwrap());
    assert!(!store.expire_parked(&r.id).await.unwrap());
    assert!(engine.request_exists("app", &r.id));
    // A dead member (killed, not left) is paused the same way: cap 1 pauses at once.
    // (Another application: no member of `store`, whose cap is 3, may recover it.)
    let capped = engine.open_with("app2", cap(1)).await;
    let mut doomed = ChildMember::spawn(engine, "app2", "node-doomed", "svc2");
    let t = request(RequestKind::Tell, "svc2", "node-c");
    assert_eq!(
        capped.enqueue(&t).await.unwrap(),
        Routing::Assigned(NodeId("node-doomed".into()))
    );
    let mut heir = capped
        .join(&member("node-heir", "svc2", &[]))
        .await
        .unwrap();
    doomed.kill();
    wait_removed(engine, "app2", "node-doomed").await;
    only_marker_arrives(&*capped, &mut heir, "svc2").await;
    assert_eq!(
        capped.resume(&t.id).await.unwrap(),
        Resumed::Routed(Routing::Assigned(NodeId("node-heir".into())))
    );
    let mut expected = t.clone();
    expected.attempt = 0;
    assert_eq!(only_execute(recv_n(&mut heir, 1).await.0), expected);
}

pub(crate) async fn paused_step_survives_deaths_and_joins_until_resumed(engine: &Engine) {
    let store = engine.open_with("app", cap(2)).await;
    // The caller joins through a handle without a cap: only the recoveries done by
    // `store` (of the members that leave through it) are capped.
    let uncapped = engine.open("app").await;
    let mut caller = uncapped
        .join(&member("node-c", "caller", &[]))
        .await
        .unwrap();
    let mut first = store.join(&member("node-1", "svc", &[])).await.unwrap();
    let r = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    recv_n(&mut first, 1).await;
    let (last, mut inbox, attempts) = kill_executors(&*store, "svc", "node-1".into(), 2).await;
    assert_eq!(attempts, [1]);
    only_marker_arrives(&*store, &mut inbox, "svc").await;
    // Another recovery (of the member that holds the marker) does not re-route it,
    // nor does the member that joins meanwhile adopt it, nor does a recoverer without
    // a cap.
    let mut heir = uncapped
        .join(&member("node-heir", "svc", &[]))
        .await
        .unwrap();
    uncapped.leave(&NodeId(last)).await.unwrap();
    let (got, _) = recv_n(&mut heir, 1).await;
    assert_ne!(
        only_execute(got).id,
        r.id,
        "the marker is re-delivered, not r"
    );
    only_marker_arrives(&*uncapped, &mut heir, "svc").await;
    // With nobody offering the target, resume parks it; a joining member adopts it
    // (attempt 0) and completes it: the caller gets the reply.
    uncapped.leave(&NodeId("node-heir".into())).await.unwrap();
    assert_eq!(
        uncapped.resume(&r.id).await.unwrap(),
        Resumed::Routed(Routing::Parked)
    );
    assert_eq!(
        uncapped.resume(&r.id).await.unwrap(),
        Resumed::NotPaused,
        "resumed once"
    );
    let mut fixed = uncapped
        .join(&member("node-fixed", "svc", &[]))
        .await
        .unwrap();
    // r and the two markers parked by the heir's departure, in arrival order.
    let (got, _) = recv_n(&mut fixed, 3).await;
    let Some(Message::Execute(first)) = got.into_iter().next() else {
        panic!("expected Execute");
    };
    let mut expected = r.clone();
    expected.attempt = 0;
    assert_eq!(*first, expected);
    let fixed_node = NodeId("node-fixed".into());
    assert!(store
        .complete(&fixed_node, &r.id, &reply("ok"))
        .await
        .unwrap());
    let (got, _) = recv_n(&mut caller, 1).await;
    assert_eq!(
        got,
        vec![Message::Completed {
            id: r.id.clone(),
            kind: RequestKind::Call,
            outcome: reply("ok"),
        }]
    );
}

pub(crate) async fn resume_of_unknown_or_unpaused_changes_nothing(engine: &Engine) {
    let store = engine.open_with("app", cap(3)).await;
    let mut inbox = store.join(&member("node-1", "svc", &[])).await.unwrap();
    assert_eq!(
        store.resume(&RequestId("r-unknown".into())).await.unwrap(),
        Resumed::Unknown
    );
    // Queued: resume changes nothing; it is delivered once and completes normally.
    let r = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    assert_eq!(store.resume(&r.id).await.unwrap(), Resumed::NotPaused);
    assert_eq!(only_execute(recv_n(&mut inbox, 1).await.0), r);
    only_marker_arrives(&*store, &mut inbox, "svc").await;
    // Parked: resume changes nothing either (it stays parked until expired).
    let p = request(RequestKind::Tell, "nobody", "node-c");
    assert_eq!(store.enqueue(&p).await.unwrap(), Routing::Parked);
    assert_eq!(store.resume(&p.id).await.unwrap(), Resumed::NotPaused);
    assert!(store.expire_parked(&p.id).await.unwrap());
    assert_eq!(store.resume(&p.id).await.unwrap(), Resumed::Unknown);
}

pub(crate) async fn max_attempts_zero_never_pauses(engine: &Engine) {
    let store = engine.open_with("app", cap(0)).await;
    let mut first = store.join(&member("node-1", "svc", &[])).await.unwrap();
    let r = request(RequestKind::Tell, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    recv_n(&mut first, 1).await;
    let (_, mut inbox, attempts) = kill_executors(&*store, "svc", "node-1".into(), 6).await;
    assert_eq!(attempts, [1, 2, 3, 4, 5]);
    let (got, _) = recv_n(&mut inbox, 1).await;
    assert_eq!(only_execute(got).attempt, 6);
}

pub(crate) async fn unstarted_requests_are_not_charged(engine: &Engine) {
    // Cap 1: any charged re-delivery pauses.
    let store = engine.open_with("app", cap(1)).await;
    let mut first = store.join(&member("node-1", "svc", &[])).await.unwrap();
    let started = request(RequestKind::Tell, "svc", "node-c");
    let unstarted = request(RequestKind::Tell, "svc", "node-c");
    store.enqueue(&started).await.unwrap();
    store.enqueue(&unstarted).await.unwrap();
    recv_n(&mut first, 2).await;
    let mut next = store.join(&member("node-2", "svc", &[])).await.unwrap();
    store
        .leave_releasing(
            &NodeId("node-1".into()),
            std::slice::from_ref(&unstarted.id),
        )
        .await
        .unwrap();
    // The one node-1 never started keeps its attempt; the other is paused.
    assert_eq!(only_execute(recv_n(&mut next, 1).await.0), unstarted);
    only_marker_arrives(&*store, &mut next, "svc").await;
    assert!(engine.request_exists("app", &started.id));
    assert!(matches!(
        store.resume(&started.id).await.unwrap(),
        Resumed::Routed(Routing::Assigned(_))
    ));
}

pub(crate) async fn resumed_request_waits_for_its_children(engine: &Engine) {
    let store = engine.open_with("app", cap(1)).await;
    let mut kids = store.join(&member("node-k", "kids", &[])).await.unwrap();
    let mut first = store.join(&member("node-1", "svc", &[])).await.unwrap();
    // R runs on node-1 and makes a call that is still running when node-1 goes.
    let r = request(RequestKind::Tell, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    recv_n(&mut first, 1).await;
    let mut call = request(RequestKind::Call, "kids", "node-1");
    call.parent = Some(r.id.clone());
    store.enqueue(&call).await.unwrap();
    assert_eq!(
        executed(&recv_n(&mut kids, 1).await.0),
        vec![call.id.clone()]
    );
    // Cap 1: the recovery pauses R (pausing comes before holding).
    let mut heir = store.join(&member("node-2", "svc", &[])).await.unwrap();
    store.leave(&NodeId("node-1".into())).await.unwrap();
    assert_eq!(store.resume(&r.id).await.unwrap(), Resumed::Held);
    // Resumed while the child runs: held until it completes, then routed (attempt 0).
    only_marker_arrives(&*store, &mut heir, "svc").await;
    let node_k = NodeId("node-k".into());
    assert!(store
        .complete(&node_k, &call.id, &reply("c"))
        .await
        .unwrap());
    let mut expected = r.clone();
    expected.attempt = 0;
    assert_eq!(only_execute(recv_n(&mut heir, 1).await.0), expected);
}
