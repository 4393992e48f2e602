//! The recovery workload: how long after a kill -9 a request is running again, and
//! what a recovery costs the components that stay up.
//!
//! One application (`recovery`) on one store: replicas `a` and `b` of service
//! `recovery`, a replica of service `steady`, and a client sidecar; each replica is
//! `kar-bench recovery-app` under its own `kar run`. Per trial, after a quiet second:
//! the benchmark calls `recovery/block` (a handler that logs its start and holds the
//! request), reads from the shared log which replica started it, SIGKILLs that
//! replica's `kar run` (its component dies with it), and waits for the other replica to
//! log the retried start; then it releases the retry, checks the caller's reply and
//! restarts the killed replica. Meanwhile `clients` closed-loop clients call
//! `steady/echo` through the client sidecar: their completions in the second before
//! each kill, between the kill and the retry's start, and in the second after the kill
//! give the throughput before, during and right after recovery. Both ends of every latency are wall-clock times taken on this host
//! (the kill by the benchmark, the start by the component).

use crate::client::Client;
use crate::procs::{free_port, terminate, wait_for_tcp, wait_for_tcp_within, StoreProcess};
use crate::recovery_app::{self, unix_micros};
use anyhow::{Context, Result};
use bytes::Bytes;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::process::{Child, Command};

/// Quiet time before each trial: the "before" window, clear of the previous restart.
const SETTLE: Duration = Duration::from_millis(1200);
/// Up to this much more quiet time, varied per trial: otherwise every kill lands at
/// the same phase of the victim's Redis lease renewals (it started a fixed time
/// earlier) and the figures show that one phase instead of a kill at a random time.
/// One second covers the renewal period of any lease up to 3 s (lease / 3).
const SETTLE_JITTER_MS: u64 = 1000;
/// Width of the windows before and after each kill (µs). The killed replica restarts
/// only after the second window, so that its start-up does not count as recovery.
const WINDOW_US: u64 = 1_000_000;
/// How long a request may take to reach its first replica.
const FIRST_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a retry may take to start after the kill: far beyond any lease we run.
const RETRY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time after the last trial for a late duplicate execution to show up in the log.
const LATE_DUPLICATE_WAIT: Duration = Duration::from_secs(1);
/// How long a replica may take to start (join, then launch its component) on a
/// loaded host.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest steady-load call: a hung call counts as a failure.
const STEADY_CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Period of the polls of the components' log.
const POLL: Duration = Duration::from_millis(5);
const APP: &str = "recovery";

pub struct RecoveryFigures {
    pub store: String,
    /// The `-redis_lease` in use (None: embedded store, failure seen through file locks).
    pub lease: Option<String>,
    pub trials: usize,
    /// Kill → retried request's handler running, one per trial that got that far.
    pub retry: Vec<Duration>,
    pub clients: usize,
    /// Steady-load calls/s in the second before the kills (all trials together).
    pub before: f64,
    /// Steady-load calls/s between the kills and the retries' starts (all together).
    pub during: f64,
    /// Steady-load calls/s in the second after the kills (all trials together).
    pub after: f64,
    /// Anything that breaks a guarantee or the run: missing retries, overlapping or
    /// repeated executions, failed calls.
    pub anomalies: Vec<String>,
}

/// One `<trial> <replica> <pid> <unix µs>` line of the components' shared log.
#[derive(Clone, Debug)]
struct Start {
    trial: u64,
    replica: String,
    pid: u32,
    at_us: u64,
}

fn read_starts(log: &Path) -> Vec<Start> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some(Start {
                trial: fields.next()?.parse().ok()?,
                replica: fields.next()?.to_string(),
                pid: fields.next()?.parse().ok()?,
                at_us: fields.next()?.parse().ok()?,
            })
        })
        .collect()
}

