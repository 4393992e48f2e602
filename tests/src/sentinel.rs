//! Redis high availability of the test's own, on loopback: a primary, its replicas and
//! three Sentinels (`redis-server --sentinel`). The test kills the primary and the
//! Sentinels promote a replica (the one with the most data), and point the others at
//! it.

use crate::clock::poll_until;
use crate::ports::free_port;
use crate::process::Process;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// The name the Sentinels know the primary by (kar's default `-redis_sentinel_master`).
pub const MASTER: &str = "mymaster";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(50);

/// One Redis server of the pair, restartable on its port.
struct Node {
    port: u16,
    process: Option<Process>,
}

pub struct RedisHa {
    nodes: Vec<Node>,
    sentinels: Vec<(u16, Process)>,
    /// Where the servers and Sentinels keep their files.
    dir: TempDir,
}

/// Runs `redis-cli -p port args...` and returns its output (empty if it failed).
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn spawn_redis(dir: &Path, port: u16, replica_of: Option<u16>) -> Process {
    let data = dir.join(format!("redis-{port}"));
    std::fs::create_dir_all(&data).expect("create a redis directory");
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
        // A replica's first sync starts at once, not after the default 5 s.
        .args(["--repl-diskless-sync-delay", "0"])
        .arg("--dir")
        .arg(&data);
    if let Some(primary) = replica_of {
        command.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
    }
    let process = Process::spawn(format!("redis-server :{port}"), command);
    process.expect_output("Ready to accept connections", START_TIMEOUT);
    process
}

impl RedisHa {
    /// Starts the primary, `replicas` replicas (waiting until they are in sync) and
    /// three Sentinels (quorum 2, `down-after-milliseconds` 2000: a failover takes
    /// 3–4 s). Not 1000: on a loaded 2-core machine a Sentinel that has just switched
    /// to the promoted replica can miss its PINGs for a second, and fail over a
    /// second time, away from a primary that still runs; the Sentinels make that one
    /// a replica again only about 10 s later, and until then no write reaches a
    /// replica (seen in CI: every sidecar of tests/failover.rs fenced itself).
    pub fn start(replicas: usize) -> RedisHa {
        let dir = tempfile::Builder::new()
            .prefix("kar-redis-ha-")
            .tempdir()
            .expect("create a temporary directory");
        let primary = free_port();
        let mut nodes = vec![Node {
            port: primary,
            process: Some(spawn_redis(dir.path(), primary, None)),
        }];
        for _ in 0..replicas {
            let port = free_port();
            nodes.push(Node {
                port,
                process: Some(spawn_redis(dir.path(), port, Some(primary))),
            });
        }
        let mut ha = RedisHa {
            nodes,
            sentinels: Vec::new(),
            dir,
        };
        ha.await_replicas(primary, replicas);
        for i in 0..3 {
            let port = free_port();
            let conf = ha.dir.path().join(format!("sentinel-{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\nprotected-mode no\n\
                     sentinel monitor {MASTER} 127.0.0.1 {primary} 2\n\
                     sentinel down-after-milliseconds {MASTER} 2000\n\
                     sentinel failover-timeout {MASTER} 10000\n\
                     sentinel parallel-syncs {MASTER} 1\n"
                ),
            )
            .expect("write a sentinel.conf");
            let mut command = Command::new("redis-server");
            command.arg(&conf).arg("--sentinel");
            let process = Process::spawn(format!("redis-sentinel :{port}"), command);
            process.expect_output("Sentinel ID is", START_TIMEOUT);
            ha.sentinels.push((port, process));
        }
        // Each Sentinel must know the others and the replica before a failover can
        // be decided.
        for (port, _) in &ha.sentinels {
            let port = *port;
            let ready = poll_until(START_TIMEOUT, POLL, || {
                let info = redis_cli(port, &["SENTINEL", "MASTER", MASTER]);
                field(&info, "num-other-sentinels") == Some(2)
                    && field(&info, "num-slaves") == Some(replicas as u64)
            });
            assert!(
                ready,
                "sentinel :{port} did not see its peers and the replica"
            );
        }
        ha
    }

    /// `host:port,...` of the Sentinels, for `-redis_sentinel` / `REDIS_SENTINEL`.
    pub fn sentinel_addresses(&self) -> String {
        self.sentinels
            .iter()
            .map(|(port, _)| format!("127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The port of the primary as the first Sentinel names it.
    pub fn primary_port(&self) -> Option<u16> {
        let reply = redis_cli(
            self.sentinels[0].0,
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER],
        );
        reply.lines().nth(1)?.trim().parse().ok()
    }

    /// kill -9 of the primary; returns its port.
    pub fn kill_primary(&mut self) -> u16 {
        let port = self.primary_port().expect("the sentinels name a primary");
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("the primary is one of the pair");
        if let Some(mut process) = node.process.take() {
            process.kill();
        }
        port
    }

    /// Waits until every Sentinel names another primary than `old`, and that one
    /// answers as a master; returns its port.
    pub fn await_failover(&self, old: u16, timeout: Duration) -> u16 {
        let started = Instant::now();
        let mut new = None;
        poll_until(timeout, POLL, || {
            let ports: Vec<Option<u16>> = self
                .sentinels
                .iter()
                .map(|(port, _)| {
                    let reply = redis_cli(*port, &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER]);
                    reply.lines().nth(1)?.trim().parse().ok()
                })
                .collect();
            let Some(candidate) = ports[0].filter(|&p| p != old) else {
                return false;
            };
            let agreed = ports.iter().all(|&p| p == Some(candidate));
            if agreed && redis_cli(candidate, &["ROLE"]).starts_with("master") {
                new = Some(candidate);
            }
            new.is_some()
        });
        new.unwrap_or_else(|| {
            panic!(
                "no failover from :{old} within {timeout:?} (after {:?})",
                started.elapsed()
            )
        })
    }

    /// Waits until `primary` has `n` replicas online.
    pub fn await_replicas(&self, primary: u16, n: usize) {
        let synced = poll_until(Duration::from_secs(60), POLL, || {
            let info = redis_cli(primary, &["INFO", "replication"]);
            let online = info
                .lines()
                .filter(|l| l.starts_with("slave") && l.contains("state=online"))
                .count();
            online >= n
        });
        assert!(synced, "redis :{primary} has no {n} replicas in sync");
    }
}

/// The number after `name` in a `SENTINEL MASTER` reply (name and value on
/// alternate lines).
fn field(reply: &str, name: &str) -> Option<u64> {
    let mut lines = reply.lines();
    while let Some(line) = lines.next() {
        if line.trim() == name {
            return lines.next()?.trim().parse().ok();
        }
    }
    None
}
