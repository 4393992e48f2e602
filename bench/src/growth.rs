//! Cost as the work grows (`--growth ACTORS,TELLS,REMINDERS`): three workloads on
//! each store, each at a tenth of its size and at its full size, so the report can
//! say how each figure grows (≈1× flat, ≈10× linear):
//!
//! * **actors**: N `Bench` instances with one ~32-byte state entry each, written
//!   through the state API (served against the store: no activation) by many
//!   concurrent clients; then the store's size, the first call of a sample of them
//!   (cold: never activated anywhere, so placement + activation + call) against a
//!   second call of the same sample (warm), and every entry read back.
//! * **backlog**: N tells (`Pragma: async`) to `Bench.told` enqueued while no sidecar
//!   hosts `Bench` (they are parked durably), then the server sidecar starts and
//!   drains them: calls/s, the server sidecar's memory while draining, and that every
//!   tell ran exactly once.
//! * **reminders**: N periodic (1 s) reminders, scheduled concurrently (all first due
//!   at one instant after the scheduling), then firings/s achieved against demanded
//!   (`deferred::reminders`).

use crate::app::App;
use crate::client::Client;
use crate::procfs;
use crate::procs::Mesh;
use crate::stats::{ms, Figures};
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use hyper::Method;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Requests in flight while creating actors, reading them back and enqueueing tells,
/// spread over [`CONNECTIONS`] h2c connections to the client sidecar.
const IN_FLIGHT: usize = 256;
const CONNECTIONS: usize = 4;
/// Cold and warm calls timed per actors run (sequential, so no queueing in them).
const SAMPLE: usize = 1000;
/// The backlog's tells go round-robin to this many actors.
const BACKLOG_ACTORS: usize = 1000;
/// A drain that makes no progress for this long has stalled.
const STALL: Duration = Duration::from_secs(120);

/// Sizes of the full runs (`--growth`); 0 skips a workload.
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub actors: usize,
    pub tells: usize,
    pub reminders: usize,
}

impl Sizes {
    pub const FULL: Sizes = Sizes {
        actors: 1_000_000,
        tells: 100_000,
        reminders: 200_000,
    };

    /// `ACTORS[,TELLS[,REMINDERS]]`, or `full` (1,000,000, 100,000, 200,000); a size
    /// left out is the full one.
    pub fn parse(text: &str) -> Result<Sizes> {
        if text == "full" {
            return Ok(Sizes::FULL);
        }
        let mut sizes = Sizes::FULL;
        let fields: Vec<&str> = text.split(',').collect();
        if fields.len() > 3 {
            bail!("--growth ACTORS[,TELLS[,REMINDERS]], not {text}");
        }
        for (field, size) in
            fields
                .iter()
                .zip([&mut sizes.actors, &mut sizes.tells, &mut sizes.reminders])
        {
            *size = field
                .parse()
                .with_context(|| format!("--growth: {field} is not a size"))?;
        }
        Ok(sizes)
    }
}

pub struct ActorFigures {
    pub actors: usize,
    pub creation: Duration,
    /// Store bytes (embedded: every file of the store; Redis: `used_memory`) before
    /// and after creation; of which WAL (embedded only).
    pub store_before: Option<u64>,
    pub store_after: Option<u64>,
    pub wal_after: Option<u64>,
    pub cold: Figures,
    pub warm: Figures,
    pub readback: Duration,
    /// Server sidecar resident memory (kB) after the sample was activated.
    pub server_rss: Option<u64>,
}

pub struct BacklogFigures {
    pub tells: usize,
    pub enqueue: Duration,
    /// From the server sidecar's start to the last tell executed.
    pub drain: Duration,
    /// Server sidecar: resident kB when it listened, peak (VmHWM), and at the end.
    pub rss_start: Option<u64>,
    pub rss_peak: Option<u64>,
    pub rss_end: Option<u64>,
    /// `(seconds since the start, resident kB, tells executed)` every 250 ms.
    pub samples: Vec<(f64, Option<u64>, u64)>,
    pub missing: u64,
    pub duplicates: u64,
}

