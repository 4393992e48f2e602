use super::*;

/// Every page of a listing, in order (pages of `limit`).
pub(crate) async fn list_all(
    store: &dyn kar_store::Store,
    filter: &RequestFilter,
    limit: usize,
) -> Vec<kar_store::PendingRequest> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_requests(filter, after, limit).await.unwrap();
        assert!(page.requests.len() <= limit);
        out.extend(page.requests);
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

pub(crate) fn ids(requests: &[kar_store::PendingRequest]) -> Vec<RequestId> {
    requests.iter().map(|r| r.request.id.clone()).collect()
}

pub(crate) async fn control_lists_pending_requests_by_pages_and_filters(engine: &Engine) {
    let store = engine.open("app").await;
    let other_app = engine.open("other").await;
    let mut e = store.join(&member("node-e", "svc", &["T"])).await.unwrap();
    let mut all = Vec::new();
    let mut services = Vec::new();
    let mut actors_a = Vec::new();
    let mut parked = Vec::new();
    for i in 0..12 {
        let r = match i % 3 {
            0 => request(RequestKind::Call, "svc", "node-c"),
            1 => actor_request(
                RequestKind::Tell,
                "T",
                if i < 6 { "a" } else { "b" },
                "node-c",
            ),
            _ => request(RequestKind::Tell, "nobody", "node-c"),
        };
        store.enqueue(&r).await.unwrap();
        match i % 3 {
            0 => services.push(r.id.clone()),
            1 if i < 6 => actors_a.push(r.id.clone()),
            1 => {}
            _ => parked.push(r.id.clone()),
        }
        all.push(r.id.clone());
    }
    other_app
        .enqueue(&request(RequestKind::Tell, "svc", "node-c"))
        .await
        .unwrap();
    let listed = list_all(&*store, &RequestFilter::default(), 5).await;
    assert_eq!(ids(&listed), all, "every page in arrival order");
    assert!(listed.windows(2).all(|w| w[0].seq < w[1].seq));
    let queued = listed.iter().find(|r| r.request.id == services[0]).unwrap();
    assert_eq!(queued.status, PendingStatus::Queued);
    assert_eq!(queued.assignee, Some(NodeId("node-e".into())));
    assert_eq!(queued.request.attempt, 0);
    let filter = |f: RequestFilter| f;
    let by_status = RequestFilter {
        status: Some(PendingStatus::Parked),
        ..Default::default()
    };
    let got = list_all(&*store, &filter(by_status), 2).await;
    assert_eq!(ids(&got), parked);
    assert!(got
        .iter()
        .all(|r| r.status == PendingStatus::Parked && r.assignee.is_none()));
    let by_service = RequestFilter {
        service: Some("svc".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list_all(&*store, &by_service, 100).await), services);
    let by_actor = RequestFilter {
        actor_type: Some("T".into()),
        actor_id: Some("a".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list_all(&*store, &by_actor, 1).await), actors_a);
    let by_id_only = RequestFilter {
        actor_id: Some("a".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list_all(&*store, &by_id_only, 100).await), actors_a);
    // A completed request is no longer listed.
    recv_n(&mut e, 8).await;
    let node_e = NodeId("node-e".into());
    assert!(store
        .complete(&node_e, &services[0], &reply("x"))
        .await
        .unwrap());
    let listed = list_all(&*store, &RequestFilter::default(), 100).await;
    assert_eq!(ids(&listed), all[1..].to_vec());
}

