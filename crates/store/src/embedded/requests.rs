//! Requests in the embedded engine: the `requests` table (one row per live request,
//! `seq` in arrival order) and its transitions after enqueue.

use super::actors::apply_update;
use super::db::Pokes;
use super::idempotency;
use super::inbox::{self, COMPLETED, EXECUTE};
use super::mesh::is_member;
use super::recovery;
use super::routing::{actor_of, assign, insert_request, route};
use super::EmbeddedStore;
use crate::codec::{decode, encode};
use crate::codes::{kind_code, kind_from_code, sql_status, Status};
use crate::{RequestStore, Resumed, Routing, StoreError};
use async_trait::async_trait;
use kar_protocol::{ActorRef, NodeId, Outcome, Request, RequestId, StateUpdate};
use rusqlite::{params, Connection, OptionalExtension};

#[async_trait]
impl RequestStore for EmbeddedStore {
    async fn enqueue(&self, request: &Request) -> Result<Routing, StoreError> {
        let app = self.app.clone();
        let request = request.clone();
        self.db
            .run(move |conn| insert_request(conn, &app, &request, false))
            .await
    }

    async fn complete(
        &self,
        node: &NodeId,
        id: &RequestId,
        outcome: &Outcome,
    ) -> Result<bool, StoreError> {
        self.complete_with(node, id, outcome, None).await
    }

    async fn complete_with_state(
        &self,
        node: &NodeId,
        id: &RequestId,
        outcome: &Outcome,
        actor: &ActorRef,
        update: &StateUpdate,
    ) -> Result<bool, StoreError> {
        self.complete_with(node, id, outcome, Some((actor, update)))
            .await
    }

    async fn complete_all(
        &self,
        node: &NodeId,
        completions: &[(RequestId, Outcome)],
    ) -> Result<Vec<bool>, StoreError> {
        let app = self.app.clone();
        let node = node.0.clone();
        let completions: Vec<(String, Vec<u8>)> = completions
            .iter()
            .map(|(id, outcome)| (id.0.clone(), encode(outcome)))
            .collect();
        // One job: one transition (savepoint-free when alone in its transaction),
        // however many completions it records.
        self.db
            .run(move |conn| {
                if is_member(conn, &app, &node)?.is_none() {
                    return Err(StoreError::Fenced(node));
                }
                let mut done = Vec::with_capacity(completions.len());
                let mut pokes = Vec::new();
                for (id, outcome) in &completions {
                    let (completed, more) = complete_one(conn, &app, &node, id, outcome)?;
                    done.push(completed);
                    pokes.extend(more);
                }
                Ok((done, pokes))
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
                        let pokes =
                            inbox::push_lettered(conn, &app, (&n, port), EXECUTE, &id, 0, &record)?;
                        (Routing::Assigned(NodeId(n)), pokes)
                    }
                    None => (Routing::Parked, Vec::new()),
                })
            })
            .await
    }

    async fn resume(&self, id: &RequestId) -> Result<Resumed, StoreError> {
        let app = self.app.clone();
        let id = id.0.clone();
        self.db
            .run(move |conn| {
                type Row = (String, String, Option<String>, Option<String>, Vec<u8>);
                let row: Option<Row> = conn
                    .prepare_cached(
                        "SELECT status, name, actor_type, actor_id, record FROM requests
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
                let Some((status, name, actor_type, actor_id, record)) = row else {
                    return Ok((Resumed::Unknown, Vec::new()));
                };
                if Status::from_sql(&id, &status)? != Status::Paused {
                    return Ok((Resumed::NotPaused, Vec::new()));
                }
                // The attempt count starts afresh.
                let mut request = decode::<Request>(&id, &record)?;
                request.attempt = 0;
                conn.prepare_cached("UPDATE requests SET record = ?3 WHERE app = ?1 AND id = ?2")?
                    .execute(params![app, id, encode(&request)])?;
                if recovery::has_unfinished_children(conn, &app, &id)? {
                    conn.prepare_cached(concat!(
                        "UPDATE requests SET status = ",
                        sql_status!(Held),
                        " WHERE app = ?1 AND id = ?2"
                    ))?
                    .execute([&app, &id])?;
                    return Ok((Resumed::Held, Vec::new()));
                }
                let actor = actor_type.as_deref().zip(actor_id.as_deref());
                Ok(match route(conn, &app, &name, actor)? {
                    Some((node, port)) => {
                        assign(conn, &app, &id, &node)?;
                        (Resumed::Routed(Routing::Assigned(NodeId(node))), vec![port])
                    }
                    None => {
                        conn.prepare_cached(concat!(
                            "UPDATE requests SET status = ",
                            sql_status!(Parked),
                            " WHERE app = ?1 AND id = ?2"
                        ))?
                        .execute([&app, &id])?;
                        (Resumed::Routed(Routing::Parked), Vec::new())
                    }
                })
            })
            .await
    }
}

