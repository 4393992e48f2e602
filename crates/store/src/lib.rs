//! The kar store engines. The API (the [`Store`] traits, one per area, their errors
//! and messages) lives in `kar-store-api` and is re-exported here; this crate holds
//! the two engines, which implement it and pass one conformance suite
//! (`tests/conformance.rs`), and [`open`], the only way to get one:
//!
//! * `embedded`: SQLite in WAL mode under `$KAR_HOME`, shared by every `kar` process
//!   of the user on the host; failure detection through OS file locks; wake-ups are
//!   pokes over loopback TCP.
//! * `redis`: one Lua script per transition over one hash tag per application;
//!   membership leases renewed in the background, self-fencing; inboxes are streams
//!   read with blocking `XREAD`.
//!
//! A store handle is scoped to one application: keys and rows of different
//! applications never mix.

mod codec;
mod codes;
mod embedded;
mod fault;
mod redis;

pub use kar_store_api::*;

use std::path::PathBuf;
use std::sync::Arc;

/// Which engine to open, and where.
#[derive(Clone, Debug)]
pub enum StoreConfig {
    /// SQLite database `kar.db` in this directory (created if missing).
    Embedded {
        dir: PathBuf,
    },
    Redis(RedisConfig),
}

#[derive(Clone, Debug, Default)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    pub tls: bool,
    pub tls_skip_verify: bool,
    /// Membership lease; a member that does not renew within it is dead.
    pub lease: std::time::Duration,
}

/// Opens the store of application `app`.
pub async fn open(config: &StoreConfig, app: &str) -> Result<Arc<dyn Store>, StoreError> {
    match config {
        StoreConfig::Embedded { dir } => Ok(Arc::new(embedded::EmbeddedStore::open(dir, app)?)),
        StoreConfig::Redis(cfg) => Ok(Arc::new(redis::RedisStore::open(cfg, app).await?)),
    }
}
