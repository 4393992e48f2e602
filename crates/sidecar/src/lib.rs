//! The kar sidecar: the `/kar/v1` HTTP server a component talks to (spec §1.1, §2),
//! and the HTTP client through which the runtime invokes the component (spec §1.3).
//!
//! The server is a thin layer over [`kar_runtime::Runtime`]: it routes, reads bodies,
//! and turns runtime results into the exact statuses, bodies and Content-Type headers
//! the published SDKs branch on. It never reaches the store itself: everything goes
//! through the runtime's façades, and every error it sees is a
//! [`kar_runtime::RuntimeError`].
//!
//! # Map
//!
//! * `server.rs`: the accept loop (HTTP/1.1 and h2c on one port), [`serve`], and
//!   `Ctx`, what every handler gets (the runtime, the server settings);
//!   `streams.rs` runs a connection's HTTP/2 streams on the connection's own task;
//!   `turn.rs` lets futures of one task wake each other without waking the task.
//! * `guard.rs`: what every request passes before routing, whatever its route: the
//!   API token (`-api_token`) for peers other than 127.0.0.1/::1, the declared body
//!   size (`-max_body_bytes`); both answer with a JSON error.
//! * `router.rs`: the route table of spec §2.0, a pure function from method and path
//!   to a `Route` (or a 404/400/405/OPTIONS answer).
//! * `routes/`: one module per route family, each calling one runtime façade:
//!   `service.rs` and `actor.rs` ([`kar_runtime::Runtime::request`], removal),
//!   `await_.rs` (promises), `state.rs` ([`kar_runtime::Runtime::state`]),
//!   `bindings.rs` (the reminder and subscription routes, written once over
//!   [`kar_runtime::Bindings`]; `reminders.rs` and `events.rs` only parse and print
//!   their JSON; `events.rs` also has topics and publish), `system.rs` (information,
//!   health, shutdown, metrics). `routes/mod.rs` dispatches a `Route` to them.
//! * `reply.rs`: every response is shaped here (status, Content-Type, Go's quirks);
//!   `body.rs` reads bodies within the limit; `query.rs` reads query parameters as Go
//!   does.
//! * `dashboard.rs`: `kar dashboard`'s page (`assets/dashboard.html`, embedded),
//!   served by [`serve_dashboard`] with the admin API and nothing else.
//! * `app.rs`: [`HttpAppClient`], the runtime's [`kar_runtime::AppClient`] over HTTP.
//!
//! # Adding a route
//!
//! Add a `Route` variant and its match in `router.rs` (with a router test), a handler
//! in the `routes/` module of its family (or a new module), and its arm in
//! `routes/mod.rs::handle`. The handler reads the request, calls one runtime façade
//! method, and answers through `reply.rs`; if the runtime has no method for it yet,
//! add one there rather than reaching past it. Check the exact answers over HTTP/1.1
//! and h2c in `tests/tests/sidecar_api/` (package `kar-tests`), which runs this server
//! over a real runtime on an embedded store; this crate's own tests are unit tests and
//! need no store.

mod app;
mod app_pool;
mod body;
mod dashboard;
mod guard;
mod query;
mod reply;
mod router;
mod routes;
mod server;
mod streams;
mod turn;

pub use app::{AppClientConfig, HttpAppClient};
pub use guard::ApiToken;
pub use server::{serve, serve_dashboard, ServerConfig, ServerHandle, DEFAULT_MAX_BODY_BYTES};
