use super::*;

// ----- partitions (Redis): the fencing margin, renewals through short cuts -----

/// A member cut off from Redis (packets dropped both ways) fences itself before any
/// other member can recover its requests: the re-delivery to the live member comes
/// after the cut member's inbox reported `Fenced`, at least twice the margin later.
/// When the cut heals, the stale member commits nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn redis_cut_member_is_fenced_before_its_requests_are_recovered() {
    let server = RedisServer::start();
    let proxy = CuttableProxy::start(server.port).await;
    let cut_store = kar_store::open(
        &kar_store::StoreConfig::Redis(redis_config(proxy.port)),
        "app",
    )
    .await
    .unwrap();
    let store = kar_store::open(
        &kar_store::StoreConfig::Redis(redis_config(server.port)),
        "app",
    )
    .await
    .unwrap();
    let mut cut_inbox = cut_store
        .join(&member("node-cut", "svc", &[]))
        .await
        .unwrap();
    let r = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    let (got, _) = recv_n(&mut cut_inbox, 1).await;
    assert_eq!(executed(&got), vec![r.id.clone()]);
    let mut live = store.join(&member("node-live", "svc", &[])).await.unwrap();

    proxy.set_cut(true);
    let fenced = tokio::spawn(async move {
        loop {
            match cut_inbox.recv().await {
                Err(StoreError::Fenced(_)) => return Instant::now(),
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                Ok(_) => {}
            }
        }
    });
    let (redelivered, _) = recv_n(&mut live, 1).await;
    let retried = Instant::now();
    assert_eq!(executed(&redelivered), vec![r.id.clone()]);
    let fenced_at = tokio::time::timeout(PATIENCE, fenced)
        .await
        .expect("the cut member never fenced itself")
        .unwrap();
    assert!(
        fenced_at < retried,
        "the request was re-delivered {:?} before the cut member fenced itself",
        fenced_at - retried
    );
    eprintln!(
        "fence → re-delivery: {:?} (margin {:?} each side)",
        retried - fenced_at,
        TEST_LEASE / 4
    );

    proxy.set_cut(false);
    let err = cut_store
        .complete(&NodeId("node-cut".into()), &r.id, &reply("stale"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
    assert!(store
        .complete(&NodeId("node-live".into()), &r.id, &reply("ok"))
        .await
        .unwrap());
}

/// A cut shorter than the lease less its margin fences nobody: the renewal gets
/// through on a fresh connection once the cut heals (TCP would retry the old one
/// only after its back-off), and nobody recovers the member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn redis_partition_shorter_than_the_lease_fences_nobody() {
    let lease = Duration::from_secs(3);
    let server = RedisServer::start();
    let proxy = CuttableProxy::start(server.port).await;
    let config = |port| kar_store::RedisConfig {
        lease,
        ..redis_config(port)
    };
    let cut_store = kar_store::open(&kar_store::StoreConfig::Redis(config(proxy.port)), "app")
        .await
        .unwrap();
    let store = kar_store::open(&kar_store::StoreConfig::Redis(config(server.port)), "app")
        .await
        .unwrap();
    let node = NodeId("node-cut".into());
    let cut_inbox = cut_store
        .join(&member("node-cut", "svc", &[]))
        .await
        .unwrap();
    let _live = store.join(&member("node-live", "svc", &[])).await.unwrap();
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{}", server.port)).unwrap();
    let mut conn = client.get_connection().unwrap();
    let expiry = |conn: &mut ::redis::Connection| -> f64 {
        ::redis::cmd("ZSCORE")
            .arg("kar:{app}:leases")
            .arg("node-cut")
            .query(conn)
            .unwrap()
    };
    // Cut right after a renewal (the worst phase: the next one is due in the cut).
    let first = expiry(&mut conn);
    poll_until(|| expiry(&mut conn) > first).await;
    proxy.set_cut(true);
    let cut_expiry = expiry(&mut conn);
    // 1.2 s: the renewal due after 1 s falls in the cut, and the retries after the
    // heal have 1.3 s left before the fence (lease - margin), room for a loaded CI
    // machine (a 1.5 s cut fenced the member once there).
    tokio::time::sleep(lease * 2 / 5).await;
    proxy.set_cut(false);
    // A renewal sent after the heal reaches Redis.
    poll_until(|| expiry(&mut conn) > cut_expiry).await;
    // Not fenced: it commits, and it is still a member.
    cut_store
        .state_set(&ActorRef::new("A", "1"), "k", None, Bytes::from("1"))
        .await
        .unwrap();
    assert!(store
        .members()
        .await
        .unwrap()
        .iter()
        .any(|m| m.node == node));
    // The inbox (whose drop would end the membership) lived through the test.
    drop(cut_inbox);
}