/// Polls the log for a start matching `wanted`. The times in the log are the
/// component's own, so the polling period does not enter the figures; a short one only
/// costs the benchmark CPU that the steady load would miss.
async fn wait_for_start(
    log: &Path,
    timeout: Duration,
    wanted: impl Fn(&Start) -> bool,
) -> Option<Start> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(start) = read_starts(log).into_iter().find(&wanted) {
            return Some(start);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL).await;
    }
}

struct Replica {
    name: String,
    child: Child,
    app_port: u16,
}

/// Starts `kar run` processes on one store, each writing its output to a file in
/// the run's directory (kept if anything goes wrong).
struct Launcher<'a> {
    kar: &'a Path,
    bench: PathBuf,
    store_name: &'a str,
    dir: PathBuf,
    env: Vec<(String, String)>,
    lease: Option<&'a str>,
    log: PathBuf,
    launches: usize,
}

impl Launcher<'_> {
    fn command(&mut self, label: &str, runtime_port: u16, app_port: u16) -> Result<Command> {
        self.launches += 1;
        let output = self.dir.join(format!("{label}-{}.out", self.launches));
        let output = std::fs::File::create(output)?;
        let mut command = Command::new(self.kar);
        command
            .args(["run", "-app", APP, "-app_port", &app_port.to_string()])
            .args(["-runtime_port", &runtime_port.to_string()])
            .envs(self.env.iter().cloned())
            .stdout(output.try_clone()?)
            .stderr(output)
            .kill_on_drop(true);
        if let Some(lease) = self.lease {
            command.args(["-redis_lease", lease]);
        }
        Ok(command)
    }

    /// A replica of `service`, ready once its component listens (`kar run` starts
    /// the component only after joining the mesh).
    async fn replica(&mut self, service: &str, name: &str) -> Result<Replica> {
        let (runtime_port, app_port) = (free_port()?, free_port()?);
        let child = self
            .command(name, runtime_port, app_port)?
            .args(["-service", service, "--"])
            .arg(&self.bench)
            .args([recovery_app::COMMAND, "--port", &app_port.to_string()])
            .args(["--replica", name, "--log"])
            .arg(&self.log)
            .spawn()
            .context("starting kar")?;
        wait_for_tcp_within(app_port, START_TIMEOUT)
            .await
            .with_context(|| format!("replica {name} of {service} did not start"))?;
        Ok(Replica {
            name: name.to_string(),
            child,
            app_port,
        })
    }

    /// A sidecar without a component, for the benchmark's calls.
    async fn client(&mut self) -> Result<(Child, u16)> {
        let runtime_port = free_port()?;
        let child = self
            .command("client", runtime_port, free_port()?)?
            .spawn()
            .context("starting kar")?;
        wait_for_tcp(runtime_port).await?;
        Ok((child, runtime_port))
    }
}

