use async_trait::async_trait;
use kar_protocol::{Invocation, Reply};
use thiserror::Error;

/// The runtime's view of its component: something that answers invocations.
/// Implemented over HTTP by the sidecar crate.
#[async_trait]
pub trait AppClient: Send + Sync + 'static {
    /// Sends `invocation` to the component. Transport failures are retried inside
    /// (spec §1.3); an error means the retry window has passed.
    async fn invoke(&self, invocation: &Invocation) -> Result<Reply, AppError>;
}

#[derive(Debug, Error)]
pub enum AppError {
    /// The component could not be reached within the retry window.
    #[error("{0}")]
    Unreachable(String),
}
