//! Actors end to end, on both stores: actor servers written with the published SDKs
//! (`tests/apps/js/actors/server.js`: kar-sdk's `sys.actorRuntime` served by `sys.h2c`;
//! `tests/apps/python/actors/server.py`: the Python SDK's `actor_runtime` served by
//! hypercorn) under `kar run -h2c -actors ...`, exercised by JS and Python clients in
//! their own `kar run` components.
//!
//! Components of one test start at the same moment: requests to an actor type that no
//! component hosts yet are parked until one joins, so no test waits for a server to be
//! ready. Where a test must wait for something (a deactivation), it waits for the line
//! the server prints.

use kar_tests::{node, node_client, python, store_test, unique_app, Component, Process, Store};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

/// Upper bound for a client component to finish (they take a few seconds).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// The JS actor server's types, and the Python one's.
const JS_TYPES: &[&str] = &["JsCounter", "JsOther", "JsLog"];
const PY_TYPES: &[&str] = &["PyCounter", "PyOther"];

fn expect_all(clients: &mut [Process]) {
    for client in clients {
        client.expect_success(CLIENT_TIMEOUT);
    }
}

fn js_server<'a>(store: &'a Store, app: &str) -> Component<'a> {
    Component::new(store, app)
        .name("js actor server")
        .actors(JS_TYPES)
        .h2c()
        .command(node("actors/server.js", &[]))
}

fn py_server<'a>(store: &'a Store, app: &str) -> Component<'a> {
    Component::new(store, app)
        .name("python actor server")
        .actors(PY_TYPES)
        .h2c()
        .command(python("actors/server.py", &[]))
}

fn js_client(store: &Store, app: &str, args: &[&str]) -> Process {
    node_client(store, app, "actors/client.js", args).spawn()
}

fn py_client(store: &Store, app: &str, args: &[&str]) -> Process {
    Component::new(store, app)
        .name(&format!("python client {}", args.join(" ")))
        // The Python SDK's client timeout (KAR_REQUEST_TIMEOUT, read as seconds) is 15 s
        // by default: too short for a first call parked while a server starts on a
        // loaded machine.
        .env("KAR_REQUEST_TIMEOUT", "60")
        .command(python("actors/client.py", args))
        .spawn()
}

store_test!(
    /// call, rootCall, tell, asyncCall + await, re-entrancy A→B→A (same and mixed
    /// languages), errors thrown by methods, unknown methods, tail calls (a chain of 10
    /// self tail calls, to another actor type, to a service) and actor removal, from the
    /// JS and the Python SDK against JS and Python actors.
    fn invocations(store) {
        let app = unique_app("actors");
        let _js = js_server(store, &app).spawn();
        let _py = py_server(store, &app).spawn();
        let _greeter = Component::new(store, &app)
            .name("js service")
            .service("greeter")
            .command(node("service.js", &[]))
            .spawn();
        expect_all(&mut [
            js_client(store, &app, &["invocations", "100", "greeter"]),
            py_client(store, &app, &["invocations", "300", "greeter"]),
        ]);
    }
);

store_test!(
    /// Every state and submap function of both SDKs, with the results the SDKs make of
    /// the replies. State routes need no actor server.
    fn state_operations(store) {
        let app = unique_app("state");
        expect_all(&mut [
            js_client(store, &app, &["state", "100"]),
            py_client(store, &app, &["state", "200"]),
        ]);
    }
);

store_test!(
    /// With `-actor_collector_interval 1s` idle instances are deactivated (the SDKs call
    /// `deactivate`); the next call activates a new instance that finds the state kept
    /// and the in-memory fields gone.
    fn state_survives_deactivation(store) {
        let app = unique_app("deact");
        let js = js_server(store, &app).arg("-actor_collector_interval").arg("1s").spawn();
        let py = py_server(store, &app).arg("-actor_collector_interval").arg("1s").spawn();
        let instances = [("JsCounter", "1"), ("PyCounter", "1"), ("JsCounter", "2"), ("PyCounter", "2")];
        let phase = |scenario: &str| -> Vec<Process> {
            instances
                .iter()
                .map(|(ty, id)| {
                    if *id == "1" {
                        js_client(store, &app, &[scenario, ty, id])
                    } else {
                        py_client(store, &app, &[scenario, ty, id])
                    }
                })
                .collect()
        };
        expect_all(&mut phase("deact-before"));
        for (ty, id) in instances {
            let server = if ty.starts_with("Js") { &js } else { &py };
            server.expect_line(&format!("deactivated {ty}/{id}"), Duration::from_secs(30));
        }
        expect_all(&mut phase("deact-after"));
        for (ty, id) in instances {
            let server = if ty.starts_with("Js") { &js } else { &py };
            assert!(
                server.output().contains(&format!("activated {ty}/{id} (activation 2)\n")),
                "{} should have re-activated {ty}/{id}; output:\n{}",
                server.name(),
                server.output()
            );
        }
    }
);

