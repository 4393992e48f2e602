use super::*;

// ----- replication (Redis): the WAIT setting over a failover -----

/// The number of requests of `app` stored on `server`.
pub(crate) fn stored_requests(server: &RedisServer, app: &str) -> usize {
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("kar:{{{app}}}:req:*"))
        .query(&mut server.connection())
        .unwrap();
    keys.len()
}

/// A primary and its replica; the replica is promoted after the primary is killed.
/// With `wait_replicas` 1, a transition is acknowledged only once the replica has it:
/// while the replica lags (its link cut) nothing is acknowledged, and everything that was is on
/// the promoted replica. Without it, transitions acknowledged while the replica lagged
/// are lost by the failover: the test reports how many (the trade-off, not hidden).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn redis_replication_wait_keeps_acknowledged_transitions_over_a_failover() {
    let primary = RedisServer::start();
    let replica = RedisServer::start();
    // The replication link goes through a proxy the test can cut (a replica that
    // lags: what the primary sent is not on the replica).
    let link = CuttableProxy::start(primary.port).await;
    let _: () = ::redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(link.port)
        .query(&mut replica.connection())
        .unwrap();
    let linked = |server: &RedisServer| {
        let info: String = ::redis::cmd("INFO")
            .arg("replication")
            .query(&mut server.connection())
            .unwrap();
        info.contains("master_link_status:up")
    };
    poll_until(|| linked(&replica)).await;
    let open = |replicas: u32| {
        let config = kar_store::RedisConfig {
            wait_replicas: replicas,
            wait_timeout: Duration::from_millis(300),
            ..redis_config(primary.port)
        };
        async move {
            kar_store::open(&kar_store::StoreConfig::Redis(config), "app")
                .await
                .unwrap()
        }
    };
    let waiting = open(1).await;
    let enqueue = |store: Arc<dyn kar_store::Store>, service: &'static str| async move {
        store
            .enqueue(&request(RequestKind::Tell, service, "node-c"))
            .await
    };

    // With the wait: nothing is acknowledged while the replica lags...
    link.set_cut(true);
    let err = enqueue(waiting.clone(), "sync").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("replicas acknowledged"), "{err}");
    link.set_cut(false);
    // ... and what is acknowledged is on the replica.
    let mut acknowledged = 0;
    for _ in 0..20 {
        enqueue(waiting.clone(), "sync").await.unwrap();
        acknowledged += 1;
    }

    // Without it: acknowledged while the replica lags, then the primary dies.
    let asynchronous = open(0).await;
    link.set_cut(true);
    for _ in 0..20 {
        enqueue(asynchronous.clone(), "async").await.unwrap();
    }
    primary.signal("KILL");
    // What the link held is gone with the primary.
    drop(link);
    let _: () = ::redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut replica.connection())
        .unwrap();
    let parked = |service: &str| {
        let keys: Vec<String> = ::redis::cmd("ZRANGE")
            .arg(format!("kar:{{app}}:parked:{service}"))
            .arg(0)
            .arg(-1)
            .query(&mut replica.connection())
            .unwrap();
        keys.len()
    };
    let (kept_sync, kept_async) = (parked("sync"), parked("async"));
    eprintln!(
        "failover: with the wait, {kept_sync} of {acknowledged} acknowledged transitions kept \
         (+ the one refused: applied on the primary only, or not); without it, {kept_async} of \
         20 kept ({} lost)",
        20 - kept_async
    );
    assert!(kept_sync >= acknowledged, "{kept_sync} < {acknowledged}");
    assert!(stored_requests(&replica, "app") >= kept_sync + kept_async);
}

/// A Redis Sentinel of the test's own (`redis-server --sentinel`) watching `primary`
/// under the name `mymaster`, killed on drop.
pub(crate) struct Sentinel {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Sentinel {
    pub(crate) fn start(primary: u16) -> Sentinel {
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
            listener.local_addr().unwrap().port()
        };
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor mymaster 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 5000\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let mut child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        assert!(
            lines
                .by_ref()
                .map_while(Result::ok)
                .any(|l| l.contains("+monitor master mymaster")),
            "the Sentinel did not start"
        );
        std::thread::spawn(move || for _ in lines {});
        Sentinel {
            child,
            port,
            _dir: dir,
        }
    }

