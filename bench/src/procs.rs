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
/// `redis-fsync` (`appendonly yes`, `appendfsync always`), `redis-tls` (no
/// persistence, sidecars connected over TLS with a CA of the run's own), `redis-wait`
/// (no persistence, one replica, `-redis_wait_replicas 1`: every transition waits for
/// the replica).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    pub redis: bool,
    pub fsync: bool,
    pub tls: bool,
    pub wait: bool,
}

impl StoreSpec {
    pub fn parse(name: &str) -> Result<StoreSpec> {
        if name == "redis-tls" || name == "redis-wait" {
            return Ok(StoreSpec {
                redis: true,
                fsync: false,
                tls: name == "redis-tls",
                wait: name == "redis-wait",
            });
        }
        let (engine, fsync) = match name.strip_suffix("-fsync") {
            Some(engine) => (engine, true),
            None => (name, false),
        };
        let redis = match engine {
            "embedded" => false,
            "redis" => true,
            other => {
                bail!("unknown store {other} (embedded, embedded-fsync, redis, redis-fsync, redis-tls or redis-wait)")
            }
        };
        Ok(StoreSpec {
            redis,
            fsync,
            tls: false,
            wait: false,
        })
    }

    pub fn name(self) -> &'static str {
        if self.tls {
            return "redis-tls";
        }
        if self.wait {
            return "redis-wait";
        }
        match (self.redis, self.fsync) {
            (false, false) => "embedded",
            (false, true) => "embedded-fsync",
            (true, false) => "redis",
            (true, true) => "redis-fsync",
        }
    }

    /// What a commit survives, for the tables.
    pub fn guarantee(self) -> &'static str {
        if self.tls {
            return "none across a Redis restart (Redis over TLS without persistence)";
        }
        if self.wait {
            return "a failover to the replica (`-redis_wait_replicas 1`), not a restart of both (no persistence)";
        }
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
        } else if self.wait {
            vec!["-redis_wait_replicas".into(), "1".into()]
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
    /// The replica of `redis-wait`.
    pub replica: Option<Child>,
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
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", ""])
                // A replica (redis-wait) gets its first sync at once.
                .args(["--repl-diskless-sync-delay", "0"])
                .args(persistence)
                .arg("--dir")
                .arg(home.path());
            let mut kar_port = port;
            if spec.tls {
                // A CA of the run's own; the sidecars trust it through REDIS_CA.
                make_certificates(home.path()).await?;
                kar_port = free_port()?;
                let file = |name: &str| home.path().join(name).display().to_string();
                command
                    .args(["--tls-port", &kar_port.to_string()])
                    .args(["--tls-cert-file", &file("server.crt")])
                    .args(["--tls-key-file", &file("server.key")])
                    .args(["--tls-ca-cert-file", &file("ca.crt")])
                    .args(["--tls-auth-clients", "no"]);
                let pem = std::fs::read(home.path().join("ca.crt"))?;
                use base64::Engine as _;
                env.push(("REDIS_ENABLE_TLS".into(), "true".into()));
                env.push((
                    "REDIS_CA".into(),
                    base64::engine::general_purpose::STANDARD.encode(pem),
                ));
            }
            let redis = command
                .stdout(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .context("starting redis-server")?;
            wait_for_tcp(port).await?;
            env.push(("REDIS_HOST".into(), "127.0.0.1".into()));
            env.push(("REDIS_PORT".into(), kar_port.to_string()));
            Some(redis)
        } else {
            None
        };
        let replica = match (&redis, spec.wait) {
            (Some(_), true) => Some(start_replica(home.path(), primary_port(&env)?).await?),
            _ => None,
        };
        Ok(StoreProcess {
            home,
            env,
            redis,
            replica,
        })
    }
}

fn primary_port(env: &[(String, String)]) -> Result<u16> {
    env.iter()
        .find(|(k, _)| k == "REDIS_PORT")
        .and_then(|(_, v)| v.parse().ok())
        .context("no REDIS_PORT")
}

