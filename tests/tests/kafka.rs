//! Kafka-bound topics end to end, on both stores, with a real Kafka-protocol broker
//! (tansu, started per test), kafka-python on the Kafka side and the published JS
//! kar-sdk on the kar side (`tests/apps/js/kafka/server.js`: an actor that appends
//! each event's sequence number to its state in one write).
//!
//! * Bridge in, exactly once across a crash: records produced to a bound Kafka topic
//!   reach a subscription unchanged; the bridging sidecar (a member of its own, so
//!   the subscriber's tells never die with it) is killed with SIGKILL mid-stream, a
//!   second one takes its partitions over: the actor's state holds each record once,
//!   in partition order (one and two partitions).
//! * Publish out: a topic created through kar exists in Kafka; events published
//!   through kar are read back by a Kafka consumer.
//! * CloudEvents in structured and binary mode, and a record that is not JSON, reach
//!   the subscriber as upstream KAR delivered them (the record value, unchanged).
//! * Retention: under a steady publish load the store's event count stays bounded.
//! * An unreachable broker: publishing fails with the reason; the sidecar keeps
//!   serving everything else.

use kar_tests::{
    node, node_client, poll_until, python, store_test, unique_app, Component, Exited, Kafka,
    Process, Store,
};
use rustix::process::{kill_process, Pid, Signal};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// The subscriber: actor type Seq (no Kafka settings: it bridges nothing).
fn subscriber(store: &Store, app: &str) -> Process {
    Component::new(store, app)
        .name("kafka subscriber")
        .actors(&["Seq"])
        .h2c()
        .command(node("kafka/server.js", &[]))
        .spawn()
}

/// A sidecar without a component that bridges `topic` from `kafka`.
fn bridge(store: &Store, app: &str, kafka: &Kafka, topic: &str, name: &str) -> Process {
    Component::new(store, app)
        .name(name)
        .arg("-kafka_brokers")
        .arg(kafka.broker())
        .arg("-kafka_topics")
        .arg(topic)
        .spawn()
}

fn client(store: &Store, app: &str, args: &[&str]) -> Exited {
    node_client(store, app, "kafka/client.js", args)
        .spawn()
        .expect_success(TIMEOUT)
}

/// `python kafka/<script> <args>` (kafka-python; not a kar component).
fn kafka_python(script: &str, args: &[&str]) -> Process {
    let argv = python(&format!("kafka/{script}"), args);
    let mut command = std::process::Command::new(&argv[0]);
    command.args(&argv[1..]);
    Process::spawn(format!("{script} {}", args.join(" ")), command)
}

/// Produces records `from..=to` (`pace` seconds apart).
fn produce_seq(
    kafka: &Kafka,
    topic: &str,
    (from, to): (u32, u32),
    partitions: u32,
    pace: &str,
) -> Process {
    let (from, to, partitions) = (from.to_string(), to.to_string(), partitions.to_string());
    kafka_python(
        "produce.py",
        &[&kafka.broker(), topic, "seq", &from, &to, &partitions, pace],
    )
}

/// The state log of Seq `id`: its `[partition, seq]` pairs in append order.
fn state_log(store: &Store, app: &str, id: &str) -> Vec<(u32, u32)> {
    let out = client(store, app, &["log", id]).stdout;
    let json = out
        .lines()
        .find_map(|l| l.split_once("log ").map(|(_, j)| j.to_string()))
        .unwrap_or_else(|| panic!("no log line in:\n{out}"));
    let pairs: Vec<(u32, u32)> = serde_json::from_str(&json).expect("the log is JSON pairs");
    pairs
}

