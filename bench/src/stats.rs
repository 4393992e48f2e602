//! Latency percentiles, the Markdown report with ratios, and the raw samples.

use crate::deferred::ReminderFigures;
use crate::event_rate::EventRate;
use crate::keyed::KeyedFigures;
use crate::recovery::RecoveryFigures;
use crate::stateful::Row;
use std::fmt::Write;
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Figures {
    pub p50: Duration,
    pub p99: Duration,
    /// Sorted.
    pub samples: Vec<Duration>,
}

impl Figures {
    pub fn from_samples(mut samples: Vec<Duration>) -> Figures {
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(index).copied().unwrap_or_default()
        };
        Figures {
            p50: at(0.50),
            p99: at(0.99),
            samples,
        }
    }
}

/// One system's three workloads.
pub struct Measured {
    pub sequential: Figures,
    /// Calls/s, concurrent clients on distinct keys.
    pub distinct: f64,
    /// Calls/s, concurrent clients on one key.
    pub hot: f64,
    /// CPU µs per call of each process over the distinct-keys load.
    pub cpu: Vec<(String, f64)>,
    /// Resident memory of the sidecars.
    pub rss: Option<Rss>,
    /// `(clients, calls/s)` on distinct keys.
    pub scaling: Vec<(usize, f64)>,
    /// kar only: the sequential calls again, over the direct baseline's own client
    /// (HTTP/1.1 keep-alive) instead of h2c, so that a ratio to direct compares the
    /// same client stack (hyper-util's h2c client alone adds ~90 µs per call:
    /// `bench/results/hops-2026-12-07.md`).
    pub same_client: Option<Figures>,
}

/// Resident memory (kB) per process: before any call, and the peak over the calls.
pub struct Rss {
    pub idle: Vec<(String, Option<u64>)>,
    pub peak: Vec<(String, Option<u64>)>,
}

pub struct Report {
    /// What was run, printed above the table.
    pub setting: String,
    concurrency: usize,
    rows: Vec<(String, Measured)>,
    /// Service calls (no keys): sequential latency and concurrent calls/s.
    services: Vec<(String, Figures, f64)>,
    /// Reminder firings and event latency per store.
    deferred: Vec<(String, Option<ReminderFigures>, Option<Figures>)>,
    recovery: Vec<RecoveryFigures>,
    stateful: Vec<Row>,
    /// Plain and keyed service calls per store (`keyed.rs`).
    keyed: Vec<(String, KeyedFigures)>,
    /// Sustained event throughput per store and subscriber count (`event_rate.rs`),
    /// and the seconds of publishing of each.
    event_rates: Vec<(String, EventRate)>,
    event_rate_seconds: u64,
    /// Cost as the work grows, per store (`growth.rs`).
    growth: Vec<crate::growth::StoreGrowth>,
    /// The primitives of a durable call (`floor.rs`).
    pub floor: crate::floor::Floor,
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The durability behind each system's figures (Restate's defaults as printed by
/// `restate-server --dump-config` of 1.7.12).
const GUARANTEES: &str = "\
Guarantees behind the figures: **kar** — every accepted request is durable in the store \
before it runs and its completion is one atomic store transition; what a commit survives \
depends on the store setting: `embedded` is SQLite WAL with `-store_sync normal` (the \
default: survives process crashes; an OS crash or power loss may roll back the latest \
commits), `embedded-fsync` is `-store_sync full` (the WAL is fsynced before a commit is \
acknowledged; transitions committed together share the fsync), `redis` runs without \
persistence (`--save '' --appendonly no`), `redis-fsync` with `--appendonly yes \
--appendfsync always` (the AOF is fsynced before Redis replies). The stateless `Bench` \
rows use `embedded` and `redis`. **Restate** 1.7.12 with its defaults as `restate-server \
--dump-config` prints them: its own durable log (Bifrost) with provider `replicated` and \
`default-replication = 1` (this single node), the log-server's RocksDB WAL with \
`rocksdb-disable-wal-fsync = false` (fsynced); its `Counter` keeps state in every row, \
kar's `Bench.echo` keeps none.";

impl Report {
    pub fn new(concurrency: usize) -> Report {
        Report {
            setting: String::new(),
            concurrency,
            rows: Vec::new(),
            services: Vec::new(),
            deferred: Vec::new(),
            recovery: Vec::new(),
            stateful: Vec::new(),
            keyed: Vec::new(),
            event_rates: Vec::new(),
            event_rate_seconds: 0,
            growth: Vec::new(),
            floor: Default::default(),
        }
    }

