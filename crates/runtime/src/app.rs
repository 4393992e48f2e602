use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::{Invocation, Reply};
use thiserror::Error;

/// The runtime's view of its component: something that answers invocations.
/// Implemented over HTTP by the sidecar crate.
#[async_trait]
pub trait AppClient: Send + Sync + 'static {
    /// Sends `invocation` to the component. Transport failures are retried inside
    /// (spec §1.3); an error means the retry window has passed.
    async fn invoke(&self, invocation: &Invocation) -> Result<AppReply, AppError>;
}

/// What the component answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppReply {
    /// The reply, relayed to the caller.
    pub reply: Reply,
    /// The actor method's state writes handed over with the reply (a stateUpdateOp;
    /// see [`kar_protocol::deferred_state`]), if the component sent any.
    pub state_update: Option<Bytes>,
}

impl From<Reply> for AppReply {
    fn from(reply: Reply) -> Self {
        AppReply {
            reply,
            state_update: None,
        }
    }
}

impl AppReply {
    /// The reply of an invocation that was not offered the hand-over of state writes:
    /// writes sent all the same cannot be committed, so the reply becomes an error
    /// rather than the writes being dropped unnoticed.
    pub fn without_state(self) -> Reply {
        match self.state_update {
            None => self.reply,
            Some(_) => Reply::text(
                500,
                "the component handed over state writes with a reply that cannot carry them\n",
            ),
        }
    }
}

#[derive(Debug, Error)]
pub enum AppError {
    /// The component could not be reached within the retry window.
    #[error("{0}")]
    Unreachable(String),
}
