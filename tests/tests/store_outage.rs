//! A store outage while the mesh runs: requests get a 5xx with a reason at once (no
//! hang, nothing silently accepted), and a Redis sidecar that cannot renew its lease
//! fences itself: it exits with a clear error instead of serving on stale membership.

use kar_tests::{free_port, Component, Store};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

/// One HTTP/1.1 request to the sidecar; returns the status line and the body.
fn post(port: u16, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the sidecar");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: kar\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the reply");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

#[test]
fn redis_outage_fails_requests_with_a_reason_and_fences_the_sidecar() {
    let store = Store::redis();
    let Store::Redis { server, .. } = &store else {
        unreachable!()
    };
    let port = free_port();
    let mut sidecar = Component::new(&store, "outage")
        .name("sidecar")
        .runtime_port(port)
        .verbosity("info")
        .spawn();
    assert!(
        sidecar.wait_for_output("KAR_RUNTIME_PORT=", Duration::from_secs(20)),
        "the sidecar never started:\n{}",
        sidecar.output()
    );

    let status = Command::new("kill")
        .args(["-9", &server.pid().to_string()])
        .status()
        .expect("kill redis-server");
    assert!(status.success());

    let started = Instant::now();
    let (status_line, body) = post(port, "/kar/v1/service/nobody/call/x");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the request hung for {:?}",
        started.elapsed()
    );
    assert!(status_line.contains(" 500 "), "{status_line}\n{body}");
    assert!(
        body.starts_with("failed to send message: store unavailable"),
        "{body}"
    );

    // The lease (3 s) cannot be renewed: the sidecar fences itself and exits.
    let exited = sidecar.wait(Duration::from_secs(30));
    assert_eq!(exited.code(), Some(1), "{}", exited.output);
}

/// A `redis-server` with its AOF on `port` (restartable there: the sidecar keeps its
/// address).
fn redis_with_aof(port: u16, dir: &std::path::Path) -> kar_tests::Process {
    let mut command = Command::new("redis-server");
    command
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args([
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
        .arg("--dir")
        .arg(dir);
    let process = kar_tests::Process::spawn(format!("redis-server :{port}"), command);
    process.expect_output("Ready to accept connections", Duration::from_secs(20));
    process
}

/// Redis killed and restarted from its AOF while a component reads actor state: the
/// read waits out the restart (the state API retries a store that is briefly gone for
/// a few seconds, `Policy::BRIEF_OUTAGE`) and gets the value written before the kill,
/// instead of a 5xx that would fail the component's handler.
#[test]
fn a_quick_redis_restart_does_not_fail_state_requests() {
    let dir = tempfile::tempdir().expect("a directory for the AOF");
    let redis_port = free_port();
    let mut redis = redis_with_aof(redis_port, dir.path());
    let store = Store::redis_at("127.0.0.1", redis_port);
    let port = free_port();
    let mut sidecar = Component::new(&store, "restart")
        .name("sidecar")
        .runtime_port(port)
        // The lease outlives the restart: this test is about requests, not fencing.
        .arg("-redis_lease")
        .arg("30s")
        .spawn();
    sidecar.expect_output("KAR_RUNTIME_PORT=", Duration::from_secs(20));
    let state = "/kar/v1/actor/Counter/c1/state/count";
    let request = move |method: &str, body: &[u8]| {
        kar_tests::http1(
            std::net::Ipv4Addr::LOCALHOST,
            port,
            method,
            state,
            &[("Content-Type", "application/json")],
            body,
        )
        .expect("a reply from the sidecar")
    };
    let put = request("PUT", b"41");
    assert!(put.status == 200 || put.status == 201, "{}", put.text());

    redis.kill();
    let reader = std::thread::spawn(move || request("GET", b""));
    sidecar.expect_output("cannot read actor state (retrying", Duration::from_secs(20));
    let _redis = redis_with_aof(redis_port, dir.path());
    let got = reader.join().expect("the reader thread");
    assert_eq!((got.status, got.text()), (200, "41".to_string()));
    sidecar.assert_running();
}
