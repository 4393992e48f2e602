//! `kar-bench`: keyed calls through two real `kar` sidecars with a minimal Rust
//! component (actor type `Bench`), on each store, side by side with a direct HTTP call
//! to the same component and with Restate (a `Counter` virtual object), all measured in
//! the same run. Three workloads per system: sequential latency on one key, throughput
//! of 64 clients on distinct keys, throughput of 64 clients on one hot key.
//!
//! Usage: `kar-bench [--stores embedded,redis,redis-tls,redis-wait] [--restate bench/restate] [--calls N]
//! [--seconds S] [--concurrency C] [--reminders N] [--events N] [--out bench/results]`
//! — `bench/run.sh` does it all. With `--reminders N` (default 0: off) each store also
//! sustains N periodic reminders (period 1 s) and reports firings/s; with `--events N`
//! (default 0: off) it reports publish-to-delivery latency over N sequential events;
//! with `--event-rate S` (default 0: off), sustained event throughput with 1 and 8
//! subscribers over S s of publishing (`event_rate.rs`).
//! With `--recovery N` (default 0: off) it runs N kill -9 trials per store (on Redis,
//! per lease of `--recovery-leases`, default `3s,1s`) with `--recovery-clients C`
//! (default 8) steady clients: see `recovery.rs`; `--recovery-only` skips the rest.
//! `kar-bench recovery-app ...` is the component of that workload (`recovery_app.rs`).
//! Each store also gets service calls with and without an `Idempotency-Key`, side by
//! side (`keyed.rs`).
//! With `--growth ACTORS[,TELLS[,REMINDERS]]` (or `--growth full`: 1,000,000, 100,000,
//! 200,000; default off) each store also runs the cost-as-the-work-grows workloads at
//! a tenth of each size and at the size (`growth.rs`); `--growth-only` skips the rest.
//! After the direct baseline, the floor of a durable call is measured primitive by
//! primitive (`floor.rs`; `kar-bench floor-echo` is its echo process).

mod app;
mod client;
mod counters;
mod deferred;
mod event_rate;
mod floor;
mod growth;
mod keyed;
mod procfs;
mod procs;
mod recovery;
mod recovery_app;
mod restate;
mod stateful;
mod stats;

use anyhow::{bail, Context, Result};
use client::Client;
use stats::{Figures, Measured, Report};
use std::path::PathBuf;
use std::time::Duration;

const USAGE: &str = "\
kar-bench: kar's sidecars against a direct call and Restate, in one run (bench/run.sh runs it all)

Usage: kar-bench [OPTION VALUE]...
  --stores LIST            stores to measure: embedded,redis,redis-tls,redis-wait (default embedded,redis)
  --calls N                sequential calls on one key per system, after warm-up (default 2000)
  --seconds S              seconds of each closed-loop throughput figure (default 5)
  --concurrency C          clients of the throughput figures (default 64)
  --restate DIR            measure Restate too (its Counter objects in DIR, e.g. bench/restate)
  --stateful LIST          stateful counter rows: rust,node (default) or none
  --stateful-stores LIST   stores of those rows (default embedded,embedded-fsync,redis,redis-fsync)
  --stateful-clients N     clients of the stateful throughput figure (default 32)
  --scaling LIST           client counts of the scaling chart, e.g. 1,4,16,64,256
  --scaling-seconds S      seconds per scaling point (default 2)
  --reminders N            N periodic (1 s) reminders per store: firings/s (default 0: off)
  --events N               publish-to-delivery latency over N sequential events (0: off)
  --event-rate S           sustained event throughput, 1 and 8 subscribers, S s (0: off)
  --event-backlog N        most deliveries outstanding while publishing (default 2000)
  --recovery N             N kill -9 trials per store (0: off); --recovery-clients C,
                           --recovery-leases 3s,1s, --recovery-only
  --growth A,T,R | full    growth workloads (actors, queued tells, reminders); --growth-only
  --kar PATH               the kar binary (default: the kar beside kar-bench)
  --kar-js DIR             the npm kar-sdk of the Node rows
  --out DIR                write the results file and chart there
  --help                   this text
";

