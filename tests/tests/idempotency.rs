//! Idempotency keys (issue 9, point 5), on both stores: a service and actor
//! component that prints a line for each run of its handler with a fresh nonce and
//! replies with it (tests/apps/js/idempotency), and caller sidecars that the test
//! drives over HTTP/1.1 with an `Idempotency-Key` header.
//!
//! * The same key sent twice concurrently and once after completion runs the handler
//!   once, and the three replies are equal (the first run is held until the duplicate
//!   is seen attaching); a tell with it does not run it either; the same key for
//!   other targets runs them separately.
//! * After the window (`-idempotency_retention 1s`) the key is forgotten: sent again,
//!   it runs again, once.
//! * kill -9 of the caller's sidecar between the two sends changes nothing: the
//!   duplicate sent through a restarted sidecar attaches to the first run and gets
//!   its reply, and nothing runs twice.
//! * Bad keys get a 400 with a one-line reason.

use kar_tests::{free_port, node, poll_until, store_test, unique_app, Component, Process, Store};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

const START_TIMEOUT: Duration = Duration::from_secs(60);
const SERVICE: &str = "idem";
/// Logged (info) by a caller sidecar whose request was a duplicate.
const ATTACHED: &str = ": not run again";
const RAN: &str = "idem: ran ";

/// One HTTP/1.1 request; returns the status code and the body.
fn send(port: u16, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the sidecar");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("read timeout");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: kar\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    if stream.read_to_string(&mut response).is_err() {
        return (0, String::new());
    }
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn service_path() -> String {
    format!("/kar/v1/service/{SERVICE}/call/work")
}

fn actor_path(id: &str) -> String {
    format!("/kar/v1/actor/Counter/{id}/call/work")
}

/// A call with idempotency key `key`; panics unless it is a 200.
fn call(port: u16, path: &str, key: &str, body: &str) -> String {
    let (status, reply) = send(port, path, &[("Idempotency-Key", key)], body);
    assert_eq!(status, 200, "{path} with key {key}: {reply}");
    reply
}

fn server(store: &Store, app: &str) -> Process {
    let process = Component::new(store, app)
        .name("idempotency server")
        .service(SERVICE)
        .actors(&["Counter"])
        .command(node("idempotency/server.js", &[]))
        .spawn();
    process.expect_output("idempotency server listening on ", START_TIMEOUT);
    process
}

/// A sidecar without a component, driven by the test; `args` are extra flags.
fn caller(store: &Store, app: &str, name: &str, args: &[&str]) -> (Process, u16) {
    let port = free_port();
    let mut component = Component::new(store, app).name(name).runtime_port(port);
    for arg in args {
        component = component.arg(*arg);
    }
    let process = component.spawn();
    process.expect_output("KAR_RUNTIME_PORT=", START_TIMEOUT);
    (process, port)
}

/// The nonces of the runs of `what` (`service`, `actor ID`) so far.
fn runs(server: &Process, what: &str) -> Vec<String> {
    let prefix = format!("{RAN}{what} ");
    server
        .output()
        .lines()
        .filter_map(|line| Some(line.split_once(&prefix)?.1.trim().to_string()))
        .collect()
}

/// Waits until `what` ran `n` times in all.
fn expect_runs(server: &Process, what: &str, n: usize) {
    assert!(
        poll_until(START_TIMEOUT, Duration::from_millis(10), || runs(
            server, what
        )
        .len()
            >= n),
        "{what} never ran {n} times:\n{}",
        server.output()
    );
}

/// The nonce a reply carries (service replies are the object, actor ones wrapped).
fn nonce(reply: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(reply).expect("a JSON reply");
    let value = value.get("value").unwrap_or(&value);
    value["nonce"].as_str().expect("a nonce").to_string()
}

/// A service call without a key; returns its nonce once the server's line for it was
/// read: every line the server printed before it was read too.
fn marker(port: u16, server: &Process) -> String {
    let (status, reply) = send(port, &service_path(), &[], "marker");
    assert_eq!(status, 200, "{reply}");
    let nonce = nonce(&reply);
    assert!(
        poll_until(START_TIMEOUT, Duration::from_millis(10), || runs(
            server, "service"
        )
        .contains(&nonce)),
        "{}",
        server.output()
    );
    nonce
}

fn release(port: u16) {
    let (status, body) = send(
        port,
        &format!("/kar/v1/service/{SERVICE}/call/release"),
        &[],
        "",
    );
    assert_eq!(status, 200, "{body}");
}

