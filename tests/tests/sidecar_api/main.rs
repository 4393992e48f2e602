//! The `/kar/v1` server and the runtime → component client of `kar-sidecar`, in
//! process: a real runtime on a temporary embedded store, its sidecar server, a tiny
//! hyper component (`common`), and real HTTP/1.1 and h2c clients. Unlike the other
//! tests here, these need no `kar` binary, apps or `redis-server`.
//!
//! One test binary, one module per route family, so they link once. They live here
//! rather than in `crates/sidecar/tests/` so that `kar-sidecar` does not depend on the
//! store engines (`kar-store`), not even as a dev-dependency: it reaches a store only
//! through `kar-runtime` (and its `kar-store-api`).

mod actor_api;
mod app_client;
mod common;
mod events_api;
mod http_api;
mod reminders_api;
