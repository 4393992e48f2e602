//! Actor reminders end to end, on both stores: a JS actor server
//! (`tests/apps/js/reminders/server.js`) whose reminders are scheduled, read and
//! cancelled by clients written with the published SDKs (kar-sdk's
//! `actor.reminders.*`, the Python SDK's `actor_*_reminder`). The tests wait for the
//! lines the server prints on each firing; fixed waits only bound how long a cancelled
//! reminder is watched for firings that must not come.

use kar_tests::{node, python, store_test, unique_app, Component, Process, Store};
use std::time::{Duration, Instant};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
const FIRING_TIMEOUT: Duration = Duration::from_secs(30);

fn server<'a>(store: &'a Store, app: &str) -> Component<'a> {
    Component::new(store, app)
        .name("js reminder server")
        .actors(&["JsTimer"])
        .h2c()
        .command(node("reminders/server.js", &[]))
}

fn js_client(store: &Store, app: &str, args: &[&str]) -> Process {
    Component::new(store, app)
        .name(&format!("js reminder client {}", args.join(" ")))
        .command(node("reminders/client.js", args))
        .spawn()
}

fn await_line(process: &Process, line: &str, timeout: Duration) {
    assert!(
        process.wait_for_output(&format!("{line}\n"), timeout),
        "{} did not print {line:?} within {timeout:?}; output:\n{}",
        process.name(),
        process.output()
    );
}

/// How many lines of `process` contain `needle`.
fn count_lines(process: &Process, needle: &str) -> usize {
    process
        .output()
        .lines()
        .filter(|line| line.contains(needle))
        .count()
}

store_test!(
    /// A periodic reminder with arguments fires at its period, a one-shot fires once,
    /// cancelling by id and cancelling all stop them, and get returns the spec's shapes.
    fn js_reminders_fire_and_cancel(store) {
        let app = unique_app("reminders");
        let server = server(store, &app).spawn();
        js_client(store, &app, &["schedule", "t1"]).expect_success(CLIENT_TIMEOUT);

        await_line(&server, "tick t1 p 7 #1", FIRING_TIMEOUT);
        let first = Instant::now();
        await_line(&server, "tick t1 p 7 #3", FIRING_TIMEOUT);
        // Two periods of 500 ms between firing 1 and firing 3 (tolerances: the loop
        // ticks every 100 ms, the machine may be loaded).
        let two_periods = first.elapsed();
        assert!(
            two_periods >= Duration::from_millis(800) && two_periods < Duration::from_secs(10),
            "firings 1 to 3 took {two_periods:?}"
        );
        await_line(&server, "once t1 o", FIRING_TIMEOUT);

        js_client(store, &app, &["cancel-one", "t1"]).expect_success(CLIENT_TIMEOUT);
        let ticks = count_lines(&server, "tick t1 p 7");
        // Three more periods: at most a firing already in flight when it was cancelled.
        std::thread::sleep(Duration::from_millis(1500));
        let after = count_lines(&server, "tick t1 p 7");
        assert!(after <= ticks + 1, "{ticks} ticks at cancel, {after} later");
        assert_eq!(count_lines(&server, "once t1 o"), 1, "{}", server.output());

        let mut client = js_client(store, &app, &["cancel-all", "t1"]);
        client.expect_success(CLIENT_TIMEOUT);
        assert!(client.output().contains("cancelled all 1\n"), "{}", client.output());
        // The far reminder never fired.
        assert_eq!(count_lines(&server, "tick t1 l"), 0);
    }
);

store_test!(
    /// The Python SDK's reminder functions return the spec's shapes.
    fn python_reminder_shapes(store) {
        let app = unique_app("reminders-py");
        let _server = server(store, &app).spawn();
        Component::new(store, &app)
            .name("python reminder client")
            .env("KAR_REQUEST_TIMEOUT", "60")
            .command(python("reminders/client.py", &["p1"]))
            .spawn()
            .expect_success(CLIENT_TIMEOUT);
    }
);