pub struct ReminderGrowth {
    pub reminders: usize,
    pub scheduling: Duration,
    pub demanded: f64,
    pub achieved: f64,
    /// `(seconds since the scheduling started, firings in the second before)`.
    pub per_second: Vec<(f64, u64)>,
}

/// One store's figures, each workload at a tenth and at the full size.
pub struct StoreGrowth {
    pub store: String,
    pub actors: Vec<ActorFigures>,
    pub backlog: Vec<BacklogFigures>,
    pub reminders: Vec<ReminderGrowth>,
    /// Workloads that failed (what and why); the larger sizes of the same workload are
    /// skipped, the other workloads still run.
    pub failures: Vec<String>,
}

/// A tenth of the size, then the size (a size under 10 runs once).
fn steps(size: usize) -> Vec<usize> {
    match size {
        0 => Vec::new(),
        1..=9 => vec![size],
        _ => vec![size / 10, size],
    }
}

pub async fn measure(kar: &Path, store: &str, app: &App, sizes: Sizes) -> Result<StoreGrowth> {
    let mut growth = StoreGrowth {
        store: store.to_string(),
        actors: Vec::new(),
        backlog: Vec::new(),
        reminders: Vec::new(),
        failures: Vec::new(),
    };
    for n in steps(sizes.actors) {
        match actors(kar, store, app.port, n).await {
            Ok(figures) => growth.actors.push(figures),
            Err(e) => {
                growth.failed(format!("{n} actors"), e);
                break;
            }
        }
    }
    for n in steps(sizes.tells) {
        match backlog(kar, store, app, n).await {
            Ok(figures) => growth.backlog.push(figures),
            Err(e) => {
                growth.failed(format!("a backlog of {n} tells"), e);
                break;
            }
        }
    }
    for n in steps(sizes.reminders) {
        match reminders(kar, store, app, n).await {
            Ok(figures) => growth.reminders.push(figures),
            Err(e) => {
                growth.failed(format!("{n} reminders"), e);
                break;
            }
        }
    }
    Ok(growth)
}

/// When the reminders of a run first fire, after the scheduling starts: late enough
/// that scheduling at 5,000/s or more is timed alone (firings competing with the
/// scheduling would time both at once).
fn first_firing(reminders: usize) -> Duration {
    Duration::from_secs(5) + Duration::from_millis(reminders as u64 / 5)
}

impl StoreGrowth {
    fn failed(&mut self, what: String, error: anyhow::Error) {
        println!("  growth {}: {what} failed: {error:#}", self.store);
        self.failures.push(format!("{what}: {error:#}"));
    }

    /// Every workload completed.
    pub fn complete(&self) -> bool {
        self.failures.is_empty()
    }
}

async fn reminders(kar: &Path, store: &str, app: &App, n: usize) -> Result<ReminderGrowth> {
    let mesh = Mesh::start(kar, store, app.port).await?;
    let client = Client::h2c(mesh.client_port);
    // Firings per second over the whole run, to see the shape behind the average.
    let ticks = app.ticks.clone();
    let start = Instant::now();
    let samples = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = samples.clone();
    let sampler = tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_secs(1));
        let mut before = ticks.load(Ordering::Relaxed);
        interval.tick().await;
        loop {
            interval.tick().await;
            let now = ticks.load(Ordering::Relaxed);
            if let Ok(mut samples) = sink.lock() {
                samples.push((start.elapsed().as_secs_f64(), now - before));
            }
            before = now;
        }
    });
    let figures = crate::deferred::reminders(
        &client,
        app,
        &mesh,
        n,
        crate::deferred::FirstFiring::AllAt(first_firing(n)),
        reminder_warmup(n),
        Duration::from_secs(10),
    )
    .await;
    sampler.abort();
    let per_second = samples.lock().map(|s| s.clone()).unwrap_or_default();
    mesh.stop().await;
    let figures = figures?;
    println!(
        "  growth {store}: {n} reminders scheduled in {:.1} s, {:.0} firings/s of {:.0} demanded",
        figures.scheduling.as_secs_f64(),
        figures.achieved,
        figures.demanded
    );
    Ok(ReminderGrowth {
        reminders: n,
        scheduling: figures.scheduling,
        demanded: figures.demanded,
        achieved: figures.achieved,
        per_second,
    })
}

