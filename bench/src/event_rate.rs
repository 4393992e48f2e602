//! Sustained event throughput (spec §2.6–§2.7): closed-loop publishers on one topic
//! with 1 and 8 subscribed actors, deliveries counted by the component. Unlike the
//! sequential latency of `deferred::events`, publishers do not wait for deliveries,
//! but they pause while [`BACKLOG`] deliveries are outstanding: the figure is how many
//! deliveries per second the mesh sustains with a bounded backlog, and the
//! publish-to-delivery latency under that load. (Flat out, the backlog grew for the
//! whole window and took minutes to drain; the latency then measured the backlog.)

use crate::app::App;
use crate::client::Client;
use crate::stats::{ms, Figures};
use anyhow::{Context, Result};
use bytes::Bytes;
use hyper::Method;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Closed-loop publishers (each publishes its next event once the store accepted the
/// previous one).
pub const PUBLISHERS: usize = 16;

/// Most deliveries outstanding (events published × subscribers − deliveries) by
/// default (`--event-backlog`): a publisher waits for deliveries before it publishes
/// beyond it.
pub const BACKLOG: u64 = 2000;

/// How long the deliveries may trail the end of publishing before the run gives up
/// waiting for the rest (they are counted up to then).
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

pub struct EventRate {
    pub subscribers: usize,
    /// The bound on outstanding deliveries.
    pub backlog: u64,
    /// Events accepted by the publish route, per second of publishing.
    pub published_per_s: f64,
    /// Deliveries received by the component per second, from the first publish to
    /// the last delivery.
    pub delivered_per_s: f64,
    /// Deliveries received against those expected (events × subscribers).
    pub delivered: u64,
    pub expected: u64,
    /// Publish-to-delivery latency under the load.
    pub latency: Figures,
}

/// Subscribes `subscribers` actors (`Bench/rate<n>-<i>`) to a fresh topic, publishes
/// for `window` with [`PUBLISHERS`] closed-loop publishers, at most `backlog`
/// deliveries outstanding, and counts the deliveries until all arrived (or
/// [`DRAIN_LIMIT`] after the last publish).
pub async fn measure(
    client: &Client,
    app: &mut App,
    subscribers: usize,
    window: Duration,
    backlog: u64,
) -> Result<EventRate> {
    let topic = format!("rate{subscribers}");
    client
        .send(Method::PUT, format!("/kar/v1/event/{topic}"), Bytes::new())
        .await
        .with_context(|| format!("creating topic {topic}"))?;
    for i in 0..subscribers {
        client
            .send(
                Method::PUT,
                format!("/kar/v1/actor/Bench/{topic}-{i}/events/s"),
                Bytes::from(format!("{{\"path\":\"/event\",\"topic\":\"{topic}\"}}")),
            )
            .await
            .with_context(|| format!("subscribing Bench/{topic}-{i}"))?;
    }
    // Deliveries of earlier workloads (at-least-once repeats) are not ours.
    while app.deliveries.try_recv().is_ok() {}

    let published = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Deliveries so far, and a wake-up for publishers waiting on the backlog.
    let delivered = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Notify::new());
    // Events whose publishing started: a publisher reserves its event here first, so
    // that the backlog stays within the bound with every publisher in flight.
    let started = Arc::new(AtomicU64::new(0));
    let fanout = subscribers as u64;
    let start = Instant::now();
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|_| {
            let client = client.clone();
            let published = published.clone();
            let stop = stop.clone();
            let delivered = delivered.clone();
            let progress = progress.clone();
            let started = started.clone();
            let base = app.base;
            let path = format!("/kar/v1/event/{topic}/publish");
            tokio::spawn(async move {
                loop {
                    // Enabled before the check: a delivery in between still wakes us.
                    let notified = progress.notified();
                    tokio::pin!(notified);
                    notified.as_mut().enable();
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let events = started.fetch_add(1, Ordering::Relaxed) + 1;
                    if events * fanout > delivered.load(Ordering::Relaxed) + backlog {
                        started.fetch_sub(1, Ordering::Relaxed);
                        notified.await;
                        continue;
                    }
                    let now = base.elapsed().as_nanos() as u64;
                    client
                        .post_bytes(path.clone(), Bytes::from(now.to_string()))
                        .await?;
                    published.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            })
        })
        .collect();

    let mut samples = Vec::new();
    let mut last_delivery = start;
    let publishing_until = start + window;
    let mut publish_time = None;
    loop {
        let now = Instant::now();
        if publish_time.is_none() && now >= publishing_until {
            stop.store(true, Ordering::Relaxed);
            progress.notify_waiters();
            for publisher in &publishers {
                while !publisher.is_finished() {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            publish_time = Some(start.elapsed());
        }
        let expected = published.load(Ordering::Relaxed) * subscribers as u64;
        if publish_time.is_some()
            && (samples.len() as u64 >= expected || now.duration_since(last_delivery) > DRAIN_LIMIT)
        {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(50), app.deliveries.recv()).await {
            Ok(Some((sent, arrived))) => {
                samples.push(Duration::from_nanos(arrived.saturating_sub(sent)));
                last_delivery = Instant::now();
                delivered.fetch_add(1, Ordering::Relaxed);
                progress.notify_waiters();
            }
            Ok(None) => anyhow::bail!("the component's delivery channel closed"),
            Err(_) => {}
        }
    }
    for publisher in publishers {
        publisher.await.context("publisher")??;
    }
    let publish_time = publish_time.unwrap_or(window).as_secs_f64();
    let events = published.load(Ordering::Relaxed);
    let received = samples.len() as u64;
    let delivering = last_delivery.duration_since(start).as_secs_f64().max(1e-9);
    let figures = EventRate {
        subscribers,
        backlog,
        published_per_s: events as f64 / publish_time,
        delivered_per_s: received as f64 / delivering,
        delivered: received,
        expected: events * subscribers as u64,
        latency: Figures::from_samples(samples),
    };
    println!(
        "  events with {subscribers} subscriber(s): {:.0} published/s, {:.0} delivered/s ({} of {}), p50 {:.3} ms",
        figures.published_per_s,
        figures.delivered_per_s,
        figures.delivered,
        figures.expected,
        ms(figures.latency.p50)
    );
    Ok(figures)
}

/// The table of sustained event throughput, one row per store and subscriber count.
pub fn markdown(rows: &[(String, EventRate)], window: u64) -> String {
    let mut out = String::new();
    let Some((_, first)) = rows.first() else {
        return out;
    };
    let backlog = first.backlog;
    let _ = writeln!(
        out,
        "\nEvents, sustained: {PUBLISHERS} closed-loop publishers on one topic for {window} s \
         (each publishes its next event once the previous one was accepted, and waits while \
         {backlog} deliveries are outstanding: events published × subscribers − deliveries \
         received), N actors subscribed (`Bench/rateN-i`, path `/event`), deliveries \
         counted by the component from the first publish to the last delivery (the run \
         ends once the bounded backlog drained); latency from publish to delivery under \
         that load, which the bound caps at about {backlog} / deliveries/s. Each \
         subscription delivers in order, one event at a time.\n"
    );
    let _ = writeln!(
        out,
        "| system | subscribers | events published/s | deliveries/s | events delivered/s (deliveries / subscribers) | delivered / expected | p50 (ms) | p99 (ms) |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---:|---:|");
    for (system, r) in rows {
        let _ = writeln!(
            out,
            "| {system} | {} | {:.0} | {:.0} | {:.0} | {} / {} | {:.3} | {:.3} |",
            r.subscribers,
            r.published_per_s,
            r.delivered_per_s,
            r.delivered_per_s / r.subscribers.max(1) as f64,
            r.delivered,
            r.expected,
            ms(r.latency.p50),
            ms(r.latency.p99)
        );
    }
    out
}
