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
