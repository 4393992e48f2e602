//! The cost of an idempotency key (issue 9): service calls through the two sidecars
//! with a fresh `Idempotency-Key` each, side by side with plain calls in the same run
//! (sequential calls alternate plain and keyed, so both see the same host), and the
//! latency of a duplicate answered from the recorded reply.

use crate::client::Client;
use crate::stats::{ms, Figures};
use crate::{concurrent, Options};
use anyhow::Result;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

const PATH: &str = "/kar/v1/service/bench/call/echo";
/// Throughput windows per kind (`--seconds` each), alternating plain and keyed.
const ROUNDS: usize = 3;

pub struct KeyedFigures {
    pub plain: Figures,
    pub keyed: Figures,
    /// A key sent again after its request completed: the recorded reply.
    pub duplicate: Figures,
    pub plain_rate: f64,
    pub keyed_rate: f64,
}

pub async fn measure(options: &Options, client: &Client) -> Result<KeyedFigures> {
    // Keys never seen before in this store (Redis keeps them across meshes).
    let run = rand_prefix();
    let next = AtomicU64::new(0);
    let fresh = || format!("{run}-{}", next.fetch_add(1, Ordering::Relaxed));
    let plain_call = || client.post(PATH.into(), b"hello");
    let keyed_call = |key: String| client.post_keyed(PATH.into(), b"hello", key);
    for _ in 0..200 {
        plain_call().await?;
        keyed_call(fresh()).await?;
    }
    let mut plain = Vec::with_capacity(options.calls);
    let mut keyed = Vec::with_capacity(options.calls);
    for _ in 0..options.calls {
        let start = std::time::Instant::now();
        plain_call().await?;
        plain.push(start.elapsed());
        let key = fresh();
        let start = std::time::Instant::now();
        keyed_call(key).await?;
        keyed.push(start.elapsed());
    }
    let recorded = format!("{run}-recorded");
    keyed_call(recorded.clone()).await?;
    let mut duplicate = Vec::with_capacity(options.calls);
    for _ in 0..options.calls {
        let start = std::time::Instant::now();
        keyed_call(recorded.clone()).await?;
        duplicate.push(start.elapsed());
    }
    // Alternating windows, so that both kinds see the host's load alike.
    let (mut plain_rate, mut keyed_rate) = (0.0, 0.0);
    for _ in 0..ROUNDS {
        plain_rate += concurrent(options, |_| plain_call()).await?.0 / ROUNDS as f64;
        keyed_rate += concurrent(options, |_| keyed_call(fresh())).await?.0 / ROUNDS as f64;
    }
    Ok(KeyedFigures {
        plain: Figures::from_samples(plain),
        keyed: Figures::from_samples(keyed),
        duplicate: Figures::from_samples(duplicate),
        plain_rate,
        keyed_rate,
    })
}

fn rand_prefix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench-{nanos:x}")
}

/// The report's section, one row per store.
pub fn markdown(rows: &[(String, KeyedFigures)], concurrency: usize) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\nIdempotency keys (`POST {PATH}` through two sidecars, each keyed call with a fresh \
         `Idempotency-Key`; sequential plain and keyed calls alternate; duplicate: one key sent \
         again after its request completed, answered from the recorded reply; calls/s: the mean of 3 windows per kind, alternating):\n"
    );
    let _ = writeln!(
        out,
        "| system | plain p50 (ms) | keyed p50 (ms) | plain p99 (ms) | keyed p99 (ms) | keyed / plain p50 | duplicate p50 (ms) | plain calls/s, {concurrency} clients | keyed calls/s, {concurrency} clients |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (system, f) in rows {
        let _ = writeln!(
            out,
            "| {system} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2}× | {:.3} | {:.0} | {:.0} |",
            ms(f.plain.p50),
            ms(f.keyed.p50),
            ms(f.plain.p99),
            ms(f.keyed.p99),
            ms(f.keyed.p50) / ms(f.plain.p50).max(1e-9),
            ms(f.duplicate.p50),
            f.plain_rate,
            f.keyed_rate
        );
    }
    out
}
