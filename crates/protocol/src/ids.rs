//! Identifiers: `req-<uuid7>`, `flow-<uuid4>`, `node-<uuid4>` (spec §1.4). Request ids
//! are UUID v7 (time-ordered, the same text as a v4): their acceptance time is read
//! from the id, with no field stored for it (ids made by an older kar, v4, have none).

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($name:ident, $prefix:literal, $uuid:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            /// A fresh unique id with the conventional prefix.
            pub fn generate() -> Self {
                // Written in place, not through `format!` (two per request made).
                let mut text = String::with_capacity($prefix.len() + 1 + 36);
                text.push_str(concat!($prefix, "-"));
                let mut buf = uuid::Uuid::encode_buffer();
                text.push_str($uuid.hyphenated().encode_lower(&mut buf));
                Self(text)
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
    uuid::Uuid::now_v7(),
    "Identifies one request for its whole life, across tail calls and retries."
);
id_type!(
    FlowId,
    "flow",
    uuid::Uuid::new_v4(),
    "A flow (session): requests of one flow re-enter actor locks held by that flow."
);
id_type!(
    NodeId,
    "node",
    uuid::Uuid::new_v4(),
    "One sidecar (or CLI) process in the mesh."
);

impl RequestId {
    /// When the request was accepted (Unix milliseconds), from its UUID v7; `None`
    /// for ids of another form.
    pub fn accepted_at_millis(&self) -> Option<u64> {
        let uuid = uuid::Uuid::parse_str(self.0.strip_prefix("req-")?).ok()?;
        if uuid.get_version_num() != 7 {
            return None;
        }
        let (secs, nanos) = uuid.get_timestamp()?.to_unix();
        Some(secs * 1000 + u64::from(nanos) / 1_000_000)
    }
}

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

    #[test]
    fn request_ids_carry_their_acceptance_time() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let at = RequestId::generate().accepted_at_millis().unwrap();
        assert!(at.abs_diff(now) < 60_000, "{at} vs {now}");
        let v4 = RequestId(format!("req-{}", uuid::Uuid::new_v4()));
        assert_eq!(v4.accepted_at_millis(), None);
        assert_eq!(RequestId::from("r-1").accepted_at_millis(), None);
        assert_eq!(RequestId::from("req-zz").accepted_at_millis(), None);
    }
}
