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
    /// Whether this member can serve requests addressed to `name`.
    pub fn offers(&self, name: &str) -> bool {
        self.names().any(|n| n == name)
    }

    /// All names routable to this member: its service, its actor types, and its own
    /// node id (so that a request can be addressed to this one member, as mesh-wide
    /// queries such as `system/information/actors` do).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        [self.service.as_str(), self.node.as_str()]
            .into_iter()
            .chain(self.actors.iter().map(String::as_str))
    }
}