/// The settling time after the first firings are due: each reminder's first firing
/// also activates its actor (placement + activation), so the count waits until
/// every actor should have fired once at 4,000 firings/s or more.
fn reminder_warmup(reminders: usize) -> Duration {
    Duration::from_secs(3) + Duration::from_millis(reminders as u64 / 4)
}

fn clients(port: u16) -> Vec<Client> {
    (0..CONNECTIONS).map(|_| Client::h2c(port)).collect()
}

/// The ~32-byte state value of actor `i` (a JSON string).
fn value(i: usize) -> String {
    format!("\"{i:030}\"")
}

async fn actors(kar: &Path, store: &str, app_port: u16, n: usize) -> Result<ActorFigures> {
    let mesh = Mesh::start(kar, store, app_port).await?;
    let result = actors_on(&mesh, n).await;
    mesh.stop().await;
    result
}

async fn actors_on(mesh: &Mesh, n: usize) -> Result<ActorFigures> {
    let clients = clients(mesh.client_port);
    let store_before = store_bytes(mesh).await;
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let client = &clients[i % CONNECTIONS];
            async move {
                client
                    .send(
                        Method::PUT,
                        format!("/kar/v1/actor/Bench/g{i}/state/s"),
                        Bytes::from(value(i)),
                    )
                    .await
                    .map(drop)
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<()>()
        .await
        .context("creating actors")?;
    let creation = start.elapsed();
    let store_after = store_bytes(mesh).await;
    let wal_after = wal_bytes(mesh);
    println!(
        "  growth: {n} actors created in {:.1} s ({:.0}/s), store {} → {} bytes",
        creation.as_secs_f64(),
        n as f64 / creation.as_secs_f64(),
        store_before.map_or("?".into(), |b| b.to_string()),
        store_after.map_or("?".into(), |b| b.to_string()),
    );

    // The sample, spread over the ids: first calls (cold), then a second call of each
    // (warm), one at a time.
    let sample: Vec<usize> = (0..SAMPLE.min(n)).map(|k| k * n / SAMPLE.min(n)).collect();
    let client = &clients[0];
    let timed = |ids: &[usize]| {
        let ids = ids.to_vec();
        async move {
            let mut samples = Vec::with_capacity(ids.len());
            for i in ids {
                let start = Instant::now();
                client
                    .post(format!("/kar/v1/actor/Bench/g{i}/call/echo"), b"[1]")
                    .await?;
                samples.push(start.elapsed());
            }
            Ok::<_, anyhow::Error>(Figures::from_samples(samples))
        }
    };
    let cold = timed(&sample).await.context("first calls")?;
    let warm = timed(&sample).await.context("second calls")?;
    let server_rss = server_pid(mesh).and_then(|pid| procfs::status_kb(pid, "VmRSS"));

    // Every actor's state, read back.
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let client = &clients[i % CONNECTIONS];
            async move {
                let body = client
                    .send(
                        Method::GET,
                        format!("/kar/v1/actor/Bench/g{i}/state/s"),
                        Bytes::new(),
                    )
                    .await?;
                if body != value(i).as_bytes() {
                    bail!(
                        "actor g{i}: state {:?}, not {}",
                        String::from_utf8_lossy(&body),
                        value(i)
                    );
                }
                Ok(())
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<()>()
        .await
        .context("reading the actors back")?;
    let readback = start.elapsed();
    println!(
        "  growth: first call p50 {:.3} ms p99 {:.3} ms, second call p50 {:.3} ms p99 {:.3} ms; read back in {:.1} s",
        ms(cold.p50),
        ms(cold.p99),
        ms(warm.p50),
        ms(warm.p99),
        readback.as_secs_f64()
    );
    Ok(ActorFigures {
        actors: n,
        creation,
        store_before,
        store_after,
        wal_after,
        cold,
        warm,
        readback,
        server_rss,
    })
}

fn server_pid(mesh: &Mesh) -> Option<u32> {
    mesh.pids()
        .into_iter()
        .find(|(label, _)| *label == "server sidecar")
        .map(|(_, pid)| pid)
}

/// Embedded: the bytes of every file under the store's directory; Redis:
/// `used_memory`.
async fn store_bytes(mesh: &Mesh) -> Option<u64> {
    match mesh.redis_port() {
        Some(port) => {
            let out = tokio::process::Command::new("redis-cli")
                .args(["-p", &port.to_string(), "INFO", "memory"])
                .output()
                .await
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|l| l.strip_prefix("used_memory:"))
                .and_then(|v| v.trim().parse().ok())
        }
        None => Some(files(mesh.home()).iter().map(|(_, len)| len).sum()),
    }
}

/// The embedded store's write-ahead logs (`*-wal`), in bytes.
fn wal_bytes(mesh: &Mesh) -> Option<u64> {
    if mesh.redis_port().is_some() {
        return None;
    }
    Some(
        files(mesh.home())
            .iter()
            .filter(|(path, _)| path.to_string_lossy().ends_with("-wal"))
            .map(|(_, len)| len)
            .sum(),
    )
}

/// Every file under `dir`, with its length.
fn files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        match entry.metadata() {
            Ok(meta) if meta.is_dir() => found.extend(files(&path)),
            Ok(meta) => found.push((path, meta.len())),
            Err(_) => {}
        }
    }
    found
}

