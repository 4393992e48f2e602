//! Actor reminders (spec §2.5, §4.4, decision §9.10): the durable record and its
//! JSON shape.

use crate::binding::json_head;
use crate::time::Timestamp;
use crate::ActorRef;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One reminder of one actor, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    pub actor: ActorRef,
    pub id: String,
    /// The actor method path, starting with `/` (appended verbatim to the actor URL).
    pub path: String,
    /// When it is due, in Unix milliseconds: it fires once `now >= target`.
    pub target: i64,
    /// The target time as given when scheduling (normalised like Go's RFC3339Nano,
    /// original offset kept), echoed back until the first periodic advance; `None`
    /// afterwards (then formatted from `target`, in UTC).
    pub target_text: Option<String>,
    /// Period in nanoseconds; 0 for a one-shot reminder.
    pub period: i64,
    /// The JSON encoding of the `data` given when scheduling (empty if none): the body
    /// of every firing.
    pub data: Bytes,
    /// While tracing is on: the span of the call that scheduled it, to which each
    /// firing's trace links. Stored as a `traceparent` column / hash field.
    #[serde(default)]
    pub trace: Option<crate::TraceContext>,
}

/// Shortest step a periodic reminder advances by: its target times are kept in
/// milliseconds, and a zero step would never leave the past.
const MIN_STEP_MS: i64 = 1;

impl Reminder {
    /// The period in whole milliseconds (at least 1 for a periodic reminder).
    pub fn period_millis(&self) -> i64 {
        (self.period / 1_000_000).max(MIN_STEP_MS)
    }

    /// The target after the firing due at `self.target`, fired at `now` (decision
    /// §9.10): `None` for a one-shot reminder; otherwise the previous target plus the
    /// period, skipping forward past `now` when the reminder fell behind (after
    /// downtime it fires once, not once per missed period).
    pub fn next_target(&self, now: i64) -> Option<i64> {
        if self.period <= 0 {
            return None;
        }
        let step = self.period_millis();
        let next = self.target.saturating_add(step);
        if next > now {
            return Some(next);
        }
        let missed = (now - self.target) / step + 1;
        Some(self.target.saturating_add(missed.saturating_mul(step)))
    }

    /// The `targetTime` to show: the text given at scheduling, or the current target
    /// in UTC.
    pub fn target_time(&self) -> String {
        match &self.target_text {
            Some(text) => text.clone(),
            None => Timestamp::from_unix_millis(self.target).format_rfc3339_nano(),
        }
    }

    /// The Reminder JSON object of spec §2.5, members in Go's struct order.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = json_head("Actor", self);
        map.insert("targetTime".into(), self.target_time().into());
        if self.period != 0 {
            map.insert("period".into(), self.period.into());
        }
        if !self.data.is_empty() {
            map.insert(
                "encodedData".into(),
                String::from_utf8_lossy(&self.data).into_owned().into(),
            );
        }
        serde_json::Value::Object(map)
    }
}

/// Encodes reminders (a JSON object or array) the way Go's `encoding/json` does for
/// structs: members in the given order, `<`, `>`, `&`, U+2028 and U+2029 escaped.
pub fn to_go_json(value: &serde_json::Value) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    // Outside strings JSON holds none of these characters, so replacing them
    // everywhere only touches string contents.
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reminder(target: i64, period: i64) -> Reminder {
        Reminder {
            actor: ActorRef::new("Foo", "22"),
            id: "ticker".into(),
            path: "/echo".into(),
            target,
            target_text: None,
            period,
            data: Bytes::new(),
            trace: None,
        }
    }

    #[test]
    fn periodic_targets_advance_and_skip_missed_periods() {
        let second = 1_000_000_000;
        assert_eq!(reminder(1000, 0).next_target(5000), None);
        let r = reminder(1000, second);
        assert_eq!(r.next_target(1000), Some(2000));
        assert_eq!(r.next_target(1999), Some(2000));
        // Behind by several periods: one firing, next target the first one after now.
        assert_eq!(r.next_target(2000), Some(3000));
        assert_eq!(r.next_target(9500), Some(10_000));
        // Sub-millisecond periods still move forward.
        assert_eq!(reminder(1000, 10).next_target(1000), Some(1001));
        // The zero time (no targetTime) does not loop per missed period.
        let zero = crate::time::ZERO_TIME.unix_millis();
        assert_eq!(
            reminder(zero, second).next_target(1_700_000_000_123),
            Some(1_700_000_001_000)
        );
    }

    #[test]
    fn json_shape_matches_the_spec() {
        let mut r = reminder(1_586_873_871_073, 5_000_000_000);
        r.data = Bytes::from_static(b"[\"hello\",\"<&>\"]");
        assert_eq!(
            to_go_json(&r.to_json()),
            r#"{"Actor":{"Type":"Foo","ID":"22"},"id":"ticker","path":"/echo","targetTime":"2020-04-14T14:17:51.073Z","period":5000000000,"encodedData":"[\"hello\",\"\u003c\u0026\u003e\"]"}"#
        );
        r.period = 0;
        r.data = Bytes::new();
        r.target_text = Some("2020-04-14T16:17:51.073+02:00".into());
        assert_eq!(
            to_go_json(&r.to_json()),
            r#"{"Actor":{"Type":"Foo","ID":"22"},"id":"ticker","path":"/echo","targetTime":"2020-04-14T16:17:51.073+02:00"}"#
        );
    }
}
