//! Reminders (spec §2.5) and event subscriptions (spec §2.6) of an actor handle, and
//! topics and publishing (spec §2.7) on the client.

use crate::actor::{encode_args, one_or_zero, ActorHandle};
use crate::client::{expect_success, Client, Response};
use crate::error::{Error, Result};
use bytes::Bytes;
use http::Method;
use kar_protocol::format_go_duration;
use kar_protocol::paths::encode_segment;
use kar_protocol::time::Timestamp;
use serde::Serialize;
use serde_json::{Map, Value};
use std::time::{Duration, SystemTime};

/// When a reminder first fires: an instant ([`SystemTime`]) or an RFC 3339 timestamp
/// with a zone, sent verbatim (`"2026-11-27T14:17:51.073Z"`,
/// `"2026-11-27T09:36:35.123456-05:00"`).
///
/// ```
/// use kar_sdk::ReminderTime;
/// let at: ReminderTime = std::time::SystemTime::UNIX_EPOCH.into();
/// assert_eq!(at.as_str(), "1970-01-01T00:00:00Z");
/// let at: ReminderTime = "2026-11-27T14:17:51.073Z".into();
/// assert_eq!(at.as_str(), "2026-11-27T14:17:51.073Z");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReminderTime(String);

impl ReminderTime {
    /// The RFC 3339 text sent as the reminder's `targetTime`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<SystemTime> for ReminderTime {
    /// The instant in UTC, to the millisecond.
    fn from(time: SystemTime) -> ReminderTime {
        let millis = match time.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |m| -m),
        };
        ReminderTime(Timestamp::from_unix_millis(millis).format_rfc3339_nano())
    }
}

impl From<&str> for ReminderTime {
    fn from(text: &str) -> ReminderTime {
        ReminderTime(text.to_string())
    }
}

impl From<String> for ReminderTime {
    fn from(text: String) -> ReminderTime {
        ReminderTime(text)
    }
}

/// A period as a Go duration in nanoseconds (saturating: Go durations are `i64`).
fn go_duration(period: Duration) -> String {
    format_go_duration(i64::try_from(period.as_nanos()).unwrap_or(i64::MAX))
}

/// The actor's collection of reminders on the sidecar.
const REMINDERS: &str = "reminders";
/// The actor's collection of event subscriptions on the sidecar.
const EVENTS: &str = "events";

/// Reminders and subscriptions (upstream's "bindings" of an actor) answer the same
/// verbs the same way under `/kar/v1/actor/{type}/{id}/<collection>`; the public
/// methods differ only in what they put there.
impl ActorHandle {
    async fn send_to(&self, method: Method, suffix: &str, body: Bytes) -> Result<Response> {
        let path = format!("{}{suffix}", self.base());
        self.client().send(method, &path, &[], body).await
    }

    /// `<collection>/{id}`, with `nilOnAbsent` for the verbs that take it.
    fn binding_suffix(collection: &str, id: &str, nil_on_absent: bool) -> String {
        let query = if nil_on_absent {
            "?nilOnAbsent=true"
        } else {
            ""
        };
        format!("/{collection}/{}{query}", encode_segment(id))
    }

    async fn put_binding(
        &self,
        collection: &str,
        id: &str,
        body: Map<String, Value>,
    ) -> Result<()> {
        let body = serde_json::to_vec(&body).map_err(Error::Encode)?;
        let suffix = ActorHandle::binding_suffix(collection, id, false);
        let response = self.send_to(Method::PUT, &suffix, body.into()).await?;
        expect_success(&response)
    }

    async fn get_binding(&self, collection: &str, id: &str) -> Result<Option<Value>> {
        let suffix = ActorHandle::binding_suffix(collection, id, true);
        get_optional(self.send_to(Method::GET, &suffix, Bytes::new()).await?)
    }

    async fn list_bindings(&self, collection: &str) -> Result<Vec<Value>> {
        let suffix = format!("/{collection}");
        let response = self.send_to(Method::GET, &suffix, Bytes::new()).await?;
        expect_success(&response)?;
        response.json_body()
    }

    async fn cancel_binding(&self, collection: &str, id: &str) -> Result<bool> {
        let suffix = ActorHandle::binding_suffix(collection, id, true);
        one_or_zero(self.send_to(Method::DELETE, &suffix, Bytes::new()).await?)
    }

    async fn cancel_bindings(&self, collection: &str) -> Result<u64> {
        let suffix = format!("/{collection}");
        count(self.send_to(Method::DELETE, &suffix, Bytes::new()).await?)
    }

