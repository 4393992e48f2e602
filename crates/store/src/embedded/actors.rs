//! Actors in the embedded engine: placements (`placements`), removal, and state
//! (`state_flat`, `state_submap`: flat entries and submap entries never collide).

use super::mesh::is_member;
use super::EmbeddedStore;
use crate::codes::sql_status;
use crate::{ActorStore, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::{ActorRef, ActorState, NodeId, StateUpdate, UpdateCounts};
use rusqlite::{params, Connection, OptionalExtension};

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

    async fn move_actor(
        &self,
        from: &NodeId,
        actor: &ActorRef,
        to: Option<&NodeId>,
    ) -> Result<bool, StoreError> {
        let (app, t, i) = self.actor_key(actor);
        let from = from.0.clone();
        let to = to.map(|n| n.0.clone());
        self.db
            .run(move |conn| {
                if is_member(conn, &app, &from)?.is_none() {
                    return Err(StoreError::Fenced(from));
                }
                let placed: Option<String> = conn
                    .prepare_cached(
                        "SELECT node FROM placements WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3",
                    )?
                    .query_row([&app, &t, &i], |row| row.get(0))
                    .optional()?;
                if placed.as_deref() != Some(from.as_str()) {
                    return Ok((false, Vec::new()));
                }
                let queued: bool = conn
                    .prepare_cached(concat!(
                        "SELECT EXISTS (SELECT 1 FROM requests WHERE app = ?1 AND assignee = ?2
                         AND status = ",
                        sql_status!(Queued),
                        " AND actor_type = ?3 AND actor_id = ?4)"
                    ))?
                    .query_row([&app, &from, &t, &i], |row| row.get(0))?;
                if queued {
                    return Ok((false, Vec::new()));
                }
                let offered = match &to {
                    Some(to) => conn
                        .prepare_cached(
                            "SELECT 1 FROM offers o JOIN members m ON m.app = o.app AND m.node = o.node
                             WHERE o.app = ?1 AND o.name = ?2 AND o.node = ?3",
                        )?
                        .query_row([&app, &t, to], |_| Ok(()))
                        .optional()?
                        .map(|_| to.clone()),
                    None => None,
                };
                match offered {
                    Some(to) => conn
                        .prepare_cached(
                            "UPDATE placements SET node = ?4 WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3",
                        )?
                        .execute([&app, &t, &i, &to])?,
                    None => conn
                        .prepare_cached(
                            "DELETE FROM placements WHERE app = ?1 AND actor_type = ?2 AND actor_id = ?3",
                        )?
                        .execute([&app, &t, &i])?,
                };
                Ok((true, Vec::new()))
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
        let mut update = StateUpdate::default();
        match subkey {
            None => update.updates.push((key.to_string(), value)),
            Some(sub) => update
                .submap_updates
                .push((key.to_string(), vec![(sub.to_string(), value)])),
        }
        Ok(self.apply(actor, update).await?.added > 0)
    }

    async fn state_remove(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut update = StateUpdate::default();
        match subkey {
            None => update.removals.push(key.to_string()),
            Some(sub) => update
                .submap_removals
                .push((key.to_string(), vec![sub.to_string()])),
        }
        Ok(self.apply(actor, update).await?.removed > 0)
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
        self.apply(actor, update.clone()).await
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

impl EmbeddedStore {
    /// Applies `update` in one transition (removals first), the one way state is
    /// written: a single set or removal is an update of one entry.
    async fn apply(
        &self,
        actor: &ActorRef,
        update: StateUpdate,
    ) -> Result<UpdateCounts, StoreError> {
        let (app, t, i) = self.actor_key(actor);
        self.db
            .run(move |conn| Ok((apply_update(conn, [&app, &t, &i], &update)?, Vec::new())))
            .await
    }
}

/// Applies `update` to one actor's state (removals first), inside the caller's
/// transition.
pub(super) fn apply_update(
    conn: &Connection,
    actor: [&String; 3],
    update: &StateUpdate,
) -> Result<UpdateCounts, StoreError> {
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
    Ok(counts)
}
