use thiserror::Error;

/// Failures of store transitions, with stable meanings callers can act on.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store cannot be reached or answered with an I/O error: retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// This node is no longer a member (its lease expired or it was declared dead):
    /// it must stop and commit nothing more.
    #[error("node {0} is no longer a member of the mesh")]
    Fenced(String),
    /// The request is no longer assigned to the node acting on it (it was recovered
    /// elsewhere): the node must drop its attempt.
    #[error("request {0} is no longer assigned to this node")]
    NotAssigned(String),
    /// A stored record could not be decoded.
    #[error("corrupt record {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// Invalid configuration (bad path, bad credentials, ...).
    #[error("{0}")]
    Config(String),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(format!("sqlite: {e}"))
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        // The fence of the Redis scripts (lua/lib.lua): `FENCED <node>`.
        if e.code() == Some("FENCED") {
            return StoreError::Fenced(e.detail().unwrap_or_default().to_string());
        }
        StoreError::Unavailable(format!("redis: {e}"))
    }
}
