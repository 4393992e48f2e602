//! The embedded engine: SQLite (WAL) under `$KAR_HOME`, shared by every `kar` process
//! of the user on the host. Each transition is one SQLite transaction run on the
//! process's database thread (`db`); members wake each other with loopback pokes
//! (`poke`); deaths are seen through OS file locks (`liveness`).

mod db;
mod events;
mod liveness;
mod poke;
mod recovery;
mod reminders;

use crate::codec::{decode, encode};
use crate::codes::{kind_code, kind_from_code, sql_status, Status};
use crate::{
    ActorStore, AdminStore, Delivery, EventRequestBuilder, EventStore, Firing, Inbox,
    MembershipStore, Message, ReminderStore, RequestBuilder, RequestStore, Routing, StoreError,
};
use async_trait::async_trait;
use bytes::Bytes;
use db::{Db, Pokes};
use kar_protocol::{
    ActorRef, ActorState, Member, NodeId, Outcome, Reminder, Request, RequestId, StateUpdate,
    Subscription, Target, UpdateCounts,
};
use liveness::Watchers;
use rand::seq::IndexedRandom;
pub(crate) use recovery::{remove_member, Removal};
use rusqlite::{params, Connection, OptionalExtension};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::Notify;

const SCHEMA: &str = include_str!("schema.sql");

/// Brings a database made by an earlier version up to date (run after [`SCHEMA`], in
/// its transaction; idempotent).
fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let has_parent = conn
        .prepare("SELECT 1 FROM pragma_table_info('requests') WHERE name = 'parent'")?
        .exists([])?;
    if !has_parent {
        conn.execute_batch("ALTER TABLE requests ADD COLUMN parent TEXT")?;
    }
    // Serves recovery (does a request have unfinished children?) and the completion
    // of a child (is its parent held?).
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS requests_children ON requests (app, parent)
         WHERE parent IS NOT NULL",
    )
}

/// Inbox row kinds.
const EXECUTE: i64 = 0;
const COMPLETED: i64 = 1;

pub struct EmbeddedStore {
    app: String,
    path: PathBuf,
    db: Db,
    watchers: Arc<Watchers>,
    dir: PathBuf,
}

impl EmbeddedStore {
    /// Opens (creating if needed) `dir/kar.db` for application `app`.
    pub fn open(dir: &Path, app: &str) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Config(format!(
                "cannot create store directory {}: {e}",
                dir.display()
            ))
        })?;
        let path = dir.join("kar.db");
        let db = Db::open(&path, SCHEMA, migrate)?;
        let watchers = Watchers::new(dir.to_path_buf(), app.to_string(), db.clone());
        Ok(EmbeddedStore {
            app: app.to_string(),
            path,
            db,
            watchers,
            dir: dir.to_path_buf(),
        })
    }
}

impl EmbeddedStore {
    fn actor_key(&self, actor: &ActorRef) -> (String, String, String) {
        (self.app.clone(), actor.actor_type.clone(), actor.id.clone())
    }
}

/// Sets one state entry; returns whether it was created. An existing submap entry
/// keeps its place in the insertion order.
fn set_entry(
    conn: &Connection,
    [app, t, i]: [&String; 3],
    key: &str,
    subkey: Option<&str>,
    value: &[u8],
) -> Result<bool, StoreError> {
    let changed = match subkey {
        None => conn
            .prepare_cached(
                "UPDATE state_flat SET value = ?5 WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND key = ?4",
            )?
            .execute(params![app, t, i, key, value])?,
        Some(sub) => conn
            .prepare_cached(
                "UPDATE state_submap SET value = ?6
                 WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND key = ?4 AND subkey = ?5",
            )?
            .execute(params![app, t, i, key, sub, value])?,
    };
    if changed > 0 {
        return Ok(false);
    }
    match subkey {
        None => conn
            .prepare_cached(
                "INSERT INTO state_flat (app, actor_type, actor_id, key, value) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![app, t, i, key, value])?,
        Some(sub) => conn
            .prepare_cached(
                "INSERT INTO state_submap (app, actor_type, actor_id, key, subkey, value)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![app, t, i, key, sub, value])?,
    };
    Ok(true)
}

/// Removes one state entry; returns whether it existed.
fn remove_entry(
    conn: &Connection,
    [app, t, i]: [&String; 3],
    key: &str,
    subkey: Option<&str>,
) -> Result<bool, StoreError> {
    let n = match subkey {
        None => conn
            .prepare_cached(
                "DELETE FROM state_flat WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND key = ?4",
            )?
            .execute(params![app, t, i, key])?,
        Some(sub) => conn
            .prepare_cached(
                "DELETE FROM state_submap WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND key = ?4 AND subkey = ?5",
            )?
            .execute(params![app, t, i, key, sub])?,
    };
    Ok(n > 0)
}

fn poke_ports(conn: &Connection, app: &str) -> Result<Pokes, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT poke_port FROM members WHERE app = ?1")?;
    let ports = stmt
        .query_map([app], |row| row.get::<_, u16>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ports)
}

fn is_member(conn: &Connection, app: &str, node: &str) -> Result<Option<u16>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT poke_port FROM members WHERE app = ?1 AND node = ?2")?
        .query_row([app, node], |row| row.get(0))
        .optional()?)
}