struct Options {
    stores: Vec<String>,
    restate: Option<PathBuf>,
    calls: usize,
    seconds: u64,
    concurrency: usize,
    reminders: usize,
    events: usize,
    event_rate: u64,
    event_backlog: u64,
    recovery: usize,
    recovery_clients: usize,
    recovery_leases: Vec<String>,
    recovery_only: bool,
    growth: Option<growth::Sizes>,
    growth_only: bool,
    stateful: Vec<restate::Sdk>,
    stateful_stores: Vec<procs::StoreSpec>,
    stateful_clients: usize,
    kar_js: Option<PathBuf>,
    scaling: Vec<usize>,
    scaling_seconds: u64,
    kar: PathBuf,
    out: Option<PathBuf>,
}

/// `a,b,,c` → `["a", "b", "c"]`.
fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_options() -> Result<Options> {
    let mut options = Options {
        stores: vec!["embedded".into(), "redis".into()],
        restate: None,
        calls: 2000,
        seconds: 5,
        concurrency: 64,
        reminders: 0,
        events: 0,
        event_rate: 0,
        event_backlog: event_rate::BACKLOG,
        recovery: 0,
        recovery_clients: 8,
        recovery_leases: vec!["3s".into(), "1s".into()],
        recovery_only: false,
        growth: None,
        growth_only: false,
        stateful: vec![restate::Sdk::Rust, restate::Sdk::Node],
        stateful_stores: ["embedded", "embedded-fsync", "redis", "redis-fsync"]
            .into_iter()
            .map(procs::StoreSpec::parse)
            .collect::<Result<_>>()?,
        stateful_clients: 32,
        kar_js: None,
        scaling: Vec::new(),
        scaling_seconds: 2,
        kar: procs::default_kar_binary(),
        out: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--stores" => options.stores = comma_list(&value()?),
            "--restate" => options.restate = Some(value()?.into()),
            "--calls" => options.calls = value()?.parse()?,
            "--seconds" => options.seconds = value()?.parse()?,
            "--concurrency" => options.concurrency = value()?.parse()?,
            "--reminders" => options.reminders = value()?.parse()?,
            "--events" => options.events = value()?.parse()?,
            "--event-rate" => options.event_rate = value()?.parse()?,
            "--event-backlog" => options.event_backlog = value()?.parse()?,
            "--recovery" => options.recovery = value()?.parse()?,
            "--recovery-clients" => options.recovery_clients = value()?.parse()?,
            "--recovery-leases" => options.recovery_leases = comma_list(&value()?),
            "--recovery-only" => options.recovery_only = true,
            "--growth" => options.growth = Some(growth::Sizes::parse(&value()?)?),
            "--growth-only" => options.growth_only = true,
            "--stateful" => {
                options.stateful = comma_list(&value()?)
                    .iter()
                    .filter(|l| l.as_str() != "none")
                    .map(|l| match l.as_str() {
                        "rust" => Ok(restate::Sdk::Rust),
                        "node" => Ok(restate::Sdk::Node),
                        other => bail!("unknown language {other} (rust, node or none)"),
                    })
                    .collect::<Result<_>>()?
            }
            "--stateful-stores" => {
                options.stateful_stores = comma_list(&value()?)
                    .iter()
                    .map(|s| procs::StoreSpec::parse(s))
                    .collect::<Result<_>>()?
            }
            "--stateful-clients" => options.stateful_clients = value()?.parse()?,
            "--kar-js" => options.kar_js = Some(value()?.into()),
            "--scaling" => {
                options.scaling = comma_list(&value()?)
                    .iter()
                    .map(|n| n.parse::<usize>().with_context(|| format!("--scaling {n}")))
                    .collect::<Result<_>>()?
            }
            "--scaling-seconds" => options.scaling_seconds = value()?.parse()?,
            "--kar" => options.kar = value()?.into(),
            "--out" => options.out = Some(value()?.into()),
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown option {other} (kar-bench --help lists them)"),
        }
    }
    if !options.kar.exists() {
        bail!(
            "kar binary not found at {} (build it with `cargo build --release -p kar`)",
            options.kar.display()
        );
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(recovery_app::COMMAND) {
        return recovery_app::serve(&args[1..]).await;
    }
    match args.first().map(String::as_str) {
        Some(counters::KAR_COMMAND) => return counters::serve_kar().await,
        Some(counters::RESTATE_COMMAND) => return counters::serve_restate(&args[1..]).await,
        Some(floor::ECHO_COMMAND) => return floor::serve_echo(),
        _ => {}
    }
    let options = parse_options()?;
    // On SIGINT/SIGTERM the benchmark future is dropped, and with it every child
    // process (they are all `kill_on_drop`).
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = run(&options) => result,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = terminate.recv() => bail!("terminated"),
    }
}