/// The trials on one store; `lease` is the `-redis_lease` to pass (Redis only).
pub async fn measure(
    kar: &Path,
    store_name: &str,
    lease: Option<&str>,
    trials: usize,
    clients: usize,
) -> Result<RecoveryFigures> {
    let mut store = StoreProcess::start(store_name).await?;
    let log = store.home.path().join("starts.log");
    let mut launcher = Launcher {
        kar,
        bench: std::env::current_exe().context("locating kar-bench")?,
        store_name,
        dir: store.home.path().to_path_buf(),
        env: store.env.clone(),
        lease,
        log: log.clone(),
        launches: 0,
    };
    let mut replicas = vec![
        launcher.replica(APP, "a").await?,
        launcher.replica(APP, "b").await?,
    ];
    let steady = launcher.replica("steady", "steady").await?;
    let (client_sidecar, client_port) = launcher.client().await?;
    let client = Client::h2c(client_port);
    for _ in 0..100 {
        client
            .post("/kar/v1/service/steady/call/echo".into(), b"1")
            .await
            .context("warming up the steady service")?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..clients)
        .map(|_| tokio::spawn(steady_client(client.clone(), stop.clone())))
        .collect();
    let mut anomalies = Vec::new();
    let mut windows = Vec::new();
    let trial_result = run_trials(
        &mut launcher,
        &mut replicas,
        &client,
        &log,
        trials,
        &mut windows,
        &mut anomalies,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    let mut completions = Vec::new();
    for worker in workers {
        let (done, errors, first_error) = match worker.await {
            Ok(outcome) => outcome,
            Err(e) => (Vec::new(), 1, Some(format!("a load client panicked: {e}"))),
        };
        completions.extend(done);
        if let Some(e) = first_error {
            anomalies.push(format!("steady load: {errors} failed calls, e.g. {e}"));
        }
    }
    completions.sort_unstable();
    if let Err(e) = trial_result {
        anomalies.push(format!("trials stopped: {e:#}"));
    }

    // Every trial must have started exactly twice: on the killed replica, then once
    // on the survivor (a start after that would be a completed request run again).
    tokio::time::sleep(LATE_DUPLICATE_WAIT).await;
    let starts = read_starts(&log);
    for trial in 1..=windows.len() as u64 {
        let of_trial: Vec<&Start> = starts.iter().filter(|s| s.trial == trial).collect();
        if of_trial.len() != 2 {
            anomalies.push(format!(
                "trial {trial} started {} times: {:?}",
                of_trial.len(),
                of_trial
                    .iter()
                    .map(|s| format!("{} (pid {}) at {}", s.replica, s.pid, s.at_us))
                    .collect::<Vec<_>>()
            ));
        }
    }

    let count = |from: u64, to: u64| {
        completions.partition_point(|&t| t < to) - completions.partition_point(|&t| t < from)
    };
    let seconds = |us: u64| us as f64 / 1e6;
    let (mut before_calls, mut during_calls, mut during_us, mut after_calls) = (0, 0, 0, 0);
    for &(killed, retried) in &windows {
        before_calls += count(killed.saturating_sub(WINDOW_US), killed);
        during_calls += count(killed, retried);
        during_us += retried.saturating_sub(killed);
        after_calls += count(killed, killed + WINDOW_US);
    }
    let all_windows = seconds(WINDOW_US * windows.len() as u64).max(1e-9);
    let figures = RecoveryFigures {
        store: store_name.to_string(),
        lease: lease.map(str::to_string),
        trials,
        retry: windows
            .iter()
            .map(|&(killed, retried)| Duration::from_micros(retried.saturating_sub(killed)))
            .collect(),
        clients,
        before: before_calls as f64 / all_windows,
        during: during_calls as f64 / seconds(during_us).max(1e-9),
        after: after_calls as f64 / all_windows,
        anomalies,
    };

    let mut children: Vec<Child> = replicas.into_iter().map(|r| r.child).collect();
    children.push(steady.child);
    children.push(client_sidecar);
    futures::future::join_all(children.into_iter().map(terminate)).await;
    if let Some(redis) = store.redis.take() {
        terminate(redis).await;
    }
    if !figures.anomalies.is_empty() {
        let kept = store.home.keep();
        println!(
            "  recovery on {store_name}: anomalies; logs kept in {}",
            kept.display()
        );
    }
    Ok(figures)
}

/// A pseudo-random duration below [`SETTLE_JITTER_MS`]: the clock's sub-millisecond
/// digits are noise enough here.
fn jitter() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    Duration::from_millis(nanos.wrapping_mul(2_654_435_761) % SETTLE_JITTER_MS)
}

