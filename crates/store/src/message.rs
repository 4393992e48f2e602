use kar_protocol::{NodeId, Outcome, Request, RequestId, RequestKind};
use serde::{Deserialize, Serialize};

/// What a member finds in its inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Execute this request: the member is its assignee.
    Execute(Box<Request>),
    /// A request this member made has completed.
    Completed {
        id: RequestId,
        kind: RequestKind,
        outcome: Outcome,
    },
    /// A member joined, left or died.
    MembersChanged,
}

/// Where [`crate::Store::enqueue`] sent a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Routing {
    Assigned(NodeId),
    Parked,
}

/// Encodes a message for engines that store messages as bytes.
pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail.
    postcard::to_stdvec(value).unwrap_or_default()
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    key: &str,
    bytes: &[u8],
) -> Result<T, crate::StoreError> {
    postcard::from_bytes(bytes).map_err(|e| crate::StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}
