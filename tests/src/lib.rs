//! Harness for the multi-process integration tests: real `kar` binaries, real stores
//! (a temporary embedded store or a private `redis-server`), real applications written
//! with the published KAR SDKs (`tests/apps/`).
//!
//! Before running the tests, build the binary and install the apps' dependencies:
//!
//! ```text
//! scripts/setup-test-deps.sh && cargo build -p kar --features fault-injection && cargo test -p kar-tests
//! ```
//!
//! The tests do not build `kar` themselves (parallel tests would fight over the cargo
//! lock); [`kar_bin`] fails with that command line when the binary is missing.
//!
//! Every test runs on both stores: write it with [`store_test!`]. Every test uses its
//! own application names ([`unique_app`]) so tests can share a store and run in
//! parallel. Processes are spawned in their own process group and killed with it when
//! their handle drops; when a test panics, every dropped process prints its output.

mod clock;
mod component;
mod http;
mod kafka;
mod netns;
mod otlp;
mod paths;
mod ports;
mod process;
mod sentinel;
mod store;
mod tls_redis;

pub use clock::{monotonic_ns, poll_until};
pub use component::{kar, node_client, sidecars, Component};
pub use http::{http1, http1_head_only, HttpReply};
pub use kafka::Kafka;
pub use netns::{Cut, Host, Net};
pub use otlp::{render as render_spans, OtlpReceiver, SpanRecord};
pub use paths::{apps_dir, curl_checks, kar_bin, node, python, repo_root};
pub use ports::free_port;
pub use process::{expect_clients, pid_is_gone, Exited, Process};
pub use sentinel::{redis_cli, RedisHa};
pub use store::{make_certificates, readme_acl_args, RedisServer, Store, Tls};
pub use tls_redis::TlsRedisServer;

use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh application name: tests sharing a store never see each other's data.
pub fn unique_app(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}-{:04x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand::random::<u16>()
    )
}

/// Defines one test per store: `NAME::embedded` and `NAME::redis`.
///
/// ```text
/// store_test!(fn greets(store) {
///     let app = unique_app("greet");
///     // ... Component::new(store, &app) ...
/// });
/// ```
#[macro_export]
macro_rules! store_test {
    ($(#[$attr:meta])* fn $name:ident($store:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn run($store: &$crate::Store) $body

            $(#[$attr])*
            #[test]
            fn embedded() {
                let store = $crate::Store::embedded();
                run(&store);
                store.assert_used();
            }

            $(#[$attr])*
            #[test]
            fn redis() {
                let store = $crate::Store::redis();
                run(&store);
                store.assert_used();
            }
        }
    };
}
