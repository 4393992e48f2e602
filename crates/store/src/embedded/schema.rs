//! The embedded engine's schema.

use rusqlite::Connection;

pub(super) const SCHEMA: &str = include_str!("schema.sql");

/// Brings a database made by an earlier version up to date (run after [`SCHEMA`], in
/// its transaction; idempotent).
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
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
