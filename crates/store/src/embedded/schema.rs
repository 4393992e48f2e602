//! The embedded engine's schema: a version (`PRAGMA user_version`) and an ordered
//! list of migrations. Every database goes through the migrations from its version
//! to [`LATEST`], a new one too (it starts at 0, with no tables), inside the
//! transaction that opens it: several processes may open one database at once, and
//! `BEGIN IMMEDIATE` lets one of them migrate while the others wait and find it done.
//!
//! Adding a change of schema: append a migration (never edit one that shipped, nor
//! `schema.sql`, which is version 1) and a test that opens a database of the previous
//! version with it (see the tests below).

use crate::StoreError;
use rusqlite::Connection;

/// The tables as of version 1.
const SCHEMA_V1: &str = include_str!("schema.sql");

/// Migration `i` brings a database at version `i` to version `i + 1`.
type Migration = fn(&Connection) -> rusqlite::Result<()>;

const MIGRATIONS: [Migration; 6] = [
    v1_tables,
    v2_inbox_payload,
    v3_idempotency,
    v4_event_retention_bridges,
    v5_reminder_trace,
    v6_firings,
];

/// The schema version this build writes.
pub(super) const LATEST: u32 = MIGRATIONS.len() as u32;

/// Brings the database up to [`LATEST`] (run inside the opening transaction).
/// Refuses a database made by a newer version of kar: this one would misread it.
pub(super) fn upgrade(conn: &Connection) -> Result<(), StoreError> {
    upgrade_to(conn, LATEST)
}

fn upgrade_to(conn: &Connection, target: u32) -> Result<(), StoreError> {
    let version = version(conn)?;
    if version > LATEST {
        return Err(StoreError::Config(format!(
            "the store database has schema version {version}, newer than this kar knows \
             ({LATEST}): run a newer kar, or point KAR_HOME elsewhere"
        )));
    }
    // Migration `i` (from 0) makes version `i + 1`.
    for (migrate, made) in MIGRATIONS
        .iter()
        .zip(1u32..)
        .take(target as usize)
        .skip(version as usize)
    {
        migrate(conn)?;
        conn.pragma_update(None, "user_version", made)?;
    }
    Ok(())
}

fn version(conn: &Connection) -> rusqlite::Result<u32> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Version 0 is a database without a version: new (no tables), or made before
/// versions existed. Version 1 has every table of `schema.sql` (created where
/// missing, so older databases keep their rows) and the `parent` column of requests
/// (added where missing: databases made before it).
fn v1_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA_V1)?;
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

/// Version 2: inbox rows carry a payload, the encoded signal of a signal row
/// (`inbox::SIGNAL`); request rows leave it NULL.
fn v2_inbox_payload(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("ALTER TABLE inbox ADD COLUMN payload BLOB")
}

/// Version 3: idempotency keys (`idempotency.rs`): `(app, target, key) → id` until
/// `expires_at` (Unix ms), `retention` (ms) applied again at completion, the outcome
/// once recorded. Indexed by request (completion records the outcome) and by expiry
/// (the sweep).
fn v3_idempotency(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE idempotency (
             app TEXT NOT NULL,
             target TEXT NOT NULL,
             key TEXT NOT NULL,
             id TEXT NOT NULL,
             expires_at INTEGER NOT NULL,
             retention INTEGER NOT NULL,
             outcome BLOB,
             PRIMARY KEY (app, target, key)
         );
         CREATE INDEX idempotency_request ON idempotency (app, id);
         CREATE INDEX idempotency_expiry ON idempotency (app, expires_at);",
    )
}

/// Version 4: events carry the time they were appended (`at`, ms since the epoch; 0
/// for older rows, which retention may trim at once), and `bridges` records the
/// source partitions bridged into topics: the owning member and the next offset to
/// read, advanced in the transition that appends the records (`event_log.rs`).
fn v4_event_retention_bridges(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "ALTER TABLE events ADD COLUMN at INTEGER NOT NULL DEFAULT 0;
         CREATE TABLE IF NOT EXISTS bridges (
             topic TEXT NOT NULL,
             source TEXT NOT NULL,
             partition INTEGER NOT NULL,
             app TEXT NOT NULL,
             node TEXT NOT NULL,
             next INTEGER,
             PRIMARY KEY (topic, source, partition)
         ) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS subscriptions_topic ON subscriptions (topic);",
    )
}

