use kar_store_api::StoreError;
use thiserror::Error;

/// Why a request could not be made. The sidecar maps these to the spec's statuses:
/// `ShuttingDown` → 503, everything else → `500 failed to send message: <reason>`.
#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error("runtime is shutting down")]
    ShuttingDown,
    /// The mesh could not deliver the request (deadline expired, ...).
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why `/kar/v1/await` failed.
#[derive(Debug, Error)]
pub enum AwaitError {
    /// Unknown id, or already awaited (spec §9.6: 404).
    #[error("unexpected request {0}")]
    Unknown(String),
    #[error("runtime is shutting down")]
    ShuttingDown,
    /// The promised request failed: `500 failed to await promise: <reason>`.
    #[error("{0}")]
    Failed(String),
}