    pub fn push_stateful(&mut self, row: Row) {
        println!(
            "  measured {} ({}, stateful): 1 client p50 {:.3} ms, p99 {:.3} ms, {:.0} calls/s; {} clients p50 {:.3} ms, p99 {:.3} ms, {:.0} calls/s; CPU µs/call {}",
            row.system,
            row.language,
            ms(row.sequential.p50),
            ms(row.sequential.p99),
            row.sequential_rate,
            row.clients(),
            ms(row.concurrent.p50),
            ms(row.concurrent.p99),
            row.concurrent_rate,
            cpu_per_call_text(&row.cpu)
        );
        self.stateful.push(row);
    }

    pub fn push_deferred(
        &mut self,
        system: &str,
        reminders: Option<ReminderFigures>,
        events: Option<Figures>,
    ) {
        if let Some(r) = &reminders {
            println!(
                "  measured {system} (reminders): {} scheduled in {:.1} s, {:.0} firings/s demanded, {:.0} achieved; CPU {}",
                r.reminders,
                r.scheduling.as_secs_f64(),
                r.demanded,
                r.achieved,
                cpu_text(r)
            );
        }
        if let Some(e) = &events {
            println!(
                "  measured {system} (events): publish to delivery p50 {:.3} ms, p99 {:.3} ms",
                ms(e.p50),
                ms(e.p99)
            );
        }
        self.deferred.push((system.to_string(), reminders, events));
    }

    pub fn push_event_rate(&mut self, system: &str, rate: EventRate, seconds: u64) {
        self.event_rate_seconds = seconds;
        self.event_rates.push((system.to_string(), rate));
    }

    pub fn push_keyed(&mut self, system: &str, figures: KeyedFigures) {
        println!(
            "  measured {system} (idempotency keys): p50 plain {:.3} ms, keyed {:.3} ms, duplicate {:.3} ms; {:.0} / {:.0} calls/s",
            ms(figures.plain.p50),
            ms(figures.keyed.p50),
            ms(figures.duplicate.p50),
            figures.plain_rate,
            figures.keyed_rate
        );
        self.keyed.push((system.to_string(), figures));
    }

    pub fn push_service(&mut self, system: &str, sequential: Figures, rate: f64) {
        println!(
            "  measured {system} (service calls): p50 {:.3} ms, p99 {:.3} ms, {rate:.0} calls/s",
            ms(sequential.p50),
            ms(sequential.p99)
        );
        self.services.push((system.to_string(), sequential, rate));
    }

    pub fn push(&mut self, system: &str, measured: Measured) {
        println!(
            "  measured {system}: p50 {:.3} ms, p99 {:.3} ms, {:.0} calls/s on distinct keys, {:.0} calls/s on one key",
            ms(measured.sequential.p50),
            ms(measured.sequential.p99),
            measured.distinct,
            measured.hot
        );
        if let Some(same) = &measured.same_client {
            println!(
                "  measured {system} over HTTP/1.1 (the direct baseline's client): p50 {:.3} ms, p99 {:.3} ms",
                ms(same.p50),
                ms(same.p99)
            );
        }
        self.rows.push((system.to_string(), measured));
    }