/// Version 5: a reminder keeps the trace context (`traceparent`) of the call that
/// scheduled it while tracing is on, which its firings link to (NULL: none).
fn v5_reminder_trace(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("ALTER TABLE reminders ADD COLUMN trace TEXT")
}

/// Version 6: requests made by a reminder firing are marked (`firing` = 1, else
/// NULL), and a partial index of those alone lets the reminder loop count the pending
/// ones (`firings_pending`) without reading the other requests.
fn v6_firings(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "ALTER TABLE requests ADD COLUMN firing INTEGER;
         CREATE INDEX IF NOT EXISTS requests_firing ON requests (app, status) WHERE firing = 1;",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::params;

    fn columns(conn: &Connection, table: &str) -> Vec<String> {
        conn.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    /// The first row of a query of (text, nullable value).
    fn first<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> (String, Option<T>) {
        conn.query_row(sql, [], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
    }

    fn count(conn: &Connection, table: &str) -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
            row.get(0)
        })
        .unwrap()
    }

    #[test]
    fn a_new_database_gets_every_migration() {
        let conn = Connection::open_in_memory().unwrap();
        upgrade(&conn).unwrap();
        assert_eq!(version(&conn).unwrap(), LATEST);
        assert!(columns(&conn, "requests").contains(&"parent".to_string()));
        assert!(columns(&conn, "inbox").contains(&"payload".to_string()));
        assert!(columns(&conn, "idempotency").contains(&"outcome".to_string()));
        // Opening again changes nothing.
        upgrade(&conn).unwrap();
        assert_eq!(version(&conn).unwrap(), LATEST);
    }

    /// 0 → 1 from a database made before `parent` existed (the schema of version 1
    /// without that column, and no version).
    #[test]
    fn v1_from_a_database_without_parent() {
        let conn = Connection::open_in_memory().unwrap();
        let old = SCHEMA_V1.replace("parent TEXT,", "");
        conn.execute_batch(&old).unwrap();
        assert!(!columns(&conn, "requests").contains(&"parent".to_string()));
        conn.execute(
            "INSERT INTO requests (app, id, name, status, kind, caller, record)
             VALUES ('app', 'r1', 'svc', 'parked', 1, 'node-c', x'00')",
            [],
        )
        .unwrap();
        upgrade_to(&conn, 1).unwrap();
        assert_eq!(version(&conn).unwrap(), 1);
        assert!(columns(&conn, "requests").contains(&"parent".to_string()));
        let row = first::<String>(&conn, "SELECT id, parent FROM requests");
        assert_eq!(row, ("r1".to_string(), None));
    }

    /// 0 → 1 from a database made by the schema released before versions (with
    /// `parent`): nothing to add but the version and the children index.
    #[test]
    fn v1_from_the_released_schema() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(SCHEMA_V1).unwrap();
        conn.execute(
            "INSERT INTO state_flat (app, actor_type, actor_id, key, value)
             VALUES ('app', 'T', 'i', 'k', x'01')",
            [],
        )
        .unwrap();
        upgrade_to(&conn, 1).unwrap();
        assert_eq!(version(&conn).unwrap(), 1);
        assert_eq!(count(&conn, "state_flat"), 1);
        let indexed: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'requests_children')",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert!(indexed);
    }

    /// 1 → 2: the inbox gains its payload column; its rows stay.
    #[test]
    fn v2_from_v1() {
        let conn = Connection::open_in_memory().unwrap();
        upgrade_to(&conn, 1).unwrap();
        conn.execute(
            "INSERT INTO inbox (app, node, kind, request_id) VALUES ('app', 'n', 0, ?1)",
            params!["r1"],
        )
        .unwrap();
        upgrade_to(&conn, 2).unwrap();
        assert_eq!(version(&conn).unwrap(), 2);
        let row = first::<Vec<u8>>(&conn, "SELECT request_id, payload FROM inbox");
        assert_eq!(row, ("r1".to_string(), None));
    }

    /// 2 → 3: the idempotency table appears; the other rows stay.
    #[test]
    fn v3_from_v2() {
        let conn = Connection::open_in_memory().unwrap();
        upgrade_to(&conn, 2).unwrap();
        conn.execute(
            "INSERT INTO requests (app, id, name, status, kind, caller, record)
             VALUES ('app', 'r1', 'svc', 'parked', 1, 'node-c', x'00')",
            [],
        )
        .unwrap();
        assert!(columns(&conn, "idempotency").is_empty());
        upgrade_to(&conn, 3).unwrap();
        assert_eq!(version(&conn).unwrap(), 3);
        assert_eq!(count(&conn, "requests"), 1);
        assert_eq!(count(&conn, "idempotency"), 0);
        conn.execute(
            "INSERT INTO idempotency (app, target, key, id, expires_at, retention)
             VALUES ('app', 'ssvc', 'k', 'r1', 1, 1)",
            [],
        )
        .unwrap();
        let row = first::<Vec<u8>>(&conn, "SELECT id, outcome FROM idempotency");
        assert_eq!(row, ("r1".to_string(), None));
    }

    /// 3 → 4: events gain their time (0 for the old ones); bridges appear.
    #[test]
    fn v4_from_v3() {
        let conn = Connection::open_in_memory().unwrap();
        upgrade_to(&conn, 3).unwrap();
        conn.execute(
            "INSERT INTO events (topic, offset, data) VALUES ('t', 1, x'01')",
            [],
        )
        .unwrap();
        upgrade_to(&conn, 4).unwrap();
        assert_eq!(version(&conn).unwrap(), 4);
        let row = first::<i64>(&conn, "SELECT topic, at FROM events");
        assert_eq!(row, ("t".to_string(), Some(0)));
        assert_eq!(count(&conn, "bridges"), 0);
    }

    /// 4 → 5: reminders gain their trace context (NULL for the old ones).
    #[test]
    fn v5_from_v4() {
        let conn = Connection::open_in_memory().unwrap();
        upgrade_to(&conn, 4).unwrap();
        conn.execute(
            "INSERT INTO reminders (app, actor_type, actor_id, id, path, due, period, data)
             VALUES ('app', 'T', 'i', 'r', '/m', 1, 0, x'01')",
            [],
        )
        .unwrap();
        upgrade_to(&conn, 5).unwrap();
        let row = first::<String>(&conn, "SELECT id, trace FROM reminders");
        assert_eq!(row, ("r".to_string(), None));
    }

    /// 5 → 6: requests gain the `firing` mark (NULL for the old ones: not firings).
    #[test]
    fn v6_from_v5() {
        let conn = Connection::open_in_memory().unwrap();
        upgrade_to(&conn, 5).unwrap();
        conn.execute(
            "INSERT INTO requests (app, id, name, status, kind, caller, record)
             VALUES ('app', 'r1', 'T', 'queued', 1, 'n', x'01')",
            [],
        )
        .unwrap();
        upgrade_to(&conn, 6).unwrap();
        let row = first::<i64>(&conn, "SELECT id, firing FROM requests");
        assert_eq!(row, ("r1".to_string(), None));
    }

    #[test]
    fn a_newer_database_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        upgrade(&conn).unwrap();
        conn.pragma_update(None, "user_version", LATEST + 1)
            .unwrap();
        let err = upgrade(&conn).unwrap_err();
        assert!(
            matches!(&err, StoreError::Config(m) if m.contains("newer")),
            "{err}"
        );
        assert_eq!(version(&conn).unwrap(), LATEST + 1);
    }
}
