//! The kar store engines. The API (the [`Store`] traits, one per area, their errors
//! and messages) lives in `kar-store-api` and is re-exported here; this crate holds
//! the two engines, which implement it and pass one conformance suite, and [`open`],
//! the only way to get one. A store handle is scoped to one application: keys and
//! rows of different applications never mix.
//!
//! # Map
//!
//! | where | what |
//! |---|---|
//! | `lib.rs` | [`StoreConfig`] (with [`EmbeddedSync`]), [`open`], [`open_with`] (with a [`RecoveryPolicy`]) |
//! | `codes.rs` | the stored request status and kind codes, for both engines (SQL and Lua literals, typed decoding: an unknown code is `Corrupt`) |
//! | `codec.rs` | postcard encoding of records and messages |
//! | `examples/fill_pending.rs` | fills a store with pending requests (`bench/list_requests.sh`) |
//! | `fault.rs` | the fault hooks of the failure tests (cargo feature `fault-injection`, off in release builds) |
//! | `embedded/` | SQLite (WAL) under `$KAR_HOME`, shared by every `kar` process of the user on the host; deaths seen through OS file locks; wake-ups are loopback pokes |
//! | `redis/` | one Lua script per transition over one hash tag per application; membership leases renewed in the background, self-fencing; inboxes are streams read with blocking `XREAD` |
//! | `tests/conformance.rs` | every scenario on both engines (the Redis one on a `redis-server` of its own; deaths are real: SIGKILLed child processes) |
//!
//! The embedded engine (`embedded/mod.rs` holds the struct, `open` and the design):
//!
//! | file | what |
//! |---|---|
//! | `membership.rs`, `requests.rs`, `actors.rs`, `reminders.rs`, `events.rs`, `admin.rs`, `control.rs` | one area each: the `impl <Area>Store for EmbeddedStore` and its SQL |
//! | `mesh.rs` | members, their poke ports, the mesh version |
//! | `routing.rs` | where a request goes (placement, choice of member), inserting and assigning a request |
//! | `adoption.rs` | the adoption of the requests parked for a member's names, in bounded transactions, resumed at mesh changes |
//! | `inbox.rs` | the inbox rows (requests, signals) and their reader |
//! | `bindings.rs` | what reminders and subscriptions share: `impl<B> BindingStore<B>` once for both kinds (get, list, cancel) |
//! | `recovery.rs` | removal of a member that left or died, held requests (guarantee 5) |
//! | `event_log.rs` | topics' logs beyond publish and delivery: retention (trimming) and bridges from outside logs (Kafka partitions) |
//! | `db.rs` | the database thread: group commit, savepoint per transition, reads outside the write lock |
//! | `schema.rs`, `schema.sql` | `PRAGMA user_version` and the ordered migrations |
//! | `liveness.rs`, `poke.rs` | failure detection by file locks, wake-ups |
//!
//! The Redis engine (`redis/mod.rs` holds the struct, `open`, the key layout and the
//! design) keeps its scripts in `redis/lua/` and its areas in files of their own.
//!
//! # Adding a store transition
//!
//! 1. Declare it in its area's trait in `kar-store-api` (the doc says what is atomic).
//! 2. Implement it in each engine, in the file of that area (`embedded/<area>.rs`,
//!    `redis/<area>.rs` with its Lua script); status and kind codes come from
//!    `codes.rs`. A new table or column in the embedded engine is a new migration in
//!    `embedded/schema.rs`, with a test from the previous version.
//! 3. Cover it in `tests/conformance.rs`: a scenario function listed in
//!    `conformance!` runs on both engines.

mod codec;
mod codes;
mod embedded;
mod fault;
mod redis;

pub use kar_store_api::*;

/// Fault injection for the adoption tests (cargo feature `fault-injection` only).
#[cfg(feature = "fault-injection")]
pub use fault::end_join_adoption_after;

use std::path::PathBuf;
use std::sync::Arc;

