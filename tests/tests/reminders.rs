//! Actor reminders end to end, on both stores: a JS actor server
//! (`tests/apps/js/reminders/server.js`) whose reminders are scheduled, read and
//! cancelled by clients written with the published SDKs (kar-sdk's
//! `actor.reminders.*`, the Python SDK's `actor_*_reminder`). The tests wait for the
//! lines the server prints on each firing; fixed waits only bound how long a cancelled
//! reminder is watched for firings that must not come.

use kar_tests::{node, pid_is_gone, python, store_test, unique_app, Component, Process, Store};
use rustix::process::{kill_process, Pid, Signal};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// Period of the reminder of the kill test (ms): long enough that the kill lands
/// between two firings with a wide margin on a loaded machine.
const BEAT_MS: i64 = 1000;

/// Downtime of the kill test: longer than the Redis membership lease (3 s), so the
/// restarted component's join finds the killed member dead at once, and several periods.
const DOWNTIME: Duration = Duration::from_secs(4);

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// The `(at, next)` of every `beat <id> beat #n at=.. next=..` line, in print order.
fn beats(process: &Process, id: &str) -> Vec<(i64, i64)> {
    let marker = format!("beat {id} beat #");
    process
        .output()
        .lines()
        .filter_map(|line| line.split_once(&marker))
        .map(|(_, rest)| {
            let field = |name: &str| -> i64 {
                rest.split(' ')
                    .find_map(|f| f.strip_prefix(name))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("bad beat line {rest:?}"))
            };
            (field("at="), field("next="))
        })
        .collect()
}

/// The pid the JS server printed when it started listening.
fn component_pid(process: &Process) -> i32 {
    await_line_part(process, " pid ");
    process
        .output()
        .lines()
        .find_map(|l| l.split_once("reminder server listening on "))
        .and_then(|(_, rest)| rest.split(" pid ").nth(1))
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {}", process.output()))
}

fn await_line_part(process: &Process, needle: &str) {
    assert!(
        process.wait_for_output(needle, FIRING_TIMEOUT),
        "{} did not print {needle:?} within {FIRING_TIMEOUT:?}; output:\n{}",
        process.name(),
        process.output()
    );
}

/// Consecutive differences of the firing times.
fn gaps(beats: &[(i64, i64)]) -> Vec<i64> {
    beats.windows(2).map(|w| w[1].0 - w[0].0).collect()
}

store_test!(
    /// SIGKILL of the sidecar hosting an actor with a periodic reminder (its component
    /// dies with it): once a new component offers the type the reminder keeps firing,
    /// no firing is executed twice, and the periods that fell in the downtime are
    /// skipped (one catch-up firing, decision §9.10), the schedule keeping its phase.
    fn periodic_reminder_survives_a_sigkill_of_its_host(store) {
        let app = unique_app("reminders-kill");
        // `-v debug`: the sidecars log every firing the store made, the authority
        // the executions are counted against.
        let mut old = server(store, &app).verbosity("debug").spawn();
        let node_pid = component_pid(&old);
        // The clients are members with a component too, whose reminder loops may fire:
        // their firings are logged and counted as well.
        let client = |args: &[&str]| {
            let mut client = Component::new(store, &app)
                .name(&format!("js reminder client {}", args.join(" ")))
                .verbosity("debug")
                .command(node("reminders/client.js", args))
                .spawn();
            client.expect_success(CLIENT_TIMEOUT);
            client
        };
        let schedule = client(&["beat", "k1", &BEAT_MS.to_string()]);
        await_line_part(&old, "beat k1 beat #3 ");
        // Half a period after a firing: no firing is in flight when the kill lands.
        std::thread::sleep(Duration::from_millis(BEAT_MS as u64 / 2));
        kill_process(Pid::from_raw(old.pid() as i32).expect("pid"), Signal::KILL)
            .expect("kill the sidecar");
        let killed_at = unix_ms();
        old.wait(Duration::from_secs(10));
        // kill -9 of `kar run` alone takes its component down (parent-death signal).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !pid_is_gone(node_pid as u32) {
            assert!(Instant::now() < deadline, "the component {node_pid} outlived its sidecar");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(DOWNTIME);

        let new = server(store, &app)
            .name("js reminder server (restarted)")
            .verbosity("debug")
            .spawn();
        await_line_part(&new, "beat k1 beat #4 ");
        let cancel = client(&["cancel-all", "k1"]);
        assert!(cancel.output().contains("cancelled all 1\n"), "{}", cancel.output());

        // Every firing the store made was executed once: the executions a firing in
        // flight at the cancel still owes are awaited, then none more came.
        let fired = "reminder beat of JsTimer k1 fired request=";
        let firings: usize = [&old, &new, &schedule, &cancel]
            .into_iter()
            .map(|p| count_lines(p, fired))
            .sum();
        let before = beats(&old, "k1");
        let owed = firings - before.len();
        await_line_part(&new, &format!("beat k1 beat #{owed} "));
        let after = beats(&new, "k1");
        assert_eq!(
            before.len() + after.len(),
            firings,
            "executions (before the kill {before:?}, after {after:?}) != {firings} firings"
        );

        // Before the kill: one firing per period.
        for gap in gaps(&before) {
            assert!(gap > BEAT_MS / 2 && gap < BEAT_MS * 3 / 2, "gaps before the kill {:?}", gaps(&before));
        }
        // Every target the reminder advanced to is on the original schedule.
        let first = before[0].1;
        for (_, next) in before.iter().chain(&after) {
            assert_eq!((next - first) % BEAT_MS, 0, "off the schedule: {before:?} {after:?}");
        }
        // After the restart: one catch-up firing for the downtime (it may come just
        // before the next period's), then one per period: missed periods are not replayed.
        let short = gaps(&after).into_iter().filter(|gap| *gap <= BEAT_MS / 2).count();
        assert!(short <= 1, "missed periods replayed: gaps after the restart {:?}", gaps(&after));
        for gap in gaps(&after) {
            assert!(gap < BEAT_MS * 3 / 2, "gaps after the restart {:?}", gaps(&after));
        }
        // What was skipped fell in the downtime: the first target left unfired came
        // after the kill, and no more periods were skipped than passed until the
        // catch-up firing.
        let (last_before, first_after) = (before[before.len() - 1], after[0]);
        assert!(last_before.1 > killed_at, "a target before the kill was skipped");
        let skipped = (first_after.1 - last_before.1) / BEAT_MS - 1;
        let downtime_periods = (first_after.0 - killed_at) / BEAT_MS + 1;
        assert!(
            skipped >= 1 && skipped <= downtime_periods,
            "skipped {skipped} periods, {downtime_periods} in the downtime: {before:?} {after:?}"
        );
        eprintln!(
            "{firings} firings, {} before the kill, {} after; skipped {skipped} of {downtime_periods} periods in the downtime",
            before.len(),
            after.len()
        );
    }
);
