//! Shared helpers of the store tests: the engines under test (a temporary embedded
//! directory, or a `redis-server` of the test's own on a free loopback port), request
//! and member builders, and bounded waits on inboxes.

#![allow(dead_code)]

use kar_protocol::{
    FlowId, Invocation, Member, NodeId, Outcome, Reply, Request, RequestId, RequestKind, Target,
};
use kar_store::{Inbox, Message, RedisConfig, Store, StoreConfig};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Lease of the Redis members in tests: short, so deaths are detected fast.
pub const TEST_LEASE: Duration = Duration::from_millis(800);
/// Lease of the members over TLS: handshakes of a debug build on a loaded machine
/// would starve the renewals of the shortest lease.
pub const TLS_TEST_LEASE: Duration = Duration::from_secs(2);
/// Longest wait for anything the tests expect to happen.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A `redis-server` owned by the test, killed on drop. With TLS it also serves TLS
/// on `tls.port` (the store under test uses that one; the white-box checks of the
/// tests keep using the plain port).
pub struct RedisServer {
    child: Child,
    pub port: u16,
    pub tls: Option<TlsServer>,
    /// Its working directory (a replica's full sync writes an RDB file there).
    _data: tempfile::TempDir,
}

/// The TLS side of a test server: its port and the files of a CA made for the test.
pub struct TlsServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl TlsServer {
    /// The PEM certificate of the test's CA.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("ca.crt")).expect("read ca.crt")
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// Makes, with `openssl`, a CA (`ca.crt`, `ca.key`) and a certificate it signs for
/// 127.0.0.1 and localhost (`server.crt`, `server.key`) in `dir`; `name` prefixes
/// the files (another CA for the wrong-CA tests).
pub fn make_certificates(dir: &std::path::Path, name: &str) {
    let run = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl must be installed to run the TLS tests");
        assert!(status.success(), "openssl {args:?} failed");
    };
    let file = |suffix: &str| format!("{name}{suffix}");
    let (ca_key, ca_crt, key, csr, crt, ext) = (
        file("ca.key"),
        file("ca.crt"),
        file("server.key"),
        file("server.csr"),
        file("server.crt"),
        file("server.ext"),
    );
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=kar test CA",
        "-keyout",
        &ca_key,
        "-out",
        &ca_crt,
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &key,
        "-out",
        &csr,
    ]);
    std::fs::write(
        dir.join(&ext),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write the extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        &csr,
        "-CA",
        &ca_crt,
        "-CAkey",
        &ca_key,
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &ext,
        "-out",
        &crt,
    ]);
}

impl RedisServer {
    pub fn start() -> RedisServer {
        Self::start_with(false)
    }

    /// A server that also serves TLS with a certificate of a CA made for it.
    pub fn start_tls() -> RedisServer {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> RedisServer {
        let tls_dir = tls.then(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            make_certificates(dir.path(), "");
            dir
        });
        let data = tempfile::tempdir().expect("temp dir");
        for _attempt in 0..5 {
            let port = free_port();
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(data.path());
            let tls_port = tls_dir.as_ref().map(|dir| {
                let tls_port = free_port();
                let path = |f: &str| dir.path().join(f).to_string_lossy().into_owned();
                command
                    .args(["--tls-port", &tls_port.to_string()])
                    .args(["--tls-cert-file", &path("server.crt")])
                    .args(["--tls-key-file", &path("server.key")])
                    .args(["--tls-ca-cert-file", &path("ca.crt")])
                    .args(["--tls-auth-clients", "no"]);
                tls_port
            });
            let mut child = command
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server must be installed to run the Redis conformance tests");
            let stdout = child.stdout.take().expect("piped stdout");
            let mut lines = BufReader::new(stdout).lines();
            // Redis logs this line once it listens: an event, not a guess.
            let ready = lines
                .by_ref()
                .map_while(Result::ok)
                .any(|line| line.contains("Ready to accept connections"));
            if ready {
                // Keep draining the log so the server never blocks on a full pipe.
                std::thread::spawn(move || for _ in lines {});
                let tls = match (tls_port, &tls_dir) {
                    (Some(port), Some(_)) => Some(TlsServer {
                        port,
                        dir: tls_dir.expect("made above"),
                    }),
                    _ => None,
                };
                return RedisServer {
                    child,
                    port,
                    tls,
                    _data: data,
                };
            }
            // Most likely a port was taken meanwhile: try others.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start redis-server");
    }

    /// Sends `signal` (`STOP`, `CONT`, `KILL`) to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} redis-server");
    }