store_test!(
    fn duplicates_run_once_and_get_the_same_reply(store) {
        let app = unique_app("idem");
        let server = server(store, &app);
        let (caller, port) = caller(store, &app, "caller", &[]);

        // The first call runs and is held; the duplicate attaches to it meanwhile.
        let first = thread::spawn(move || call(port, &service_path(), "order-42", "hold"));
        expect_runs(&server, "service", 1);
        let second = thread::spawn(move || call(port, &service_path(), "order-42", "hold"));
        caller.expect_output(ATTACHED, START_TIMEOUT);
        release(port);
        let first = first.join().expect("first call");
        let second = second.join().expect("second call");
        // After completion: the recorded reply.
        let third = call(port, &service_path(), "order-42", "hold");
        assert_eq!(first, second);
        assert_eq!(first, third);
        // A tell with the key is accepted and does not run it either.
        let (status, body) = send(
            port,
            &service_path(),
            &[("Idempotency-Key", "order-42"), ("Pragma", "async")],
            "tell",
        );
        assert_eq!((status, body.as_str()), (202, "OK"));

        // The same key for other targets: separate requests, each run once.
        let a = call(port, &actor_path("a"), "order-42", "[]");
        let b = call(port, &actor_path("b"), "order-42", "[]");
        assert_ne!(nonce(&a), nonce(&b));
        assert_eq!(call(port, &actor_path("a"), "order-42", "[]"), a);
        let (status, body) = send(
            port,
            &actor_path("b"),
            &[("Idempotency-Key", "order-42"), ("Pragma", "async")],
            "[]",
        );
        assert_eq!((status, body.as_str()), (202, "OK"));
        // A call without a key to actor b runs after anything queued before it for
        // that actor (per-actor order): the duplicate tell was never queued.
        let (status, after_b) = send(port, &actor_path("b"), &[], "[]");
        assert_eq!(status, 200, "{after_b}");
        let last = marker(port, &server);
        assert_eq!(runs(&server, "service"), vec![nonce(&first), last]);
        assert_eq!(runs(&server, "actor a"), vec![nonce(&a)]);
        assert_eq!(runs(&server, "actor b"), vec![nonce(&b), nonce(&after_b)]);
    }
);

store_test!(
    fn keys_are_forgotten_after_the_window(store) {
        let app = unique_app("idem-window");
        let server = server(store, &app);
        let (_caller, port) = caller(store, &app, "caller", &["-idempotency_retention", "1s"]);
        let first = call(port, &service_path(), "k", "");
        // Sent again and again: the recorded reply, until the window ends and it runs
        // once more.
        let mut again = String::new();
        assert!(poll_until(START_TIMEOUT, Duration::from_millis(100), || {
            again = call(port, &service_path(), "k", "");
            again != first
        }));
        // The new run has its own window.
        assert_eq!(call(port, &service_path(), "k", ""), again);
        let last = marker(port, &server);
        assert_eq!(
            runs(&server, "service"),
            vec![nonce(&first), nonce(&again), last]
        );
    }
);

store_test!(
    fn kill_of_the_callers_sidecar_between_two_sends_changes_nothing(store) {
        let app = unique_app("idem-kill");
        let server = server(store, &app);
        let (mut doomed, port) = caller(store, &app, "doomed caller", &[]);
        let first = thread::spawn(move || send(port, &service_path(), &[("Idempotency-Key", "pay-7")], "hold"));
        expect_runs(&server, "service", 1);
        doomed.kill();
        // Its client sees the connection die.
        let (status, _) = first.join().expect("first call");
        assert_eq!(status, 0);

        let (restarted, port) = caller(store, &app, "restarted caller", &[]);
        let second = thread::spawn(move || call(port, &service_path(), "pay-7", "hold"));
        restarted.expect_output(ATTACHED, START_TIMEOUT);
        release(port);
        let second = second.join().expect("second call");
        let third = call(port, &service_path(), "pay-7", "hold");
        assert_eq!(second, third);
        let last = marker(port, &server);
        assert_eq!(runs(&server, "service"), vec![nonce(&second), last]);
    }
);

store_test!(
    fn bad_keys_get_a_400_with_a_reason(store) {
        let app = unique_app("idem-bad");
        let server = server(store, &app);
        let (_caller, port) = caller(store, &app, "caller", &[]);
        let long = "k".repeat(257);
        for (headers, reason) in [
            (
                vec![("Idempotency-Key", long.as_str())],
                "Idempotency-Key is 257 bytes long, longer than the limit of 256\n",
            ),
            (vec![("Idempotency-Key", "")], "Idempotency-Key is empty\n"),
            (
                vec![("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
                "more than one Idempotency-Key header\n",
            ),
        ] {
            for path in [service_path(), actor_path("x")] {
                let (status, body) = send(port, &path, &headers, "[]");
                assert_eq!((status, body.as_str()), (400, reason), "{path}");
            }
        }
        // 256 bytes is fine; nothing ran for the bad ones.
        let longest = "k".repeat(256);
        let ran = call(port, &service_path(), &longest, "");
        let last = marker(port, &server);
        assert_eq!(runs(&server, "service"), vec![nonce(&ran), last]);
        assert!(runs(&server, "actor x").is_empty());
    }
);
