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

/// A store setting of one run: `embedded` (SQLite, `-store_sync normal`: fsync at
/// checkpoints), `embedded-fsync` (`-store_sync full`), `redis` (no persistence),
/// `redis-fsync` (`appendonly yes`, `appendfsync always`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    pub redis: bool,
    pub fsync: bool,
}

impl StoreSpec {
    pub fn parse(name: &str) -> Result<StoreSpec> {
        let (engine, fsync) = match name.strip_suffix("-fsync") {
            Some(engine) => (engine, true),
            None => (name, false),
        };
        let redis = match engine {
            "embedded" => false,
            "redis" => true,
            other => {
                bail!("unknown store {other} (embedded, embedded-fsync, redis or redis-fsync)")
            }
        };
        Ok(StoreSpec { redis, fsync })
    }

    pub fn name(self) -> &'static str {
        match (self.redis, self.fsync) {
            (false, false) => "embedded",
            (false, true) => "embedded-fsync",
            (true, false) => "redis",
            (true, true) => "redis-fsync",
        }
    }

    /// What a commit survives, for the tables.
    pub fn guarantee(self) -> &'static str {
        match (self.redis, self.fsync) {
            (false, false) => "process crash (`-store_sync normal`: SQLite WAL fsynced at checkpoints only)",
            (false, true) => "OS crash, power loss (`-store_sync full`: WAL fsynced before each commit is acknowledged; group commit)",
            (true, false) => "none across a Redis restart (Redis without persistence: `--save '' --appendonly no`)",
            (true, true) => "OS crash, power loss (Redis `appendonly yes`, `appendfsync always`: AOF fsynced before replies)",
        }
    }

    /// Flags of `kar run` for this store (besides the Redis address).
    fn kar_args(self) -> Vec<String> {
        if !self.redis && self.fsync {
            vec!["-store_sync".into(), "full".into()]
        } else {
            Vec::new()
        }
    }
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
        StoreProcess::start_spec(StoreSpec::parse(store)?).await
    }

    pub async fn start_spec(spec: StoreSpec) -> Result<StoreProcess> {
        let home = tempfile::tempdir()?;
        let mut env: Vec<(String, String)> =
            vec![("KAR_HOME".into(), home.path().display().to_string())];
        let redis = if spec.redis {
            let port = free_port()?;
            let persistence: &[&str] = if spec.fsync {
                &["--appendonly", "yes", "--appendfsync", "always"]
            } else {
                &["--appendonly", "no"]
            };
            let redis = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                ])
                .args(persistence)
                .arg("--dir")
                .arg(home.path())
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting redis-server")?;
            wait_for_tcp(port).await?;
            env.push(("REDIS_HOST".into(), "127.0.0.1".into()));
            env.push(("REDIS_PORT".into(), port.to_string()));
            Some(redis)
        } else {
            None
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
    /// Sidecars for the in-process `Bench` component listening on `app_port`.
    pub async fn start(kar: &Path, store: &str, app_port: u16) -> Result<Mesh> {
        let server = ["-service", "bench", "-actors", "Bench"].map(String::from);
        Mesh::start_with(kar, StoreSpec::parse(store)?, app_port, &server, &[]).await
    }

    /// Sidecars for a component `command` the server sidecar starts (`kar run ... --
    /// command`), with `server_args` (e.g. `-actors Counter`).
    pub async fn start_component(
        kar: &Path,
        store: StoreSpec,
        server_args: &[String],
        command: &[String],
    ) -> Result<Mesh> {
        Mesh::start_with(kar, store, free_port()?, server_args, command).await
    }

    async fn start_with(
        kar: &Path,
        store: StoreSpec,
        app_port: u16,
        server_args: &[String],
        command: &[String],
    ) -> Result<Mesh> {
        let StoreProcess { home, env, redis } = StoreProcess::start_spec(store).await?;
        let mut processes = Vec::new();
        let mut labels = Vec::new();
        if let Some(redis) = redis {
            processes.push(redis);
            labels.push("redis-server");
        }
        let server_port = free_port()?;
        let client_port = free_port()?;
        let mut server = server_args.to_vec();
        if !command.is_empty() {
            server.push("--".into());
            server.extend(command.iter().cloned());
        }
        for (port, extra, label) in [
            (server_port, server, "server sidecar"),
            (client_port, Vec::new(), "client sidecar"),
        ] {
            let args = [
                "run".to_string(),
                "-app".into(),
                "bench".into(),
                "-app_port".into(),
                app_port.to_string(),
                "-runtime_port".into(),
                port.to_string(),
            ];
            let child = Command::new(kar)
                .args(args)
                .args(store.kar_args())
                .args(extra)
                .envs(env.iter().cloned())
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting kar")?;
            processes.push(child);
            labels.push(label);
            wait_for_tcp(port).await?;
        }
        let mesh = Mesh {
            processes,
            labels,
            _home: home,
            client_port,
        };
        // For profilers attached from outside (see bench/profile.sh).
        let pids: Vec<String> = mesh
            .pids()
            .iter()
            .map(|(label, pid)| format!("{label}={pid}"))
            .collect();
        println!("  mesh on the {} store: {}", store.name(), pids.join(" "));
        Ok(mesh)
    }

    /// `(what, pid)` of every live process of the mesh.
    pub fn pids(&self) -> Vec<(&'static str, u32)> {
        self.labels
            .iter()
            .zip(&self.processes)
            .filter_map(|(label, child)| child.id().map(|pid| (*label, pid)))
            .collect()
    }

    /// [`Mesh::pids`] and the component the server sidecar started, if any.
    pub fn pids_with_component(&self) -> Vec<(String, u32)> {
        let mut pids: Vec<(String, u32)> = self
            .pids()
            .into_iter()
            .map(|(label, pid)| (label.to_string(), pid))
            .collect();
        let server = pids
            .iter()
            .find(|(label, _)| label == "server sidecar")
            .map(|(_, pid)| *pid);
        if let Some(server) = server {
            for child in crate::procfs::children(server) {
                pids.push(("component".into(), child));
            }
        }
        pids
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