async fn run(options: &Options) -> Result<()> {
    let mut app = app::start().await?;
    println!(
        "kar benchmark: {} sequential calls, {} s at {} concurrent clients, app on 127.0.0.1:{}",
        options.calls, options.seconds, options.concurrency, app.port
    );
    let mut report = Report::new(options.concurrency);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    // The host is shared: the load at the start says how quiet it was.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    report.setting = if options.growth_only {
        format!(
            "{}\n\nAll on one host ({cores} cores, shared with whatever else runs; load average {load} at the start): \
             kar with 2 sidecars (client, server) + a minimal Rust component, actor `Bench`, h2c clients.",
            machine()
        )
    } else {
        format!(
        "{}\n\nAll on one host ({cores} cores, shared with whatever else runs; load average {load} at the start): {} sequential calls on one \
         key after 200 warm-up calls; {} s of {} closed-loop clients per throughput figure. \
         kar: 2 sidecars (client, server) + a minimal Rust component, actor `Bench`, \
         h2c client; direct: HTTP/1.1 to the component's actor route; Restate: HTTP/1.1 to \
         its ingress, `Counter/add` on Node 22.",
        machine(),
        options.calls,
        options.seconds,
        options.concurrency
    )
    };
    if !options.recovery_only && !options.growth_only {
        call_workloads(options, &mut app, &mut report).await?;
        if !options.stateful.is_empty() {
            let plan = stateful::Plan {
                languages: options.stateful.clone(),
                stores: options.stateful_stores.clone(),
                kar: options.kar.clone(),
                restate: options.restate.clone(),
                kar_js: options.kar_js.clone(),
                calls: options.calls,
                seconds: options.seconds,
                clients: options.stateful_clients,
                scaling: options.scaling.clone(),
                scaling_seconds: options.scaling_seconds,
            };
            let direct = Client::http1(app.port);
            let direct_call = |key: String| {
                let direct = &direct;
                async move {
                    direct
                        .post(format!("/kar/impl/v1/actor/Bench/{key}/echo"), b"[1]")
                        .await
                }
            };
            for row in stateful::run(&plan, direct_call).await? {
                report.push_stateful(row);
            }
        }
    }
    // Stores where a growth workload failed (reported in the tables).
    let mut growth_failed = Vec::new();
    if let Some(sizes) = options.growth {
        for store in &options.stores {
            let figures = growth::measure(&options.kar, store, &app, sizes)
                .await
                .with_context(|| format!("growth on the {store} store"))?;
            if !figures.complete() {
                growth_failed.push(store.clone());
            }
            report.push_growth(figures);
        }
    }
    if options.recovery > 0 && !options.growth_only {
        for store in &options.stores {
            let leases: Vec<Option<&str>> = match store.as_str() {
                "redis" | "redis-tls" | "redis-wait" => options
                    .recovery_leases
                    .iter()
                    .map(|l| Some(l.as_str()))
                    .collect(),
                _ => vec![None],
            };
            for lease in leases {
                let figures = recovery::measure(
                    &options.kar,
                    store,
                    lease,
                    options.recovery,
                    options.recovery_clients,
                )
                .await
                .with_context(|| format!("recovery on the {store} store"))?;
                report.push_recovery(figures);
            }
        }
    }

    let markdown = report.markdown();
    println!("\n{markdown}");
    if let Some(out) = &options.out {
        std::fs::create_dir_all(out)?;
        std::fs::write(out.join("latest.md"), &markdown)?;
        // A dated copy stays next to it (the chart's copy is made by run.sh).
        std::fs::write(out.join(format!("{}.md", today())), &markdown)?;
        // Raw samples for the chart (git-ignored).
        std::fs::write(out.join("latest-samples.tmp"), report.samples_csv())?;
    }
    // Not an error of the run: a workload that breaks the mesh at some size is a
    // figure (bench/run.sh goes on to the chart); the short test checks the report.
    if !growth_failed.is_empty() {
        eprintln!(
            "warning: growth workloads failed on {} (see the report)",
            growth_failed.join(", ")
        );
    }
    Ok(())
}

