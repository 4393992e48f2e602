//! Reminders (spec §2.5, §4.4, decision §9.10). Like the state routes, they go to the
//! store from whichever sidecar receives them: reminders live in the store, not in
//! the memory of the actor's host, so there is nothing to route to.

use super::bindings::{json_kind, json_object, Binding};
use bytes::Bytes;
use kar_protocol::time::{Timestamp, ZERO_TIME};
use kar_protocol::{gojson, parse_go_duration, ActorRef, Reminder};
use serde_json::Value;

impl Binding for Reminder {
    const WHAT: &'static str = "reminder";
    const PLURAL: &'static str = "reminders";

    fn to_json(&self) -> Value {
        Reminder::to_json(self)
    }
    fn parse(actor: ActorRef, id: String, body: &[u8]) -> Result<Self, String> {
        parse_schedule(actor, id, body)
    }
}

fn wrong_type(value: &Value, field: &str, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go struct field .{field} of type {go_type}",
        json_kind(value)
    )
}

/// The body of `PUT .../reminders/{id}`:
/// `{"path", "targetTime", "period", "data"}` (spec §2.5).
fn parse_schedule(actor: ActorRef, id: String, body: &[u8]) -> Result<Reminder, String> {
    let mut spec = json_object(body, "runtime.reminderSpec")?;
    let path = match spec.remove("path") {
        Some(Value::String(path)) if path.starts_with('/') => path,
        Some(Value::String(path)) => {
            return Err(format!("the reminder path {path:?} must start with /"))
        }
        None | Some(Value::Null) => return Err("the reminder path is missing".to_string()),
        Some(other) => return Err(wrong_type(&other, "path", "string")),
    };
    let target = match spec.remove("targetTime") {
        Some(Value::String(text)) => Timestamp::parse_rfc3339(&text).map_err(|e| e.to_string())?,
        // No target time: Go's zero time, due at once.
        None | Some(Value::Null) => ZERO_TIME,
        Some(other) => return Err(wrong_type(&other, "targetTime", "time.Time")),
    };
    let period = match spec.remove("period") {
        Some(Value::String(text)) if text.is_empty() => 0,
        Some(Value::String(text)) => parse_go_duration(&text).map_err(|e| e.to_string())?,
        None | Some(Value::Null) => 0,
        Some(other) => return Err(wrong_type(&other, "period", "string")),
    };
    let data = match spec.remove("data") {
        None | Some(Value::Null) => Bytes::new(),
        // Re-encoded as Go encodes an `interface{}` (object members sorted, ...).
        Some(data) => Bytes::from(gojson::to_string(&data)),
    };
    Ok(Reminder {
        actor,
        id,
        path,
        target: target.unix_millis(),
        target_text: Some(target.format_rfc3339_nano()),
        // A negative period is a one-shot reminder, as upstream (it fires once).
        period: period.max(0),
        data,
        trace: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Reminder, String> {
        parse_schedule(ActorRef::new("T", "1"), "r".into(), body.as_bytes())
    }

    #[test]
    fn schedule_bodies() {
        let r = parse(
            r#"{"path":"/echo","targetTime":"2024-02-08T09:36:35.1234567-05:00","period":"1h30m","data":["a",{"z":1,"a":"<"}]}"#,
        )
        .unwrap();
        assert_eq!(r.path, "/echo");
        assert_eq!(
            r.target_text.as_deref(),
            Some("2024-02-08T09:36:35.1234567-05:00")
        );
        assert_eq!(r.target, 1_707_402_995_123);
        assert_eq!(r.period, 5_400_000_000_000);
        assert_eq!(r.data.as_ref(), br#"["a",{"a":"\u003c","z":1}]"#);
        let r = parse(r#"{"path":"/m","period":null}"#).unwrap();
        assert_eq!(r.target_text.as_deref(), Some("0001-01-01T00:00:00Z"));
        assert_eq!((r.period, r.data.len()), (0, 0));
        assert_eq!(parse(r#"{"path":"/m","period":""}"#).unwrap().period, 0);
        // Python sends its data as a JSON string: stored as that string's encoding.
        let r = parse(r#"{"path":"/m","data":"[1]"}"#).unwrap();
        assert_eq!(r.data.as_ref(), br#""[1]""#);
    }

    #[test]
    fn schedule_errors() {
        assert_eq!(parse("").unwrap_err(), "unexpected end of JSON input");
        assert!(parse("{").is_err());
        assert!(parse("[]")
            .unwrap_err()
            .starts_with("json: cannot unmarshal array"));
        assert_eq!(
            parse(r#"{"path":"/m","period":"soon"}"#).unwrap_err(),
            r#"time: invalid duration "soon""#
        );
        assert!(parse(r#"{"path":"/m","targetTime":"tomorrow"}"#)
            .unwrap_err()
            .starts_with(r#"parsing time "tomorrow""#));
        assert!(parse(r#"{"path":"/m","targetTime":5}"#)
            .unwrap_err()
            .contains("cannot unmarshal number"));
        assert!(parse(r#"{"path":"m"}"#).is_err());
        assert!(parse(r#"{}"#).is_err());
    }
}
