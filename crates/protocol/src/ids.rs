//! Identifiers: `req-<uuid4>`, `flow-<uuid4>`, `node-<uuid4>` (spec §1.4).

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($name:ident, $prefix:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A fresh random id with the conventional prefix.
            pub fn generate() -> Self {
                Self(format!(concat!($prefix, "-{}"), uuid::Uuid::new_v4()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

id_type!(
    RequestId,
    "req",
    "Identifies one request for its whole life, across tail calls and retries."
);
id_type!(
    FlowId,
    "flow",
    "A flow (session): requests of one flow re-enter actor locks held by that flow."
);
id_type!(NodeId, "node", "One sidecar (or CLI) process in the mesh.");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_prefix_and_are_unique() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert!(a.as_str().starts_with("req-"));
        assert_eq!(a.as_str().len(), 4 + 36);
        assert_ne!(a, b);
        assert!(NodeId::generate().as_str().starts_with("node-"));
        assert!(FlowId::generate().as_str().starts_with("flow-"));
    }
}
