//! Fills a store with N pending requests (tells to a service nobody offers: they
//! park), for `bench/list_requests.sh`, which times `kar get -s requests` over them.
//!
//! `cargo run --release -p kar-store --example fill_pending -- (embedded DIR | redis PORT) APP N`

use kar_protocol::{FlowId, Invocation, NodeId, Request, RequestKind, Target};
use kar_store::{RedisConfig, StoreConfig};
use std::time::Instant;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [engine, at, app, n] = &args[..] else {
        return Err("usage: fill_pending (embedded DIR | redis PORT) APP N".into());
    };
    let config = match engine.as_str() {
        "embedded" => StoreConfig::Embedded {
            dir: at.into(),
            sync: Default::default(),
        },
        "redis" => StoreConfig::Redis(RedisConfig {
            host: "127.0.0.1".into(),
            port: at.parse()?,
            ..RedisConfig::default()
        }),
        other => return Err(format!("unknown engine {other}").into()),
    };
    let n: usize = n.parse()?;
    let store = kar_store::open(&config, app).await?;
    let started = Instant::now();
    let caller = NodeId::generate();
    // Enqueued 64 at a time: the embedded engine commits them as one group.
    let mut done = 0;
    while done < n {
        let batch = (n - done).min(64);
        let enqueues = (0..batch).map(|i| {
            let request = Request::new(
                RequestKind::Tell,
                Target::Service {
                    name: "nobody".into(),
                },
                Invocation {
                    method: "POST".into(),
                    path: format!("/pending/{}", done + i),
                    query: None,
                    headers: vec![("Content-Type".into(), "text/plain".into())],
                    body: "x".into(),
                },
                caller.clone(),
                FlowId::generate(),
                None,
                None,
            );
            let store = store.clone();
            async move { store.enqueue(&request).await }
        });
        for routed in futures::future::join_all(enqueues).await {
            routed?;
        }
        done += batch;
    }
    eprintln!(
        "enqueued {n} pending requests in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