    /// The keyed-call table and its ratios.
    fn calls_markdown(&self, out: &mut String) {
        let c = self.concurrency;
        let _ = writeln!(
            out,
            "| system | sequential p50 (ms) | sequential p99 (ms) | calls/s, {c} clients on {c} keys | calls/s, {c} clients on 1 key |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for (system, m) in &self.rows {
            let _ = writeln!(
                out,
                "| {system} | {:.3} | {:.3} | {:.0} | {:.0} |",
                ms(m.sequential.p50),
                ms(m.sequential.p99),
                m.distinct,
                m.hot
            );
        }
        let baseline = self.find("direct");
        let restate = self.find("Restate");
        let mut ratios = Vec::new();
        for (system, m) in self.rows.iter().filter(|(s, _)| s.starts_with("kar")) {
            for (name, other) in [("direct HTTP", baseline), ("Restate", restate)] {
                if let Some(o) = other {
                    ratios.push(format!(
                        "| {system} / {name} | {:.2}× | {:.2}× | {:.2}× | {:.2}× |",
                        ms(m.sequential.p50) / ms(o.sequential.p50).max(1e-9),
                        ms(m.sequential.p99) / ms(o.sequential.p99).max(1e-9),
                        m.distinct / o.distinct.max(1e-9),
                        m.hot / o.hot.max(1e-9)
                    ));
                }
            }
        }
        if !ratios.is_empty() {
            let _ = writeln!(
                out,
                "\n| ratio (latency: lower is better; calls/s: higher is better) | p50 | p99 | {c} keys | 1 key |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|");
            for line in ratios {
                let _ = writeln!(out, "{line}");
            }
        }
        self.same_client_markdown(out, baseline);
        if let Some(direct) = baseline {
            // kar's sequential p50 per store, over the direct baseline's client if measured.
            let kar: Vec<(String, Duration)> = self
                .rows
                .iter()
                .filter_map(|(system, m)| {
                    let store = system.strip_prefix("kar ")?;
                    let p50 = m.same_client.as_ref().unwrap_or(&m.sequential).p50;
                    Some((store.to_string(), p50))
                })
                .collect();
            out.push_str(&crate::floor::markdown(
                &self.floor,
                &direct.sequential,
                &kar,
            ));
        }
    }

    /// The sequential kar calls made with the direct baseline's HTTP/1.1 client: the
    /// ratio to direct without the difference between the two client stacks.
    fn same_client_markdown(&self, out: &mut String, baseline: Option<&Measured>) {
        let rows: Vec<_> = self
            .rows
            .iter()
            .filter_map(|(system, m)| Some((system, m.same_client.as_ref()?)))
            .collect();
        let Some(direct) = baseline.filter(|_| !rows.is_empty()) else {
            return;
        };
        let _ = writeln!(
            out,
            "\nThe same sequential actor calls over the direct baseline's own client \
             (HTTP/1.1 keep-alive; the rows above use h2c on one connection, as the JS SDK \
             does, and that client alone costs ~90 µs more per call here):\n"
        );
        let _ = writeln!(
            out,
            "| system | p50 (ms) | p99 (ms) | p50 / direct | p99 / direct |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        for (system, figures) in rows {
            let _ = writeln!(
                out,
                "| {system}, HTTP/1.1 client | {:.3} | {:.3} | {:.2}× | {:.2}× |",
                ms(figures.p50),
                ms(figures.p99),
                ms(figures.p50) / ms(direct.sequential.p50).max(1e-9),
                ms(figures.p99) / ms(direct.sequential.p99).max(1e-9)
            );
        }
    }

    fn find(&self, prefix: &str) -> Option<&Measured> {
        self.rows
            .iter()
            .find(|(system, _)| system.starts_with(prefix))
            .map(|(_, measured)| measured)
    }