/// Picks a random live member offering `name`.
fn pick_member(
    conn: &Connection,
    app: &str,
    name: &str,
) -> Result<Option<(String, u16)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.node, m.poke_port FROM offers o JOIN members m ON m.app = o.app AND m.node = o.node
         WHERE o.app = ?1 AND o.name = ?2",
    )?;
    let candidates = stmt
        .query_map([app, name], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, u16>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(candidates.choose(&mut rand::rng()).cloned())
}

/// Where a request goes: for an actor, its placement while that member lives, else
/// a random member offering the type (the choice is recorded as the new placement);
/// for a service, a random member offering it. `None`: nobody offers it.
fn route(
    conn: &Connection,
    app: &str,
    name: &str,
    actor: Option<(&str, &str)>,
) -> Result<Option<(String, u16)>, StoreError> {
    let Some((actor_type, actor_id)) = actor else {
        return pick_member(conn, app, name);
    };
    let placed: Option<String> = conn
        .prepare_cached(
            "SELECT node FROM placements WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3",
        )?
        .query_row([app, actor_type, actor_id], |row| row.get(0))
        .optional()?;
    if let Some(node) = placed {
        if let Some(port) = is_member(conn, app, &node)? {
            return Ok(Some((node, port)));
        }
    }
    let picked = pick_member(conn, app, name)?;
    if let Some((node, _)) = &picked {
        conn.prepare_cached(
            "INSERT OR REPLACE INTO placements (app, actor_type, actor_id, node) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute([app, actor_type, actor_id, node])?;
    }
    Ok(picked)
}

fn actor_of(target: &Target) -> Option<(&str, &str)> {
    match target {
        Target::Actor { actor_type, id } => Some((actor_type, id)),
        Target::Service { .. } => None,
    }
}

fn push_inbox(
    conn: &Connection,
    app: &str,
    node: &str,
    kind: i64,
    id: &str,
) -> Result<(), StoreError> {
    conn.prepare_cached("INSERT INTO inbox (app, node, kind, request_id) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![app, node, kind, id])?;
    Ok(())
}

fn bump_version(conn: &Connection, app: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO mesh (app, version) VALUES (?1, 1)
         ON CONFLICT (app) DO UPDATE SET version = version + 1",
    )?
    .execute([app])?;
    Ok(())
}

fn mesh_version(conn: &Connection, app: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT version FROM mesh WHERE app = ?1")?
        .query_row([app], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Persists a new request and routes it (the body of [`Store::enqueue`], shared with
/// reminder firings).
fn insert_request(
    conn: &Connection,
    app: &str,
    request: &Request,
) -> Result<(Routing, Pokes), StoreError> {
    let record = encode(request);
    let id = request.id.as_str();
    let name = request.target.routing_name();
    let actor = actor_of(&request.target);
    let target = route(conn, app, name, actor)?;
    let (status, assignee) = match &target {
        Some((node, _)) => (Status::Queued.sql(), Some(node.as_str())),
        None => (Status::Parked.sql(), None),
    };
    conn.prepare_cached(
        "INSERT INTO requests (app, id, name, status, kind, assignee, caller, record,
                               actor_type, actor_id, parent)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        app,
        id,
        name,
        status,
        kind_code(request.kind),
        assignee,
        request.caller.as_str(),
        record,
        actor.map(|a| a.0),
        actor.map(|a| a.1),
        request.parent.as_ref().map(|p| p.as_str())
    ])?;
    Ok(match target {
        Some((node, port)) => {
            push_inbox(conn, app, &node, EXECUTE, id)?;
            (Routing::Assigned(NodeId(node)), vec![port])
        }
        None => (Routing::Parked, Vec::new()),
    })
}

/// Cancels one binding (`id`) or all of an actor, in `table` (`reminders` or
/// `subscriptions`); returns how many went.
async fn cancel_bindings(
    db: &Db,
    table: &'static str,
    app: &str,
    actor: &ActorRef,
    id: Option<&str>,
) -> Result<u64, StoreError> {
    let (app, t, i) = (app.to_string(), actor.actor_type.clone(), actor.id.clone());
    let id = id.map(str::to_string);
    db.run(move |conn| {
        let n = match &id {
            Some(id) => conn
                .prepare_cached(&format!(
                    "DELETE FROM {table} WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND id = ?4"
                ))?
                .execute([&app, &t, &i, id])?,
            None => conn
                .prepare_cached(&format!(
                    "DELETE FROM {table} WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3"
                ))?
                .execute([&app, &t, &i])?,
        };
        Ok((n as u64, Vec::new()))
    })
    .await
}

#[async_trait]
impl MembershipStore for EmbeddedStore {
    async fn join(&self, member: &Member) -> Result<Box<dyn Inbox>, StoreError> {
        let node = member.node.0.clone();
        let lock = liveness::hold(&self.dir, &node)
            .map_err(|e| StoreError::unavailable(format!("cannot create member lock: {e}")))?;
        let (poke_port, notify, listener) = poke::listen()
            .await
            .map_err(|e| StoreError::unavailable(format!("cannot listen for wake-ups: {e}")))?;
        let app = self.app.clone();
        let record = encode(member);
        let names: Vec<String> = member.names().map(str::to_string).collect();
        let node2 = node.clone();
        let (others, version) = self
            .db
            .run(move |conn| {
                let node = node2;
                let others: Vec<String> = conn
                    .prepare_cached("SELECT node FROM members WHERE app = ?1")?
                    .query_map([&app], |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut pokes = poke_ports(conn, &app)?;
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO members (app, node, member, poke_port) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![app, node, record, poke_port])?;
                for name in &names {
                    conn.prepare_cached("INSERT OR IGNORE INTO offers (app, name, node) VALUES (?1, ?2, ?3)")?
                        .execute([&app, name, &node])?;
                }
                for name in &names {
                    let parked: Vec<(String, Option<String>, Option<String>)> = conn
                        .prepare_cached(
                            concat!("SELECT id, actor_type, actor_id FROM requests
                             WHERE app = ?1 AND status = ", sql_status!(Parked), " AND name = ?2 ORDER BY seq"),
                        )?
                        .query_map([&app, name], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                        .collect::<Result<_, _>>()?;
                    for (id, actor_type, actor_id) in parked {
                        let actor = actor_type.as_deref().zip(actor_id.as_deref());
                        let Some((target, port)) = route(conn, &app, name, actor)? else {
                            continue;
                        };
                        conn.prepare_cached(
                            concat!("UPDATE requests SET status = ", sql_status!(Queued), ", assignee = ?3 WHERE app = ?1 AND id = ?2"),
                        )?
                        .execute([&app, &id, &target])?;
                        push_inbox(conn, &app, &target, EXECUTE, &id)?;
                        pokes.push(port);
                    }
                }
                bump_version(conn, &app)?;
                let version = mesh_version(conn, &app)?;
                pokes.push(poke_port);
                Ok(((others, version), pokes))
            })
            .await?;
        self.watchers.watch_all(others, std::slice::from_ref(&node));
        Ok(Box::new(EmbeddedInbox {
            app: self.app.clone(),
            node,
            db: self.db.clone(),
            notify,
            acked: 0,
            // Changes after the join are reported, even before the first recv.
            version,
            watchers: self.watchers.clone(),
            _lock: lock,
            listener,
        }))
    }

    async fn leave(&self, node: &NodeId) -> Result<(), StoreError> {
        let app = self.app.clone();
        let node = node.0.clone();
        self.db
            .run(move |conn| remove_member(conn, &app, &node, Removal::Left))
            .await?;
        Ok(())
    }

    async fn members(&self) -> Result<Vec<Member>, StoreError> {
        let app = self.app.clone();
        self.db
            .read(move |conn| {
                let rows: Vec<(String, Vec<u8>)> = conn
                    .prepare_cached(
                        "SELECT node, member FROM members WHERE app = ?1 ORDER BY node",
                    )?
                    .query_map([&app], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                let members = rows
                    .iter()
                    .map(|(node, bytes)| decode(node, bytes))
                    .collect::<Result<Vec<Member>, _>>()?;
                Ok(members)
            })
            .await
    }

    async fn signal(&self, _to: &NodeId, _signal: &crate::Signal) -> Result<(), StoreError> {
        Err(StoreError::unavailable(
            "signals are not implemented by this engine yet",
        ))
    }
}

#[async_trait]
impl RequestStore for EmbeddedStore {
    async fn enqueue(&self, request: &Request) -> Result<Routing, StoreError> {
        let app = self.app.clone();
        let request = request.clone();
        self.db
            .run(move |conn| insert_request(conn, &app, &request))
            .await
    }

    async fn complete(
        &self,
        node: &NodeId,
        id: &RequestId,
        outcome: &Outcome,
    ) -> Result<bool, StoreError> {
        let app = self.app.clone();
        let node = node.0.clone();
        let id = id.0.clone();
        let outcome = encode(outcome);
        self.db
            .run(move |conn| {
                if is_member(conn, &app, &node)?.is_none() {
                    return Err(StoreError::Fenced(node));
                }
                let row: Option<(String, i64, String, Option<String>, Option<String>)> = conn
                    .prepare_cached(
                        "SELECT status, kind, caller, assignee, parent FROM requests
                         WHERE app = ?1 AND id = ?2",
                    )?
                    .query_row([&app, &id], |row| {
                        Ok((
                            row.get(0)?,
                            row.get(1)?,
                            row.get(2)?,
                            row.get(3)?,
                            row.get(4)?,
                        ))
                    })
                    .optional()?;
                let Some((status, kind, caller, assignee, parent)) = row else {
                    return Ok((false, Vec::new()));
                };
                // Done, or not (or no longer) this node's to run: a stale attempt
                // commits nothing.
                if Status::from_sql(&id, &status)? != Status::Queued
                    || assignee.as_deref() != Some(node.as_str())
                {
                    return Ok((false, Vec::new()));
                }
                let kind = kind_from_code(&id, kind)?;
                let caller_port = is_member(conn, &app, &caller)?;
                let mut pokes = match (kind.expects_reply(), caller_port) {
                    (true, Some(port)) => {
                        conn.prepare_cached(concat!(
                            "UPDATE requests SET status = ",
                            sql_status!(Done),
                            ", assignee = NULL, outcome = ?3
                             WHERE app = ?1 AND id = ?2"
                        ))?
                        .execute(params![app, id, outcome])?;
                        push_inbox(conn, &app, &caller, COMPLETED, &id)?;
                        vec![port]
                    }
                    // A tell, or a caller that is gone (its removal dropped or will
                    // drop what it could not collect): the request is finished and
                    // nobody will collect the outcome.
                    _ => {
                        conn.prepare_cached("DELETE FROM requests WHERE app = ?1 AND id = ?2")?
                            .execute([&app, &id])?;
                        Vec::new()
                    }
                };
                if let (true, Some(parent)) = (kind.expects_reply(), parent) {
                    pokes.extend(recovery::child_finished(conn, &app, &parent)?);
                }
                Ok((true, pokes))
            })
            .await
    }

    async fn forget(&self, ids: &[RequestId]) -> Result<(), StoreError> {
        // Deleted with the next write transaction of this process: a transaction of
        // its own would delay the caller's next request.
        self.db.forget(&self.app, ids.iter().map(|id| id.0.clone()));
        Ok(())
    }

    async fn expire_parked(&self, id: &RequestId) -> Result<bool, StoreError> {
        let app = self.app.clone();
        let id = id.0.clone();
        self.db
            .run(move |conn| {
                let parked: Option<(i64, Option<String>)> = conn
                    .prepare_cached(
                        concat!("SELECT kind, parent FROM requests WHERE app = ?1 AND id = ?2 AND status = ", sql_status!(Parked)),
                    )?
                    .query_row([&app, &id], |row| Ok((row.get(0)?, row.get(1)?)))
                    .optional()?;
                let Some((kind, parent)) = parked else {
                    return Ok((false, Vec::new()));
                };
                conn.prepare_cached("DELETE FROM requests WHERE app = ?1 AND id = ?2")?
                    .execute([&app, &id])?;
                let pokes = match parent {
                    Some(parent) if kind_from_code(&id, kind)?.expects_reply() => {
                        recovery::child_finished(conn, &app, &parent)?
                    }
                    _ => Vec::new(),
                };
                Ok((true, pokes))
            })
            .await
    }

    async fn tail_call(
        &self,
        node: &NodeId,
        next: &Request,
        local: bool,
    ) -> Result<Routing, StoreError> {
        let app = self.app.clone();
        let node = node.0.clone();
        let id = next.id.0.clone();
        let record = encode(next);
        let name = next.target.routing_name().to_string();
        let actor = actor_of(&next.target).map(|(t, i)| (t.to_string(), i.to_string()));
        self.db
            .run(move |conn| {
                if is_member(conn, &app, &node)?.is_none() {
                    return Err(StoreError::Fenced(node));
                }
                let assignee: Option<Option<String>> = conn
                    .prepare_cached(concat!(
                        "SELECT assignee FROM requests WHERE app = ?1 AND id = ?2 AND status = ",
                        sql_status!(Queued)
                    ))?
                    .query_row([&app, &id], |row| row.get(0))
                    .optional()?;
                if assignee.flatten().as_deref() != Some(node.as_str()) {
                    return Err(StoreError::NotAssigned(id));
                }
                let actor = actor.as_ref().map(|(t, i)| (t.as_str(), i.as_str()));
                let target = if local {
                    Some((node.clone(), 0))
                } else {
                    route(conn, &app, &name, actor)?
                };
                let (status, assignee) = match &target {
                    Some((n, _)) => (Status::Queued.sql(), Some(n.as_str())),
                    None => (Status::Parked.sql(), None),
                };
                conn.prepare_cached(
                    "UPDATE requests SET name = ?3, actor_type = ?4, actor_id = ?5, status = ?6,
                     assignee = ?7, record = ?8 WHERE app = ?1 AND id = ?2",
                )?
                .execute(params![
                    app,
                    id,
                    name,
                    actor.map(|a| a.0),
                    actor.map(|a| a.1),
                    status,
                    assignee,
                    record
                ])?;
                Ok(match target {
                    Some((n, _)) if local => (Routing::Assigned(NodeId(n)), Vec::new()),
                    Some((n, port)) => {
                        push_inbox(conn, &app, &n, EXECUTE, &id)?;
                        (Routing::Assigned(NodeId(n)), vec![port])
                    }
                    None => (Routing::Parked, Vec::new()),
                })
            })
            .await
    }
}

#[async_trait]
impl ActorStore for EmbeddedStore {
    async fn remove_actor(&self, actor: &ActorRef) -> Result<(), StoreError> {
        let (app, t, i) = self.actor_key(actor);
        self.db
            .run(move |conn| {
                for table in ["placements", "state_flat", "state_submap"] {
                    conn.prepare_cached(&format!(
                        "DELETE FROM {table} WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3"
                    ))?
                    .execute([&app, &t, &i])?;
                }
                Ok(((), Vec::new()))
            })
            .await
    }

    async fn placements(&self) -> Result<Vec<(ActorRef, NodeId)>, StoreError> {
        let app = self.app.clone();
        self.db
            .read(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT actor_type, actor_id, node FROM placements WHERE app = ?1
                         ORDER BY actor_type, actor_id",
                    )?
                    .query_map([&app], |row| {
                        Ok((
                            ActorRef::new(row.get::<_, String>(0)?, row.get::<_, String>(1)?),
                            NodeId(row.get(2)?),
                        ))
                    })?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await
    }

    async fn state_get(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
    ) -> Result<Option<Bytes>, StoreError> {
        let (app, t, i) = self.actor_key(actor);
        let key = key.to_string();
        let subkey = subkey.map(str::to_string);
        self.db
            .read(move |conn| {
                let value: Option<Vec<u8>> = match &subkey {
                    None => conn
                        .prepare_cached(
                            "SELECT value FROM state_flat WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND key = ?4",
                        )?
                        .query_row([&app, &t, &i, &key], |row| row.get(0))
                        .optional()?,
                    Some(sub) => conn
                        .prepare_cached(
                            "SELECT value FROM state_submap
                             WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND key = ?4 AND subkey = ?5",
                        )?
                        .query_row([&app, &t, &i, &key, sub], |row| row.get(0))
                        .optional()?,
                };
                Ok(value.map(Bytes::from))
            })
            .await
    }

    async fn state_set(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
        value: Bytes,
    ) -> Result<bool, StoreError> {
        let (app, t, i) = self.actor_key(actor);
        let key = key.to_string();
        let subkey = subkey.map(str::to_string);
        self.db
            .run(move |conn| {
                let created = set_entry(conn, [&app, &t, &i], &key, subkey.as_deref(), &value)?;
                Ok((created, Vec::new()))
            })
            .await
    }

    async fn state_remove(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
    ) -> Result<bool, StoreError> {
        let (app, t, i) = self.actor_key(actor);
        let key = key.to_string();
        let subkey = subkey.map(str::to_string);
        self.db
            .run(move |conn| {
                let removed = remove_entry(conn, [&app, &t, &i], &key, subkey.as_deref())?;
                Ok((removed, Vec::new()))
            })
            .await
    }

    async fn state_get_all(&self, actor: &ActorRef) -> Result<ActorState, StoreError> {
        let (app, t, i) = self.actor_key(actor);
        self.db
            .read(move |conn| {
                let flat = conn
                    .prepare_cached(
                        "SELECT key, value FROM state_flat WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3
                         ORDER BY key",
                    )?
                    .query_map([&app, &t, &i], |row| {
                        Ok((row.get::<_, String>(0)?, Bytes::from(row.get::<_, Vec<u8>>(1)?)))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let entries = conn
                    .prepare_cached(
                        "SELECT key, subkey, value FROM state_submap WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3
                         ORDER BY key, seq",
                    )?
                    .query_map([&app, &t, &i], |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            Bytes::from(row.get::<_, Vec<u8>>(2)?),
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                let mut submaps: Vec<(String, Vec<(String, Bytes)>)> = Vec::new();
                for (key, subkey, value) in entries {
                    match submaps.last_mut() {
                        Some((k, list)) if *k == key => list.push((subkey, value)),
                        _ => submaps.push((key, vec![(subkey, value)])),
                    }
                }
                Ok(ActorState { flat, submaps })
            })
            .await
    }

    async fn state_remove_all(&self, actor: &ActorRef) -> Result<u64, StoreError> {
        let (app, t, i) = self.actor_key(actor);
        self.db
            .run(move |conn| {
                let mut n = 0u64;
                for table in ["state_flat", "state_submap"] {
                    n += conn
                        .prepare_cached(&format!(
                            "DELETE FROM {table} WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3"
                        ))?
                        .execute([&app, &t, &i])? as u64;
                }
                Ok((n, Vec::new()))
            })
            .await
    }

    async fn state_update(
        &self,
        actor: &ActorRef,
        update: &StateUpdate,
    ) -> Result<UpdateCounts, StoreError> {
        let (app, t, i) = self.actor_key(actor);
        let update = update.clone();
        self.db
            .run(move |conn| {
                let actor = [&app, &t, &i];
                let mut counts = UpdateCounts::default();
                for key in &update.removals {
                    counts.removed += u64::from(remove_entry(conn, actor, key, None)?);
                }
                for (key, subkeys) in &update.submap_removals {
                    for sub in subkeys {
                        counts.removed += u64::from(remove_entry(conn, actor, key, Some(sub))?);
                    }
                }
                for (key, value) in &update.updates {
                    counts.added += u64::from(set_entry(conn, actor, key, None, value)?);
                }
                for (key, entries) in &update.submap_updates {
                    for (sub, value) in entries {
                        counts.added += u64::from(set_entry(conn, actor, key, Some(sub), value)?);
                    }
                }
                Ok((counts, Vec::new()))
            })
            .await
    }

    async fn submap_entries(
        &self,
        actor: &ActorRef,
        key: &str,
    ) -> Result<Vec<(String, Bytes)>, StoreError> {
        let (app, t, i) = self.actor_key(actor);
        let key = key.to_string();
        self.db
            .read(move |conn| {
                let rows = conn
                    .prepare_cached(
                        "SELECT subkey, value FROM state_submap
                         WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND key = ?4 ORDER BY seq",
                    )?
                    .query_map([&app, &t, &i, &key], |row| {
                        Ok((row.get::<_, String>(0)?, Bytes::from(row.get::<_, Vec<u8>>(1)?)))
                    })?
                    .collect::<Result<_, _>>()?;
                Ok(rows)
            })
            .await
    }

    async fn submap_clear(&self, actor: &ActorRef, key: &str) -> Result<u64, StoreError> {
        let (app, t, i) = self.actor_key(actor);
        let key = key.to_string();
        self.db
            .run(move |conn| {
                let n = conn
                    .prepare_cached(
                        "DELETE FROM state_submap WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3 AND key = ?4",
                    )?
                    .execute([&app, &t, &i, &key])?;
                Ok((n as u64, Vec::new()))
            })
            .await
    }
}

#[async_trait]
impl ReminderStore for EmbeddedStore {
    async fn reminder_schedule(&self, reminder: &Reminder) -> Result<bool, StoreError> {
        reminders::schedule(&self.db, &self.app, reminder).await
    }

    async fn reminder_get(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<Option<Reminder>, StoreError> {
        reminders::get(&self.db, &self.app, actor, Some(id))
            .await
            .map(|mut found| found.pop())
    }

    async fn reminders_of(&self, actor: &ActorRef) -> Result<Vec<Reminder>, StoreError> {
        reminders::get(&self.db, &self.app, actor, None).await
    }

    async fn reminders(&self) -> Result<Vec<Reminder>, StoreError> {
        reminders::all(&self.db, &self.app).await
    }

    async fn reminder_cancel(&self, actor: &ActorRef, id: &str) -> Result<bool, StoreError> {
        Ok(cancel_bindings(&self.db, "reminders", &self.app, actor, Some(id)).await? > 0)
    }

    async fn reminders_cancel_all(&self, actor: &ActorRef) -> Result<u64, StoreError> {
        cancel_bindings(&self.db, "reminders", &self.app, actor, None).await
    }

    async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        reminders::next_due(&self.db, &self.app).await
    }

    async fn fire_due(
        &self,
        now: i64,
        limit: usize,
        build: &RequestBuilder,
    ) -> Result<Vec<Firing>, StoreError> {
        reminders::fire_due(&self.db, &self.app, now, limit, build.clone()).await
    }
}

#[async_trait]
impl EventStore for EmbeddedStore {
    async fn topic_create(&self, topic: &str) -> Result<bool, StoreError> {
        events::topic_create(&self.db, topic).await
    }

    async fn topic_delete(&self, topic: &str) -> Result<bool, StoreError> {
        events::topic_delete(&self.db, topic).await
    }

    async fn publish(&self, topic: &str, event: Bytes) -> Result<u64, StoreError> {
        events::publish(&self.db, topic, event).await
    }

    async fn subscribe(&self, subscription: &Subscription) -> Result<bool, StoreError> {
        events::subscribe(&self.db, &self.app, subscription).await
    }

    async fn subscription_get(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        Ok(events::get(&self.db, &self.app, Some(actor), Some(id))
            .await?
            .pop())
    }

    async fn subscriptions_of(&self, actor: &ActorRef) -> Result<Vec<Subscription>, StoreError> {
        events::get(&self.db, &self.app, Some(actor), None).await
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        events::get(&self.db, &self.app, None, None).await
    }

    async fn subscription_cancel(&self, actor: &ActorRef, id: &str) -> Result<bool, StoreError> {
        Ok(cancel_bindings(&self.db, "subscriptions", &self.app, actor, Some(id)).await? > 0)
    }

    async fn subscriptions_cancel_all(&self, actor: &ActorRef) -> Result<u64, StoreError> {
        cancel_bindings(&self.db, "subscriptions", &self.app, actor, None).await
    }

    async fn deliver_event(
        &self,
        actor: &ActorRef,
        id: &str,
        build: &EventRequestBuilder,
    ) -> Result<Delivery, StoreError> {
        events::deliver(&self.db, &self.app, actor, id, build.clone()).await
    }
}

#[async_trait]
impl AdminStore for EmbeddedStore {
    async fn purge(&self) -> Result<u64, StoreError> {
        let app = self.app.clone();
        self.db
            .run(move |conn| {
                let mut total = 0u64;
                for table in [
                    "members",
                    "offers",
                    "mesh",
                    "requests",
                    "inbox",
                    "placements",
                    "state_flat",
                    "state_submap",
                    "reminders",
                    "subscriptions",
                ] {
                    total += conn.execute(&format!("DELETE FROM {table} WHERE app = ?1"), [&app])?
                        as u64;
                }
                Ok((total, Vec::new()))
            })
            .await
    }

    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
}

struct EmbeddedInbox {
    app: String,
    node: String,
    db: Db,
    notify: Arc<Notify>,
    /// Inbox rows up to this sequence number were handed out and can be deleted.
    acked: i64,
    /// Mesh version last reported.
    version: i64,
    watchers: Arc<Watchers>,
    _lock: File,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for EmbeddedInbox {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// One inbox row joined with its request.
struct InboxRow {
    seq: i64,
    kind: i64,
    request_id: String,
    record: Option<Vec<u8>>,
    request_kind: Option<i64>,
    outcome: Option<Vec<u8>>,
}

const INBOX_BATCH: i64 = 1024;

#[async_trait]
impl Inbox for EmbeddedInbox {
    async fn recv(&mut self) -> Result<Vec<Message>, StoreError> {
        loop {
            let app = self.app.clone();
            let node = self.node.clone();
            let acked = self.acked;
            let known_version = self.version;
            let (rows, version, members) = self
                .db
                .read(move |conn| {
                    let rows: Vec<InboxRow> = conn
                        .prepare_cached(
                            "SELECT i.seq, i.kind, i.request_id, r.record, r.kind, r.outcome
                             FROM inbox i LEFT JOIN requests r ON r.app = i.app AND r.id = i.request_id
                             WHERE i.app = ?1 AND i.node = ?2 AND i.seq > ?3 ORDER BY i.seq LIMIT ?4",
                        )?
                        .query_map(params![app, node, acked, INBOX_BATCH], |row| {
                            Ok(InboxRow {
                                seq: row.get(0)?,
                                kind: row.get(1)?,
                                request_id: row.get(2)?,
                                record: row.get(3)?,
                                request_kind: row.get(4)?,
                                outcome: row.get(5)?,
                            })
                        })?
                        .collect::<Result<_, _>>()?;
                    let version = mesh_version(conn, &app)?;
                    // The member list only matters when the mesh changed.
                    let members: Vec<String> = if version == known_version {
                        Vec::new()
                    } else {
                        conn.prepare_cached("SELECT node FROM members WHERE app = ?1")?
                            .query_map([&app], |row| row.get(0))?
                            .collect::<Result<_, _>>()?
                    };
                    Ok((rows, version, members))
                })
                .await?;
            let mut messages = Vec::with_capacity(rows.len() + 1);
            if version != self.version {
                if self.version >= 0 {
                    messages.push(Message::MembersChanged);
                }
                self.version = version;
                self.watchers
                    .watch_all(members, std::slice::from_ref(&self.node));
            }
            for row in rows {
                self.acked = self.acked.max(row.seq);
                let message = match (row.kind, row.record, row.outcome, row.request_kind) {
                    (EXECUTE, Some(record), _, _) => decode(&row.request_id, &record)
                        .map(|request| Some(Message::Execute(Box::new(request)))),
                    (COMPLETED, Some(_), Some(outcome), Some(kind)) => {
                        kind_from_code(&row.request_id, kind).and_then(|kind| {
                            Ok(Some(Message::Completed {
                                id: RequestId(row.request_id.clone()),
                                kind,
                                outcome: decode(&row.request_id, &outcome)?,
                            }))
                        })
                    }
                    // The request is gone (purged, or completed after re-routing).
                    _ => Ok(None),
                };
                match message {
                    Ok(Some(message)) => messages.push(message),
                    Ok(None) => {}
                    // Skipped, not returned: the row is already acknowledged, and the
                    // messages around it must still be delivered.
                    Err(e) => {
                        tracing::error!(request = %row.request_id, "dropping a corrupt inbox message: {e}")
                    }
                }
            }
            if self.acked > acked {
                // Handed out from here on: delete them with the next write.
                self.db.ack(&self.app, &self.node, self.acked);
            }
            if !messages.is_empty() {
                return Ok(messages);
            }
            self.notify.notified().await;
        }
    }
}
