//! Measures store round trips (enqueue → recv → complete → recv) between two members
//! of one embedded store: `cargo run --release -p kar-store --example roundtrip -- DIR`.
use bytes::Bytes;
use kar_protocol::*;
use kar_store::*;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let cfg = StoreConfig::Embedded {
        dir: dir.into(),
        sync: Default::default(),
    };
    let a = open(&cfg, "rt").await.unwrap();
    let b = open(&cfg, "rt").await.unwrap();
    let ma = Member {
        node: NodeId::generate(),
        service: "caller".into(),
        actors: vec![],
        runtime_port: 0,
    };
    let mb = Member {
        node: NodeId::generate(),
        service: "svc".into(),
        actors: vec![],
        runtime_port: 0,
    };
    let mut ia = a.join(&ma).await.unwrap();
    let mut ib = b.join(&mb).await.unwrap();
    let mut samples = vec![];
    let mut parts = [0u128; 4];
    for i in 0..3000 {
        let t0 = Instant::now();
        let req = Request::new(
            RequestKind::Call,
            Target::Service { name: "svc".into() },
            Invocation {
                method: "POST".into(),
                path: "/x".into(),
                query: None,
                headers: vec![],
                body: Bytes::from_static(b"hello"),
            },
            ma.node.clone(),
            FlowId::generate(),
            None,
            None,
        );
        a.enqueue(&req).await.unwrap();
        let t1 = Instant::now();
        loop {
            let m = ib.recv().await.unwrap();
            if m.iter().any(|m| matches!(m, Message::Execute(_))) {
                break;
            }
        }
        let t2 = Instant::now();
        b.complete(&mb.node, &req.id, &Outcome::Reply(Reply::text(200, "ok")))
            .await
            .unwrap();
        let t3 = Instant::now();
        loop {
            let m = ia.recv().await.unwrap();
            if m.iter().any(|m| matches!(m, Message::Completed { .. })) {
                break;
            }
        }
        let t4 = Instant::now();
        a.forget(std::slice::from_ref(&req.id)).await.unwrap();
        if i >= 200 {
            samples.push(t4 - t0);
            parts[0] += (t1 - t0).as_micros();
            parts[1] += (t2 - t1).as_micros();
            parts[2] += (t3 - t2).as_micros();
            parts[3] += (t4 - t3).as_micros();
        }
    }
    samples.sort();
    let n = samples.len() as u128;
    println!(
        "p50 {:?} p99 {:?}; avg enqueue {}us recv {}us complete {}us recv {}us",
        samples[samples.len() / 2],
        samples[samples.len() * 99 / 100],
        parts[0] / n,
        parts[1] / n,
        parts[2] / n,
        parts[3] / n
    );
}