impl EmbeddedStore {
    /// One completion by `node` (fenced first), with the state writes handed over
    /// with its reply applied in the same job if it completed the request.
    async fn complete_with(
        &self,
        node: &NodeId,
        id: &RequestId,
        outcome: &Outcome,
        state: Option<(&ActorRef, &StateUpdate)>,
    ) -> Result<bool, StoreError> {
        let app = self.app.clone();
        let node = node.0.clone();
        let id = id.0.clone();
        let outcome = encode(outcome);
        let state = state.map(|(actor, update)| (self.actor_key(actor), update.clone()));
        self.db
            .run(move |conn| {
                if is_member(conn, &app, &node)?.is_none() {
                    return Err(StoreError::Fenced(node));
                }
                let (completed, pokes) = complete_one(conn, &app, &node, &id, &outcome)?;
                if let (true, Some(((app, actor_type, actor_id), update))) = (completed, &state) {
                    apply_update(conn, [app, actor_type, actor_id], update)?;
                }
                Ok((completed, pokes))
            })
            .await
    }
}

/// The completion of request `id` executed by `node` (a member: the caller checked),
/// with its postcard `outcome`: see [`RequestStore::complete`].
fn complete_one(
    conn: &Connection,
    app: &str,
    node: &str,
    id: &str,
    outcome: &[u8],
) -> Result<(bool, Pokes), StoreError> {
    let row = super::control::head(conn, app, id)?;
    let Some((status, kind, caller, assignee, parent)) = row else {
        return Ok((false, Vec::new()));
    };
    // Done, or not (or no longer) this node's to run: a stale attempt commits nothing.
    if Status::from_sql(id, &status)? != Status::Queued || assignee.as_deref() != Some(node) {
        return Ok((false, Vec::new()));
    }
    let kind = kind_from_code(id, kind)?;
    idempotency::record_outcome(conn, app, id, outcome)?;
    // Only an outcome somebody waits for needs its caller (a tell's never does).
    let caller_port = if kind.expects_reply() {
        is_member(conn, app, &caller)?
    } else {
        None
    };
    let mut pokes = match caller_port {
        Some(port) => {
            conn.prepare_cached(concat!(
                "UPDATE requests SET status = ",
                sql_status!(Done),
                ", assignee = NULL, outcome = ?3
                 WHERE app = ?1 AND id = ?2"
            ))?
            .execute(params![app, id, outcome])?;
            inbox::push_lettered(
                conn,
                app,
                (&caller, port),
                COMPLETED,
                id,
                kind_code(kind),
                outcome,
            )?
        }
        // A tell, or a caller that is gone (its removal dropped or will drop what it
        // could not collect): the request is finished and nobody will collect the
        // outcome.
        None => {
            conn.prepare_cached("DELETE FROM requests WHERE app = ?1 AND id = ?2")?
                .execute([app, id])?;
            Vec::new()
        }
    };
    if let (true, Some(parent)) = (kind.expects_reply(), parent) {
        pokes.extend(recovery::child_finished(conn, app, &parent)?);
    }
    Ok((true, pokes))
}
