//! Failures of store transitions, classified where they arise so that callers retry
//! only what a retry can fix.

use thiserror::Error;

/// The underlying error of a failure (SQLite, Redis, I/O), kept for logs.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Failures of store transitions, with stable meanings callers can act on.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store cannot be reached, is busy, or answered with an I/O error: retry later.
    #[error("store unavailable: {reason}")]
    Unavailable {
        reason: String,
        #[source]
        source: Option<BoxError>,
    },
    /// This node is no longer a member (its lease expired or it was declared dead):
    /// it must stop and commit nothing more.
    #[error("node {0} is no longer a member of the mesh")]
    Fenced(String),
    /// The request is no longer assigned to the node acting on it (it was recovered
    /// elsewhere): the node must drop its attempt.
    #[error("request {0} is no longer assigned to this node")]
    NotAssigned(String),
    /// A stored record (or a status or kind code) could not be decoded.
    #[error("corrupt record {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// The store refused the transition as invalid (a constraint violation, a
    /// script error): a bug in kar, not a condition that a retry fixes.
    #[error("store rejected the transition: {reason}")]
    Invariant {
        reason: String,
        #[source]
        source: Option<BoxError>,
    },
    /// Invalid configuration (bad path, bad credentials, ...).
    #[error("{0}")]
    Config(String),
}

/// What a caller should do about a [`StoreError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Try again later: the same transition may succeed.
    Retryable,
    /// This member is out of the mesh: stop.
    Fenced,
    /// This attempt was superseded: drop it.
    Superseded,
    /// Retrying cannot help (corrupt data, broken invariant, configuration).
    Permanent,
}

impl StoreError {
    pub fn unavailable(reason: impl Into<String>) -> Self {
        StoreError::Unavailable {
            reason: reason.into(),
            source: None,
        }
    }

    /// [`StoreError::Unavailable`] caused by `source` (kept for logs).
    pub fn unavailable_from(reason: impl Into<String>, source: impl Into<BoxError>) -> Self {
        StoreError::Unavailable {
            reason: reason.into(),
            source: Some(source.into()),
        }
    }

    pub fn invariant(reason: impl Into<String>) -> Self {
        StoreError::Invariant {
            reason: reason.into(),
            source: None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unavailable { .. } => ErrorKind::Retryable,
            StoreError::Fenced(_) => ErrorKind::Fenced,
            StoreError::NotAssigned(_) => ErrorKind::Superseded,
            StoreError::Corrupt { .. } | StoreError::Invariant { .. } | StoreError::Config(_) => {
                ErrorKind::Permanent
            }
        }
    }

    pub fn is_retryable(&self) -> bool {
        self.kind() == ErrorKind::Retryable
    }
}

#[cfg(feature = "sqlite")]
impl From<rusqlite::Error> for StoreError {
    /// SQLite's answer says whose fault a failure is: the file's (corrupt), kar's
    /// (a constraint, a malformed statement, a misuse of the API: retrying repeats
    /// it), or the moment's (busy, locked, I/O, full disk: retry later).
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::Error as E;
        use rusqlite::ErrorCode as Code;
        let reason = format!("sqlite: {e}");
        match (e.sqlite_error_code(), &e) {
            (Some(Code::DatabaseCorrupt | Code::NotADatabase), _)
            | (
                None,
                E::FromSqlConversionFailure(..)
                | E::InvalidColumnType(..)
                | E::IntegralValueOutOfRange(..)
                | E::Utf8Error(..),
            ) => StoreError::Corrupt {
                key: "sqlite".to_string(),
                reason,
            },
            // `Unknown` is SQLITE_ERROR, SQLite's code for a statement that cannot
            // run (no such table or column, a syntax error); `TooBig`: a value over
            // SQLite's limits; `ParameterOutOfRange`: a bad bind.
            (
                Some(
                    Code::ConstraintViolation
                    | Code::TypeMismatch
                    | Code::ApiMisuse
                    | Code::Unknown
                    | Code::TooBig
                    | Code::ParameterOutOfRange,
                ),
                _,
            )
            | (None, _) => StoreError::Invariant {
                reason,
                source: Some(Box::new(e)),
            },
            // Busy, locked, I/O, full disk, permissions...: the file may come back.
            (Some(_), _) => StoreError::Unavailable {
                reason,
                source: Some(Box::new(e)),
            },
        }
    }
}

