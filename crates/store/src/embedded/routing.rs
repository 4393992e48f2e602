//! Where a request goes: placement of actors, choice among the members offering a
//! name, and the insertion of a new request (shared by enqueue, reminder firings and
//! event deliveries).

use super::db::Pokes;
use super::inbox::{self, EXECUTE};
use super::mesh::is_member;
use crate::codec::encode;
use crate::codes::{kind_code, sql_status, Status};
use crate::{Routing, StoreError};
use kar_protocol::{NodeId, Request, Target};
use rand::seq::IndexedRandom;
use rusqlite::{params, Connection, OptionalExtension};

/// Picks a random live member offering `name`.
pub(super) fn pick_member(
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

/// Where a request goes: `None` (it parks) while requests parked for `name` wait to
/// be adopted (`adoption`), so that it cannot overtake an earlier request to its
/// actor; else its [`destination`].
pub(super) fn route(
    conn: &Connection,
    app: &str,
    name: &str,
    actor: Option<(&str, &str)>,
) -> Result<Option<(String, u16)>, StoreError> {
    if has_backlog(conn, app, name)? {
        return Ok(None);
    }
    destination(conn, app, name, actor)
}

/// Whether requests are parked for `name`: one probe of the partial index
/// `requests_parked_for` (empty but for the parked requests), the price of the
/// arrival order on every routing.
pub(super) fn has_backlog(conn: &Connection, app: &str, name: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT EXISTS (SELECT 1 FROM requests WHERE app = ?1 AND name = ?2 AND status = ",
            sql_status!(Parked),
            ")"
        ))?
        .query_row([app, name], |row| row.get(0))?)
}

/// Where a request goes, backlog or not (the adoption itself routes the backlog):
/// for an actor, its placement while that member lives, else a random member offering
/// the type (the choice is recorded as the new placement); for a service, a random
/// member offering it. `None`: nobody offers it.
pub(super) fn destination(
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

pub(super) fn actor_of(target: &Target) -> Option<(&str, &str)> {
    match target {
        Target::Actor { actor_type, id } => Some((actor_type, id)),
        Target::Service { .. } => None,
    }
}

/// Persists a new request and routes it (the body of
/// [`RequestStore::enqueue`](crate::RequestStore::enqueue), shared with reminder
/// firings, which set `firing`: `firings_pending` counts them).
pub(super) fn insert_request(
    conn: &Connection,
    app: &str,
    request: &Request,
    firing: bool,
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
                               actor_type, actor_id, parent, firing)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
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
        request.parent.as_ref().map(|p| p.as_str()),
        // NULL but for firings: the partial index `requests_firing` holds only those.
        firing.then_some(1)
    ])?;
    Ok(match target {
        Some((node, port)) => {
            let pokes = inbox::push_lettered(conn, app, (&node, port), EXECUTE, id, 0, &record)?;
            (Routing::Assigned(NodeId(node)), pokes)
        }
        None => (Routing::Parked, Vec::new()),
    })
}

/// Routes a stored request that sits in no inbox to a live member offering its target
/// (queued there), or parks it. Returns the port to poke.
pub(super) fn reroute(
    conn: &Connection,
    app: &str,
    id: &str,
    name: &str,
    actor: Option<(&str, &str)>,
) -> Result<Option<u16>, StoreError> {
    match route(conn, app, name, actor)? {
        Some((target, port)) => {
            assign(conn, app, id, &target)?;
            Ok(Some(port))
        }
        None => {
            conn.prepare_cached(concat!(
                "UPDATE requests SET status = ",
                sql_status!(Parked),
                ", assignee = NULL WHERE app = ?1 AND id = ?2"
            ))?
            .execute([app, id])?;
            Ok(None)
        }
    }
}

/// Queues stored request `id` on `node` and appends it to that node's inbox.
pub(super) fn assign(conn: &Connection, app: &str, id: &str, node: &str) -> Result<(), StoreError> {
    conn.prepare_cached(concat!(
        "UPDATE requests SET status = ",
        sql_status!(Queued),
        ", assignee = ?3 WHERE app = ?1 AND id = ?2"
    ))?
    .execute([app, id, node])?;
    inbox::push(conn, app, node, EXECUTE, id)
}
