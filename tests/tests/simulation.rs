//! A reminder-driven simulation, on both stores, with the published JS SDK
//! (`tests/apps/js/simulation/`): hundreds of actors each re-arm a one-shot reminder
//! at every step, a reporter records progress from a periodic reminder, and at the
//! end every actor fired exactly as often as asked (its count is in actor state). Two
//! components offer the actor types, so placement spreads the actors between them.

use kar_tests::{node, store_test, unique_app, Component, Process, Store};
use std::time::Duration;

/// Actors, steps per actor, delay of each step's reminder, period of the reporter.
const CELLS: u32 = 250;
const STEPS: u32 = 200;
const DELAY_MS: u32 = 50;
const REPORT_MS: u32 = 500;

const DRIVER_TIMEOUT: Duration = Duration::from_secs(300);

fn server(store: &Store, app: &str, name: &str) -> Process {
    Component::new(store, app)
        .name(name)
        .actors(&["SimCell", "SimReporter"])
        .h2c()
        .command(node("simulation/server.js", &[]))
        .spawn()
}

store_test!(
    /// 250 actors × 200 reminder firings each, plus a periodic reporter, across two
    /// components: every actor fired exactly 200 times.
    fn reminder_simulation_fires_every_step_exactly_once(store) {
        let app = unique_app("simulation");
        let mut a = server(store, &app, "simulation server a");
        let mut b = server(store, &app, "simulation server b");
        let args = [CELLS, STEPS, DELAY_MS, REPORT_MS].map(|n| n.to_string());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut driver = Component::new(store, &app)
            .name("simulation driver")
            .command(node("simulation/driver.js", &args))
            .spawn();
        let exited = driver.expect_success(DRIVER_TIMEOUT);
        let expected =
            format!("simulation ok: {CELLS} cells x {STEPS} steps fired exactly, progress reported\n");
        assert!(exited.stdout.contains(&expected), "{}", exited.output);
        a.assert_running();
        b.assert_running();
        let output = a.output() + &b.output();
        assert!(!output.contains("OVERSHOOT"), "{output}");
        // Placement spread the cells: both components activated some of them.
        let activated = |p: &Process| p.output().lines().filter(|l| l.contains("activated c")).count();
        let (on_a, on_b) = (activated(&a), activated(&b));
        assert!(on_a > 0 && on_b > 0, "cells activated: {on_a} on a, {on_b} on b");
        let reports = output.lines().filter(|l| l.contains("report #")).count();
        assert!(reports >= 1, "{output}");
        eprintln!("{CELLS} cells x {STEPS} steps: {on_a} on a, {on_b} on b, {reports} reports; {}",
            exited.stdout.lines().find(|l| l.contains("simulation took")).unwrap_or(""));
    }
);
