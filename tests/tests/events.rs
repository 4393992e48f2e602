//! Events end to end, on both stores, with the published SDKs: a JS client publishes
//! structured-mode CloudEvents (npm `cloudevents`) to a global topic; a JS actor of the
//! same application (`tests/apps/js/events/server.js`, subscribed with kar-sdk's
//! `events.subscribe`) and a Python actor of ANOTHER application
//! (`tests/apps/python/events/server.py`, subscribed with the Python SDK's
//! `events_create_subscription`) each receive them in order. Then the Python
//! subscriber's sidecar is killed with SIGKILL while events keep coming, its component
//! is started again, and delivery resumes without a gap (duplicates are allowed:
//! at-least-once). The tests wait for the lines the subscribers print.

use kar_tests::{node, node_client, python, store_test, unique_app, Component, Process, Store};
use rustix::process::{kill_process, Pid, Signal};
use std::collections::BTreeSet;
use std::time::Duration;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(60);

fn js_server(store: &Store, app: &str) -> Process {
    Component::new(store, app)
        .name("js event server")
        .actors(&["JsSub"])
        .h2c()
        .command(node("events/server.js", &[]))
        .spawn()
}

fn py_server(store: &Store, app: &str, name: &str) -> Process {
    Component::new(store, app)
        .name(name)
        .actors(&["PySub"])
        .h2c()
        .command(python("events/server.py", &[]))
        .spawn()
}

fn js_client(store: &Store, app: &str, args: &[&str]) {
    node_client(store, app, "events/client.js", args)
        .spawn()
        .expect_success(CLIENT_TIMEOUT);
}

/// The sequence numbers of the lines ending in `<marker><n>` of `output` (the sidecar
/// prefixes the component's lines with a time stamp), in print order.
fn received(output: &str, marker: &str) -> Vec<u32> {
    output
        .lines()
        .filter_map(|line| line.split_once(marker))
        .filter_map(|(_, n)| n.trim().parse().ok())
        .collect()
}

store_test!(
    /// CloudEvents published by a JS client reach a JS subscriber of the same
    /// application and a Python subscriber of another one, in order; killing the
    /// Python subscriber's sidecar loses nothing.
    fn cloudevents_reach_subscribers_across_apps_and_survive_a_sidecar_kill(store) {
        let js_app = unique_app("events-js");
        let py_app = unique_app("events-py");
        let topic = unique_app("topic");
        let js = js_server(store, &js_app);
        let mut py = py_server(store, &py_app, "python event server");

        js_client(store, &js_app, &["setup", &topic]);
        let mut subscribe = Component::new(store, &py_app)
            .name("python event client")
            .env("KAR_REQUEST_TIMEOUT", "60")
            .command(python("events/client.py", &[&topic]))
            .spawn();
        subscribe.expect_success(CLIENT_TIMEOUT);

        js_client(store, &js_app, &["publish", &topic, "1", "10"]);
        js.expect_line("js 1 got 10", DELIVERY_TIMEOUT);
        py.expect_line("py 1 got 10", DELIVERY_TIMEOUT);
        // In order, each once (no failure happened).
        let expected: Vec<u32> = (1..=10).collect();
        assert_eq!(received(&js.output(), "js 1 got "), expected);
        assert_eq!(received(&py.output(), "py 1 got "), expected);

        // SIGKILL to the Python subscriber's sidecar (not its component) while events
        // are being delivered: the mesh sees a member die with a delivery in flight.
        // Events published meanwhile wait in the store.
        let mut publisher =
            node_client(store, &js_app, "events/client.js", &["publish", &topic, "11", "40"]).spawn();
        py.expect_line("py 1 got 12", DELIVERY_TIMEOUT);
        kill_process(
            Pid::from_raw(py.pid() as i32).expect("pid"),
            Signal::KILL,
        )
        .expect("kill the sidecar");
        py.wait(Duration::from_secs(10));
        publisher.expect_success(CLIENT_TIMEOUT);
        let restarted = py_server(store, &py_app, "python event server (restarted)");
        js.expect_line("js 1 got 40", DELIVERY_TIMEOUT);
        restarted.expect_line("py 1 got 40", DELIVERY_TIMEOUT);

        let expected: Vec<u32> = (1..=40).collect();
        assert_eq!(received(&js.output(), "js 1 got "), expected);
        // At-least-once across the kill: every event arrived (the old component may
        // have printed some before the kill, the new one the rest, an event in flight
        // at the kill possibly twice); the new component got them in order.
        let before = received(&py.output(), "py 1 got ");
        let after = received(&restarted.output(), "py 1 got ");
        let all: BTreeSet<u32> = before.iter().chain(&after).copied().collect();
        assert_eq!(
            all.into_iter().collect::<Vec<_>>(),
            expected,
            "before the kill {before:?}, after {after:?}"
        );
        assert!(after.windows(2).all(|w| w[0] <= w[1]), "out of order: {after:?}");
    }
);
