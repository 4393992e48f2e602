//! The mesh's bookkeeping shared by the areas: who is a member (and its poke port)
//! and the mesh version that tells inboxes the membership changed.

use super::db::Pokes;
use crate::StoreError;
use rusqlite::{Connection, OptionalExtension};

pub(super) fn poke_ports(conn: &Connection, app: &str) -> Result<Pokes, StoreError> {
    let mut stmt = conn.prepare_cached("SELECT poke_port FROM members WHERE app = ?1")?;
    let ports = stmt
        .query_map([app], |row| row.get::<_, u16>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ports)
}

pub(super) fn is_member(
    conn: &Connection,
    app: &str,
    node: &str,
) -> Result<Option<u16>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT poke_port FROM members WHERE app = ?1 AND node = ?2")?
        .query_row([app, node], |row| row.get(0))
        .optional()?)
}

pub(super) fn bump_version(conn: &Connection, app: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO mesh (app, version) VALUES (?1, 1)
         ON CONFLICT (app) DO UPDATE SET version = version + 1",
    )?
    .execute([app])?;
    Ok(())
}

pub(super) fn mesh_version(conn: &Connection, app: &str) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT version FROM mesh WHERE app = ?1")?
        .query_row([app], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}
