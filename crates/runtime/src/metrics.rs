//! Prometheus metrics of a runtime (spec §2.9, README "Traces and metrics"), rendered
//! in the Prometheus text format at `/metrics` of the runtime port:
//!
//! * how long the component takes to answer, per `<type>:<method>`,
//!   `<type>:activate`, `<type>:deactivate` and `<service>:<path>`;
//! * the store round trips of the process (`kar_store_api::timing`);
//! * what this runtime executed: requests completed by outcome, delivery attempts
//!   (first or retried);
//! * the reminders cancelled through this runtime, and, read from the store at each
//!   scrape, the application's active reminders and paused requests.

use kar_store_api::timing::{self, Histogram};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// The outcome classes of `kar_requests_completed_total`.
const OUTCOMES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "failed"];

#[derive(Default)]
pub(crate) struct Metrics {
    /// Per `<type>` or `<service>`, per method or path: the label `<owner>:<what>` is
    /// only put together at a scrape, so that a call allocates nothing here.
    invocations: Mutex<BTreeMap<String, BTreeMap<String, Histogram>>>,
    /// Requests completed here, per class of [`OUTCOMES`].
    completed: [AtomicU64; OUTCOMES.len()],
    first_attempts: AtomicU64,
    retried_attempts: AtomicU64,
    /// Reminders cancelled through this runtime.
    pub(crate) cancelled_reminders: AtomicU64,
}

/// The `path` label of a component call, `<owner>:<what>`: `<type>:<method>`,
/// `<type>:activate`, `<service>:<path>`...
#[derive(Clone, Copy)]
pub(crate) struct Label<'a> {
    pub owner: &'a str,
    pub what: &'a str,
}

impl std::fmt::Display for Label<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.owner, self.what)
    }
}

/// What a scrape read from the store (`None`: could not be read).
#[derive(Default)]
pub(crate) struct StoreGauges {
    pub active_reminders: Option<u64>,
    pub paused_requests: Option<u64>,
    pub subscription_lags: Option<Vec<kar_store_api::SubscriptionLag>>,
    /// Requests routed to this member and not finished (`Executor::executing`).
    pub inbox_depth: Option<u64>,
}

impl Metrics {
    /// Records one answer of the component that took `took`.
    pub(crate) fn observe(&self, label: Label<'_>, took: Duration) {
        let mut invocations = self.invocations.lock().unwrap_or_else(|e| e.into_inner());
        // Keys are only allocated for a new series.
        let whats = match invocations.get_mut(label.owner) {
            Some(whats) => whats,
            None => invocations.entry(label.owner.to_string()).or_default(),
        };
        match whats.get_mut(label.what) {
            Some(histogram) => histogram.observe(took),
            None => whats
                .entry(label.what.to_string())
                .or_default()
                .observe(took),
        }
    }

    /// A request executed here completed with `outcome`.
    pub(crate) fn completed(&self, outcome: &kar_protocol::Outcome) {
        let class = match outcome {
            // 1xx..5xx; anything above 599 counts as 5xx.
            kar_protocol::Outcome::Reply(reply) => {
                usize::from(reply.status / 100).saturating_sub(1).min(4)
            }
            kar_protocol::Outcome::Failed(_) => 5,
        };
        self.completed[class].fetch_add(1, Ordering::Relaxed);
    }

    /// A delivery attempt starts here (`retried`: recovery re-delivered it).
    pub(crate) fn attempt(&self, retried: bool) {
        let counter = if retried {
            &self.retried_attempts
        } else {
            &self.first_attempts
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self, store: &StoreGauges) -> String {
        const NAME: &str = "kar_user_code_invocation_durations_histogram_seconds";
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP {NAME} Duration of calls to the application component."
        );
        let _ = writeln!(out, "# TYPE {NAME} histogram");
        for (owner, whats) in self
            .invocations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            for (what, histogram) in whats {
                histogram.render(&mut out, NAME, "path", &format!("{owner}:{what}"));
            }
        }
        timing::render(&mut out);

