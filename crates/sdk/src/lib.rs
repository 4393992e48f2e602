//! The Rust SDK of kar.
//!
//! A component talks to its sidecar (`kar run` starts both) over HTTP only:
//!
//! * [`Client`]: the `/kar/v1` API of the sidecar on `127.0.0.1:$KAR_RUNTIME_PORT` —
//!   service calls, tells and promises, actor calls ([`ActorHandle`]), actor state
//!   ([`State`], [`Submap`]), reminders and event subscriptions of actors, topics and
//!   publishing, health and shutdown. One multiplexed HTTP/2 connection.
//! * [`Server`]: the component side (`/kar/impl/v1`, spec §3) on
//!   `127.0.0.1:$KAR_APP_PORT` — actor types implementing [`Actor`], and plain
//!   service routes.
//!
//! A service and a client of it:
//!
//! ```no_run
//! use kar_sdk::{Client, Response, Server};
//!
//! // The service component: `kar run -app hello -service greeter -- hello-server`
//! async fn server() -> kar_sdk::Result<()> {
//!     Server::new()
//!         .route("POST", "/helloText", |request| async move {
//!             let name: String = request.json()?;
//!             Ok(Response::text(format!("Hello {name}")))
//!         })
//!         .run()
//!         .await
//! }
//!
//! // The client: `kar run -app hello -- hello-client`
//! async fn client() -> kar_sdk::Result<()> {
//!     let client = Client::from_env()?;
//!     let greeting: String = client.call("greeter", "helloText", "Gandalf").await?;
//!     assert_eq!(greeting, "Hello Gandalf");
//!     Ok(())
//! }
//! ```
//!
//! # Map
//!
//! | module | what lives there |
//! | --- | --- |
//! | `client` | [`Client`]: service calls, tells, promises ([`Promise`]), raw invocations ([`Response`]), system routes; the request/response helpers the other client modules share |
//! | `connection` | the one h2c connection a [`Client`] keeps to its sidecar |
//! | `actor` | [`ActorHandle`]: actor calls and tells, and actor state ([`State`], [`Submap`]) |
//! | `events` | reminders and subscriptions of an [`ActorHandle`] (one set of verbs for both), topics and publishing on the [`Client`], [`ReminderTime`] |
//! | `server/` | the component side: `mod.rs` the [`Server`] builder and [`ServerHandle`]; `actor` what an actor type implements and sees ([`Actor`], [`Context`], [`Outcome`], [`TailCall`]); `service` what a route sees ([`ServiceRequest`]); `host` the dispatch of each request to an instance or a route (spec §3); `http` the accept loop and shared HTTP helpers |
//! | `error` | [`Error`] and [`Result`], for the client and component code alike |
//!
//! # Adding to it
//!
//! * A sidecar route (spec §2): a method on [`Client`] or [`ActorHandle`] in the
//!   module of its area, built on `Client::send` and the answer helpers in `client`
//!   (`expect_success`, `decode`, ...); test it in `crates/sdk/tests/` against a real
//!   sidecar (`tests/common`).
//! * Something the component serves (spec §3): a match arm in `server/host.rs`, with
//!   the types its handlers see in `server/actor.rs` or `server/service.rs`.
//! * Keep the public API additive: the examples (`examples/rust`) and apps depend on
//!   it.
#![warn(missing_docs)]

mod actor;
mod client;
mod connection;
mod error;
mod events;
mod held;
mod server;

pub use actor::{ActorHandle, State, Submap, UpdateCounts};
pub use async_trait::async_trait;
pub use client::{Client, Promise, Response};
pub use error::{Error, Result};
pub use events::ReminderTime;
pub use server::{Actor, Context, Outcome, Server, ServerHandle, ServiceRequest, TailCall};