store_test!(
    /// A method that calls its own instance in a new session (rootCall) waits behind
    /// itself: with `-actor_busy_timeout 2s` the inner call fails after about 2 s with
    /// `500 failed to send message: Possible deadlock: timed out waiting in instance
    /// queue ...`, and the instance answers again afterwards.
    fn self_call_in_new_session_times_out(store) {
        let app = unique_app("deadlock");
        let _js = js_server(store, &app).arg("-actor_busy_timeout").arg("2s").spawn();
        let _py = py_server(store, &app).arg("-actor_busy_timeout").arg("2s").spawn();
        expect_all(&mut [
            js_client(store, &app, &["deadlock", "JsCounter", "1"]),
            js_client(store, &app, &["deadlock", "PyCounter", "1"]),
            py_client(store, &app, &["deadlock", "JsCounter", "2"]),
            py_client(store, &app, &["deadlock", "PyCounter", "2"]),
        ]);
    }
);

store_test!(
    /// 5,000 sequential actor calls from one JS client over its single HTTP/2 session
    /// all succeed with the right values.
    fn sequential_calls(store) {
        let app = unique_app("seq");
        let _js = js_server(store, &app).spawn();
        let mut client = js_client(store, &app, &["sequential", "JsCounter", "seq", "5000"]);
        let exited = client.expect_success(Duration::from_secs(300));
        assert!(
            exited.stdout.contains("ok 5000 sequential calls to JsCounter/seq"),
            "output:\n{}",
            exited.output
        );
    }
);

store_test!(
    /// Dining philosophers (tests/apps/js/actors/philosophers.js) on two server
    /// components: two tables of 5 philosophers eat 10 servings each; no fork is ever
    /// held by two philosophers; tables, philosophers and forks are removed at the end.
    fn dining_philosophers(store) {
        let app = unique_app("dp");
        let servers: Vec<Process> = (0..2)
            .map(|i| {
                Component::new(store, &app)
                    .name(&format!("philosophers server {i}"))
                    .actors(&["Cafe", "Table", "Philosopher", "Fork"])
                    .h2c()
                    .command(node("actors/philosophers.js", &[]))
                    .spawn()
            })
            .collect();
        let mut driver = Component::new(store, &app)
            .name("philosophers driver")
            .command(node("actors/client.js", &["philosophers", "cafe", "2", "5", "10", "240"]))
            .spawn();
        driver.expect_success(Duration::from_secs(300));
        for server in &servers {
            assert!(
                !server.output().contains("VIOLATION"),
                "{} reported a violation; output:\n{}",
                server.name(),
                server.output()
            );
        }
    }
);

/// One line of the concurrency probe's logs (see `JsLog` in tests/apps/js/actors/server.js).
#[derive(Debug)]
enum Event {
    Activate {
        id: String,
        at: u128,
        pid: u32,
    },
    Deactivate {
        id: String,
        at: u128,
        pid: u32,
    },
    Enter {
        id: String,
        at: u128,
        pid: u32,
        tag: String,
    },
    Exit {
        id: String,
        at: u128,
        pid: u32,
        tag: String,
        count: u64,
    },
}

fn parse_event(line: &str) -> Option<Event> {
    let f: Vec<&str> = line.split(' ').collect();
    let id = f.get(1)?.to_string();
    let at: u128 = f.get(2)?.parse().ok()?;
    let pid: u32 = f.get(3)?.parse().ok()?;
    Some(match *f.first()? {
        "activate" => Event::Activate { id, at, pid },
        "deactivate" => Event::Deactivate { id, at, pid },
        "enter" => Event::Enter {
            id,
            at,
            pid,
            tag: f.get(4)?.to_string(),
        },
        "exit" => Event::Exit {
            id,
            at,
            pid,
            tag: f.get(4)?.to_string(),
            count: f.get(5)?.parse().ok()?,
        },
        _ => return None,
    })
}