/// Calls, service calls, events and reminders on each store, next to the direct
/// baseline and Restate.
async fn call_workloads(options: &Options, app: &mut app::App, report: &mut Report) -> Result<()> {
    // Baseline: the component's actor route called directly over HTTP/1.1.
    let direct = Client::http1(app.port);
    let route = |key: &str| format!("/kar/impl/v1/actor/Bench/{key}/echo");
    report.push(
        "direct HTTP (baseline)",
        measure(options, &[], |key| direct.post(route(&key), b"[\"hello\"]")).await?,
    );
    let (sequential_calls, rate) =
        measure_service(options, || direct.post("/echo".into(), b"hello")).await?;
    report.push_service("direct HTTP (baseline)", sequential_calls, rate);
    // The floor's wake-up, on a host as quiet as the direct baseline's (issue 11).
    let samples = options.calls;
    let wake = tokio::task::spawn_blocking(move || floor::wake_up(samples)).await??;
    println!(
        "  measured the floor's wake-up: one byte one way p50 {:.3} ms, p99 {:.3} ms",
        stats::ms(wake.p50),
        stats::ms(wake.p99)
    );
    report.floor.wake = Some(wake);

    for store in &options.stores {
        let mesh = procs::Mesh::start(&options.kar, store, app.port)
            .await
            .with_context(|| format!("starting the {store} mesh"))?;
        // The floor's commit on this store, before any call (the sidecars are idle).
        let (name, redis_port) = (store.clone(), mesh.redis_port());
        let commit = tokio::task::spawn_blocking(move || floor::commit(&name, redis_port, samples))
            .await??;
        if let Some(commit) = commit {
            println!(
                "  measured the floor's commit on {store}: p50 {:.3} ms, p99 {:.3} ms",
                stats::ms(commit.figures.p50),
                stats::ms(commit.figures.p99)
            );
            report.floor.commits.push(commit);
        }
        let client = Client::h2c(mesh.client_port);
        let path = |key: &str| format!("/kar/v1/actor/Bench/{key}/call/echo");
        let sidecars: Vec<(String, u32)> = mesh
            .pids()
            .into_iter()
            .map(|(label, pid)| (label.to_string(), pid))
            .collect();
        // Resident memory of the sidecars before any call (they are up and joined).
        let idle: Vec<(String, Option<u64>)> = sidecars
            .iter()
            .map(|(label, pid)| (label.clone(), procfs::status_kb(*pid, "VmRSS")))
            .collect();
        let measured = measure(options, &sidecars, |key| {
            client.post(path(&key), b"[\"hello\"]")
        })
        .await;
        let http1 = Client::http1(mesh.client_port);
        let same_client = sequential(options, || http1.post(path("seq"), b"[\"hello\"]")).await;
        // Peak resident memory over the calls (sequential, then the concurrent loads).
        let peak: Vec<(String, Option<u64>)> = sidecars
            .iter()
            .map(|(label, pid)| (label.clone(), procfs::status_kb(*pid, "VmHWM")))
            .collect();
        let service = "/kar/v1/service/bench/call/echo";
        let services = measure_service(options, || client.post(service.into(), b"hello")).await;
        let keyed = keyed::measure(options, &client).await;
        // Events first (latency wants a quiet mesh), reminders last: they keep firing
        // until the mesh stops.
        let events = if options.events > 0 {
            Some(deferred::events(&client, app, options.events).await)
        } else {
            None
        };
        let mut rates = Vec::new();
        if options.event_rate > 0 {
            for subscribers in [1, 8] {
                let window = Duration::from_secs(options.event_rate);
                rates.push(
                    event_rate::measure(&client, app, subscribers, window, options.event_backlog)
                        .await,
                );
            }
        }
        let reminders = if options.reminders > 0 {
            Some(
                deferred::reminders(
                    &client,
                    app,
                    &mesh,
                    options.reminders,
                    deferred::FirstFiring::AfterOneSecond,
                    Duration::from_secs(3),
                    Duration::from_secs(10),
                )
                .await,
            )
        } else {
            None
        };
        mesh.stop().await;
        let mut measured = measured?;
        measured.rss = Some(stats::Rss { idle, peak });
        measured.same_client = Some(same_client?);
        report.push(&format!("kar {store}"), measured);
        let (sequential_calls, rate) = services?;
        report.push_service(&format!("kar {store}"), sequential_calls, rate);
        report.push_keyed(&format!("kar {store}"), keyed?);
        for rate in rates {
            report.push_event_rate(&format!("kar {store}"), rate?, options.event_rate);
        }
        if events.is_some() || reminders.is_some() {
            report.push_deferred(
                &format!("kar {store}"),
                reminders.transpose()?,
                events.transpose()?,
            );
        }
    }

    if let Some(dir) = &options.restate {
        let restate = restate::Restate::start(dir, restate::Sdk::Node)
            .await
            .context("starting Restate")?;
        let client = restate.client();
        let path = |key: &str| format!("/Counter/{key}/add");
        let pids = restate.pids();
        let measured = measure(options, &pids, |key| client.post(path(&key), b"1")).await;
        restate.stop().await;
        report.push("Restate", measured?);
    }
    Ok(())
}

