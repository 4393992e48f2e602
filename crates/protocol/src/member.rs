//! A member of an application's mesh: one sidecar and what it offers.

use crate::NodeId;
use serde::{Deserialize, Serialize};

/// What one sidecar advertises (spec §4.1: services and actor types share one
/// routing namespace).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub node: NodeId,
    /// The `-service` name (`kar.none` when absent).
    pub service: String,
    /// The `-actors` types.
    pub actors: Vec<String>,
    /// The runtime port the component talks to (for `system/information`).
    pub runtime_port: u16,
}

impl Member {
    /// Whether this member can serve requests addressed to `name` (service or actor type).
    pub fn offers(&self, name: &str) -> bool {
        self.service == name || self.actors.iter().any(|a| a == name)
    }

    /// All names routable to this member.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.service.as_str()).chain(self.actors.iter().map(String::as_str))
    }
}