fn read_events(dir: &Path) -> Vec<Event> {
    let mut events = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read the log directory") {
        let path = entry.expect("log directory entry").path();
        let text = std::fs::read_to_string(&path).expect("read a log file");
        for line in text.lines() {
            let event = parse_event(line)
                .unwrap_or_else(|| panic!("malformed line in {}: {line:?}", path.display()));
            events.push(event);
        }
    }
    events
}

/// An invocation of `work`: when it entered and left, in which server process.
#[derive(Debug, Clone)]
#[allow(dead_code)] // `tag` is read through `Debug`, in failure messages
struct Invocation {
    tag: String,
    pid: u32,
    enter: u128,
    exit: u128,
    count: u64,
}

/// Checks the probe's logs: per instance, no two invocations overlap (across all server
/// processes), no update was lost (the counts written are exactly 1..n), every invocation
/// ran while the instance was active in that process, and no instance was active in two
/// processes at once. Returns the number of invocations.
fn check_probe_logs(events: &[Event]) -> usize {
    let mut enters: HashMap<(String, String), (u32, u128)> = HashMap::new();
    let mut invocations: BTreeMap<String, Vec<Invocation>> = BTreeMap::new();
    // Per instance: (pid, activated at, deactivated at) in log order per process.
    let mut activations: BTreeMap<String, Vec<(u32, u128, Option<u128>)>> = BTreeMap::new();
    for event in events {
        match event {
            Event::Enter { id, at, pid, tag } => {
                let previous = enters.insert((id.clone(), tag.clone()), (*pid, *at));
                assert!(previous.is_none(), "{id}: call {tag} entered twice");
            }
            Event::Exit { .. } | Event::Activate { .. } | Event::Deactivate { .. } => {}
        }
    }
    for event in events {
        match event {
            Event::Exit {
                id,
                at,
                pid,
                tag,
                count,
            } => {
                let (enter_pid, enter) = enters
                    .remove(&(id.clone(), tag.clone()))
                    .unwrap_or_else(|| panic!("{id}: call {tag} left without entering"));
                assert_eq!(
                    enter_pid, *pid,
                    "{id}: call {tag} entered and left in different processes"
                );
                invocations.entry(id.clone()).or_default().push(Invocation {
                    tag: tag.clone(),
                    pid: *pid,
                    enter,
                    exit: *at,
                    count: *count,
                });
            }
            Event::Activate { id, at, pid } => activations
                .entry(id.clone())
                .or_default()
                .push((*pid, *at, None)),
            Event::Enter { .. } | Event::Deactivate { .. } => {}
        }
    }
    assert!(enters.is_empty(), "calls that never left: {enters:?}");
    for event in events {
        if let Event::Deactivate { id, at, pid } = event {
            let spans = activations.entry(id.clone()).or_default();
            let open = spans
                .iter_mut()
                .filter(|(p, start, end)| p == pid && end.is_none() && start <= at)
                .max_by_key(|(_, start, _)| *start)
                .unwrap_or_else(|| panic!("{id}: deactivated in {pid} without being active there"));
            open.2 = Some(*at);
        }
    }

    for (id, spans) in &activations {
        for (i, a) in spans.iter().enumerate() {
            for b in &spans[i + 1..] {
                let (a_end, b_end) = (a.2.unwrap_or(u128::MAX), b.2.unwrap_or(u128::MAX));
                assert!(
                    a_end <= b.1 || b_end <= a.1,
                    "{id} was active in two places at once: {a:?} and {b:?} (pid, activated, deactivated)"
                );
            }
        }
    }

    let mut total = 0;
    for (id, calls) in &mut invocations {
        calls.sort_by_key(|c| c.enter);
        for pair in calls.windows(2) {
            assert!(
                pair[0].exit < pair[1].enter,
                "{id}: invocations overlapped: {:?} and {:?}",
                pair[0],
                pair[1]
            );
        }
        let mut counts: Vec<u64> = calls.iter().map(|c| c.count).collect();
        counts.sort_unstable();
        let expected: Vec<u64> = (1..=calls.len() as u64).collect();
        assert_eq!(
            counts,
            expected,
            "{id}: the counts written are not 1..{} (lost updates)",
            calls.len()
        );
        let spans = activations.get(id).map(Vec::as_slice).unwrap_or_default();
        for call in calls.iter() {
            assert!(
                spans.iter().any(|(pid, start, end)| *pid == call.pid
                    && *start <= call.enter
                    && end.is_none_or(|end| call.exit <= end)),
                "{id}: {call:?} ran outside of an activation in its process; activations: {spans:?}"
            );
        }
        total += calls.len();
    }
    total
}