/// Records 0..=999 over `partitions` partitions, half before and half after a SIGKILL
/// of the bridging sidecar: each once, in partition order.
fn exactly_once_across_a_bridge_kill(store: &Store, partitions: u32) {
    let kafka = Kafka::start();
    let topic = unique_app("kin");
    kafka.create_topic(&topic, partitions);
    let app = unique_app("kafka-in");
    let sub = subscriber(store, &app);
    client(store, &app, &["subscribe", "1", &topic, "append"]);
    let mut first = bridge(store, &app, &kafka, &topic, "bridge 1");
    for p in 0..partitions {
        first.expect_output(&format!("bridge of kafka:{topic}/{p} owned here"), TIMEOUT);
    }
    let second = bridge(store, &app, &kafka, &topic, "bridge 2");
    second.expect_output(&format!("bridging Kafka topic {topic} partition"), TIMEOUT);

    produce_seq(&kafka, &topic, (0, 499), partitions, "0").expect_success(TIMEOUT);
    sub.expect_output("(500)", TIMEOUT);
    // The second half flows (paced) while the bridging sidecar dies: once it bridged
    // some of it.
    let mut producer = produce_seq(&kafka, &topic, (500, 999), partitions, "0.005");
    assert!(
        poll_until(TIMEOUT, Duration::from_millis(20), || event_count(
            store, &topic
        ) >= 600),
        "the second half was never bridged"
    );
    kill_process(
        Pid::from_raw(first.pid() as i32).expect("pid"),
        Signal::KILL,
    )
    .expect("kill the bridging sidecar");
    first.wait(Duration::from_secs(10));
    for p in 0..partitions {
        second.expect_output(&format!("bridge of kafka:{topic}/{p} owned here"), TIMEOUT);
    }
    let _restarted = bridge(store, &app, &kafka, &topic, "bridge 1 (restarted)");
    producer.expect_success(TIMEOUT);
    sub.expect_output("(1000)", TIMEOUT);

    let log = state_log(store, &app, "1");
    assert_eq!(log.len(), 1000, "each record once: {log:?}");
    for p in 0..partitions {
        let got: Vec<u32> = log
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, n)| *n)
            .collect();
        let expected: Vec<u32> = (0..1000).filter(|n| n % partitions == p).collect();
        assert_eq!(got, expected, "partition {p}: each record once, in order");
    }
}

store_test!(
    /// One partition: the state holds exactly 0..999 in order.
    fn bridged_records_are_delivered_once_across_a_bridge_kill(store) {
        exactly_once_across_a_bridge_kill(store, 1);
    }
);

store_test!(
    /// Two partitions: per-partition order, each record once.
    fn bridged_partitions_are_delivered_once_across_a_bridge_kill(store) {
        exactly_once_across_a_bridge_kill(store, 2);
    }
);

store_test!(
    /// A bound topic created through kar exists in Kafka; 100 events published
    /// through kar are read back by a Kafka consumer, in order, each with a publish id
    /// of its own.
    fn published_events_reach_kafka_consumers(store) {
        let kafka = Kafka::start();
        let topic = unique_app("kout");
        let app = unique_app("kafka-out");
        let bound = |args: &[&str]| {
            node_client(store, &app, "kafka/client.js", args)
                .arg("-kafka_brokers")
                .arg(kafka.broker())
                .arg("-kafka_topics")
                .arg(&topic)
                .spawn()
                .expect_success(TIMEOUT)
        };
        bound(&["create", &topic, "1"]);
        bound(&["publish", &topic, "1", "100"]);
        let out = kafka_python("consume.py", &[&kafka.broker(), &topic, "100"])
            .expect_success(TIMEOUT)
            .stdout;
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix("consumed "))
            .unwrap_or_else(|| panic!("no consumed line in:\n{out}"));
        let (values, ids) = line.rsplit_once(" ids ").expect("ids");
        let values: Vec<String> = serde_json::from_str(values).expect("JSON list");
        let expected: Vec<String> = (1..=100).map(|n| format!("{{\"seq\":{n}}}")).collect();
        assert_eq!(values, expected);
        assert_eq!(ids, "100");
    }
);