/// A replica of the Redis on `primary`, in sync before it returns.
async fn start_replica(dir: &Path, primary: u16) -> Result<Child> {
    let port = free_port()?;
    let replica_dir = dir.join("replica");
    std::fs::create_dir_all(&replica_dir)?;
    let replica = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .args(["--replicaof", "127.0.0.1", &primary.to_string()])
        .arg("--dir")
        .arg(&replica_dir)
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting the replica redis-server")?;
    wait_for_tcp(port).await?;
    // In sync: the primary counts it online.
    for _ in 0..200 {
        let info = Command::new("redis-cli")
            .args(["-p", &primary.to_string(), "INFO", "replication"])
            .output()
            .await
            .context("running redis-cli")?;
        if String::from_utf8_lossy(&info.stdout).contains("state=online") {
            return Ok(replica);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the replica of redis :{primary} did not get in sync within 10 s")
}

/// A CA and a server certificate for 127.0.0.1 it signs (`openssl`), in `dir`.
async fn make_certificates(dir: &Path) -> Result<()> {
    let run = |args: Vec<&'static str>| {
        let dir = dir.to_path_buf();
        async move {
            let status = Command::new("openssl")
                .args(&args)
                .current_dir(dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await
                .context("running openssl")?;
            if !status.success() {
                bail!("openssl {args:?} failed");
            }
            Ok(())
        }
    };
    run(vec![
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=kar bench CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ])
    .await?;
    run(vec![
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ])
    .await?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )?;
    run(vec![
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.crt",
    ])
    .await
}

pub struct Mesh {
    processes: Vec<Child>,
    /// What each of `processes` is, for the CPU figures.
    labels: Vec<&'static str>,
    home: tempfile::TempDir,
    pub client_port: u16,
    /// What a later [`Mesh::start_server`] needs.
    kar: PathBuf,
    store: StoreSpec,
    env: Vec<(String, String)>,
    app_port: u16,
    server: Vec<String>,
}

/// Where a sidecar's log goes: nowhere, or with `KAR_BENCH_LOGS=<dir>` to
/// `<dir>/<label>-<port>.log` (to see why a workload stalled).
fn sidecar_log(label: &str, port: u16) -> Result<Stdio> {
    let Some(dir) = std::env::var_os("KAR_BENCH_LOGS") else {
        return Ok(Stdio::null());
    };
    let path = std::path::Path::new(&dir).join(format!("{}-{port}.log", label.replace(' ', "-")));
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    Ok(Stdio::from(file))
}

impl Mesh {
    /// Sidecars for the in-process `Bench` component listening on `app_port`.
    pub async fn start(kar: &Path, store: &str, app_port: u16) -> Result<Mesh> {
        let server = ["-service", "bench", "-actors", "Bench"].map(String::from);
        Mesh::start_with(kar, StoreSpec::parse(store)?, app_port, &server, &[], true).await
    }

    /// The store and the client sidecar only: nothing hosts `Bench` until
    /// [`Mesh::start_server`] (requests to it are parked meanwhile).
    pub async fn start_without_server(kar: &Path, store: &str, app_port: u16) -> Result<Mesh> {
        let server = ["-service", "bench", "-actors", "Bench"].map(String::from);
        Mesh::start_with(kar, StoreSpec::parse(store)?, app_port, &server, &[], false).await
    }

    /// Sidecars for a component `command` the server sidecar starts (`kar run ... --
    /// command`), with `server_args` (e.g. `-actors Counter`).
    pub async fn start_component(
        kar: &Path,
        store: StoreSpec,
        server_args: &[String],
        command: &[String],
    ) -> Result<Mesh> {
        Mesh::start_with(kar, store, free_port()?, server_args, command, true).await
    }

    async fn start_with(
        kar: &Path,
        store: StoreSpec,
        app_port: u16,
        server_args: &[String],
        command: &[String],
        with_server: bool,
    ) -> Result<Mesh> {
        let StoreProcess {
            home,
            env,
            redis,
            replica,
        } = StoreProcess::start_spec(store).await?;
        let mut processes = Vec::new();
        let mut labels = Vec::new();
        if let Some(redis) = redis {
            processes.push(redis);
            labels.push("redis-server");
        }
        if let Some(replica) = replica {
            processes.push(replica);
            labels.push("redis-server (replica)");
        }
        let mut server = server_args.to_vec();
        if !command.is_empty() {
            server.push("--".into());
            server.extend(command.iter().cloned());
        }
        let mut mesh = Mesh {
            processes,
            labels,
            home,
            client_port: 0,
            kar: kar.to_path_buf(),
            store,
            env,
            app_port,
            server,
        };
        if with_server {
            mesh.start_server().await?;
        }
        mesh.client_port = mesh.spawn_sidecar("client sidecar", Vec::new()).await?;
        // For profilers attached from outside (see bench/profile.sh).
        let pids: Vec<String> = mesh
            .pids()
            .iter()
            .map(|(label, pid)| format!("{label}={pid}"))
            .collect();
        println!("  mesh on the {} store: {}", store.name(), pids.join(" "));
        Ok(mesh)
    }

    /// Starts the sidecar hosting the component (`Bench`, or the `command`); returns
    /// its pid once it listens.
    pub async fn start_server(&mut self) -> Result<u32> {
        let server = self.server.clone();
        self.spawn_sidecar("server sidecar", server).await?;
        self.processes
            .last()
            .and_then(Child::id)
            .context("the server sidecar exited at once")
    }

    /// Spawns one `kar run` with `extra` arguments and waits until it listens; returns
    /// its runtime port.
    async fn spawn_sidecar(&mut self, label: &'static str, extra: Vec<String>) -> Result<u16> {
        let port = free_port()?;
        let args = [
            "run".to_string(),
            "-app".into(),
            "bench".into(),
            "-app_port".into(),
            self.app_port.to_string(),
            "-runtime_port".into(),
            port.to_string(),
        ];
        let child = Command::new(&self.kar)
            .args(args)
            .args(self.store.kar_args())
            .args(extra)
            .envs(self.env.iter().cloned())
            .stdout(sidecar_log(label, port)?)
            .kill_on_drop(true)
            .spawn()
            .context("starting kar")?;
        self.processes.push(child);
        self.labels.push(label);
        // Generous: under a profiler (bench/callgrind.sh) on a loaded host a
        // sidecar takes seconds to start.
        wait_for_tcp_within(port, Duration::from_secs(60)).await?;
        Ok(port)
    }

    /// The store's directory (`KAR_HOME`; the embedded store's files live there).
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The port of the Redis the sidecars use (`None` on the embedded store).
    pub fn redis_port(&self) -> Option<u16> {
        primary_port(&self.env).ok()
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
