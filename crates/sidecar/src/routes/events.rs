//! Event subscriptions, topics and publishing (spec §2.6, §2.7, §4.6). Like the
//! reminder routes they go to the store from whichever sidecar receives them:
//! subscriptions live in the store, and the delivery loops of the members offering
//! the actor type pick them up.

use super::bindings::{json_kind, json_object, one_line, Binding};
use super::Request;
use crate::body;
use crate::reply::{self, Response};
use crate::server::Ctx;
use http::header::{HeaderValue, LOCATION};
use http::{Method, StatusCode};
use kar_protocol::paths::encode_segment;
use kar_protocol::{ActorRef, Subscription};
use kar_runtime::TopicOptions;
use serde_json::Value;

impl Binding for Subscription {
    const WHAT: &'static str = "event subscription";
    const PLURAL: &'static str = "event subscriptions";

    fn to_json(&self) -> Value {
        Subscription::to_json(self)
    }
    fn parse(actor: ActorRef, id: String, body: &[u8]) -> Result<Self, String> {
        parse_subscribe(actor, id, body)
    }
}

/// `PUT|DELETE /kar/v1/event/{topic}`
pub(crate) async fn topic(ctx: &Ctx, topic: String, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let events = ctx.runtime.events();
    if parts.method == Method::DELETE {
        return match events.delete_topic(&topic).await {
            Ok(_) => reply::text(StatusCode::OK, "OK"),
            Err(e) => reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                one_line(&format!("Failed to delete topic {topic}: {e}")),
            ),
        };
    }
    let body = match body::read(body, &parts.headers, ctx.config.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    // The topic detail (partitions, replication) means nothing to our stores, only to
    // a Kafka topic the topic is bound to; a malformed one is refused, as upstream does.
    let mut options = TopicOptions::default();
    if !body.is_empty() {
        match serde_json::from_slice::<Value>(&body) {
            Ok(detail) => options = topic_options(&detail),
            Err(e) => {
                return reply::error(StatusCode::INTERNAL_SERVER_ERROR, one_line(&e.to_string()))
            }
        }
    }
    match events.create_topic_with(&topic, options).await {
        Ok(true) => {
            // 201, Location, no body and no Content-Type (spec §2.7).
            let mut response = reply::empty(StatusCode::CREATED);
            let location = format!("/kar/v1/event/{}", encode_segment(&topic));
            if let Ok(location) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(LOCATION, location);
            }
            response
        }
        Ok(false) => reply::text(StatusCode::OK, "Already existed"),
        Err(e) => reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            one_line(&format!("Failed to create topic {topic}: {e}")),
        ),
    }
}

/// `numPartitions` and `replicationFactor` of a topic detail (members matched without
/// regard to case, as Go's JSON decoding does); others are ignored.
fn topic_options(detail: &Value) -> TopicOptions {
    let mut options = TopicOptions::default();
    if let Value::Object(members) = detail {
        for (name, value) in members {
            let number = value.as_i64();
            if name.eq_ignore_ascii_case("numPartitions") {
                options.partitions = number.and_then(|n| i32::try_from(n).ok());
            } else if name.eq_ignore_ascii_case("replicationFactor") {
                options.replication = number.and_then(|n| i16::try_from(n).ok());
            }
        }
    }
    options
}

/// `POST /kar/v1/event/{topic}/publish`: the body, unchanged, is one event.
pub(crate) async fn publish(ctx: &Ctx, topic: String, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match body::read(body, &parts.headers, ctx.config.max_body_bytes).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let parent = kar_runtime::telemetry::traceparent_header(&parts.headers);
    match ctx
        .runtime
        .events()
        .publish_traced(&topic, body, parent)
        .await
    {
        Ok(_) => reply::text(StatusCode::OK, "OK"),
        Err(e) => reply::error(
            StatusCode::BAD_REQUEST,
            one_line(&format!("publish error: {e}")),
        ),
    }
}

/// The body of `PUT .../events/{id}` (spec §2.6): an object whose members are all
/// strings or null: `path`, `topic`, `contentType`, `group`, `offsetOldest`.
fn parse_subscribe(actor: ActorRef, id: String, body: &[u8]) -> Result<Subscription, String> {
    let spec = json_object(body, "map[string]string")?;
    // Upstream unmarshals into map[string]string: any non-string member fails.
    let mut fields = std::collections::HashMap::new();
    for (name, value) in spec {
        match value {
            Value::String(text) => {
                fields.insert(name, text);
            }
            Value::Null => {}
            other => {
                return Err(format!(
                    "json: cannot unmarshal {} into Go value of type string",
                    json_kind(&other)
                ))
            }
        }
    }
    let mut take = |name: &str| fields.remove(name).unwrap_or_default();
    let path = take("path");
    if !path.starts_with('/') {
        return Err(format!("the subscription path {path:?} must start with /"));
    }
    let topic = take("topic");
    if topic.is_empty() {
        return Err("the subscription topic is missing".to_string());
    }
    Ok(Subscription {
        actor,
        id,
        path,
        topic,
        content_type: take("contentType"),
        group: take("group"),
        oldest: take("offsetOldest") == "true",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Subscription, String> {
        parse_subscribe(ActorRef::new("T", "1"), "s".into(), body.as_bytes())
    }

    #[test]
    fn subscribe_bodies() {
        let s = parse(
            r#"{"path":"/on","topic":"t","contentType":"text/plain","group":"g","offsetOldest":"true","extra":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            (s.path.as_str(), s.topic.as_str(), s.content_type.as_str()),
            ("/on", "t", "text/plain")
        );
        assert_eq!((s.group.as_str(), s.oldest), ("g", true));
        let s = parse(r#"{"path":"/on","topic":"t","group":null,"offsetOldest":"false"}"#).unwrap();
        assert_eq!(
            (s.group.as_str(), s.oldest, s.content_type.as_str()),
            ("", false, "")
        );
    }

    #[test]
    fn subscribe_errors() {
        assert_eq!(parse("").unwrap_err(), "unexpected end of JSON input");
        assert!(parse(r#"{"path":"/on","topic":"t","offsetOldest":true}"#)
            .unwrap_err()
            .contains("cannot unmarshal bool into Go value of type string"));
        assert!(parse(r#"{"path":"/on","topic":5}"#)
            .unwrap_err()
            .contains("cannot unmarshal number"));
        assert!(parse(r#"{"path":"on","topic":"t"}"#).is_err());
        assert!(parse(r#"{"path":"/on"}"#).is_err());
        assert!(parse("[]").unwrap_err().contains("cannot unmarshal array"));
    }
}
