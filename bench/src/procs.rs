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
            "redis" | "redis-tls" => {
                let tls = store == "redis-tls";
                let port = free_port()?;
                let mut command = Command::new("redis-server");
                command
                    .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                    .args(["--save", "", "--appendonly", "no"]);
                let mut kar_port = port;
                if tls {
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
            }
            other => bail!("unknown store {other} (embedded, redis or redis-tls)"),
        };
        Ok(StoreProcess { home, env, redis })
    }
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
