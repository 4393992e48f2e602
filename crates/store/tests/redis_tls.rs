//! The Redis engine over TLS, against a `redis-server` of the test's own serving TLS
//! only, with a password and a private CA (certificates made with `openssl`): the CA
//! given as `ca_cert` is trusted, the system's roots alone are not, skip-verify trusts
//! anything, and a plain connection to a TLS port fails clearly.

mod support;

use kar_store::{RedisConfig, StoreConfig, StoreError};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use support::{member, TEST_LEASE};

struct TlsRedis {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ca.crt` and the server's `server.crt` / `server.key` it signs, and another CA
/// (`otherca.crt`) which signed nothing of this server's.
fn certificates(dir: &Path) {
    support::make_certificates(dir, "");
    support::make_certificates(dir, "other");
}

const PASSWORD: &str = "tls-pass-8c2";

fn start() -> TlsRedis {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    for _attempt in 0..5 {
        let port = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let path = |f: &str| dir.path().join(f).display().to_string();
        let mut child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-cert-file",
                &path("server.crt"),
                "--tls-key-file",
                &path("server.key"),
            ])
            .args([
                "--tls-ca-cert-file",
                &path("ca.crt"),
                "--tls-auth-clients",
                "no",
            ])
            .args(["--requirepass", PASSWORD])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let ready = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("Ready to accept connections"));
        if ready {
            std::thread::spawn(move || for _ in lines {});
            return TlsRedis { child, port, dir };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("could not start redis-server with TLS");
}

fn config(server: &TlsRedis, ca: Option<&str>) -> StoreConfig {
    StoreConfig::Redis(RedisConfig {
        host: "127.0.0.1".into(),
        port: server.port,
        password: Some(PASSWORD.into()),
        tls: true,
        ca_cert: ca.map(|f| std::fs::read(server.dir.path().join(f)).unwrap()),
        lease: TEST_LEASE,
        ..RedisConfig::default()
    })
}

#[tokio::test]
async fn tls_with_the_servers_ca_works() {
    let server = start();
    let store = kar_store::open(&config(&server, Some("ca.crt")), "tls-app")
        .await
        .unwrap();
    let _inbox = store.join(&member("node-1", "svc", &[])).await.unwrap();
    let members = store.members().await.unwrap();
    assert_eq!(members.len(), 1);
}

#[tokio::test]
async fn tls_rejects_a_server_no_trusted_ca_signed() {
    let server = start();
    for ca in [None, Some("otherca.crt")] {
        let Err(e) = kar_store::open(&config(&server, ca), "tls-app").await else {
            panic!("connected with CA {ca:?}");
        };
        // A certificate that does not verify is a configuration error (kar exits
        // with one [FATAL] line naming the settings), not an outage to retry.
        assert!(matches!(e, StoreError::Config(_)), "{e}");
        let text = e.to_string();
        assert!(text.contains("TLS connection to Redis"), "{e}");
        assert!(text.contains("-redis_ca_cert"), "{e}");
    }
}

#[tokio::test]
async fn skip_verify_accepts_any_certificate() {
    let server = start();
    let mut config = config(&server, Some("otherca.crt"));
    if let StoreConfig::Redis(redis) = &mut config {
        redis.tls_skip_verify = true;
    }
    let store = kar_store::open(&config, "tls-app").await.unwrap();
    let _inbox = store.join(&member("node-1", "svc", &[])).await.unwrap();
}

#[tokio::test]
async fn plain_connections_to_a_tls_port_fail() {
    let server = start();
    let mut config = config(&server, Some("ca.crt"));
    if let StoreConfig::Redis(redis) = &mut config {
        redis.tls = false;
    }
    let Err(e) = kar_store::open(&config, "tls-app").await else {
        panic!("a plain connection to the TLS port succeeded");
    };
    assert!(e.to_string().contains("Redis"), "{e}");
}