/// The three workloads against one system; `call(key)` makes one keyed call. The CPU
/// time of `pids` is taken around the distinct-keys load; then the scaling curve.
async fn measure<F, Fut>(options: &Options, pids: &[(String, u32)], call: F) -> Result<Measured>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let sequential = sequential(options, || call("seq".into())).await?;
    let before = procfs::CpuSnapshot::take(pids);
    let (distinct, calls) = concurrent(options, |worker| call(format!("w{worker}"))).await?;
    let cpu = before.per_call_since(calls);
    let (hot, _) = concurrent(options, |_| call("hot".into())).await?;
    let mut scaling = Vec::new();
    for &clients in &options.scaling {
        let (_, rate) = stateful::closed_loop(
            clients,
            stateful::Load::Seconds(options.scaling_seconds),
            |worker| call(format!("s{worker}")),
        )
        .await?;
        scaling.push((clients, rate));
    }
    Ok(Measured {
        sequential,
        distinct,
        hot,
        cpu,
        rss: None,
        scaling,
        same_client: None,
    })
}

/// Service calls (no keys): sequential latency and concurrent calls/s.
async fn measure_service<F, Fut>(options: &Options, call: F) -> Result<(Figures, f64)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let sequential = sequential(options, &call).await?;
    let (rate, _) = concurrent(options, |_| call()).await?;
    Ok((sequential, rate))
}

/// Latency of `calls` sequential requests.
async fn sequential<F, Fut>(options: &Options, call: F) -> Result<Figures>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    // Warm up connections and caches.
    for _ in 0..200 {
        call().await?;
    }
    let mut samples = Vec::with_capacity(options.calls);
    for _ in 0..options.calls {
        let start = std::time::Instant::now();
        call().await?;
        samples.push(start.elapsed());
    }
    Ok(Figures::from_samples(samples))
}

/// Calls per second (and calls made) with `concurrency` clients calling in a loop for
/// `seconds`.
async fn concurrent<F, Fut>(options: &Options, call: F) -> Result<(f64, u64)>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(options.seconds);
    let start = std::time::Instant::now();
    let workers = (0..options.concurrency).map(|worker| {
        let call = &call;
        async move {
            let mut done = 0u64;
            while tokio::time::Instant::now() < deadline {
                call(worker).await?;
                done += 1;
            }
            Ok::<u64, anyhow::Error>(done)
        }
    });
    let mut total = 0u64;
    for result in futures::future::join_all(workers).await {
        total += result?;
    }
    Ok((total as f64 / start.elapsed().as_secs_f64(), total))
}

/// Today's date (UTC), `YYYY-MM-DD`.
fn today() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_string())
        .unwrap_or_else(|| "undated".into())
}

/// The date and the machine, for the head of the results.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or_else(String::new, |kb| {
            format!(", {:.0} GiB RAM", kb as f64 / 1048576.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!(", Linux {}", k.trim()))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "Run of {} (UTC) on {cores} × {cpu}{memory}{kernel}.",
        today()
    )
}
