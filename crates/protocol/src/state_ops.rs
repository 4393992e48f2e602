//! The JSON bodies of the actor state operations, decoded as KAR's Go sidecar decodes
//! them: the stateUpdateOp of `POST .../state` (spec §2.4, §9.15) and the MapOp of
//! `POST .../state/{key}`. kar's own hand-over of an actor method's state writes with
//! its reply carries a stateUpdateOp too (see [`crate::deferred_state`]).

use crate::{gojson, StateUpdate};
use bytes::Bytes;
use serde_json::Value;

/// A body that does not decode as the expected operation.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed;

/// The members of a stateUpdateOp.
#[derive(Clone, Copy)]
enum UpdateMember {
    Removals,
    SubmapRemovals,
    Updates,
    SubmapUpdates,
}

const UPDATE_MEMBERS: [(&str, UpdateMember); 4] = [
    ("removals", UpdateMember::Removals),
    ("submapremovals", UpdateMember::SubmapRemovals),
    ("updates", UpdateMember::Updates),
    ("submapupdates", UpdateMember::SubmapUpdates),
];

/// Decodes a stateUpdateOp the way Go's `json.Unmarshal` decodes it into its struct:
/// member names match case-insensitively, unknown members are ignored, `null` leaves
/// a member empty, a repeated map member merges into the earlier one, and any value of
/// the wrong type fails the whole body. Update values are re-encoded as Go would.
pub fn parse_update(body: &[u8]) -> Result<StateUpdate, Malformed> {
    let members = match serde_json::from_slice::<Value>(body).map_err(|_| Malformed)? {
        Value::Null => return Ok(StateUpdate::default()),
        Value::Object(members) => members,
        _ => return Err(Malformed),
    };
    let mut update = StateUpdate::default();
    for (name, value) in members {
        let member = UPDATE_MEMBERS
            .iter()
            .find(|(field, _)| go_fold_eq(&name, field))
            .map(|(_, member)| *member);
        match member {
            None => {}
            Some(UpdateMember::Removals) => update.removals = strings(value)?,
            Some(UpdateMember::SubmapRemovals) => {
                merge(&mut update.submap_removals, value, strings)?
            }
            Some(UpdateMember::Updates) => merge(&mut update.updates, value, |value| {
                Ok(Bytes::from(gojson::to_string(&value)))
            })?,
            Some(UpdateMember::SubmapUpdates) => {
                merge(&mut update.submap_updates, value, |submap| {
                    let mut entries = Vec::new();
                    merge(&mut entries, submap, |value| {
                        Ok(Bytes::from(gojson::to_string(&value)))
                    })?;
                    Ok(entries)
                })?
            }
        }
    }
    Ok(update)
}

/// A JSON object merged into `into` (same key: the later value replaces the earlier in
/// place, keeping request order otherwise); `null` empties it.
fn merge<T>(
    into: &mut Vec<(String, T)>,
    value: Value,
    convert: impl Fn(Value) -> Result<T, Malformed>,
) -> Result<(), Malformed> {
    let object = match value {
        Value::Null => {
            into.clear();
            return Ok(());
        }
        Value::Object(object) => object,
        _ => return Err(Malformed),
    };
    for (key, value) in object {
        let value = convert(value)?;
        match into.iter_mut().find(|(existing, _)| *existing == key) {
            Some(slot) => slot.1 = value,
            None => into.push((key, value)),
        }
    }
    Ok(())
}

/// A JSON array of strings (`null` elements decode to `""` as in Go); `null` is empty.
fn strings(value: Value) -> Result<Vec<String>, Malformed> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                Value::Null => Ok(String::new()),
                _ => Err(Malformed),
            })
            .collect(),
        _ => Err(Malformed),
    }
}

