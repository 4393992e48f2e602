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
pub const TEST_LEASE: Duration = Duration::from_millis(600);
/// Longest wait for anything the tests expect to happen.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A `redis-server` owned by the test, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

impl RedisServer {
    pub fn start() -> RedisServer {
        for _attempt in 0..5 {
            let port = free_port();
            let mut child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
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
                return RedisServer { child, port };
            }
            // Most likely the port was taken meanwhile: try another one.
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("could not start redis-server");
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

    pub fn is_redis(&self) -> bool {
        matches!(self, Engine::Redis(_))
    }

    pub fn config(&self) -> StoreConfig {
        match self {
            Engine::Embedded(dir) => StoreConfig::Embedded {
                dir: dir.path().to_path_buf(),
                sync: Default::default(),
            },
            Engine::Redis(server) => StoreConfig::Redis(redis_config(server.port)),
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
