//! Event subscriptions (spec §2.6, §4.6, decision §9.2): the durable record, its JSON
//! shape, and the body of the tell that delivers one event.

use crate::binding::json_head;
use crate::ActorRef;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One subscription of one actor to a topic, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subscription {
    pub actor: ActorRef,
    pub id: String,
    /// The actor method path, starting with `/` (appended verbatim to the actor URL).
    pub path: String,
    pub topic: String,
    /// The subscriber's content type (empty: JSON-like).
    pub content_type: String,
    /// The consumer group as given (`""` when defaulted to the subscription id).
    pub group: String,
    /// A new subscription starts at the oldest retained event instead of after the
    /// newest.
    pub oldest: bool,
}

impl Subscription {
    /// Whether events are passed verbatim (spec §4.6): empty content type,
    /// `text/json`, `application/json` or a `+json` suffix.
    pub fn is_json(&self) -> bool {
        let ct = self.content_type.trim();
        ct.is_empty() || ct == "text/json" || ct == "application/json" || ct.ends_with("+json")
    }

    /// The body of the tell delivering `event`: `[<event>]`, the event verbatim when
    /// JSON-like, else encoded as a JSON string.
    pub fn event_body(&self, event: &[u8]) -> Bytes {
        let mut body = Vec::with_capacity(event.len() + 2);
        body.push(b'[');
        if self.is_json() {
            body.extend_from_slice(event);
        } else {
            let text = String::from_utf8_lossy(event);
            let encoded = crate::reminder::to_go_json(&serde_json::Value::String(text.into()));
            body.extend_from_slice(encoded.as_bytes());
        }
        body.push(b']');
        Bytes::from(body)
    }

    /// The Subscription JSON object of spec §2.6, members in Go's struct order
    /// (`contenttype` omitted when empty).
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = json_head("actor", self);
        map.insert("topic".into(), self.topic.clone().into());
        map.insert("group".into(), self.group.clone().into());
        if !self.content_type.is_empty() {
            map.insert("contenttype".into(), self.content_type.clone().into());
        }
        map.insert("oldestoffset".into(), self.oldest.into());
        serde_json::Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reminder::to_go_json;

    fn sub(ct: &str) -> Subscription {
        Subscription {
            actor: ActorRef::new("TestActorEvents", "2"),
            id: "s".into(),
            path: "/naming_event".into(),
            topic: "t".into(),
            content_type: ct.into(),
            group: String::new(),
            oldest: false,
        }
    }

    #[test]
    fn bodies_by_content_type() {
        for ct in [
            "",
            "application/json",
            "text/json",
            "application/cloudevents+json",
        ] {
            assert_eq!(sub(ct).event_body(br#"{"a":1}"#).as_ref(), br#"[{"a":1}]"#);
        }
        assert_eq!(
            sub("text/plain").event_body(b"he said \"hi\"\n").as_ref(),
            br#"["he said \"hi\"\n"]"#
        );
    }

    #[test]
    fn json_shape() {
        assert_eq!(
            to_go_json(&sub("text/plain").to_json()),
            r#"{"actor":{"Type":"TestActorEvents","ID":"2"},"id":"s","path":"/naming_event","topic":"t","group":"","contenttype":"text/plain","oldestoffset":false}"#
        );
        let mut s = sub("");
        s.oldest = true;
        s.group = "g".into();
        assert_eq!(
            to_go_json(&s.to_json()),
            r#"{"actor":{"Type":"TestActorEvents","ID":"2"},"id":"s","path":"/naming_event","topic":"t","group":"g","oldestoffset":true}"#
        );
    }
}
