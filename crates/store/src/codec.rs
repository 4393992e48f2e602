//! Encoding of stored records and inbox messages (postcard) for both engines.

use serde::{Deserialize, Serialize};

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

/// The target part of an idempotency key, for both engines: `s<name>` for a
/// service, `a<len(type)>:<type><id>` for an actor (byte length): different kinds
/// and different actors never collide.
pub(crate) fn idempotency_target(target: &kar_protocol::Target) -> String {
    match target {
        kar_protocol::Target::Service { name } => format!("s{name}"),
        kar_protocol::Target::Actor { actor_type, id } => {
            format!("a{}:{actor_type}{id}", actor_type.len())
        }
    }
}
