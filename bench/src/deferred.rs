//! Work the sidecars do on their own schedule: periodic reminder firings (sustained
//! firings/s) and event delivery (publish-to-delivery latency), spec §2.5–§2.7.

use crate::app::App;
use crate::client::Client;
use crate::procfs::{clock_ticks_per_second, cpu_ticks};
use crate::procs::Mesh;
use crate::stats::Figures;
use anyhow::{bail, Context, Result};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use hyper::Method;
use kar_protocol::time::Timestamp;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Reminders scheduled concurrently over the one h2c connection.
const SCHEDULING_CONCURRENCY: usize = 64;

pub struct ReminderFigures {
    pub reminders: usize,
    pub scheduling: Duration,
    /// Firings/s the schedule asks for: one per reminder per second.
    pub demanded: f64,
    pub achieved: f64,
    /// `(process, % of one core)` over the measuring window.
    pub cpu: Vec<(&'static str, f64)>,
}

/// When the first firing of each reminder is due.
#[derive(Clone, Copy, Debug)]
pub enum FirstFiring {
    /// 1 s after that reminder is scheduled (firings overlap the scheduling).
    AfterOneSecond,
    /// All at this long after the scheduling starts, so that a scheduling shorter than
    /// it is timed without firings competing; the warm-up starts at that instant at
    /// the earliest.
    AllAt(Duration),
}

/// Schedules `count` reminders with period 1 s on `count` distinct actors, lets them
/// settle for `warmup`, then counts the firings the component receives in `window`.
pub async fn reminders(
    client: &Client,
    app: &App,
    mesh: &Mesh,
    count: usize,
    first: FirstFiring,
    warmup: Duration,
    window: Duration,
) -> Result<ReminderFigures> {
    let start = Instant::now();
    let epoch_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    futures::stream::iter(0..count)
        .map(|i| async move {
            let due = match first {
                FirstFiring::AfterOneSecond => {
                    SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64 + 1000
                }
                FirstFiring::AllAt(after) => epoch_ms + after.as_millis() as i64,
            };
            let target = Timestamp::from_unix_millis(due).format_rfc3339_nano();
            let body =
                format!("{{\"path\":\"/tick\",\"targetTime\":\"{target}\",\"period\":\"1s\"}}");
            client
                .send(
                    Method::PUT,
                    format!("/kar/v1/actor/Bench/r{i}/reminders/tick"),
                    Bytes::from(body),
                )
                .await
                .map(drop)
        })
        .buffer_unordered(SCHEDULING_CONCURRENCY)
        .try_collect::<()>()
        .await
        .context("scheduling reminders")?;
    let scheduling = start.elapsed();
    if let FirstFiring::AllAt(after) = first {
        tokio::time::sleep_until(tokio::time::Instant::from_std(start + after)).await;
    }
    tokio::time::sleep(warmup).await;

    let mut pids = mesh.pids();
    pids.push(("kar-bench (component + client)", std::process::id()));
    let cpu_before: Vec<Option<u64>> = pids.iter().map(|(_, pid)| cpu_ticks(*pid)).collect();
    let ticks_before = app.ticks.load(Ordering::Relaxed);
    let measuring = Instant::now();
    tokio::time::sleep(window).await;
    let ticks = app.ticks.load(Ordering::Relaxed) - ticks_before;
    let elapsed = measuring.elapsed().as_secs_f64();
    let hz = clock_ticks_per_second();
    let cpu = pids
        .iter()
        .zip(cpu_before)
        .filter_map(|((label, pid), before)| {
            let used = cpu_ticks(*pid)?.checked_sub(before?)?;
            Some((*label, used as f64 / hz / elapsed * 100.0))
        })
        .collect();
    Ok(ReminderFigures {
        reminders: count,
        scheduling,
        demanded: count as f64,
        achieved: ticks as f64 / elapsed,
        cpu,
    })
}

/// Subscribes `Bench/sub.event` to a fresh topic and publishes `count` events one
/// after another (after 20 unmeasured ones), each carrying its publish time and each
/// published only once the previous one has been delivered.
pub async fn events(client: &Client, app: &mut App, count: usize) -> Result<Figures> {
    client
        .send(Method::PUT, "/kar/v1/event/bench".into(), Bytes::new())
        .await
        .context("creating topic bench")?;
    client
        .send(
            Method::PUT,
            "/kar/v1/actor/Bench/sub/events/s1".into(),
            Bytes::from_static(b"{\"path\":\"/event\",\"topic\":\"bench\"}"),
        )
        .await
        .context("subscribing Bench/sub to topic bench")?;
    let mut samples = Vec::with_capacity(count);
    for i in 0..count + 20 {
        let published = app.now_ns();
        client
            .post_bytes(
                "/kar/v1/event/bench/publish".into(),
                Bytes::from(published.to_string()),
            )
            .await
            .context("publishing")?;
        let delivered = loop {
            match tokio::time::timeout(Duration::from_secs(10), app.deliveries.recv()).await {
                Ok(Some((p, delivered))) if p == published => break delivered,
                // A delivery of an earlier event (at-least-once): not this one.
                Ok(Some(_)) => continue,
                Ok(None) => bail!("the component's delivery channel closed"),
                Err(_) => bail!("event {i} not delivered within 10 s"),
            }
        };
        if i >= 20 {
            samples.push(Duration::from_nanos(delivered.saturating_sub(published)));
        }
    }
    Ok(Figures::from_samples(samples))
}