    /// A plain connection (white-box checks, administration).
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}", self.port))
            .expect("client")
            .get_connection()
            .expect("connect")
    }

    /// The configuration of a store on this server (over TLS when it serves TLS,
    /// trusting the test's CA).
    pub fn config(&self) -> RedisConfig {
        match &self.tls {
            None => redis_config(self.port),
            Some(tls) => RedisConfig {
                tls: true,
                ca_cert: Some(tls.ca_pem()),
                lease: TLS_TEST_LEASE,
                ..redis_config(tls.port)
            },
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One engine under test.
pub enum Engine {
    Embedded(tempfile::TempDir),
    Redis(RedisServer),
}

impl Engine {
    pub fn embedded() -> Engine {
        Engine::Embedded(tempfile::tempdir().expect("temp dir"))
    }

    pub fn redis() -> Engine {
        Engine::Redis(RedisServer::start())
    }

    /// The Redis engine over TLS (a CA made for the test).
    pub fn redis_tls() -> Engine {
        Engine::Redis(RedisServer::start_tls())
    }

    /// The lease of its members (Redis).
    pub fn lease(&self) -> Duration {
        match self {
            Engine::Redis(RedisServer { tls: Some(_), .. }) => TLS_TEST_LEASE,
            _ => TEST_LEASE,
        }
    }

    pub fn is_redis(&self) -> bool {
        matches!(self, Engine::Redis(_))
    }

    pub fn config(&self) -> StoreConfig {
        match self {
            Engine::Embedded(dir) => StoreConfig::Embedded {
                dir: dir.path().to_path_buf(),
                sync: Default::default(),
            },
            Engine::Redis(server) => StoreConfig::Redis(server.config()),
        }
    }

    /// A new store handle, as a separate process would open it.
    pub async fn open(&self, app: &str) -> Arc<dyn Store> {
        kar_store::open(&self.config(), app)
            .await
            .expect("open store")
    }

    /// A new store handle whose recoveries follow `policy`.
    pub async fn open_with(&self, app: &str, policy: kar_store::RecoveryPolicy) -> Arc<dyn Store> {
        kar_store::open_with(&self.config(), app, policy)
            .await
            .expect("open store")
    }

    /// The configuration as one line, for a child process ([`Engine::config_from_line`]).
    pub fn config_line(&self) -> String {
        match self {
            Engine::Embedded(dir) => format!("embedded {}", dir.path().display()),
            Engine::Redis(RedisServer { tls: Some(tls), .. }) => {
                format!(
                    "rediss {} {}",
                    tls.port,
                    tls.dir.path().join("ca.crt").display()
                )
            }
            Engine::Redis(server) => format!("redis {}", server.port),
        }
    }

    pub fn config_from_line(line: &str) -> StoreConfig {
        match line.split_once(' ') {
            Some(("embedded", dir)) => StoreConfig::Embedded {
                dir: dir.into(),
                sync: Default::default(),
            },
            Some(("redis", port)) => StoreConfig::Redis(redis_config(port.parse().expect("port"))),
            Some(("rediss", rest)) => {
                let (port, ca) = rest.split_once(' ').expect("rediss <port> <ca file>");
                StoreConfig::Redis(RedisConfig {
                    tls: true,
                    ca_cert: Some(std::fs::read(ca).expect("read the CA")),
                    lease: TLS_TEST_LEASE,
                    ..redis_config(port.parse().expect("port"))
                })
            }
            _ => panic!("bad store config line {line:?}"),
        }
    }

    /// Whether the record of request `id` still exists (white-box look at the engine's
    /// storage, for transitions whose only effect is deleting a record).
    pub fn request_exists(&self, app: &str, id: &RequestId) -> bool {
        match self {
            Engine::Embedded(dir) => {
                let conn = rusqlite::Connection::open(dir.path().join("kar.db")).expect("sqlite");
                conn.query_row(
                    "SELECT count(*) FROM requests WHERE app = ?1 AND id = ?2",
                    [app, id.as_str()],
                    |row| row.get::<_, i64>(0),
                )
                .expect("query")
                    > 0
            }
            Engine::Redis(server) => {
                assert!(
                    !app.contains(['%', '{', '}']),
                    "request_exists does not escape app names"
                );
                let client = redis::Client::open(format!("redis://127.0.0.1:{}", server.port))
                    .expect("client");
                let mut conn = client.get_connection().expect("connect");
                redis::cmd("EXISTS")
                    .arg(format!("kar:{{{app}}}:req:{id}"))
                    .query::<i64>(&mut conn)
                    .expect("EXISTS")
                    > 0
            }
        }
    }
}

impl Engine {
    /// What the engine still keeps for member `node` of `app` (white box): embedded,
    /// its rows (member, inbox, requests it called and left done); Redis, the keys
    /// whose name contains it (inbox, done set, placements, lock...) and its entries
    /// in the members hash and the leases. Empty once the member is fully removed.
    pub fn leftovers(&self, app: &str, node: &str) -> Vec<String> {
        match self {
            Engine::Embedded(dir) => {
                let conn = rusqlite::Connection::open(dir.path().join("kar.db")).expect("sqlite");
                let count = |sql: &str| -> i64 {
                    conn.query_row(sql, [app, node], |row| row.get(0))
                        .expect("query")
                };
                let mut out = Vec::new();
                for (what, sql) in [
                    ("member", "SELECT count(*) FROM members WHERE app = ?1 AND node = ?2"),
                    ("inbox", "SELECT count(*) FROM inbox WHERE app = ?1 AND node = ?2"),
                    (
                        "done",
                        "SELECT count(*) FROM requests WHERE app = ?1 AND caller = ?2 AND status = 'done'",
                    ),
                    ("placements", "SELECT count(*) FROM placements WHERE app = ?1 AND node = ?2"),
                ] {
                    let n = count(sql);
                    if n > 0 {
                        out.push(format!("{what}: {n}"));
                    }
                }
                out
            }
            Engine::Redis(server) => {
                let client = redis::Client::open(format!("redis://127.0.0.1:{}", server.port))
                    .expect("client");
                let mut conn = client.get_connection().expect("connect");
                let mut out: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("kar:{{{app}}}:*{node}*"))
                    .query(&mut conn)
                    .expect("KEYS");
                let member: bool = redis::cmd("HEXISTS")
                    .arg(format!("kar:{{{app}}}:members"))
                    .arg(node)
                    .query(&mut conn)
                    .expect("HEXISTS");
                let lease: Option<f64> = redis::cmd("ZSCORE")
                    .arg(format!("kar:{{{app}}}:leases"))
                    .arg(node)
                    .query(&mut conn)
                    .expect("ZSCORE");
                if member {
                    out.push("member".into());
                }
                if lease.is_some() {
                    out.push("lease".into());
                }
                let margin: bool = redis::cmd("HEXISTS")
                    .arg(format!("kar:{{{app}}}:margins"))
                    .arg(node)
                    .query(&mut conn)
                    .expect("HEXISTS");
                if margin {
                    out.push("margin".into());
                }
                out
            }
        }
    }
}

pub fn redis_config(port: u16) -> RedisConfig {
    RedisConfig {
        host: "127.0.0.1".into(),
        port,
        lease: TEST_LEASE,
        ..RedisConfig::default()
    }
}

pub fn member(node: &str, service: &str, actors: &[&str]) -> Member {
    Member {
        node: NodeId(node.to_string()),
        service: service.to_string(),
        actors: actors.iter().map(|a| a.to_string()).collect(),
        runtime_port: 3500,
    }
}

pub fn request(kind: RequestKind, service: &str, caller: &str) -> Request {
    Request::new(
        kind,
        Target::Service {
            name: service.to_string(),
        },
        Invocation {
            method: "POST".into(),
            path: "/echo".into(),
            query: None,
            headers: vec![("Content-Type".into(), "text/plain".into())],
            body: "hi".into(),
        },
        NodeId(caller.to_string()),
        FlowId::generate(),
        None,
        None,
    )
}

pub fn reply(body: &str) -> Outcome {
    Outcome::Reply(Reply::text(200, body))
}

/// Receives until `n` messages other than `MembersChanged` arrived; returns them and
/// whether a `MembersChanged` was seen.
pub async fn recv_n(inbox: &mut Box<dyn Inbox>, n: usize) -> (Vec<Message>, bool) {
    let mut out = Vec::new();
    let mut changed = false;
    tokio::time::timeout(PATIENCE, async {
        while out.len() < n {
            for message in inbox.recv().await.expect("recv") {
                match message {
                    Message::MembersChanged => changed = true,
                    other => out.push(other),
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {n} messages, got {out:?}"));
    assert_eq!(out.len(), n, "more messages than expected: {out:?}");
    (out, changed)
}

/// Receives until a `MembersChanged` arrives; returns the other messages seen.
pub async fn recv_members_changed(inbox: &mut Box<dyn Inbox>) -> Vec<Message> {
    let mut others = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        loop {
            let batch = inbox.recv().await.expect("recv");
            let changed = batch.contains(&Message::MembersChanged);
            others.extend(batch.into_iter().filter(|m| *m != Message::MembersChanged));
            if changed {
                return;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for MembersChanged, got {others:?}"));
    others
}

/// Polls `done` until it holds (within [`PATIENCE`]): for states of the store that
/// nothing announces.
pub async fn poll_until(mut done: impl FnMut() -> bool) {
    tokio::time::timeout(PATIENCE, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the awaited condition never held");
}

/// The ids of `Execute` messages.
pub fn executed(messages: &[Message]) -> Vec<RequestId> {
    messages
        .iter()
        .map(|m| match m {
            Message::Execute(r) => r.id.clone(),
            other => panic!("expected Execute, got {other:?}"),
        })
        .collect()
}

/// A TCP proxy to a Redis server that the test can cut, like a partition that drops
/// packets (iptables DROP): while cut, nothing is forwarded; connections stay open
/// and new ones are accepted; what was sent meanwhile arrives after the heal only at
/// the next TCP retransmission (200 ms after the send, then doubling each time), as
/// with a real kernel. Nothing is lost or reordered.
pub struct CuttableProxy {
    pub port: u16,
    cut: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttableProxy {
    pub async fn start(upstream: u16) -> CuttableProxy {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the proxy");
        let port = listener.local_addr().expect("local addr").port();
        let (cut, watch) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pipe(client_read, server_write, watch.clone()));
                tokio::spawn(pipe(server_read, client_write, watch.clone()));
            }
        });
        CuttableProxy { port, cut, task }
    }

    /// Cuts (`true`) or heals (`false`) every connection through the proxy.
    pub fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// Forwards `from` to `to`; what arrives while cut waits for the heal and then for
/// the next retransmission instant of its first byte.
async fn pipe(
    mut from: impl tokio::io::AsyncRead + Unpin,
    mut to: impl tokio::io::AsyncWrite + Unpin,
    mut cut: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if *cut.borrow() {
            let sent = tokio::time::Instant::now();
            if cut.wait_for(|c| !*c).await.is_err() {
                return;
            }
            let mut rto = Duration::from_millis(200);
            let mut at = sent + rto;
            while at < tokio::time::Instant::now() {
                rto *= 2;
                at += rto;
            }
            tokio::time::sleep_until(at).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
