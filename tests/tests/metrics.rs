//! The Prometheus metrics of the runtime port (`GET /metrics`) on a real `kar run`, on
//! both stores: the reminder gauges follow reminders being scheduled and cancelled,
//! and the store's round-trip histogram fills (Redis: KAR's
//! `kar_redis_request_durations_histogram_seconds`, per script; embedded:
//! `kar_store_request_durations_histogram_seconds`, per read or write).

use kar_tests::{free_port, http1, store_test, unique_app, Component};
use std::net::Ipv4Addr;
use std::time::Duration;

const READY: Duration = Duration::from_secs(60);
const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn metrics(port: u16) -> String {
    let reply = http1(LOCAL, port, "GET", "/metrics", &[], b"").unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.text()
}

/// The value of the series `series` (name and labels, exactly as rendered).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

fn schedule(port: u16, actor: &str, id: &str) {
    let body = br#"{"path":"/tick","targetTime":"2099-01-01T00:00:00Z","period":"1h"}"#;
    let path = format!("/kar/v1/actor/Ticker/{actor}/reminders/{id}");
    let reply = http1(
        LOCAL,
        port,
        "PUT",
        &path,
        &[("Content-Type", "application/json")],
        body,
    )
    .unwrap();
    assert!(reply.status < 300, "{} {}", reply.status, reply.text());
}

store_test!(fn reminder_gauges_and_store_histograms(store) {
    let app = unique_app("metrics");
    let port = free_port();
    let sidecar = Component::new(store, &app).runtime_port(port).spawn();
    sidecar.expect_output("KAR_RUNTIME_PORT=", READY);

    let before = metrics(port);
    assert_eq!(value(&before, "kar_actors_active_reminders_gauge"), Some(0.0), "{before}");
    assert_eq!(value(&before, "kar_actors_cancelled_reminders_gauge"), Some(0.0), "{before}");
    assert_eq!(value(&before, "kar_requests_paused_gauge"), Some(0.0), "{before}");

    schedule(port, "a", "r1");
    schedule(port, "a", "r2");
    schedule(port, "b", "r1");
    let text = metrics(port);
    assert_eq!(value(&text, "kar_actors_active_reminders_gauge"), Some(3.0), "{text}");

    let reply = http1(LOCAL, port, "DELETE", "/kar/v1/actor/Ticker/a/reminders/r1", &[], b"")
        .unwrap();
    assert!(reply.status < 300, "{} {}", reply.status, reply.text());
    let text = metrics(port);
    assert_eq!(value(&text, "kar_actors_active_reminders_gauge"), Some(2.0), "{text}");
    assert_eq!(value(&text, "kar_actors_cancelled_reminders_gauge"), Some(1.0), "{text}");

    let reply = http1(LOCAL, port, "DELETE", "/kar/v1/actor/Ticker/b/reminders", &[], b"")
        .unwrap();
    assert!(reply.status < 300, "{} {}", reply.status, reply.text());
    let text = metrics(port);
    assert_eq!(value(&text, "kar_actors_active_reminders_gauge"), Some(1.0), "{text}");
    assert_eq!(value(&text, "kar_actors_cancelled_reminders_gauge"), Some(2.0), "{text}");

    // The store histogram: every schedule was a store round trip.
    let (name, command) = match store.kind() {
        "redis" => ("kar_redis_request_durations_histogram_seconds", "reminder_schedule"),
        _ => ("kar_store_request_durations_histogram_seconds", "write"),
    };
    assert!(text.contains(&format!("# TYPE {name} histogram\n")), "{text}");
    let count = value(&text, &format!("{name}_count{{command=\"{command}\"}}"))
        .unwrap_or_else(|| panic!("no {name} for {command}:\n{text}"));
    assert!(count >= 3.0, "{count}: {text}");
    let inf = value(&text, &format!("{name}_bucket{{command=\"{command}\",le=\"+Inf\"}}"));
    assert_eq!(inf, Some(count), "{text}");
});
