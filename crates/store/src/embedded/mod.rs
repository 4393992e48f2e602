//! The embedded engine: SQLite (WAL) under `$KAR_HOME`, shared by every `kar` process
//! of the user on the host.
//!
//! * Each transition is one SQLite transaction on the process's one connection (`db`):
//!   run by the database thread, which commits the transitions that arrive together
//!   as one group, or by the caller itself when it comes alone.
//! * Members wake each other with loopback pokes (`poke`) once a transition that
//!   appended to their inbox has committed; the inbox is the truth, a poke a hint.
//!   The pokes of requests and outcomes carry the row (`letters`): the woken member
//!   hands it out without reading its table when it knows it missed nothing before.
//! * Deaths are seen through OS file locks (`liveness`): every process watches every
//!   member's lock, and the first to take a dead member's lock recovers it in one
//!   transaction (`recovery`).
//! * A member adopts the requests parked for its names after its join, 500 per name
//!   per transaction (`adoption`), never in the join's transaction: that held the
//!   write lock for seconds with a large backlog. Until a name's backlog is adopted,
//!   routing parks new requests for it behind (one probe of the parked index); every
//!   member resumes the adoption of its names when the mesh changes, so that an
//!   adopter that died or left midway is replaced by the live ones.
//! * The schema has a version (`PRAGMA user_version`) and an ordered list of
//!   migrations (`schema`).
//!
//! One file per area of the store API (`membership`, `requests`, `actors`,
//! `bindings`, `reminders`, `events`, `admin`, `control`), each implementing its trait
//! (`bindings`: what reminders and subscriptions share, once for both); the helpers
//! they share have modules of their own: `mesh` (members, mesh version), `routing`
//! (where a request goes, the insertion of a request), `adoption` (of parked
//! requests), `inbox` (the inbox rows and their reader), `idempotency` (idempotency
//! keys), `connection` (opening SQLite, checkpoints).

mod actors;
mod admin;
mod adoption;
mod bindings;
mod connection;
mod control;
mod db;
mod event_log;
mod events;
mod idempotency;
mod inbox;
mod letters;
mod liveness;
mod membership;
mod mesh;
mod poke;
mod recovery;
mod reminders;
mod requests;
mod routing;
mod schema;
mod writer;

use crate::StoreError;
use db::Db;
use kar_protocol::ActorRef;
use liveness::Watchers;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub struct EmbeddedStore {
    app: String,
    path: PathBuf,
    db: Db,
    watchers: Arc<Watchers>,
    dir: PathBuf,
    policy: crate::RecoveryPolicy,
}

impl EmbeddedStore {
    /// Opens (creating if needed) `dir/kar.db` for application `app`; the recoveries
    /// this handle performs follow `policy`.
    /// Commits reach the disk as `sync` says.
    pub fn open(
        dir: &Path,
        app: &str,
        policy: crate::RecoveryPolicy,
        sync: crate::EmbeddedSync,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Config(format!(
                "cannot create store directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join("kar.db");
        let db = Db::open(&path, schema::upgrade, sync)?;
        let watchers = Watchers::new(dir.to_path_buf(), app.to_string(), db.clone(), policy);
        Ok(EmbeddedStore {
            app: app.to_string(),
            path,
            db,
            watchers,
            dir: dir.to_path_buf(),
            policy,
        })
    }

    /// The key of an actor's rows: (app, type, id), owned for a transition's closure.
    fn actor_key(&self, actor: &ActorRef) -> (String, String, String) {
        (self.app.clone(), actor.actor_type.clone(), actor.id.clone())
    }
}
