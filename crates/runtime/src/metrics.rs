//! Prometheus metrics of a runtime (spec §2.9): how long the component takes to
//! answer, per `<type>:<method>`, `<type>:activate`, `<type>:deactivate` and
//! `<service>:<path>`. Rendered in the Prometheus text format by the sidecar.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the histogram buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0,
];

#[derive(Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is `+Inf`.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
}

#[derive(Default)]
pub(crate) struct Metrics {
    invocations: Mutex<BTreeMap<String, Histogram>>,
}

impl Metrics {
    /// Records one answer of the component that took `took`.
    pub(crate) fn observe(&self, label: &str, took: Duration) {
        let seconds = took.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
            .unwrap_or(BUCKETS.len());
        let mut invocations = self.invocations.lock().unwrap_or_else(|e| e.into_inner());
        let histogram = invocations.entry(label.to_string()).or_default();
        histogram.counts[slot] += 1;
        histogram.sum += seconds;
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
        const NAME: &str = "kar_user_code_invocation_durations_histogram_seconds";
        let invocations = self.invocations.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP {NAME} Duration of calls to the application component."
        );
        let _ = writeln!(out, "# TYPE {NAME} histogram");
        for (label, histogram) in invocations.iter() {
            let path = escape(label);
            let mut cumulative = 0;
            for (bound, count) in BUCKETS.iter().zip(histogram.counts.iter()) {
                cumulative += count;
                let _ = writeln!(
                    out,
                    "{NAME}_bucket{{path=\"{path}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            cumulative += histogram.counts[BUCKETS.len()];
            let _ = writeln!(
                out,
                "{NAME}_bucket{{path=\"{path}\",le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(out, "{NAME}_sum{{path=\"{path}\"}} {}", histogram.sum);
            let _ = writeln!(out, "{NAME}_count{{path=\"{path}\"}} {cumulative}");
        }
        out
    }
}

/// Label values escape `\`, `"` and newlines.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("T:m", Duration::from_micros(300));
        m.observe("T:m", Duration::from_millis(2));
        m.observe("s:\"x\"", Duration::from_secs(60));
        let text = m.render();
        let name = "kar_user_code_invocation_durations_histogram_seconds";
        assert!(text.contains(&format!("{name}_bucket{{path=\"T:m\",le=\"0.0005\"}} 1\n")));
        assert!(text.contains(&format!("{name}_bucket{{path=\"T:m\",le=\"0.0025\"}} 2\n")));
        assert!(text.contains(&format!("{name}_count{{path=\"T:m\"}} 2\n")));
        assert!(text.contains(&format!(
            "{name}_bucket{{path=\"s:\\\"x\\\"\",le=\"30\"}} 0\n"
        )));
        assert!(text.contains(&format!(
            "{name}_bucket{{path=\"s:\\\"x\\\"\",le=\"+Inf\"}} 1\n"
        )));
    }
}