/// One closed-loop client of `steady/echo` until `stop`: completion times (unix µs),
/// failed calls, the first failure.
async fn steady_client(client: Client, stop: Arc<AtomicBool>) -> (Vec<u64>, u64, Option<String>) {
    let (mut done, mut errors, mut first_error) = (Vec::new(), 0, None);
    while !stop.load(Ordering::Relaxed) {
        let call = client.post("/kar/v1/service/steady/call/echo".into(), b"1");
        match tokio::time::timeout(STEADY_CALL_TIMEOUT, call)
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no reply within {STEADY_CALL_TIMEOUT:?}")))
        {
            Ok(()) => done.push(unix_micros()),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    (done, errors, first_error)
}

/// Runs the trials, pushing `(kill µs, retry start µs)` per trial that got that far.
/// A trial whose request is not retried ends the run (the mesh is then not in a state
/// to measure anything else), as an anomaly.
async fn run_trials(
    launcher: &mut Launcher<'_>,
    replicas: &mut [Replica],
    client: &Client,
    log: &Path,
    trials: usize,
    windows: &mut Vec<(u64, u64)>,
    anomalies: &mut Vec<String>,
) -> Result<()> {
    for trial in 1..=trials as u64 {
        tokio::time::sleep(SETTLE + jitter()).await;
        let call = {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .post_bytes(
                        "/kar/v1/service/recovery/call/block".into(),
                        Bytes::from(trial.to_string()),
                    )
                    .await
            })
        };
        let Some(first) = wait_for_start(log, FIRST_START_TIMEOUT, |s| s.trial == trial).await
        else {
            call.abort();
            anomalies.push(format!(
                "trial {trial}: the request did not start within {FIRST_START_TIMEOUT:?}"
            ));
            return Ok(());
        };
        let victim = replicas
            .iter()
            .position(|r| r.name == first.replica)
            .with_context(|| format!("trial {trial} started on unknown replica {first:?}"))?;
        let killed_at = unix_micros();
        replicas[victim].child.start_kill()?;
        replicas[victim].child.wait().await?;
        let retry = wait_for_start(log, RETRY_TIMEOUT, |s| {
            s.trial == trial && s.replica != first.replica
        })
        .await;
        let Some(retry) = retry else {
            call.abort();
            anomalies.push(format!(
                "trial {trial}: killed replica {} at {killed_at} µs; no retry started within {RETRY_TIMEOUT:?}",
                first.replica
            ));
            return Ok(());
        };
        if retry.at_us < killed_at {
            anomalies.push(format!(
                "trial {trial}: the retry on {} started {} µs before the kill of {}",
                retry.replica,
                killed_at - retry.at_us,
                first.replica
            ));
        }
        windows.push((killed_at, retry.at_us));

        let survivor = replicas
            .iter()
            .find(|r| r.name == retry.replica)
            .with_context(|| format!("trial {trial} retried on unknown replica {retry:?}"))?;
        Client::http1(survivor.app_port)
            .post_bytes("/release".into(), Bytes::from(trial.to_string()))
            .await
            .context("releasing the retry")?;
        match tokio::time::timeout(Duration::from_secs(10), call).await {
            Ok(Ok(Ok(reply))) if reply == retry.replica.as_bytes() => {}
            Ok(Ok(Ok(reply))) => anomalies.push(format!(
                "trial {trial}: the caller got {:?}, expected {:?}",
                String::from_utf8_lossy(&reply),
                retry.replica
            )),
            Ok(Ok(Err(e))) => anomalies.push(format!("trial {trial}: the call failed: {e:#}")),
            Ok(Err(e)) => anomalies.push(format!("trial {trial}: the call task: {e}")),
            Err(_) => anomalies.push(format!(
                "trial {trial}: no reply within 10 s after the retry was released"
            )),
        }
        let quiet_until = killed_at + WINDOW_US;
        let now = unix_micros();
        if now < quiet_until {
            tokio::time::sleep(Duration::from_micros(quiet_until - now)).await;
        }
        let name = first.replica.clone();
        replicas[victim] = launcher.replica(APP, &name).await?;
        print!(
            "\r  recovery on {}{}: trial {trial}/{trials}, last {:.0} ms   ",
            launcher.store_name,
            launcher
                .lease
                .map_or(String::new(), |l| format!(" (lease {l})")),
            (retry.at_us.saturating_sub(killed_at)) as f64 / 1000.0
        );
        let _ = std::io::Write::flush(&mut std::io::stdout());
    }
    println!();
    Ok(())
}
