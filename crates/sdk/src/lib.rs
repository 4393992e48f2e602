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
#![warn(missing_docs)]

mod actor;
mod client;
mod connection;
mod error;
mod events;
mod server;

pub use actor::{ActorHandle, State, Submap, UpdateCounts};
pub use async_trait::async_trait;
pub use client::{Client, Promise, Response};
pub use error::{Error, Result};
pub use events::ReminderTime;
pub use server::{Actor, Context, Outcome, Server, ServerHandle, ServiceRequest, TailCall};