store_test!(
    /// 3 server components host `JsLog`; 4 client components run 50 concurrent loops of
    /// 10 calls each over 4 instances. The instances log every invocation's entry and
    /// exit (CLOCK_MONOTONIC, shared by all processes): no two invocations of one
    /// instance overlapped, across all processes; no update of its state was lost; no
    /// instance was active in two sidecars at once.
    fn concurrent_flows_never_overlap(store) {
        const SERVERS: usize = 3;
        const CLIENTS: usize = 4;
        const LOOPS: usize = 50;
        const CALLS: usize = 10;
        let app = unique_app("flows");
        let logs = tempfile::tempdir().expect("a log directory");
        let _servers: Vec<Process> = (0..SERVERS)
            .map(|i| {
                js_server(store, &app)
                    .name(&format!("js actor server {i}"))
                    .env("ACTOR_LOG_DIR", logs.path())
                    .spawn()
            })
            .collect();
        let (loops, calls) = (LOOPS.to_string(), CALLS.to_string());
        let mut clients: Vec<Process> = (0..CLIENTS)
            .map(|i| {
                let tag = format!("c{i}");
                js_client(store, &app, &["flows", "JsLog", "4", &loops, &calls, &tag])
            })
            .collect();
        for client in &mut clients {
            client.expect_success(Duration::from_secs(300));
        }
        let events = read_events(logs.path());
        let mut per_process: BTreeMap<u32, usize> = BTreeMap::new();
        for event in &events {
            if let Event::Exit { pid, .. } = event {
                *per_process.entry(*pid).or_default() += 1;
            }
        }
        eprintln!("invocations per server process (pid: count): {per_process:?}");
        let total = check_probe_logs(&events);
        assert_eq!(total, CLIENTS * LOOPS * CALLS, "invocations logged");
    }
);

/// The log checker itself: it must reject what it is meant to catch.
mod probe_checker {
    use super::{check_probe_logs, parse_event, Event};

    fn events(lines: &[&str]) -> Vec<Event> {
        lines
            .iter()
            .map(|l| parse_event(l).expect("a well-formed line"))
            .collect()
    }

    #[test]
    fn accepts_serial_invocations() {
        let log = events(&[
            "activate a0 10 1",
            "enter a0 11 1 x",
            "exit a0 12 1 x 1",
            "enter a0 13 1 y",
            "exit a0 14 1 y 2",
            "deactivate a0 15 1",
            "activate a0 16 2",
            "enter a0 17 2 z",
            "exit a0 18 2 z 3",
        ]);
        assert_eq!(check_probe_logs(&log), 3);
    }

    #[test]
    #[should_panic(expected = "invocations overlapped")]
    fn rejects_overlapping_invocations() {
        check_probe_logs(&events(&[
            "activate a0 10 1",
            "enter a0 11 1 x",
            "enter a0 12 1 y",
            "exit a0 13 1 x 1",
            "exit a0 14 1 y 2",
        ]));
    }

    #[test]
    #[should_panic(expected = "lost updates")]
    fn rejects_lost_updates() {
        check_probe_logs(&events(&[
            "activate a0 10 1",
            "enter a0 11 1 x",
            "exit a0 12 1 x 1",
            "enter a0 13 1 y",
            "exit a0 14 1 y 1",
        ]));
    }

    #[test]
    #[should_panic(expected = "active in two places at once")]
    fn rejects_an_instance_active_in_two_processes() {
        check_probe_logs(&events(&[
            "activate a0 10 1",
            "activate a0 11 2",
            "enter a0 12 1 x",
            "exit a0 13 1 x 1",
        ]));
    }
}
