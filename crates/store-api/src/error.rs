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
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode as Code;
        let reason = format!("sqlite: {e}");
        let code = match &e {
            rusqlite::Error::SqliteFailure(failure, _) => Some(failure.code),
            _ => None,
        };
        match (code, &e) {
            (Some(Code::DatabaseCorrupt | Code::NotADatabase), _)
            | (
                None,
                rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::IntegralValueOutOfRange(..),
            ) => StoreError::Corrupt {
                key: "sqlite".to_string(),
                reason,
            },
            (Some(Code::ConstraintViolation | Code::TypeMismatch | Code::ApiMisuse), _)
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
