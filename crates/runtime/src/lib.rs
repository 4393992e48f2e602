//! The kar runtime: one mesh member. It turns requests of its component into durable
//! request records (through the [`kar_store_api::Store`] trait), executes the requests
//! routed to it by invoking its component through an [`AppClient`], and routes
//! outcomes back to callers. It knows nothing of HTTP servers or of a particular
//! store engine.

mod actors;
mod app;
mod config;
mod envelope;
mod error;
mod events;
mod locks;
mod metrics;
mod reminders;
mod runtime;

pub use app::{AppClient, AppError};
pub use config::RuntimeConfig;
pub use error::{AwaitError, RuntimeError};
pub use runtime::{Accepted, Runtime};
