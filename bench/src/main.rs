//! `kar-bench`: service and actor calls through two real `kar` sidecars with a
//! minimal Rust component, on each store, next to a direct HTTP call to the same
//! component measured in the same run.
//!
//! Usage: `cargo run --release -p kar-bench -- [--stores embedded,redis] [--calls N] [--seconds S]`

mod app;
mod client;
mod procs;
mod stats;

use anyhow::{bail, Context, Result};
use client::Client;
use stats::{Figures, Table};
use std::time::Duration;

struct Options {
    stores: Vec<String>,
    calls: usize,
    seconds: u64,
    concurrency: usize,
    kar: std::path::PathBuf,
}

fn parse_options() -> Result<Options> {
    let mut options = Options {
        stores: vec!["embedded".into(), "redis".into()],
        calls: 5000,
        seconds: 5,
        concurrency: 64,
        kar: procs::default_kar_binary(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--stores" => options.stores = value()?.split(',').map(str::to_string).collect(),
            "--calls" => options.calls = value()?.parse()?,
            "--seconds" => options.seconds = value()?.parse()?,
            "--concurrency" => options.concurrency = value()?.parse()?,
            "--kar" => options.kar = value()?.into(),
            other => bail!("unknown option {other}"),
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
    let options = parse_options()?;
    let app = app::start().await?;
    println!(
        "kar benchmark: {} sequential calls, {} s at {} concurrent clients, app on 127.0.0.1:{}",
        options.calls, options.seconds, options.concurrency, app.port
    );
    let mut table = Table::default();

    // Baseline: the same component called directly over HTTP/1.1.
    let direct = Client::http1(app.port);
    let path = "/echo";
    table.push(
        "direct HTTP (baseline)",
        "service",
        sequential(&options, || direct.post(path, b"hello")).await?,
        concurrent(&options, |_| direct.post(path, b"hello")).await?,
    );
    let baseline_p50 = table.rows[0].figures.p50;
    let baseline_rate = table.rows[0].rate;

    for store in &options.stores {
        let mesh = procs::Mesh::start(&options.kar, store, app.port)
            .await
            .with_context(|| format!("starting the {store} mesh"))?;
        let client = Client::h2c(mesh.client_port);
        let service = "/kar/v1/service/bench/call/echo";
        table.push(
            &format!("kar {store}"),
            "service",
            sequential(&options, || client.post(service, b"hello")).await?,
            concurrent(&options, |_| client.post(service, b"hello")).await?,
        );
        table.push(
            &format!("kar {store}"),
            "actor",
            sequential(&options, || {
                client.post("/kar/v1/actor/Bench/seq/call/echo", b"[\"hello\"]")
            })
            .await?,
            concurrent(&options, |worker| {
                let path = format!("/kar/v1/actor/Bench/w{worker}/call/echo");
                client.post_owned(path, b"[\"hello\"]")
            })
            .await?,
        );
        mesh.stop().await;
    }
    table.print(baseline_p50, baseline_rate);
    Ok(())
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

/// Calls per second with `concurrency` clients calling in a loop for `seconds`.
async fn concurrent<F, Fut>(options: &Options, call: F) -> Result<f64>
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
    Ok(total as f64 / start.elapsed().as_secs_f64())
}