    /// How many replicas and other Sentinels it knows of `mymaster`.
    pub(crate) fn known(&self) -> (usize, usize) {
        let mut conn = ::redis::Client::open(format!("redis://127.0.0.1:{}", self.port))
            .unwrap()
            .get_connection()
            .unwrap();
        let count = |what: &str, conn: &mut ::redis::Connection| {
            ::redis::cmd("SENTINEL")
                .arg(what)
                .arg("mymaster")
                .query::<Vec<::redis::Value>>(conn)
                .map(|v| v.len())
                .unwrap_or(0)
        };
        (count("replicas", &mut conn), count("sentinels", &mut conn))
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Enqueues tells until `target` were acknowledged (their ids in `acknowledged`),
/// counting the refusals (store unavailable: a failover in progress).
pub(crate) async fn enqueue_until(
    store: &Arc<dyn kar_store::Store>,
    target: usize,
    acknowledged: &mut Vec<RequestId>,
    failures: &mut usize,
) {
    let deadline = Instant::now() + PATIENCE * 2;
    while acknowledged.len() < target {
        assert!(Instant::now() < deadline, "the load never resumed");
        let r = request(RequestKind::Tell, "svc", "node-c");
        match store.enqueue(&r).await {
            Ok(_) => acknowledged.push(r.id),
            Err(_) => {
                *failures += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// A primary, two replicas and three Sentinels; kar connects through the Sentinels
/// with the replication wait on (1 replica). Under a steady load of enqueues the
/// primary is killed: Sentinel promotes a replica, kar's connections follow it, the
/// load resumes, and every enqueue kar acknowledged (before, during and after the
/// failover) is on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn redis_sentinel_failover_under_load_loses_nothing_acknowledged() {
    let primary = RedisServer::start();
    let replicas = [RedisServer::start(), RedisServer::start()];
    for replica in &replicas {
        let _: () = ::redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg(primary.port)
            .query(&mut replica.connection())
            .unwrap();
    }
    let linked = |server: &RedisServer| {
        let info: String = ::redis::cmd("INFO")
            .arg("replication")
            .query(&mut server.connection())
            .unwrap();
        info.contains("master_link_status:up")
    };
    poll_until(|| replicas.iter().all(linked)).await;
    let sentinels: Vec<Sentinel> = (0..3).map(|_| Sentinel::start(primary.port)).collect();
    poll_until(|| sentinels.iter().all(|s| s.known() == (2, 2))).await;
    let config = kar_store::RedisConfig {
        sentinels: sentinels
            .iter()
            .map(|s| ("127.0.0.1".to_string(), s.port))
            .collect(),
        sentinel_master: "mymaster".into(),
        wait_replicas: 1,
        wait_timeout: Duration::from_secs(1),
        // The member outlives the failover (a few seconds).
        lease: Duration::from_secs(20),
        ..redis_config(0)
    };
    let store = kar_store::open(&kar_store::StoreConfig::Redis(config), "app")
        .await
        .unwrap();
    assert!(
        store.describe().contains("mymaster"),
        "{}",
        store.describe()
    );
    let _inbox = store.join(&member("node-a", "other", &[])).await.unwrap();
    let mut acknowledged = Vec::new();
    let mut failures = 0;
    enqueue_until(&store, 30, &mut acknowledged, &mut failures).await;
    primary.signal("KILL");
    let killed = Instant::now();
    enqueue_until(&store, 60, &mut acknowledged, &mut failures).await;
    eprintln!(
        "failover under load: load resumed {:?} after the kill; {failures} enqueues refused meanwhile",
        killed.elapsed()
    );
    // The new primary is the replica the Sentinels name now.
    let promoted = replicas
        .iter()
        .find(|r| {
            let info: String = ::redis::cmd("INFO")
                .arg("replication")
                .query(&mut r.connection())
                .unwrap();
            info.contains("role:master")
        })
        .expect("a replica was promoted");
    let mut conn = promoted.connection();
    for id in &acknowledged {
        let exists: i64 = ::redis::cmd("EXISTS")
            .arg(format!("kar:{{app}}:req:{id}"))
            .query(&mut conn)
            .unwrap();
        assert_eq!(exists, 1, "acknowledged {id} was lost by the failover");
    }
}