async fn backlog(kar: &Path, store: &str, app: &App, n: usize) -> Result<BacklogFigures> {
    let mut mesh = Mesh::start_without_server(kar, store, app.port).await?;
    let result = backlog_on(&mut mesh, app, n).await;
    mesh.stop().await;
    result
}

async fn backlog_on(mesh: &mut Mesh, app: &App, n: usize) -> Result<BacklogFigures> {
    let clients = clients(mesh.client_port);
    app.told.clear();
    let start = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let client = &clients[i % CONNECTIONS];
            async move {
                client
                    .tell(
                        format!("/kar/v1/actor/Bench/t{}/call/told", i % BACKLOG_ACTORS),
                        Bytes::from(format!("[{i}]")),
                    )
                    .await
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<()>()
        .await
        .context("enqueueing tells")?;
    let enqueue = start.elapsed();
    let early = app.told.total.load(Ordering::Relaxed);
    if early > 0 {
        bail!("{early} tells ran before any sidecar hosted Bench");
    }

    let start = Instant::now();
    let pid = mesh.start_server().await?;
    let rss_start = procfs::status_kb(pid, "VmRSS");
    let mut samples = Vec::new();
    let mut last_progress = (Instant::now(), 0u64);
    let mut interval = tokio::time::interval(Duration::from_millis(250));
    loop {
        interval.tick().await;
        let done = app.told.total.load(Ordering::Relaxed);
        let rss = procfs::status_kb(pid, "VmRSS");
        samples.push((start.elapsed().as_secs_f64(), rss, done));
        if done >= n as u64 {
            break;
        }
        // An exited (zombie) process has no VmRSS.
        if rss.is_none() {
            bail!(
                "the server sidecar exited after {done} of {n} tells, {:.1} s after its start (KAR_BENCH_LOGS=<dir> keeps its log)",
                start.elapsed().as_secs_f64()
            );
        }
        if done > last_progress.1 {
            last_progress = (Instant::now(), done);
        } else if last_progress.0.elapsed() > STALL {
            bail!("the drain stalled at {done} of {n} tells");
        }
    }
    let drain = start.elapsed();
    let rss_peak = procfs::status_kb(pid, "VmHWM");
    let rss_end = procfs::status_kb(pid, "VmRSS");
    let (missing, duplicates) = app.told.missing_and_duplicates(n as u64);
    println!(
        "  growth: {n} tells enqueued in {:.1} s, drained in {:.1} s ({:.0}/s), server sidecar peak {} kB; {missing} missing, {duplicates} duplicates",
        enqueue.as_secs_f64(),
        drain.as_secs_f64(),
        n as f64 / drain.as_secs_f64(),
        rss_peak.map_or("?".into(), |kb| kb.to_string()),
    );
    Ok(BacklogFigures {
        tells: n,
        enqueue,
        drain,
        rss_start,
        rss_peak,
        rss_end,
        samples,
        missing,
        duplicates,
    })
}

/// `full / tenth` of a figure, for the growth column.
fn ratio(tenth: f64, full: f64) -> String {
    if tenth > 0.0 && full.is_finite() {
        format!("{:.1}×", full / tenth)
    } else {
        "–".into()
    }
}

fn mib(bytes: Option<u64>) -> String {
    bytes.map_or("?".into(), |b| format!("{:.1}", b as f64 / 1048576.0))
}

/// A table row per figure: the figure at each size, and full / tenth.
fn row(out: &mut String, name: &str, values: &[f64], text: impl Fn(f64) -> String) {
    let cells: Vec<String> = values.iter().map(|v| text(*v)).collect();
    let growth = match values {
        [tenth, full] => ratio(*tenth, *full),
        _ => "–".into(),
    };
    let _ = writeln!(out, "| {name} | {} | {growth} |", cells.join(" | "));
}

fn header(out: &mut String, what: &str, sizes: &[usize]) {
    let cells: Vec<String> = sizes.iter().map(|n| format!("{n} {what}")).collect();
    let _ = writeln!(
        out,
        "| figure | {} | growth (full / tenth) |",
        cells.join(" | ")
    );
    let _ = writeln!(out, "|---|{}---:|", "---:|".repeat(sizes.len()));
}

pub fn markdown(stores: &[StoreGrowth]) -> String {
    let mut out = String::new();
    if stores
        .iter()
        .all(|s| s.actors.is_empty() && s.backlog.is_empty() && s.reminders.is_empty())
    {
        return out;
    }
    let _ = writeln!(
        out,
        "\nCost as the work grows: each workload at a tenth of its size and at its full size; \
         the growth column is full / tenth for a 10× size (≈1× flat, ≈10× linear). Actors: \
         one ~32-byte state entry each, written through the state API ({IN_FLIGHT} requests \
         in flight over {CONNECTIONS} h2c connections; the state API does not activate); \
         *first call* is the first call of {SAMPLE} of them, spread over the ids, one at a \
         time: never activated anywhere, so it pays placement + activation (`GET` to the \
         component, which loads no state) + the call; *second call* is the same calls \
         again, on the now active instances. Store size: embedded = every file of the \
         SQLite store (database + WAL), Redis = `used_memory`. Backlog: tells to \
         `Bench.told` round-robin over {BACKLOG_ACTORS} actors, enqueued while no sidecar \
         hosts `Bench` (parked), drained once the server sidecar starts; calls/s = tells / \
         (server start → last tell executed). Reminders: period 1 s on distinct actors, \
         scheduled 64 at a time over one connection, all first due at one instant after \
         the scheduling (5 s + 1 s per 5,000 reminders after its start, so that firings do \
         not compete with it if it runs at 5,000/s or more); firings counted by the \
         component over 10 s from 3 s + 1 s per 4,000 reminders after that instant (each \
         actor's first firing also activates it; the wait lets them all fire once at \
         4,000/s; with more reminders due than the mesh fires per second, achieved is its \
         firing capacity)."
    );
    for s in stores {
        let store = &s.store;
        for failure in &s.failures {
            let _ = writeln!(out, "\n**Failed on kar {store}**: {failure}");
        }
        if !s.actors.is_empty() {
            let _ = writeln!(out, "\nActors on kar {store}:\n");
            header(
                &mut out,
                "actors",
                &s.actors.iter().map(|a| a.actors).collect::<Vec<_>>(),
            );
            let f = |get: &dyn Fn(&ActorFigures) -> f64| -> Vec<f64> {
                s.actors.iter().map(get).collect()
            };
            row(
                &mut out,
                "creation (s)",
                &f(&|a| a.creation.as_secs_f64()),
                |v| format!("{v:.1}"),
            );
            row(
                &mut out,
                "creation (actors/s)",
                &f(&|a| a.actors as f64 / a.creation.as_secs_f64()),
                |v| format!("{v:.0}"),
            );
            let delta = |a: &ActorFigures| match (a.store_before, a.store_after) {
                (Some(b), Some(after)) => after.saturating_sub(b) as f64,
                _ => f64::NAN,
            };
            row(
                &mut out,
                "store size after creation (MiB)",
                &f(&|a| a.store_after.map_or(f64::NAN, |b| b as f64)),
                |v| mib((!v.is_nan()).then_some(v as u64)),
            );
            if s.actors.iter().any(|a| a.wal_after.is_some()) {
                row(
                    &mut out,
                    "of which WAL (MiB)",
                    &f(&|a| a.wal_after.map_or(f64::NAN, |b| b as f64)),
                    |v| mib((!v.is_nan()).then_some(v as u64)),
                );
            }
            row(
                &mut out,
                "store bytes per actor (growth over the empty store)",
                &f(&|a| delta(a) / a.actors as f64),
                |v| format!("{v:.0}"),
            );
            row(
                &mut out,
                "first call p50 (ms)",
                &f(&|a| ms(a.cold.p50)),
                |v| format!("{v:.3}"),
            );
            row(
                &mut out,
                "first call p99 (ms)",
                &f(&|a| ms(a.cold.p99)),
                |v| format!("{v:.3}"),
            );
            row(
                &mut out,
                "second call p50 (ms)",
                &f(&|a| ms(a.warm.p50)),
                |v| format!("{v:.3}"),
            );
            row(
                &mut out,
                "second call p99 (ms)",
                &f(&|a| ms(a.warm.p99)),
                |v| format!("{v:.3}"),
            );
            row(
                &mut out,
                "read back every state entry (entries/s)",
                &f(&|a| a.actors as f64 / a.readback.as_secs_f64()),
                |v| format!("{v:.0}"),
            );
            row(
                &mut out,
                "server sidecar RSS after the sample (MiB)",
                &f(&|a| a.server_rss.map_or(f64::NAN, |kb| kb as f64)),
                |v| mib((!v.is_nan()).then_some(v as u64 * 1024)),
            );
        }
        if !s.backlog.is_empty() {
            let _ = writeln!(out, "\nBacklog of tells on kar {store}:\n");
            header(
                &mut out,
                "tells",
                &s.backlog.iter().map(|b| b.tells).collect::<Vec<_>>(),
            );
            let f = |get: &dyn Fn(&BacklogFigures) -> f64| -> Vec<f64> {
                s.backlog.iter().map(get).collect()
            };
            let kb = |v: Option<u64>| v.map_or(f64::NAN, |kb| kb as f64);
            let kb_text = |v: f64| mib((!v.is_nan()).then_some(v as u64 * 1024));
            row(
                &mut out,
                "enqueue (tells/s accepted)",
                &f(&|b| b.tells as f64 / b.enqueue.as_secs_f64()),
                |v| format!("{v:.0}"),
            );
            row(&mut out, "drain (s)", &f(&|b| b.drain.as_secs_f64()), |v| {
                format!("{v:.1}")
            });
            row(
                &mut out,
                "drain (calls/s)",
                &f(&|b| b.tells as f64 / b.drain.as_secs_f64()),
                |v| format!("{v:.0}"),
            );
            row(
                &mut out,
                "server sidecar RSS at start (MiB)",
                &f(&|b| kb(b.rss_start)),
                kb_text,
            );
            row(
                &mut out,
                "server sidecar RSS peak, VmHWM (MiB)",
                &f(&|b| kb(b.rss_peak)),
                kb_text,
            );
            row(
                &mut out,
                "server sidecar RSS drained (MiB)",
                &f(&|b| kb(b.rss_end)),
                kb_text,
            );
            row(
                &mut out,
                "tells never executed",
                &f(&|b| b.missing as f64),
                |v| format!("{v:.0}"),
            );
            row(
                &mut out,
                "tells executed twice",
                &f(&|b| b.duplicates as f64),
                |v| format!("{v:.0}"),
            );
            for b in &s.backlog {
                let _ = writeln!(
                    out,
                    "\nServer sidecar while draining {} tells (s since its start: RSS MiB, tells done): {}",
                    b.tells,
                    thin(&b.samples, 12)
                        .iter()
                        .map(|(t, rss, done)| format!(
                            "{t:.1}: {}, {done}",
                            mib(rss.map(|kb| kb * 1024))
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")
                );
            }
        }
        if !s.reminders.is_empty() {
            let _ = writeln!(out, "\nPeriodic reminders on kar {store}:\n");
            header(
                &mut out,
                "reminders",
                &s.reminders.iter().map(|r| r.reminders).collect::<Vec<_>>(),
            );
            let f = |get: &dyn Fn(&ReminderGrowth) -> f64| -> Vec<f64> {
                s.reminders.iter().map(get).collect()
            };
            row(
                &mut out,
                "scheduling (s)",
                &f(&|r| r.scheduling.as_secs_f64()),
                |v| format!("{v:.1}"),
            );
            row(
                &mut out,
                "scheduling (reminders/s)",
                &f(&|r| r.reminders as f64 / r.scheduling.as_secs_f64()),
                |v| format!("{v:.0}"),
            );
            row(
                &mut out,
                "all first due at (s after the scheduling started)",
                &f(&|r| first_firing(r.reminders).as_secs_f64()),
                |v| format!("{v:.0}"),
            );
            row(
                &mut out,
                "firings counted from (s after that instant)",
                &f(&|r| reminder_warmup(r.reminders).as_secs_f64()),
                |v| format!("{v:.0}"),
            );
            row(&mut out, "firings/s demanded", &f(&|r| r.demanded), |v| {
                format!("{v:.0}")
            });
            row(&mut out, "firings/s achieved", &f(&|r| r.achieved), |v| {
                format!("{v:.0}")
            });
            for r in &s.reminders {
                let _ = writeln!(
                    out,
                    "\nFirings per second, {} reminders (s since the scheduling started: firings in the second before): {}",
                    r.reminders,
                    thin(&r.per_second, 30)
                        .iter()
                        .map(|(t, n)| format!("{t:.0}: {n}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                );
            }
        }
    }
    out
}

/// At most `count` of `samples`, evenly spaced, always with the last.
fn thin<T: Copy>(samples: &[T], count: usize) -> Vec<T> {
    if samples.len() <= count {
        return samples.to_vec();
    }
    let mut picked: Vec<T> = (0..count - 1)
        .map(|k| samples[k * samples.len() / (count - 1)])
        .collect();
    if let Some(last) = samples.last() {
        picked.push(*last);
    }
    picked
}