#[cfg(feature = "redis")]
impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        use redis::{ErrorKind as Kind, ServerErrorKind as Server};
        // The fence of the Redis scripts (lua/lib.lua): `FENCED <node>`.
        if e.code() == Some("FENCED") {
            return StoreError::Fenced(e.detail().unwrap_or_default().to_string());
        }
        let reason = format!("redis: {e}");
        let source: Option<BoxError> = Some(Box::new(e.clone()));
        match e.kind() {
            Kind::InvalidClientConfig
            | Kind::AuthenticationFailed
            | Kind::Server(Server::NoPerm) => StoreError::Config(reason),
            // A script raised an error or Redis rejected a command as malformed: a
            // bug (other `ERR` replies, such as "max number of clients", pass).
            Kind::Server(Server::ResponseError)
                if e.detail().is_some_and(|d| d.contains("script")) =>
            {
                StoreError::Invariant { reason, source }
            }
            Kind::Parse
            | Kind::UnexpectedReturnType
            | Kind::Client
            | Kind::Server(Server::ExecAbort | Server::CrossSlot) => {
                StoreError::Invariant { reason, source }
            }
            // Connections, timeouts, loading, failover (READONLY, MASTERDOWN), busy
            // scripts, out of memory: the server may come back.
            _ => StoreError::Unavailable { reason, source },
        }
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod sqlite_tests {
    use super::*;
    use std::error::Error as _;

    fn db() -> rusqlite::Connection {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY)")
            .unwrap();
        conn
    }

    #[test]
    fn a_constraint_violation_is_a_permanent_invariant_with_its_source() {
        let conn = db();
        conn.execute("INSERT INTO t VALUES ('a')", []).unwrap();
        let e: StoreError = conn
            .execute("INSERT INTO t VALUES ('a')", [])
            .unwrap_err()
            .into();
        assert!(matches!(e, StoreError::Invariant { .. }), "{e:?}");
        assert!(!e.is_retryable());
        let source = e.source().and_then(|s| s.downcast_ref::<rusqlite::Error>());
        assert!(source.is_some(), "{e:?}");
    }

    #[test]
    fn a_statement_that_cannot_run_is_an_invariant() {
        let e: StoreError = db().execute("SELECT nope FROM t", []).unwrap_err().into();
        assert_eq!(e.kind(), ErrorKind::Permanent, "{e:?}");
    }

    #[test]
    fn busy_is_retryable_with_its_source() {
        let dir = std::env::temp_dir().join(format!("kar-busy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("busy.db");
        let a = rusqlite::Connection::open(&path).unwrap();
        a.execute_batch("CREATE TABLE IF NOT EXISTS t (id TEXT); BEGIN IMMEDIATE")
            .unwrap();
        let b = rusqlite::Connection::open(&path).unwrap();
        b.busy_timeout(std::time::Duration::ZERO).unwrap();
        let e: StoreError = b.execute_batch("BEGIN IMMEDIATE").unwrap_err().into();
        a.execute_batch("ROLLBACK").unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(e.is_retryable(), "{e:?}");
        assert!(e.source().is_some());
    }

    #[test]
    fn a_bad_value_is_corrupt() {
        let conn = db();
        conn.execute("INSERT INTO t VALUES ('x')", []).unwrap();
        let e: StoreError = conn
            .query_row("SELECT id FROM t", [], |row| row.get::<_, i64>(0))
            .unwrap_err()
            .into();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
    }
}
