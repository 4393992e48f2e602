use super::*;

#[tokio::test]
pub(crate) async fn redis_open_fails_fast_when_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let result = kar_store::open(&kar_store::StoreConfig::Redis(redis_config(port)), "app").await;
    let err = result.err().expect("no Redis there");
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
pub(crate) async fn redis_default_lease_and_description() {
    let server = RedisServer::start();
    let config = kar_store::RedisConfig {
        lease: Duration::ZERO,
        ..server.config()
    };
    let store = kar_store::open(&kar_store::StoreConfig::Redis(config), "app")
        .await
        .unwrap();
    assert_eq!(
        store.describe(),
        format!("redis://127.0.0.1:{}", server.port)
    );
    let _inbox = store.join(&member("node-1", "svc", &[])).await.unwrap();
    // The lease (expiry on the server clock) lies 3 s ahead.
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{}", server.port)).unwrap();
    let mut conn = client.get_connection().unwrap();
    let expiry: f64 = ::redis::cmd("ZSCORE")
        .arg("kar:{app}:leases")
        .arg("node-1")
        .query(&mut conn)
        .unwrap();
    let (secs, micros): (u64, u64) = ::redis::cmd("TIME").query(&mut conn).unwrap();
    let ahead = expiry - (secs * 1000 + micros / 1000) as f64;
    assert!((2500.0..=3000.0).contains(&ahead), "{ahead}");
}

#[tokio::test]
pub(crate) async fn redis_member_fences_itself_when_redis_is_unreachable() {
    let server = RedisServer::start();
    let store = kar_store::open(
        &kar_store::StoreConfig::Redis(redis_config(server.port)),
        "app",
    )
    .await
    .unwrap();
    let node = NodeId("node-cut".into());
    let mut inbox = store.join(&member("node-cut", "svc", &[])).await.unwrap();
    drop(server);
    // Redis is dead once the drop returns: no renewal sent after this instant lands.
    let cut = Instant::now();
    // What the guarantee needs: one lease after the last renewal that could have
    // reached Redis (so at `cut + lease` at the latest), the others may declare this
    // member dead and recover its requests; from then on it must commit nothing,
    // which it decides from its own clock, without asking Redis. So the check is
    // made at that instant or later (a loaded machine only makes it later), and a
    // transition must then be refused as fenced (asking the dead Redis would fail
    // as unavailable instead). How soon the inbox *reports* the fencing is liveness,
    // not safety: it depends on when the renewal task gets scheduled, which a loaded
    // 2-core machine delays past any tight margin (the former bound was
    // lease + 300 ms), so it is only bounded by the suite's patience.
    tokio::time::sleep_until((cut + TEST_LEASE).into()).await;
    let err = store
        .complete(&node, &RequestId::generate(), &reply("late"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
    tokio::time::timeout(PATIENCE, async {
        loop {
            match inbox.recv().await {
                Err(StoreError::Fenced(fenced)) => {
                    assert_eq!(fenced, node.0);
                    return;
                }
                // The runtime backs off on errors; so does this loop.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Ok(messages) => panic!("unexpected {messages:?}"),
            }
        }
    })
    .await
    .expect("the member did not fence itself");
}