pub(crate) async fn control_kill_completes_with_the_killed_outcome(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut e = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let _ = recv_members_changed(&mut caller).await;
    let node_e = NodeId("node-e".into());
    // Queued and received (running, as far as the store knows).
    let call = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&call).await.unwrap();
    assert_eq!(executed(&recv_n(&mut e, 1).await.0), vec![call.id.clone()]);
    assert_eq!(
        store.kill(&call.id).await.unwrap(),
        Killed::Killed {
            assignee: Some(node_e.clone())
        }
    );
    let (got, _) = recv_n(&mut caller, 1).await;
    assert_eq!(
        got,
        vec![Message::Completed {
            id: call.id.clone(),
            kind: RequestKind::Call,
            outcome: Outcome::Failed(KILLED.into()),
        }]
    );
    let (got, _) = recv_n(&mut e, 1).await;
    assert_eq!(
        got,
        vec![Message::Signal(Signal::Abandon {
            id: call.id.clone()
        })]
    );
    // The abandoned attempt's late outcome changes nothing.
    assert!(!store
        .complete(&node_e, &call.id, &reply("late"))
        .await
        .unwrap());
    assert_eq!(store.kill(&call.id).await.unwrap(), Killed::AlreadyComplete);
    assert!(store
        .list_requests(&RequestFilter::default(), None, 10)
        .await
        .unwrap()
        .requests
        .is_empty());
    // Queued, not received yet: its Execute never comes (or is abandoned right after).
    let tell = request(RequestKind::Tell, "svc", "node-c");
    store.enqueue(&tell).await.unwrap();
    assert!(matches!(
        store.kill(&tell.id).await.unwrap(),
        Killed::Killed { .. }
    ));
    assert!(!engine.request_exists("app", &tell.id));
    let abandon = Message::Signal(Signal::Abandon {
        id: tell.id.clone(),
    });
    let mut got = Vec::new();
    while !got.contains(&abandon) {
        let batch = tokio::time::timeout(PATIENCE, e.recv()).await;
        got.extend(batch.expect("abandon in time").unwrap());
    }
    got.retain(|m| *m != abandon);
    if !got.is_empty() {
        // Redis: the unread Execute stays in the stream, before the signal.
        assert_eq!(executed(&got), vec![tell.id.clone()]);
    }
    // Parked: gone, nothing to expire.
    let parked = request(RequestKind::Call, "nobody", "node-c");
    store.enqueue(&parked).await.unwrap();
    assert_eq!(
        store.kill(&parked.id).await.unwrap(),
        Killed::Killed { assignee: None }
    );
    assert!(!store.expire_parked(&parked.id).await.unwrap());
    let (got, _) = recv_n(&mut caller, 1).await;
    assert!(matches!(&got[0], Message::Completed { id, .. } if *id == parked.id));
}

pub(crate) async fn control_kill_releases_a_held_parent(engine: &Engine) {
    let store = engine.open("app").await;
    let mut h1 = store.join(&member("node-h1", "svch", &[])).await.unwrap();
    let mut kids = store.join(&member("node-k", "kids", &[])).await.unwrap();
    let held = request(RequestKind::Tell, "svch", "node-c");
    store.enqueue(&held).await.unwrap();
    recv_n(&mut h1, 1).await;
    let mut child = request(RequestKind::Call, "kids", "node-h1");
    child.parent = Some(held.id.clone());
    store.enqueue(&child).await.unwrap();
    recv_n(&mut kids, 1).await;
    let mut heir = store.join(&member("node-h2", "svch", &[])).await.unwrap();
    store.leave(&NodeId("node-h1".into())).await.unwrap();
    let (parent, children) = store
        .request_with_children(&held.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parent.status, PendingStatus::Held);
    assert_eq!(ids(&children), vec![child.id.clone()]);
    assert!(matches!(
        store.kill(&child.id).await.unwrap(),
        Killed::Killed { .. }
    ));
    // The parent goes on at once.
    let got = recv_n(&mut heir, 1).await.0;
    assert_eq!(executed(&got), vec![held.id.clone()]);
}