        header(
            &mut out,
            "kar_requests_completed_total",
            "counter",
            "Requests executed here, by outcome (HTTP status class of the reply, or failed).",
        );
        for (outcome, count) in OUTCOMES.iter().zip(&self.completed) {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                let _ = writeln!(
                    out,
                    "kar_requests_completed_total{{outcome=\"{outcome}\"}} {count}"
                );
            }
        }
        header(
            &mut out,
            "kar_request_attempts_total",
            "counter",
            "Delivery attempts started here; retried: re-delivered after their executor died.",
        );
        let first = self.first_attempts.load(Ordering::Relaxed);
        let retried = self.retried_attempts.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "kar_request_attempts_total{{retried=\"false\"}} {first}"
        );
        let _ = writeln!(
            out,
            "kar_request_attempts_total{{retried=\"true\"}} {retried}"
        );

        let gauge = |out: &mut String, name: &str, help: &str, value: Option<u64>| {
            if let Some(value) = value {
                header(out, name, "gauge", help);
                let _ = writeln!(out, "{name} {value}");
            }
        };
        gauge(
            &mut out,
            "kar_actors_active_reminders_gauge",
            "Reminders of the application scheduled and not yet done.",
            store.active_reminders,
        );
        let cancelled = self.cancelled_reminders.load(Ordering::Relaxed);
        gauge(
            &mut out,
            "kar_actors_cancelled_reminders_gauge",
            "Reminders cancelled through this runtime since it started.",
            Some(cancelled),
        );
        gauge(
            &mut out,
            "kar_requests_paused_gauge",
            "Requests of the application paused by recovery or an operator.",
            store.paused_requests,
        );
        gauge(
            &mut out,
            "kar_inbox_depth_gauge",
            "Requests routed to this sidecar and not finished: running, or waiting for their actor.",
            store.inbox_depth,
        );
        if let Some(lags) = &store.subscription_lags {
            const LAG: &str = "kar_subscription_lag_gauge";
            header(
                &mut out,
                LAG,
                "gauge",
                "Events of a subscription's topic not yet delivered to it.",
            );
            for lag in lags {
                let s = &lag.subscription;
                let _ = writeln!(
                    out,
                    "{LAG}{{topic=\"{}\",actor_type=\"{}\",actor_id=\"{}\",subscription=\"{}\"}} {}",
                    timing::escape(&s.topic),
                    timing::escape(&s.actor.actor_type),
                    timing::escape(&s.actor.id),
                    timing::escape(&s.id),
                    lag.lag
                );
            }
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_buckets() {
        let m = Metrics::default();
        let label = |owner, what| Label { owner, what };
        m.observe(label("T", "m"), Duration::from_micros(300));
        m.observe(label("T", "m"), Duration::from_millis(2));
        m.observe(label("s", "\"x\""), Duration::from_secs(60));
        m.completed(&kar_protocol::Outcome::Reply(kar_protocol::Reply::text(
            204, "",
        )));
        m.completed(&kar_protocol::Outcome::Failed("gone".into()));
        m.attempt(true);
        let text = m.render(&StoreGauges {
            active_reminders: Some(3),
            ..StoreGauges::default()
        });
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
        assert!(text.contains("kar_requests_completed_total{outcome=\"2xx\"} 1\n"));
        assert!(text.contains("kar_requests_completed_total{outcome=\"failed\"} 1\n"));
        assert!(!text.contains("outcome=\"5xx\""));
        assert!(text.contains("kar_request_attempts_total{retried=\"true\"} 1\n"));
        assert!(text.contains("kar_actors_active_reminders_gauge 3\n"));
        assert!(text.contains("kar_actors_cancelled_reminders_gauge 0\n"));
        assert!(!text.contains("kar_requests_paused_gauge"));
        assert!(!text.contains("kar_subscription_lag_gauge"));
        assert!(!text.contains("kar_inbox_depth_gauge"));
    }

    #[test]
    fn renders_subscription_lags() {
        let subscription = kar_protocol::Subscription {
            actor: kar_protocol::ActorRef {
                actor_type: "Sub".into(),
                id: "a\"1".into(),
            },
            id: "s1".into(),
            path: "/on".into(),
            topic: "news".into(),
            content_type: String::new(),
            group: String::new(),
            oldest: false,
        };
        let text = Metrics::default().render(&StoreGauges {
            subscription_lags: Some(vec![kar_store_api::SubscriptionLag {
                subscription,
                position: 4,
                lag: 7,
                in_flight: false,
            }]),
            inbox_depth: Some(2),
            ..StoreGauges::default()
        });
        assert!(text.contains("kar_inbox_depth_gauge 2\n"), "{text}");
        assert!(text.contains(
            "kar_subscription_lag_gauge{topic=\"news\",actor_type=\"Sub\",actor_id=\"a\\\"1\",subscription=\"s1\"} 7\n"
        ), "{text}");
    }
}
