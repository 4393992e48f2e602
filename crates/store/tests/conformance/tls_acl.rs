use super::*;

// ----- TLS and ACL (Redis) -----

/// A CA other than the server's: opening fails at once with a configuration error
/// that names TLS and the setting to check; skipping verification connects.
#[tokio::test]
pub(crate) async fn redis_tls_with_a_wrong_ca_is_refused_clearly() {
    let server = RedisServer::start_tls();
    let other = tempfile::tempdir().unwrap();
    make_certificates(other.path(), "other-");
    let wrong = kar_store::RedisConfig {
        ca_cert: Some(std::fs::read(other.path().join("other-ca.crt")).unwrap()),
        ..server.config()
    };
    let err = kar_store::open(&kar_store::StoreConfig::Redis(wrong.clone()), "app")
        .await
        .err()
        .expect("a wrong CA must be refused");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("TLS") && text.contains("REDIS_CA"), "{text}");
    // The system's roots do not know the test's CA either.
    let system = kar_store::RedisConfig {
        ca_cert: None,
        ..server.config()
    };
    let err = kar_store::open(&kar_store::StoreConfig::Redis(system), "app")
        .await
        .err()
        .expect("an unknown CA must be refused");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    // Without verification the same connection works.
    let insecure = kar_store::RedisConfig {
        tls_skip_verify: true,
        ..wrong
    };
    let store = kar_store::open(&kar_store::StoreConfig::Redis(insecure), "app")
        .await
        .unwrap();
    assert!(store.describe().starts_with("rediss://"));
    let _inbox = store.join(&member("node-1", "svc", &[])).await.unwrap();
    assert_eq!(store.members().await.unwrap().len(), 1);
}

/// Plain connections to a TLS-only port, and TLS to a plain port, fail at once
/// (no hang) with a message that points at the TLS setting.
#[tokio::test]
pub(crate) async fn redis_tls_mismatch_fails_fast() {
    let server = RedisServer::start_tls();
    let tls_port = server.tls.as_ref().unwrap().port;
    let plain_to_tls = redis_config(tls_port);
    let started = Instant::now();
    let err = kar_store::open(&kar_store::StoreConfig::Redis(plain_to_tls), "app")
        .await
        .err()
        .expect("plain text to a TLS port must fail");
    assert!(err.to_string().contains("-redis_enable_tls"), "{err}");
    let tls_to_plain = kar_store::RedisConfig {
        port: server.port,
        ..server.config()
    };
    let err = kar_store::open(&kar_store::StoreConfig::Redis(tls_to_plain), "app")
        .await
        .err()
        .expect("TLS to a plain port must fail");
    assert!(err.to_string().contains("TLS"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

/// Runs `ACL SETUSER <args>` on the server's plain port.
pub(crate) fn acl_setuser(server: &RedisServer, args: &[&str]) {
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{}", server.port)).unwrap();
    let mut conn = client.get_connection().unwrap();
    let mut cmd = ::redis::cmd("ACL");
    cmd.arg("SETUSER");
    for arg in args {
        cmd.arg(*arg);
    }
    cmd.query::<()>(&mut conn).unwrap();
}

/// The README's ACL line, parsed into `ACL SETUSER` arguments (so the test proves
/// the line users copy).
pub(crate) fn readme_acl_line(user: &str, password: &str) -> Vec<String> {
    let readme = include_str!("../../../../README.md");
    let line = readme
        .lines()
        .find(|l| l.trim_start().starts_with("ACL SETUSER kar "))
        .expect("the README gives the ACL line of kar's Redis user");
    let mut args: Vec<String> = line
        .split_whitespace()
        .skip(2)
        .map(str::to_string)
        .collect();
    args[0] = user.to_string();
    for arg in &mut args {
        if arg.starts_with('>') {
            *arg = format!(">{password}");
        }
    }
    args
}

/// A user with the README's ACL line runs the mesh; one without the permissions kar
/// needs is told which, at open (no hang, no failure in the middle of a transition);
/// a wrong password is refused at open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
pub(crate) async fn redis_acl_user_limited_to_what_kar_needs() {
    let server = RedisServer::start_tls();
    let args = readme_acl_line("kar", "s3cret");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    acl_setuser(&server, &args);
    let config = |user: &str, password: &str| kar_store::RedisConfig {
        user: Some(user.into()),
        password: Some(password.into()),
        ..server.config()
    };
    let store = kar_store::open(
        &kar_store::StoreConfig::Redis(config("kar", "s3cret")),
        "app",
    )
    .await
    .unwrap();
    let mut inbox = store.join(&member("node-a", "svc", &["A"])).await.unwrap();
    let r = request(RequestKind::Call, "svc", "node-a");
    store.enqueue(&r).await.unwrap();
    let (got, _) = recv_n(&mut inbox, 1).await;
    assert_eq!(executed(&got), vec![r.id.clone()]);
    store
        .state_set(&ActorRef::new("A", "1"), "k", None, Bytes::from("1"))
        .await
        .unwrap();
    assert!(store.topic_create("t").await.unwrap());
    assert_eq!(store.publish("t", Bytes::from("e")).await.unwrap(), 1);
    assert!(store
        .complete(&NodeId("node-a".into()), &r.id, &reply("ok"))
        .await
        .unwrap());

    let started = Instant::now();
    // Read-only on kar's keys: every writing command is missing.
    acl_setuser(
        &server,
        &[
            "reader",
            "on",
            ">pw",
            "~kar:*",
            "-@all",
            "+@read",
            "+ping",
            "+evalsha",
            "+script|load",
        ],
    );
    let err = kar_store::open(
        &kar_store::StoreConfig::Redis(config("reader", "pw")),
        "app",
    )
    .await
    .err()
    .expect("a read-only user cannot run kar");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("reader") && text.contains("HSET") && text.contains("XADD"),
        "{text}"
    );
    assert!(!text.contains("HGET,"), "{text}");
    // No scripts at all.
    acl_setuser(
        &server,
        &["noscript", "on", ">pw", "~kar:*", "+@all", "-evalsha"],
    );
    let err = kar_store::open(
        &kar_store::StoreConfig::Redis(config("noscript", "pw")),
        "app",
    )
    .await
    .err()
    .expect("a user without EVALSHA cannot run kar");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("evalsha"), "{err}");
    // Keys outside kar's.
    acl_setuser(&server, &["elsewhere", "on", ">pw", "~other:*", "+@all"]);
    let err = kar_store::open(
        &kar_store::StoreConfig::Redis(config("elsewhere", "pw")),
        "app",
    )
    .await
    .err()
    .expect("a user without kar's keys cannot run kar");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    // A wrong password.
    let err = kar_store::open(&kar_store::StoreConfig::Redis(config("kar", "nope")), "app")
        .await
        .err()
        .expect("a wrong password is refused");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
