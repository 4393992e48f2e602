//! Actor references and actor state shapes.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// An actor instance: (type, id). Both may hold any character.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ActorRef {
    pub actor_type: String,
    pub id: String,
}

impl ActorRef {
    pub fn new(actor_type: impl Into<String>, id: impl Into<String>) -> Self {
        ActorRef {
            actor_type: actor_type.into(),
            id: id.into(),
        }
    }
}

/// All state of one actor: flat entries and named submaps (subkeys in insertion order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActorState {
    pub flat: Vec<(String, Bytes)>,
    pub submaps: Vec<(String, Vec<(String, Bytes)>)>,
}

/// The multi-element update of `POST .../state` (spec §2.4, §9.15): applied as one
/// atomic transition, removals first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StateUpdate {
    pub removals: Vec<String>,
    pub submap_removals: Vec<(String, Vec<String>)>,
    pub updates: Vec<(String, Bytes)>,
    pub submap_updates: Vec<(String, Vec<(String, Bytes)>)>,
}

/// What a [`StateUpdate`] did: fields actually removed, and fields newly created
/// (updates of existing fields are not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UpdateCounts {
    pub removed: u64,
    pub added: u64,
}

impl ActorState {
    /// The getAll object (spec §2.4): flat keys → value, submap names → object of
    /// subkey → value; stored text parsed as JSON (invalid JSON becomes `null`).
    /// Encode it with [`crate::gojson`] for Go's byte layout. Flat entries and
    /// submaps are separate namespaces in the store (spec §9.4), but one JSON object
    /// cannot hold a flat key and a submap of the same name: the submap is shown.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        for (key, value) in &self.flat {
            map.insert(key.clone(), crate::gojson::parse_or_null(value));
        }
        for (key, entries) in &self.submaps {
            let submap = entries
                .iter()
                .map(|(sub, value)| (sub.clone(), crate::gojson::parse_or_null(value)))
                .collect();
            map.insert(key.clone(), serde_json::Value::Object(submap));
        }
        serde_json::Value::Object(map)
    }

    pub fn is_empty(&self) -> bool {
        self.flat.is_empty() && self.submaps.is_empty()
    }
}