    pub fn markdown(&self) -> String {
        let c = self.concurrency;
        let mut out = format!("{}\n\n", self.setting);
        if !self.rows.is_empty() {
            self.calls_markdown(&mut out);
        }
        if let Some((_, direct, direct_rate)) = self.services.first() {
            let _ = writeln!(
                out,
                "\nService calls (`POST /kar/v1/service/bench/call/echo` through two sidecars; direct: `POST /echo`):\n"
            );
            let _ = writeln!(
                out,
                "| system | sequential p50 (ms) | sequential p99 (ms) | calls/s, {c} clients | p50 / direct | calls/s / direct |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
            for (system, f, rate) in &self.services {
                let _ = writeln!(
                    out,
                    "| {system} | {:.3} | {:.3} | {rate:.0} | {:.2}× | {:.2}× |",
                    ms(f.p50),
                    ms(f.p99),
                    ms(f.p50) / ms(direct.p50).max(1e-9),
                    rate / direct_rate.max(1e-9)
                );
            }
        }
        out.push_str(&crate::keyed::markdown(&self.keyed, c));
        if !self.deferred.is_empty() {
            let _ = writeln!(
                out,
                "\nReminders and events: N periodic reminders (period 1 s) on N distinct `Bench` \
                 actors, scheduled 64 at a time, firings counted by the component over 10 s after \
                 a warm-up; CPU in % of one core over that window. Events: one subscriber \
                 (`Bench/sub`), each event published only after the previous one was delivered.\n"
            );
            let _ = writeln!(
                out,
                "| system | reminders | scheduling (s) | firings/s demanded | firings/s achieved | CPU while firing | event p50 (ms) | event p99 (ms) |"
            );
            let _ = writeln!(out, "|---|---:|---:|---:|---:|---|---:|---:|");
            for (system, r, e) in &self.deferred {
                let (count, scheduling, demanded, achieved, cpu) = match r {
                    Some(r) => (
                        r.reminders.to_string(),
                        format!("{:.1}", r.scheduling.as_secs_f64()),
                        format!("{:.0}", r.demanded),
                        format!("{:.0}", r.achieved),
                        cpu_text(r),
                    ),
                    None => Default::default(),
                };
                let (p50, p99) = match e {
                    Some(e) => (format!("{:.3}", ms(e.p50)), format!("{:.3}", ms(e.p99))),
                    None => Default::default(),
                };
                let _ = writeln!(
                    out,
                    "| {system} | {count} | {scheduling} | {demanded} | {achieved} | {cpu} | {p50} | {p99} |"
                );
            }
        }
        out.push_str(&crate::event_rate::markdown(
            &self.event_rates,
            self.event_rate_seconds,
        ));
        out.push_str(&self.resources_markdown());
        out.push_str(&self.stateful_markdown());
        out.push_str(&self.scaling_markdown());
        if !self.recovery.is_empty() {
            out.push_str(&recovery_markdown(&self.recovery));
        }
        out.push_str(&crate::growth::markdown(&self.growth));
        let _ = writeln!(out, "\n{GUARANTEES}");
        out
    }

    /// Sidecar memory and CPU per call of the stateless rows.
    fn resources_markdown(&self) -> String {
        let mut out = String::new();
        let rows: Vec<_> = self
            .rows
            .iter()
            .filter(|(_, m)| m.rss.is_some() || !m.cpu.is_empty())
            .collect();
        if rows.is_empty() {
            return out;
        }
        let c = self.concurrency;
        let _ = writeln!(
            out,
            "\nResources of the keyed calls above: resident memory (VmRSS) of each sidecar once \
             up and before any call, and its peak (VmHWM) over the calls ({c} clients included); \
             CPU time per call of each process (utime + stime from `/proc`, clock ticks of 10 ms) \
             over the {c}-client load on {c} keys. Targets: ≤ 20 MB idle, ≤ 40 MB loaded.\n"
        );
        let _ = writeln!(
            out,
            "| system | RSS idle (MB) | RSS peak under load (MB) | CPU µs per call, {c} clients on {c} keys | runtime µs/call (kar: both sidecars; Restate: its server) |"
        );
        let _ = writeln!(out, "|---|---|---|---|---:|");
        let mb = |list: &[(String, Option<u64>)]| {
            list.iter()
                .filter(|(label, _)| label.contains("sidecar"))
                .map(|(label, kb)| match kb {
                    Some(kb) => format!("{label} {:.1}", *kb as f64 / 1024.0),
                    None => format!("{label} ?"),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (system, m) in rows {
            let (idle, peak) = m.rss.as_ref().map_or((String::new(), String::new()), |r| {
                (mb(&r.idle), mb(&r.peak))
            });
            let _ = writeln!(
                out,
                "| {system} | {idle} | {peak} | {} | {} |",
                cpu_per_call_text(&m.cpu),
                runtime_cpu_text(&m.cpu)
            );
        }
        out
    }

    /// The stateful counter rows, per language, with ratios to Restate of the same
    /// language and to the direct baseline.
    fn stateful_markdown(&self) -> String {
        let mut out = String::new();
        let Some(first) = self.stateful.first() else {
            return out;
        };
        let c = first.clients();
        let _ = writeln!(
            out,
            "\nStateful keyed counter (the fair comparison): `Counter.add(1)` reads the counter from \
             the object's state and writes it back on every call, component in the same language \
             on both sides: kar's Rust SDK (`crates/sdk`, actor state through the SDK) against \
             Restate's Rust SDK (`restate-sdk` 0.12), and the npm `kar-sdk` 1.3.10 \
             (`actor.state.get` + `actor.state.set`) against Restate's TypeScript SDK 1.17.2, \
             both Node rows on Node 22.23.3. kar: client sidecar (h2c from the load generator) → \
             server sidecar → component (`kar run -h2c -actors Counter -- ...`); Restate: \
             HTTP/1.1 to its ingress, h2c to the SDK endpoint. 1 client: {} sequential calls \
             on one key after 200 warm-up calls; {c} clients: closed loop on {c} keys (each \
             activated first). CPU: µs per call over the {c}-client window, per process and \
             summed. Ratios: latency (lower is better) and calls/s (higher is better) against \
             Restate with the same SDK language.\n",
            first.sequential.samples.len()
        );
        let _ = writeln!(
            out,
            "| SDK | system | a commit survives | 1 client p50 (ms) | 1 client p99 (ms) | 1 client calls/s | {c} clients p50 (ms) | {c} clients p99 (ms) | {c} clients calls/s | CPU µs/call (total) | runtime µs/call (kar: both sidecars; Restate: its server) | CPU µs/call per process | p50 / Restate (1; {c}) | calls/s / Restate (1; {c}) |"
        );
        let _ = writeln!(
            out,
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---|"
        );
        for row in &self.stateful {
            let restate = self
                .stateful
                .iter()
                .find(|r| r.system == "Restate" && r.language == row.language);
            let ratios = match restate {
                Some(r) if row.system != "Restate" && !row.system.starts_with("direct") => (
                    format!(
                        "{:.2}×; {:.2}×",
                        ms(row.sequential.p50) / ms(r.sequential.p50).max(1e-9),
                        ms(row.concurrent.p50) / ms(r.concurrent.p50).max(1e-9)
                    ),
                    format!(
                        "{:.2}×; {:.2}×",
                        row.sequential_rate / r.sequential_rate.max(1e-9),
                        row.concurrent_rate / r.concurrent_rate.max(1e-9)
                    ),
                ),
                _ => (String::new(), String::new()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.3} | {:.3} | {:.0} | {:.3} | {:.3} | {:.0} | {} | {} | {} | {} | {} |",
                row.language,
                row.system,
                row.guarantee,
                ms(row.sequential.p50),
                ms(row.sequential.p99),
                row.sequential_rate,
                ms(row.concurrent.p50),
                ms(row.concurrent.p99),
                row.concurrent_rate,
                total_cpu_text(&row.cpu),
                runtime_cpu_text(&row.cpu),
                cpu_per_call_text(&row.cpu),
                ratios.0,
                ratios.1
            );
        }
        out
    }

    /// Calls/s against the number of closed-loop clients (each on its own key).
    fn scaling_markdown(&self) -> String {
        let mut out = String::new();
        let mut curves: Vec<(String, &[(usize, f64)])> = Vec::new();
        for (system, m) in &self.rows {
            // The Restate row of the first table calls its Node `Counter`.
            let what = if system.starts_with("Restate") {
                "`Counter.add`, TypeScript SDK"
            } else {
                "`Bench.echo`, stateless"
            };
            curves.push((format!("{system} ({what})"), &m.scaling));
        }
        for row in &self.stateful {
            if !row.system.starts_with("direct") {
                curves.push((
                    format!("{} (`Counter.add`, {} SDK)", row.system, row.language),
                    &row.scaling,
                ));
            }
        }
        curves.retain(|(_, points)| !points.is_empty());
        let Some((_, first)) = curves.first() else {
            return out;
        };
        let clients: Vec<usize> = first.iter().map(|(n, _)| *n).collect();
        let _ = writeln!(
            out,
            "\nThroughput against clients (calls/s; N closed-loop clients, each on its own key):\n"
        );
        let head: Vec<String> = clients.iter().map(|n| n.to_string()).collect();
        let _ = writeln!(out, "| system | {} |", head.join(" | "));
        let _ = writeln!(out, "|---|{}", "---:|".repeat(clients.len()));
        for (system, points) in &curves {
            let cells: Vec<String> = points.iter().map(|(_, r)| format!("{r:.0}")).collect();
            let _ = writeln!(out, "| {system} | {} |", cells.join(" | "));
        }
        out
    }
}

/// CPU µs per call of the runtime: kar's sidecars, or Restate's server.
fn runtime_cpu_text(cpu: &[(String, f64)]) -> String {
    let runtime: Vec<f64> = cpu
        .iter()
        .filter(|(label, _)| label.contains("sidecar") || label == "restate-server")
        .map(|(_, us)| *us)
        .collect();
    if runtime.is_empty() {
        return "—".into();
    }
    format!("{:.0}", runtime.iter().fold(0.0, |a, b| a + b))
}

/// CPU µs per call of every process together.
fn total_cpu_text(cpu: &[(String, f64)]) -> String {
    if cpu.is_empty() {
        return "—".into();
    }
    format!("{:.0}", cpu.iter().fold(0.0, |a, (_, us)| a + us))
}

fn cpu_per_call_text(cpu: &[(String, f64)]) -> String {
    cpu.iter()
        .map(|(label, us)| format!("{label} {us:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cpu_text(r: &ReminderFigures) -> String {
    r.cpu
        .iter()
        .map(|(what, percent)| format!("{what} {percent:.0}%"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Report {
    /// `system,kind,value` lines: `latency_ms` samples, `distinct`/`hot` calls/s.
    pub fn samples_csv(&self) -> String {
        let mut out = String::from("system,kind,value\n");
        for (system, m) in &self.rows {
            for sample in &m.sequential.samples {
                let _ = writeln!(out, "{system},latency_ms,{:.4}", ms(*sample));
            }
            let _ = writeln!(out, "{system},distinct,{:.1}", m.distinct);
            let _ = writeln!(out, "{system},hot,{:.1}", m.hot);
            for (clients, rate) in &m.scaling {
                let _ = writeln!(out, "{system} (echo),scale:{clients},{rate:.1}");
            }
        }
        // The direct baseline's curve is the stateless one above.
        for row in self
            .stateful
            .iter()
            .filter(|r| !r.system.starts_with("direct"))
        {
            let system = format!("{} ({})", row.system, row.language);
            let _ = writeln!(out, "{system},counter_rate,{:.1}", row.concurrent_rate);
            let _ = writeln!(out, "{system},counter_p50_ms,{:.4}", ms(row.concurrent.p50));
            for (clients, rate) in &row.scaling {
                let _ = writeln!(out, "{system} (counter),scale:{clients},{rate:.1}");
            }
        }
        out
    }
}

/// The `q` quantile of sorted samples (nearest rank).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(index).copied().unwrap_or_default()
}

/// What the issue asks of a retry: under 1 s on the embedded store, under the lease
/// plus 1 s on Redis.
fn recovery_target(r: &RecoveryFigures) -> Duration {
    let lease = r
        .lease
        .as_deref()
        .and_then(|l| kar_protocol::parse_go_duration(l).ok())
        .map_or(Duration::ZERO, |nanos| {
            Duration::from_nanos(nanos.unsigned_abs())
        });
    lease + Duration::from_secs(1)
}

fn detection(r: &RecoveryFigures) -> String {
    match &r.lease {
        Some(lease) => format!("lease {lease}"),
        None => "file lock".into(),
    }
}

impl Report {
    pub fn push_growth(&mut self, figures: crate::growth::StoreGrowth) {
        self.growth.push(figures);
    }

    pub fn push_recovery(&mut self, figures: RecoveryFigures) {
        let mut sorted = figures.retry.clone();
        sorted.sort_unstable();
        println!(
            "  measured kar {} ({}, recovery): kill -9 to retry running p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms over {} trials; \
             {} clients: {:.0} calls/s before, {:.0} during recovery, {:.0} in the second after the kill; {} anomalies",
            figures.store,
            detection(&figures),
            ms(quantile(&sorted, 0.5)),
            ms(quantile(&sorted, 0.9)),
            ms(sorted.last().copied().unwrap_or_default()),
            sorted.len(),
            figures.clients,
            figures.before,
            figures.during,
            figures.after,
            figures.anomalies.len()
        );
        for anomaly in &figures.anomalies {
            println!("    anomaly: {anomaly}");
        }
        self.recovery.push(figures);
    }
}

fn recovery_markdown(rows: &[RecoveryFigures]) -> String {
    let mut out = String::new();
    let clients = rows.first().map_or(0, |r| r.clients);
    let _ = writeln!(
        out,
        "\nRecovery: two replicas of a service and a client sidecar; a request whose handler \
         logs its start and then blocks lands on one replica, whose `kar run` gets kill -9 \
         (its component dies with it) after 1.2–2.2 s of quiet (varied, so kills fall at \
         random phases of lease renewals); figure: from the kill to the retried request's \
         handler starting on the other replica (wall-clock times of this host, taken by the \
         benchmark and the component); the killed replica restarts between trials. Target: \
         under 1 s on the embedded store, under the lease + 1 s on Redis. Meanwhile {clients} \
         closed-loop clients call a third component's service (`steady/echo`, on a live \
         sidecar) through the client sidecar: calls/s in the second before each kill, from \
         each kill to its retry's start, and in the second after each kill (the killed \
         replica restarts only after it), all trials together.\n"
    );
    let _ = writeln!(
        out,
        "| store | failure detection | trials | kill → retry p50 (ms) | p90 (ms) | max (ms) | target (ms) | calls/s before | calls/s during recovery | during / before | calls/s, 1 s after the kill | anomalies |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let mut sorted = r.retry.clone();
        sorted.sort_unstable();
        let max = sorted.last().copied().unwrap_or_default();
        let target = recovery_target(r);
        let met = if !sorted.is_empty() && max < target {
            "met"
        } else {
            "missed"
        };
        let _ = writeln!(
            out,
            "| kar {} | {} | {}/{} | {:.0} | {:.0} | {:.0} | < {:.0}: {met} | {:.0} | {:.0} | {:.2}× | {:.0} | {} |",
            r.store,
            detection(r),
            sorted.len(),
            r.trials,
            ms(quantile(&sorted, 0.5)),
            ms(quantile(&sorted, 0.9)),
            ms(max),
            ms(target),
            r.before,
            r.during,
            r.during / r.before.max(1e-9),
            r.after,
            r.anomalies.len()
        );
    }
    for r in rows.iter().filter(|r| !r.anomalies.is_empty()) {
        let _ = writeln!(out, "\nAnomalies, kar {} ({}):\n", r.store, detection(r));
        for anomaly in &r.anomalies {
            let _ = writeln!(out, "- {anomaly}");
        }
    }
    out
}