store_test!(
    /// A structured-mode CloudEvent arrives whole, a binary-mode one as its data (the
    /// record value; upstream KAR ignored record headers), a record that is not JSON
    /// does not block the ones after it.
    fn cloudevents_reach_subscribers_as_upstream_delivered_them(store) {
        let kafka = Kafka::start();
        let topic = unique_app("kce");
        kafka.create_topic(&topic, 1);
        let app = unique_app("kafka-ce");
        let sub = subscriber(store, &app);
        client(store, &app, &["subscribe", "1", &topic, "show"]);
        let bridger = bridge(store, &app, &kafka, &topic, "bridge");
        bridger.expect_output(&format!("bridge of kafka:{topic}/0 owned here"), TIMEOUT);
        kafka_python("produce.py", &[&kafka.broker(), &topic, "cloudevents"])
            .expect_success(TIMEOUT);
        sub.expect_output(r#"show 1 {"mode":"after"}"#, TIMEOUT);
        bridger.expect_output("is not JSON: delivered as is", TIMEOUT);
        let shown: Vec<String> = sub
            .output()
            .lines()
            .filter_map(|l| l.split_once("show 1 ").map(|(_, e)| e.to_string()))
            .collect();
        assert_eq!(
            shown,
            [
                r#"{"specversion":"1.0","type":"kar.test.structured","source":"produce.py","id":"ce-1","datacontenttype":"application/json","data":{"mode":"structured"}}"#,
                r#"{"mode":"binary"}"#,
                r#"{"mode":"after"}"#,
            ]
        );
    }
);

/// The number of events of `topic` in the store.
fn event_count(store: &Store, topic: &str) -> u64 {
    let out = match store {
        Store::Embedded { home } => {
            let db = home.path().join("kar.db");
            let script = "import sqlite3, sys\n\
                c = sqlite3.connect(sys.argv[1])\n\
                print(c.execute('SELECT count(*) FROM events WHERE topic = ?', (sys.argv[2],)).fetchone()[0])";
            std::process::Command::new("python3")
                .args(["-c", script])
                .arg(db)
                .arg(topic)
                .output()
        }
        Store::Redis { server, .. } => std::process::Command::new("redis-cli")
            .args(["-p", &server.port().to_string(), "HLEN"])
            .arg(format!("kar:topic:{{{topic}}}:log"))
            .output(),
        Store::RedisAt { host, port, .. } => std::process::Command::new("redis-cli")
            .args(["-h", host, "-p", &port.to_string(), "HLEN"])
            .arg(format!("kar:topic:{{{topic}}}:log"))
            .output(),
        Store::RedisSentinel { .. } => unreachable!("the Kafka tests do not use Sentinel"),
    }
    .expect("count the events");
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().parse().unwrap_or_else(|_| {
        panic!(
            "not a count: {text:?} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

store_test!(
    /// With a 1 s retention, a steady publish load leaves at most about one round of
    /// events in the store: delivered events go once their retention passed.
    fn retention_keeps_the_event_count_bounded(store) {
        let app = unique_app("retention");
        let topic = unique_app("kret");
        let sub = Component::new(store, &app)
            .name("kafka subscriber (1 s retention)")
            .actors(&["Seq"])
            .h2c()
            .arg("-event_retention")
            .arg("1s")
            .command(node("kafka/server.js", &[]))
            .spawn();
        client(store, &app, &["subscribe", "1", &topic, "append"]);
        const ROUND: u32 = 100;
        const ROUNDS: u32 = 10;
        let mut most = 0;
        for round in 0..ROUNDS {
            let (from, to) = (round * ROUND + 1, (round + 1) * ROUND);
            client(store, &app, &["publish", &topic, &from.to_string(), &to.to_string()]);
            sub.expect_output(&format!("({to})"), TIMEOUT);
            most = most.max(event_count(store, &topic));
            // The earlier rounds go: at most this one stays.
            assert!(
                poll_until(TIMEOUT, Duration::from_millis(100), || event_count(store, &topic)
                    <= u64::from(ROUND)),
                "round {round}: {} events kept",
                event_count(store, &topic)
            );
        }
        assert!(
            poll_until(TIMEOUT, Duration::from_millis(100), || event_count(store, &topic) == 0),
            "delivered events outlive their retention"
        );
        assert!(most <= u64::from(2 * ROUND), "at most {most} events were kept");
        assert_eq!(state_log(store, &app, "1").len(), (ROUND * ROUNDS) as usize);
    }
);

store_test!(
    /// An unreachable broker: a publish to a bound topic fails with the reason, the
    /// bridge says it retries, and store topics keep working.
    fn unreachable_brokers_give_a_clear_error(store) {
        let app = unique_app("kafka-down");
        let dead = format!("127.0.0.1:{}", kar_tests::free_port());
        let sidecar = Component::new(store, &app)
            .name("sidecar with a dead broker")
            .arg("-kafka_brokers")
            .arg(&dead)
            .arg("-kafka_topics")
            .arg("bound")
            .spawn();
        sidecar.expect_output("cannot bridge topic bound from Kafka: cannot reach the Kafka brokers", TIMEOUT);
        let with_dead_broker = |args: &[&str]| {
            node_client(store, &app, "kafka/client.js", args)
                .arg("-kafka_brokers")
                .arg(&dead)
                .arg("-kafka_topics")
                .arg("bound")
                .spawn()
        };
        let out = with_dead_broker(&["publish", "bound", "1", "1"]).wait(TIMEOUT).stdout;
        assert!(out.contains("cannot reach the Kafka brokers"), "{out}");
        with_dead_broker(&["publish", "store-only", "1", "3"]).expect_success(TIMEOUT);
        assert!(sidecar.output().contains("retrying in"));
    }
);
