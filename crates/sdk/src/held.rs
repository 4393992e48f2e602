//! State writes held back during an actor method and handed to the sidecar with its
//! reply (see [`kar_protocol::deferred_state`]): the sidecar commits them in the
//! transition that records the method's outcome, so a call costs one store commit
//! and one HTTP exchange less, and the writes become durable together with the
//! result or not at all.
//!
//! Only the instance's own flat entries are held, and only while its method runs in
//! a sidecar that offered the hand-over. The method reads its held writes back. Any
//! other request the method makes through its [`crate::Context`] (another state
//! operation, a call, a tell, an event) first sends them through the state API, so
//! every other party sees them in the same order as before. Writes made after the
//! method answered (by a task it spawned) go straight to the state API.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The held writes of one method invocation.
#[derive(Debug)]
pub(crate) struct HeldWrites {
    /// `/kar/v1/actor/{type}/{id}/state` of the instance whose method runs.
    base: String,
    /// `None` once the method has answered.
    writes: Mutex<Option<Writes>>,
}

#[derive(Debug, Default)]
struct Writes {
    /// key → new JSON value, or `None` for a removal; the latest write of each key.
    pending: HashMap<String, Option<Bytes>>,
    /// Whether keys exist in the store, as this method read it since its last other
    /// request, to answer "created?" and "existed?" of later writes without a read.
    known: HashMap<String, bool>,
}

/// Writes taken to be sent before another request (see [`HeldWrites::take`]).
pub(crate) struct Taken {
    /// The stateUpdateOp to send.
    pub(crate) op: Bytes,
    pending: HashMap<String, Option<Bytes>>,
}

/// What the held writes know of one entry.
pub(crate) enum Known {
    /// Its value as this method left it (`None`: removed).
    Written(Option<Bytes>),
    /// Whether it exists in the store, as last read; the value must be read.
    Exists(bool),
    /// Nothing: ask the store.
    Unknown,
}

impl HeldWrites {
    pub(crate) fn new(base: String) -> HeldWrites {
        HeldWrites {
            base,
            writes: Mutex::new(Some(Writes::default())),
        }
    }

    /// `/kar/v1/actor/{type}/{id}/state`: whose state they are, where they are sent.
    pub(crate) fn state_path(&self) -> &str {
        &self.base
    }

    fn lock(&self) -> MutexGuard<'_, Option<Writes>> {
        self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What is known of `key`; `None` once the method has answered (the write goes
    /// to the state API).
    pub(crate) fn known(&self, key: &str) -> Option<Known> {
        let guard = self.lock();
        let writes = guard.as_ref()?;
        Some(match (writes.pending.get(key), writes.known.get(key)) {
            (Some(value), _) => Known::Written(value.clone()),
            (None, Some(exists)) => Known::Exists(*exists),
            (None, None) => Known::Unknown,
        })
    }

    /// Records what a read of the store found.
    pub(crate) fn learn(&self, key: &str, exists: bool) {
        if let Some(writes) = self.lock().as_mut() {
            writes.known.insert(key.to_string(), exists);
        }
    }

    /// Holds a write of `key` (`None`: removal); `false` if the method has answered
    /// meanwhile (the caller sends it itself).
    pub(crate) fn hold(&self, key: &str, value: Option<Bytes>) -> bool {
        match self.lock().as_mut() {
            Some(writes) => {
                writes.pending.insert(key.to_string(), value);
                true
            }
            None => false,
        }
    }

    /// Before any other request of the method: the writes to send first, as a
    /// stateUpdateOp (`None` if there are none). What the method read is forgotten:
    /// that request may change the entries (a state update, a call that re-enters).
    pub(crate) fn take(&self) -> Option<Taken> {
        let mut guard = self.lock();
        let writes = guard.as_mut()?;
        writes.known.clear();
        if writes.pending.is_empty() {
            return None;
        }
        let pending = std::mem::take(&mut writes.pending);
        Some(Taken {
            op: update_op(&pending),
            pending,
        })
    }

    /// Puts back writes whose sending failed, under any written since.
    pub(crate) fn restore(&self, taken: Taken) {
        if let Some(writes) = self.lock().as_mut() {
            for (key, value) in taken.pending {
                writes.pending.entry(key).or_insert(value);
            }
        }
    }

    /// The method has answered: the writes to hand over with its reply, if any. Later
    /// writes go straight to the state API.
    pub(crate) fn close(&self) -> Option<Bytes> {
        let writes = self.lock().take()?;
        (!writes.pending.is_empty()).then(|| update_op(&writes.pending))
    }
}

/// The stateUpdateOp of `POST .../state` for these writes: removals and updates.
fn update_op(pending: &HashMap<String, Option<Bytes>>) -> Bytes {
    let mut removals = Vec::new();
    let mut updates = Vec::new();
    for (key, value) in pending {
        let key = serde_json::Value::String(key.clone()).to_string();
        match value {
            None => removals.push(key),
            Some(value) => {
                let mut member = key.into_bytes();
                member.push(b':');
                member.extend_from_slice(value);
                updates.push(member);
            }
        }
    }
    let mut op = Vec::from(&b"{\"removals\":["[..]);
    op.extend_from_slice(removals.join(",").as_bytes());
    op.extend_from_slice(b"],\"updates\":{");
    op.extend_from_slice(&updates.join(&b',')[..]);
    op.extend_from_slice(b"}}");
    Bytes::from(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parsed(op: &Bytes) -> Value {
        serde_json::from_slice(op).unwrap()
    }

    #[test]
    fn writes_are_read_back_and_handed_over_once() {
        let held = HeldWrites::new("/s".into());
        assert!(matches!(held.known("n"), Some(Known::Unknown)));
        held.learn("n", true);
        assert!(matches!(held.known("n"), Some(Known::Exists(true))));
        assert!(held.hold("n", Some(Bytes::from_static(b"2"))));
        assert!(held.hold("gone", None));
        assert!(matches!(held.known("n"), Some(Known::Written(Some(v))) if &v[..] == b"2"));
        assert!(matches!(held.known("gone"), Some(Known::Written(None))));
        let op = held.close().unwrap();
        assert_eq!(
            parsed(&op),
            json!({"removals": ["gone"], "updates": {"n": 2}})
        );
        // Answered: nothing more is held.
        assert!(held.known("n").is_none());
        assert!(!held.hold("n", Some(Bytes::from_static(b"3"))));
        assert!(held.close().is_none());
    }

    #[test]
    fn taken_writes_are_forgotten_and_a_failed_send_puts_them_back() {
        let held = HeldWrites::new("/s".into());
        held.learn("read", true);
        assert!(held.take().is_none());
        assert!(matches!(held.known("read"), Some(Known::Unknown)));
        held.hold("a\"b", Some(Bytes::from_static(br#"{"x":[1]}"#)));
        let taken = held.take().unwrap();
        assert_eq!(
            parsed(&taken.op),
            json!({"removals": [], "updates": {"a\"b": {"x": [1]}}})
        );
        assert!(matches!(held.known("a\"b"), Some(Known::Unknown)));
        held.hold("a\"b", Some(Bytes::from_static(b"7")));
        held.restore(taken);
        // The later write wins over the one put back.
        assert_eq!(
            parsed(&held.close().unwrap()),
            json!({"removals": [], "updates": {"a\"b": 7}})
        );
    }
}