    /// Schedules (or replaces) the reminder `id`: `method(args)` is told to this actor
    /// at `target_time`, then every `period` if one is given (`None` or zero: once).
    /// `args` must encode as a JSON array, as for [`ActorHandle::call`].
    ///
    /// ```no_run
    /// # async fn demo(client: kar_sdk::Client) -> kar_sdk::Result<()> {
    /// use std::time::{Duration, SystemTime};
    /// let account = client.actor("Account", "alice");
    /// let soon = SystemTime::now() + Duration::from_secs(5);
    /// account
    ///     .schedule_reminder("interest", "accrue", soon, Some(Duration::from_secs(60)), (0.01,))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn schedule_reminder(
        &self,
        id: &str,
        method: &str,
        target_time: impl Into<ReminderTime>,
        period: Option<Duration>,
        args: impl Serialize,
    ) -> Result<()> {
        let data: Value = serde_json::from_slice(&encode_args(args)?)
            .map_err(|e| Error::Decode(format!("reminder arguments: {e}")))?;
        let mut body = Map::new();
        body.insert("path".into(), Value::String(format!("/{method}")));
        body.insert("targetTime".into(), Value::String(target_time.into().0));
        if let Some(period) = period {
            body.insert("period".into(), Value::String(go_duration(period)));
        }
        body.insert("data".into(), data);
        self.put_binding(REMINDERS, id, body).await
    }

    /// The reminder `id` as the sidecar describes it (`{"Actor":{"Type","ID"},"id",
    /// "path","targetTime","period" (ns, absent when one-shot),"encodedData"}`), or
    /// `None` if there is none.
    pub async fn reminder(&self, id: &str) -> Result<Option<Value>> {
        self.get_binding(REMINDERS, id).await
    }

    /// All reminders of this actor (see [`ActorHandle::reminder`] for their shape).
    pub async fn reminders(&self) -> Result<Vec<Value>> {
        self.list_bindings(REMINDERS).await
    }

    /// Cancels the reminder `id`. Returns `true` if there was one.
    pub async fn cancel_reminder(&self, id: &str) -> Result<bool> {
        self.cancel_binding(REMINDERS, id).await
    }

    /// Cancels all reminders of this actor. Returns how many there were.
    pub async fn cancel_reminders(&self) -> Result<u64> {
        self.cancel_bindings(REMINDERS).await
    }

    /// Subscribes (or re-subscribes) this actor to `topic` as subscription `id`: each
    /// event published to `topic` is told to `method` as its one argument. With a
    /// JSON-like `content_type` (`None`, `application/json`, `…+json`) the event must
    /// be JSON and arrives decoded; otherwise it arrives as a JSON string. Returns once
    /// the subscription is in place: events published afterwards are delivered.
    ///
    /// ```no_run
    /// # async fn demo(client: kar_sdk::Client) -> kar_sdk::Result<()> {
    /// client.create_topic("orders").await?;
    /// client.actor("Shop", "1").subscribe("orders", "onOrder", "orders", None).await?;
    /// client.publish("orders", serde_json::json!({"item": "ring"})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn subscribe(
        &self,
        id: &str,
        method: &str,
        topic: &str,
        content_type: Option<&str>,
    ) -> Result<()> {
        let mut body = Map::new();
        body.insert("path".into(), Value::String(format!("/{method}")));
        body.insert("topic".into(), Value::String(topic.to_string()));
        if let Some(content_type) = content_type {
            body.insert(
                "contentType".into(),
                Value::String(content_type.to_string()),
            );
        }
        self.put_binding(EVENTS, id, body).await
    }

    /// The subscription `id` as the sidecar describes it (`{"actor":{"Type","ID"},
    /// "id","path","topic","group","contenttype","oldestoffset"}`), or `None` if there
    /// is none.
    pub async fn subscription(&self, id: &str) -> Result<Option<Value>> {
        self.get_binding(EVENTS, id).await
    }

    /// All subscriptions of this actor (see [`ActorHandle::subscription`] for their
    /// shape).
    pub async fn subscriptions(&self) -> Result<Vec<Value>> {
        self.list_bindings(EVENTS).await
    }

    /// Cancels the subscription `id`. Returns `true` if there was one.
    pub async fn cancel_subscription(&self, id: &str) -> Result<bool> {
        self.cancel_binding(EVENTS, id).await
    }

    /// Cancels all subscriptions of this actor. Returns how many there were.
    pub async fn cancel_subscriptions(&self) -> Result<u64> {
        self.cancel_bindings(EVENTS).await
    }
}

impl Client {
    /// `/kar/v1/event/{topic}`
    fn topic_path(topic: &str) -> String {
        format!("/kar/v1/event/{}", encode_segment(topic))
    }

    /// Creates the topic `topic` (topic names are global, not per application).
    /// Returns `true` if it was created, `false` if it already existed.
    pub async fn create_topic(&self, topic: &str) -> Result<bool> {
        let response = self
            .send(Method::PUT, &Client::topic_path(topic), &[], Bytes::new())
            .await?;
        expect_success(&response)?;
        Ok(response.status == 201)
    }

    /// Deletes the topic `topic` (also fine if it does not exist).
    pub async fn delete_topic(&self, topic: &str) -> Result<()> {
        let response = self
            .send(
                Method::DELETE,
                &Client::topic_path(topic),
                &[],
                Bytes::new(),
            )
            .await?;
        expect_success(&response)
    }

    /// Publishes `event`, encoded as JSON, to `topic`. Subscriptions to it receive it
    /// in publication order.
    pub async fn publish(&self, topic: &str, event: impl Serialize) -> Result<()> {
        let body = serde_json::to_vec(&event).map_err(Error::Encode)?;
        let path = format!("{}/publish", Client::topic_path(topic));
        let response = self.send(Method::POST, &path, &[], body.into()).await?;
        expect_success(&response)
    }
}

/// A `nilOnAbsent` lookup: `null` (or an empty body) means absent.
fn get_optional(response: Response) -> Result<Option<Value>> {
    expect_success(&response)?;
    if response.body.is_empty() {
        return Ok(None);
    }
    match response.json_body()? {
        Value::Null => Ok(None),
        value => Ok(Some(value)),
    }
}

/// The count answered by a cancel-all.
fn count(response: Response) -> Result<u64> {
    expect_success(&response)?;
    let text = response.text_body();
    text.trim()
        .parse()
        .map_err(|_| Error::Decode(format!("expected a count, got {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_go_durations() {
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(go_duration(Duration::from_secs(5400)), "1h30m0s");
    }

    #[test]
    fn target_times_are_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_586_873_871_073);
        assert_eq!(ReminderTime::from(t).as_str(), "2020-04-14T14:17:51.073Z");
    }
}