/// The `op` of a MapOp body (Go: a struct with one string field `op`; `null` and a
/// missing member leave it empty).
pub fn parse_map_op(body: &[u8]) -> Result<String, Malformed> {
    let members = match serde_json::from_slice::<Value>(body).map_err(|_| Malformed)? {
        Value::Null => return Ok(String::new()),
        Value::Object(members) => members,
        _ => return Err(Malformed),
    };
    let mut op = String::new();
    for (name, value) in members {
        if go_fold_eq(&name, "op") {
            match value {
                Value::String(s) => op = s,
                Value::Null => {}
                _ => return Err(Malformed),
            }
        }
    }
    Ok(op)
}

/// Go's case-insensitive match of a JSON member name with a lowercase ASCII field
/// name (`bytes.EqualFold`: besides ASCII case, `ſ` folds to `s` and the Kelvin sign
/// `K` to `k`).
fn go_fold_eq(name: &str, field: &str) -> bool {
    let mut chars = name.chars();
    for expected in field.chars() {
        let folded = match chars.next() {
            None => return false,
            Some('\u{17f}') => 's',
            Some('\u{212a}') => 'k',
            Some(c) => c.to_ascii_lowercase(),
        };
        if folded != expected {
            return false;
        }
    }
    chars.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(s: &str) -> Bytes {
        Bytes::from(s.to_string())
    }

    #[test]
    fn update_members_match_case_insensitively() {
        let update = parse_update(
            r#"{"Removals":["a",null],"SUBMAPREMOVALS":{"m":["x"]},"upDates":{"b":{"z":1.0,"a":"<"}},"ſubmapupdates":{"m":{"k2":2,"k1":1}},"field1":43}"#
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            update,
            StateUpdate {
                removals: vec!["a".into(), String::new()],
                submap_removals: vec![("m".into(), vec!["x".into()])],
                updates: vec![("b".into(), bytes(r#"{"a":"\u003c","z":1}"#))],
                submap_updates: vec![(
                    "m".into(),
                    vec![("k2".into(), bytes("2")), ("k1".into(), bytes("1"))]
                )],
            }
        );
        assert!(go_fold_eq("\u{212a}", "k"));
        assert!(!go_fold_eq("updatesx", "updates"));
        assert!(!go_fold_eq("update", "updates"));
    }

    #[test]
    fn update_quirks() {
        assert_eq!(parse_update(b"null"), Ok(StateUpdate::default()));
        assert_eq!(
            parse_update(br#"{"field1":43}"#),
            Ok(StateUpdate::default())
        );
        assert_eq!(
            parse_update(br#"{"updates":{"a":1},"Updates":{"b":2,"a":3}}"#)
                .unwrap()
                .updates,
            vec![("a".into(), bytes("3")), ("b".into(), bytes("2"))]
        );
        assert_eq!(
            parse_update(br#"{"updates":{"a":1},"Updates":null,"removals":null}"#),
            Ok(StateUpdate::default())
        );
        for bad in [
            "",
            "not json",
            "[]",
            "1",
            r#"{"removals":"a"}"#,
            r#"{"removals":[1]}"#,
            r#"{"updates":[]}"#,
            r#"{"submapupdates":{"m":[1]}}"#,
            r#"{"submapremovals":{"m":"x"}}"#,
            r#"{"updates":{"a":1e400}}"#,
            r#"{"updates":{}} trailing"#,
        ] {
            assert_eq!(parse_update(bad.as_bytes()), Err(Malformed), "{bad}");
        }
    }

    #[test]
    fn map_ops() {
        assert_eq!(parse_map_op(br#"{"op":"get"}"#), Ok("get".into()));
        assert_eq!(parse_map_op(br#"{"OP":"keys","x":[1]}"#), Ok("keys".into()));
        assert_eq!(parse_map_op(br#"{"op":null}"#), Ok(String::new()));
        assert_eq!(parse_map_op(b"{}"), Ok(String::new()));
        assert_eq!(parse_map_op(b"null"), Ok(String::new()));
        for bad in ["", "x", r#"{"op":1}"#, "[]", r#""get""#] {
            assert_eq!(parse_map_op(bad.as_bytes()), Err(Malformed), "{bad}");
        }
    }
}
