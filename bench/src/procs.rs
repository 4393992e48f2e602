//! The processes of one benchmark run: a store (a temporary embedded directory or our
//! own redis-server on a free port) and two sidecars (`kar run` without a command).

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

pub fn default_kar_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/kar-bench → target/<profile>/kar
    exe.with_file_name("kar")
}

pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// The store of one run: a temporary `KAR_HOME` (the embedded store lives there) and,
/// for Redis, our own redis-server on a free port. `env` is what every `kar` needs.
pub struct StoreProcess {
    pub home: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    pub redis: Option<Child>,
}

impl StoreProcess {
    pub async fn start(store: &str) -> Result<StoreProcess> {
        let home = tempfile::tempdir()?;
        let mut env: Vec<(String, String)> =
            vec![("KAR_HOME".into(), home.path().display().to_string())];
        let redis = match store {
            "embedded" => None,
            "redis" => {
                let port = free_port()?;
                let redis = Command::new("redis-server")
                    .args([
                        "--port",
                        &port.to_string(),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                    ])
                    .stdout(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .context("starting redis-server")?;
                wait_for_tcp(port).await?;
                env.push(("REDIS_HOST".into(), "127.0.0.1".into()));
                env.push(("REDIS_PORT".into(), port.to_string()));
                Some(redis)
            }
            other => bail!("unknown store {other} (embedded or redis)"),
        };
        Ok(StoreProcess { home, env, redis })
    }
}

pub struct Mesh {
    processes: Vec<Child>,
    /// What each of `processes` is, for the CPU figures.
    labels: Vec<&'static str>,
    _home: tempfile::TempDir,
    pub client_port: u16,
}

impl Mesh {
    pub async fn start(kar: &Path, store: &str, app_port: u16) -> Result<Mesh> {
        let StoreProcess { home, env, redis } = StoreProcess::start(store).await?;
        let mut processes = Vec::new();
        let mut labels = Vec::new();
        if let Some(redis) = redis {
            processes.push(redis);
            labels.push("redis-server");
        }
        let server_port = free_port()?;
        let client_port = free_port()?;
        for (port, extra, label) in [
            (
                server_port,
                vec!["-service", "bench", "-actors", "Bench"],
                "server sidecar",
            ),
            (client_port, vec![], "client sidecar"),
        ] {
            let mut args = vec!["run", "-app", "bench", "-app_port"];
            let app_port = app_port.to_string();
            let runtime_port = port.to_string();
            args.push(&app_port);
            args.push("-runtime_port");
            args.push(&runtime_port);
            args.extend(extra);
            let child = Command::new(kar)
                .args(&args)
                .envs(env.iter().cloned())
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting kar")?;
            processes.push(child);
            labels.push(label);
            wait_for_tcp(port).await?;
        }
        Ok(Mesh {
            processes,
            labels,
            _home: home,
            client_port,
        })
    }

    /// `(what, pid)` of every live process of the mesh.
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.labels
            .iter()
            .zip(&self.processes)
            .filter_map(|(label, child)| child.id().map(|pid| (*label, pid)))
            .collect()
    }

    pub async fn stop(mut self) {
        // Sidecars first (they leave the mesh), the store last.
        while let Some(child) = self.processes.pop() {
            terminate(child).await;
        }
    }
}

/// SIGTERM, then SIGKILL after 5 s. (If the benchmark fails or is interrupted
/// instead, `kill_on_drop` SIGKILLs every child as its owner is dropped.)
pub async fn terminate(mut child: Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

pub async fn wait_for_tcp(port: u16) -> Result<()> {
    wait_for_tcp_within(port, Duration::from_secs(5)).await
}

pub async fn wait_for_tcp_within(port: u16, timeout: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("nothing listens on port {port} after {timeout:?}")
}
