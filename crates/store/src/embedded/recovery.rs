//! Recovery of a member that left or died, and the happens-before rule (guarantee 5)
//! that holds a re-delivered request back while children of its failed attempt run.
//!
//! A recovery is one SQLite transaction: it happens entirely or not at all, so a
//! recoverer that crashes midway leaves the member for the next one (every process
//! watches every member: the next watcher to take the dead member's lock retries).

use super::db::Pokes;
use super::mesh::{bump_version, poke_ports};
use super::routing::reroute;
use crate::codec::{decode, encode};
use crate::codes::{kind, sql_status};
use crate::{RecoveryPolicy, StoreError};
use kar_protocol::Request;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashSet;

/// Why a member is removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Removal<'a> {
    /// It left (`Store::leave_releasing`), without having started these requests.
    Left(&'a HashSet<String>),
    /// It died (its lock was released without a leave).
    Died,
}

/// Removes a member that left or died, in one transition: its queued requests are
/// re-delivered in arrival order with their attempt incremented (to live members,
/// parked, or held while children of theirs are unfinished; paused when the attempt
/// reaches `policy.max_attempts`), finished requests that
/// only it could collect are dropped, and everybody learns of the change. Returns
/// whether the member was still there.
pub(super) fn remove_member(
    conn: &Connection,
    app: &str,
    node: &str,
    removal: Removal<'_>,
    policy: RecoveryPolicy,
) -> Result<(bool, Pokes), StoreError> {
    let removed = conn
        .prepare_cached("DELETE FROM members WHERE app = ?1 AND node = ?2")?
        .execute([app, node])?;
    if removed == 0 {
        return Ok((false, Vec::new()));
    }
    conn.prepare_cached("DELETE FROM offers WHERE app = ?1 AND node = ?2")?
        .execute([app, node])?;
    // A member that leaves runs this transition itself, after the deletion of the
    // inbox rows it has read (the deferred acknowledgements go first in every write
    // transaction): the requests whose rows are still there never reached it, so it
    // cannot have started them, even those routed to it after it listed `unstarted`.
    let unread: HashSet<String> = match removal {
        Removal::Left(_) => conn
            .prepare_cached(
                "SELECT request_id FROM inbox WHERE app = ?1 AND node = ?2 AND kind = ?3",
            )?
            .query_map(params![app, node, super::inbox::EXECUTE], |row| row.get(0))?
            .collect::<Result<_, _>>()?,
        Removal::Died => HashSet::new(),
    };
    conn.prepare_cached("DELETE FROM inbox WHERE app = ?1 AND node = ?2")?
        .execute([app, node])?;
    conn.prepare_cached(concat!(
        "DELETE FROM requests WHERE app = ?1 AND caller = ?2 AND status = ",
        sql_status!(Done)
    ))?
    .execute([app, node])?;
    conn.prepare_cached("DELETE FROM placements WHERE app = ?1 AND node = ?2")?
        .execute([app, node])?;
    let orphans: Vec<Orphan> = conn
        .prepare_cached(concat!(
            "SELECT id, name, actor_type, actor_id, record FROM requests
             WHERE app = ?1 AND assignee = ?2 AND status = ",
            sql_status!(Queued),
            " ORDER BY seq"
        ))?
        .query_map([app, node], |row| {
            Ok(Orphan {
                id: row.get(0)?,
                name: row.get(1)?,
                actor_type: row.get(2)?,
                actor_id: row.get(3)?,
                record: row.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut pokes = Vec::new();
    for orphan in orphans {
        let started = match removal {
            Removal::Left(unstarted) => {
                !unstarted.contains(&orphan.id) && !unread.contains(&orphan.id)
            }
            Removal::Died => true,
        };
        redeliver(conn, app, orphan, started, policy, &mut pokes)?;
    }
    if removal == Removal::Died {
        crate::fault::crash_in_recovery(node);
    }
    bump_version(conn, app)?;
    pokes.extend(poke_ports(conn, app)?);
    Ok((true, pokes))
}

/// A request queued on a removed member.
struct Orphan {
    id: String,
    name: String,
    actor_type: Option<String>,
    actor_id: Option<String>,
    record: Vec<u8>,
}

/// Re-delivers one request step of a removed member: next attempt (if it was
/// `started`: a request the member never handed to its component is not charged),
/// then paused if its executor has now died `policy.max_attempts` times, held if
/// children of the previous attempt are unfinished, else routed (or parked).
fn redeliver(
    conn: &Connection,
    app: &str,
    orphan: Orphan,
    started: bool,
    policy: RecoveryPolicy,
    pokes: &mut Pokes,
) -> Result<(), StoreError> {
    let (record, attempt) = match decode::<Request>(&orphan.id, &orphan.record) {
        Ok(_) if !started => (orphan.record, None),
        Ok(mut request) => {
            request.attempt = request.attempt.saturating_add(1);
            (encode(&request), Some(request.attempt))
        }
        Err(e) => {
            // Still re-delivered: the inbox reader reports the corrupt record.
            tracing::error!(request = %orphan.id, "cannot count the attempt of a re-delivered request: {e}");
            (orphan.record, None)
        }
    };
    conn.prepare_cached("UPDATE requests SET record = ?3 WHERE app = ?1 AND id = ?2")?
        .execute(params![app, orphan.id, record])?;
    if attempt.is_some_and(|attempt| policy.pauses(attempt)) {
        conn.prepare_cached(concat!(
            "UPDATE requests SET status = ",
            sql_status!(Paused),
            ", assignee = NULL WHERE app = ?1 AND id = ?2"
        ))?
        .execute([app, &orphan.id])?;
        crate::codes::log_paused(app, &orphan.id, policy);
        return Ok(());
    }
    if has_unfinished_children(conn, app, &orphan.id)? {
        conn.prepare_cached(concat!(
            "UPDATE requests SET status = ",
            sql_status!(Held),
            ", assignee = NULL WHERE app = ?1 AND id = ?2"
        ))?
        .execute([app, &orphan.id])?;
        return Ok(());
    }
    let actor = orphan.actor_type.as_deref().zip(orphan.actor_id.as_deref());
    pokes.extend(reroute(conn, app, &orphan.id, &orphan.name, actor)?);
    Ok(())
}

/// Whether calls or promises made by request `id` (tells do not count) are still
/// queued, parked, held or paused.
pub(super) fn has_unfinished_children(
    conn: &Connection,
    app: &str,
    id: &str,
) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(concat!(
            "SELECT EXISTS (SELECT 1 FROM requests
             WHERE app = ?1 AND parent = ?2 AND ",
            "kind != ",
            kind!(Tell),
            " AND status != ",
            sql_status!(Done),
            ")"
        ))?
        .query_row([app, id], |row| row.get(0))?)
}

/// A call or promise made by `parent` just finished (completed or expired; its row
/// is already updated): if `parent` is held and this was its last unfinished child,
/// it is routed now, in the same transition.
pub(super) fn child_finished(
    conn: &Connection,
    app: &str,
    parent: &str,
) -> Result<Pokes, StoreError> {
    let held: Option<(String, Option<String>, Option<String>)> = conn
        .prepare_cached(concat!(
            "SELECT name, actor_type, actor_id FROM requests
             WHERE app = ?1 AND id = ?2 AND status = ",
            sql_status!(Held)
        ))?
        .query_row([app, parent], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .optional()?;
    let Some((name, actor_type, actor_id)) = held else {
        return Ok(Vec::new());
    };
    if has_unfinished_children(conn, app, parent)? {
        return Ok(Vec::new());
    }
    let actor = actor_type.as_deref().zip(actor_id.as_deref());
    Ok(reroute(conn, app, parent, &name, actor)?
        .into_iter()
        .collect())
}
