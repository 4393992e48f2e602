//! How long store operations take, for the `/metrics` of the process (README "Traces
//! and metrics"): each engine observes every round trip to its store once, in
//! [`observe`] (one lock and one bucket increment), under its metric name — KAR's
//! [`REDIS`] for Redis, the store-neutral [`EMBEDDED`] for the embedded store —
//! labelled by `command` (the transition's script on Redis; `read` or `write` on the
//! embedded store). The runtime renders them with its own metrics ([`render`]).
//!
//! One registry per process: every store handle of the process adds to it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// KAR's metric of Redis request durations.
pub const REDIS: &str = "kar_redis_request_durations_histogram_seconds";
/// The embedded store's transactions.
pub const EMBEDDED: &str = "kar_store_request_durations_histogram_seconds";

/// Upper bounds of the histogram buckets, in seconds.
pub const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
];

/// One Prometheus histogram series.
#[derive(Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

impl Histogram {
    pub fn observe(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        self.counts[slot] += 1;
        self.sum += seconds;
    }

    /// Appends the series `name{<label>="<value>"}` (buckets, sum, count).
    pub fn render(&self, out: &mut String, name: &str, label: &str, value: &str) {
        let value = escape(value);
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter()) {
            cumulative += count;
            let _ = writeln!(
                out,
                "{name}_bucket{{{label}=\"{value}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.counts[BUCKETS.len()];
        let _ = writeln!(
            out,
            "{name}_bucket{{{label}=\"{value}\",le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(out, "{name}_sum{{{label}=\"{value}\"}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{label}=\"{value}\"}} {cumulative}");
    }
}

/// Label values escape `\`, `"` and newlines.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Per metric, per command.
type Series = BTreeMap<&'static str, BTreeMap<String, Histogram>>;

static TIMINGS: Mutex<Series> = Mutex::new(BTreeMap::new());

/// Records one store operation `command` of metric `metric` that took `took`.
pub fn observe(metric: &'static str, command: &str, took: Duration) {
    let mut timings = TIMINGS.lock().unwrap_or_else(|e| e.into_inner());
    let commands = timings.entry(metric).or_default();
    // The key is only allocated for a new series.
    match commands.get_mut(command) {
        Some(histogram) => histogram.observe(took),
        None => commands
            .entry(command.to_string())
            .or_default()
            .observe(took),
    }
}

/// Appends the store histograms in the Prometheus text format.
pub fn render(out: &mut String) {
    let timings = TIMINGS.lock().unwrap_or_else(|e| e.into_inner());
    for (metric, commands) in timings.iter() {
        let what = if *metric == REDIS {
            "Redis requests"
        } else {
            "embedded store transactions"
        };
        let _ = writeln!(out, "# HELP {metric} Duration of {what}.");
        let _ = writeln!(out, "# TYPE {metric} histogram");
        for (command, histogram) in commands {
            histogram.render(out, metric, "command", command);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_per_command() {
        observe(EMBEDDED, "write", Duration::from_micros(300));
        observe(EMBEDDED, "write", Duration::from_millis(2));
        let mut text = String::new();
        render(&mut text);
        assert!(
            text.contains(&format!("# TYPE {EMBEDDED} histogram\n")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "{EMBEDDED}_bucket{{command=\"write\",le=\"0.0005\"}} 1\n"
        )));
        assert!(text.contains(&format!("{EMBEDDED}_count{{command=\"write\"}} 2\n")));
    }
}
