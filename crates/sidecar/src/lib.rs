//! The kar sidecar: the `/kar/v1` HTTP server a component talks to (spec §1.1, §2),
//! and the HTTP client through which the runtime invokes the component (spec §1.3).
//!
//! The server is a thin layer over [`kar_runtime::Runtime`]: it routes, reads bodies,
//! and turns runtime results into the exact statuses, bodies and Content-Type headers
//! the published SDKs branch on.

mod app;
mod body;
mod query;
mod reply;
mod router;
mod routes;
mod server;

pub use app::{AppClientConfig, HttpAppClient};
pub use server::{serve, ServerConfig, ServerHandle};