/// Which engine to open, and where.
#[derive(Clone, Debug)]
pub enum StoreConfig {
    /// SQLite database `kar.db` in this directory (created if missing).
    Embedded {
        dir: PathBuf,
        /// When a commit reaches the disk.
        sync: EmbeddedSync,
    },
    Redis(RedisConfig),
}

/// When a commit of the embedded store reaches the disk: SQLite's `synchronous` in WAL
/// mode (`kar run -store_sync`). Every level survives the death of any process; the
/// levels differ on an OS crash or a power loss. Transitions committed together share
/// one commit (group commit), so under load `Full` costs one fsync per batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EmbeddedSync {
    /// Never fsync: an OS crash or power loss may lose commits and may corrupt the
    /// database.
    Off,
    /// Fsync the WAL at checkpoints only: an OS crash or power loss may roll back the
    /// latest commits; the database stays consistent.
    #[default]
    Normal,
    /// Fsync the WAL before every commit is acknowledged: commits survive an OS crash
    /// and a power loss (if the disk honours flushes).
    Full,
}

impl EmbeddedSync {
    /// The flag value and SQLite's name of the level.
    pub fn name(self) -> &'static str {
        match self {
            EmbeddedSync::Off => "off",
            EmbeddedSync::Normal => "normal",
            EmbeddedSync::Full => "full",
        }
    }
}

impl std::str::FromStr for EmbeddedSync {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, StoreError> {
        match text.to_ascii_lowercase().as_str() {
            "off" => Ok(EmbeddedSync::Off),
            "normal" => Ok(EmbeddedSync::Normal),
            "full" => Ok(EmbeddedSync::Full),
            _ => Err(StoreError::Config(format!(
                "invalid store sync level {text:?} (off, normal or full)"
            ))),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct RedisConfig {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Connect with TLS (`rediss://`).
    pub tls: bool,
    /// With TLS, accept any server certificate (no chain nor name verification).
    pub tls_skip_verify: bool,
    /// With TLS, the PEM certificates of the CAs the server's certificate must chain
    /// to; `None`: the system's root certificates.
    pub ca_cert: Option<Vec<u8>>,
    /// Membership lease; a member that does not renew within it is dead.
    pub lease: std::time::Duration,
    /// The fencing margin (`None`: 500 ms, at most a quarter of the lease): a member
    /// that cannot renew its lease stops this long *before* its lease ends (on its own
    /// clock), and the others recover it only this long *after* it ended (on the Redis
    /// clock). At most half the lease.
    pub fence_margin: Option<std::time::Duration>,
    /// Replicas that must acknowledge every transition before kar does (`WAIT`; 0:
    /// none, asynchronous replication). See `redis/replication.rs`.
    pub wait_replicas: u32,
    /// How long a transition waits for them before it fails as unavailable.
    pub wait_timeout: std::time::Duration,
    /// Sentinels (host, port) to ask for the primary: when given, `host` and `port`
    /// are not used, and every new connection goes to the primary they name then.
    pub sentinels: Vec<(String, u16)>,
    /// The name of the primary the Sentinels monitor.
    pub sentinel_master: String,
}

/// Opens the store of application `app`; the recoveries it performs never pause a
/// request (`RecoveryPolicy::default()`: unlimited attempts). See [`open_with`].
pub async fn open(config: &StoreConfig, app: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(config, app, RecoveryPolicy::default()).await
}

/// Opens the store of application `app`; the recoveries performed through this
/// handle (of members that died, or left through it) follow `policy`.
pub async fn open_with(
    config: &StoreConfig,
    app: &str,
    policy: RecoveryPolicy,
) -> Result<Arc<dyn Store>, StoreError> {
    match config {
        StoreConfig::Embedded { dir, sync } => Ok(Arc::new(embedded::EmbeddedStore::open(
            dir, app, policy, *sync,
        )?)),
        StoreConfig::Redis(cfg) => Ok(Arc::new(redis::RedisStore::open(cfg, app, policy).await?)),
    }
}