pub(crate) async fn control_pause_withdraws_until_resumed(engine: &Engine) {
    let store = engine.open("app").await;
    let mut e = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let node_e = NodeId("node-e".into());
    let call = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&call).await.unwrap();
    recv_n(&mut e, 1).await;
    assert_eq!(
        store.pause(&call.id).await.unwrap(),
        Paused::Paused {
            assignee: Some(node_e.clone())
        }
    );
    assert_eq!(
        recv_n(&mut e, 1).await.0,
        vec![Message::Signal(Signal::Abandon {
            id: call.id.clone()
        })]
    );
    assert!(!store
        .complete(&node_e, &call.id, &reply("late"))
        .await
        .unwrap());
    assert_eq!(store.pause(&call.id).await.unwrap(), Paused::AlreadyPaused);
    let listed = store
        .list_requests(&RequestFilter::default(), None, 10)
        .await
        .unwrap()
        .requests;
    assert_eq!(ids(&listed), vec![call.id.clone()]);
    assert_eq!(listed[0].status, PendingStatus::Paused);
    assert_eq!(listed[0].assignee, None);
    // A parked one is paused too, and no join adopts it.
    let parked = request(RequestKind::Tell, "later", "node-c");
    store.enqueue(&parked).await.unwrap();
    assert_eq!(
        store.pause(&parked.id).await.unwrap(),
        Paused::Paused { assignee: None }
    );
    let mut later = store.join(&member("node-l", "later", &[])).await.unwrap();
    // Resume brings both back.
    assert_eq!(
        store.resume(&call.id).await.unwrap(),
        Resumed::Routed(Routing::Assigned(node_e.clone()))
    );
    assert_eq!(executed(&recv_n(&mut e, 1).await.0), vec![call.id.clone()]);
    assert!(matches!(
        store.resume(&parked.id).await.unwrap(),
        Resumed::Routed(Routing::Assigned(_))
    ));
    assert_eq!(
        executed(&recv_n(&mut later, 1).await.0),
        vec![parked.id.clone()]
    );
    assert!(store
        .complete(&node_e, &call.id, &reply("ok"))
        .await
        .unwrap());
    // Its caller is no member: the record went with the completion.
    assert_eq!(store.pause(&call.id).await.unwrap(), Paused::Unknown);
}

pub(crate) async fn control_request_with_children(engine: &Engine) {
    let store = engine.open("app").await;
    let mut p = store.join(&member("node-p", "parent", &[])).await.unwrap();
    let parent = request(RequestKind::Call, "parent", "node-c");
    store.enqueue(&parent).await.unwrap();
    recv_n(&mut p, 1).await;
    let mut call = request(RequestKind::Call, "nobody", "node-p");
    call.parent = Some(parent.id.clone());
    let mut promise = request(RequestKind::Promise, "nobody", "node-p");
    promise.parent = Some(parent.id.clone());
    for r in [&call, &promise] {
        store.enqueue(r).await.unwrap();
    }
    let (got, children) = store
        .request_with_children(&parent.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.request.id, parent.id);
    assert_eq!(got.status, PendingStatus::Queued);
    assert_eq!(ids(&children), vec![call.id.clone(), promise.id.clone()]);
    let (child, none) = store
        .request_with_children(&call.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(child.request.parent, Some(parent.id.clone()));
    assert_eq!(child.status, PendingStatus::Parked);
    assert!(none.is_empty());
    assert!(store.expire_parked(&call.id).await.unwrap());
    let (_, children) = store
        .request_with_children(&parent.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&children), vec![promise.id.clone()]);
}

pub(crate) async fn control_bad_ids_change_nothing(engine: &Engine) {
    let store = engine.open("app").await;
    let other = engine.open("other").await;
    let r = request(RequestKind::Call, "nobody", "node-c");
    other.enqueue(&r).await.unwrap();
    // An id of another application is unknown here.
    assert_eq!(store.kill(&r.id).await.unwrap(), Killed::Unknown);
    assert_eq!(store.pause(&r.id).await.unwrap(), Paused::Unknown);
    assert_eq!(store.request_with_children(&r.id).await.unwrap(), None);
    let unknown = RequestId::generate();
    assert_eq!(store.kill(&unknown).await.unwrap(), Killed::Unknown);
    assert_eq!(store.pause(&unknown).await.unwrap(), Paused::Unknown);
    let (still, _) = other.request_with_children(&r.id).await.unwrap().unwrap();
    assert_eq!(still.status, PendingStatus::Parked);
}
