//! JSON as the Go runtime re-encodes it (spec §2.4): values decoded into
//! `interface{}` and encoded again, so object members are sorted by key, numbers
//! are float64 (integers above 2^53 lose precision, `1e+21` from 1e21 up), and `<`,
//! `>`, `&`, U+2028 and U+2029 are escaped. State routes that return re-encoded JSON
//! use this so that applications see the same bytes as with upstream KAR.

use serde_json::Value;
use std::fmt::Write;

/// Parses stored text as JSON; invalid JSON becomes `null`, as in Go.
pub fn parse_or_null(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or(Value::Null)
}

/// Encodes `value` the way Go's `encoding/json` encodes an `interface{}`.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// Encodes with two-space indentation (Go's `json.MarshalIndent(v, "", "  ")`).
pub fn to_string_pretty(value: &Value) -> String {
    let mut out = String::new();
    write_pretty(&mut out, value, 0);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n.as_f64().unwrap_or(0.0)),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, k);
                out.push(':');
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// The members of an object by key, as Go encodes a `map[string]interface{}`.
fn sorted(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

fn write_pretty(out: &mut String, value: &Value, depth: usize) {
    let indent = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    match value {
        Value::Array(items) if !items.is_empty() => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                write_pretty(out, item, depth + 1);
            }
            indent(out, depth);
            out.push(']');
        }
        Value::Object(map) if !map.is_empty() => {
            out.push('{');
            for (i, (k, v)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                indent(out, depth + 1);
                write_string(out, k);
                out.push_str(": ");
                write_pretty(out, v, depth + 1);
            }
            indent(out, depth);
            out.push('}');
        }
        other => write_value(out, other),
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Go's float64 encoding: `'f'` format with the shortest digits, or `'e'` below
/// 1e-6 and from 1e21 up, with a two-digit negative exponent shortened (`1e-07` →
/// `1e-7`).
fn write_number(out: &mut String, f: f64) {
    if !f.is_finite() {
        out.push_str("null");
        return;
    }
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust's `{:e}` is shortest round-trip: "1e21", "1.5e-7".
        let sci = format!("{f:e}");
        let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "{mantissa}e{sign}{}", exp.abs());
        return;
    }
    // Shortest round-trip digits in plain notation; whole numbers without ".0".
    let text = format!("{f}");
    out.push_str(&text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encodes_like_go() {
        let v: Value = serde_json::from_str(
            r#"{"b":1.0,"a":"<x&y>","c":[1e21,1e-7,0.5,12345678901234567890]}"#,
        )
        .unwrap();
        assert_eq!(
            to_string(&v),
            r#"{"a":"\u003cx\u0026y\u003e","b":1,"c":[1e+21,1e-7,0.5,12345678901234567000]}"#
        );
        assert_eq!(to_string(&json!(-0.0)), "-0");
        assert_eq!(parse_or_null(b"not json"), Value::Null);
    }

    #[test]
    fn pretty_prints_with_two_spaces() {
        assert_eq!(
            to_string_pretty(&json!({"b": [1], "a": {}})),
            "{\n  \"a\": {},\n  \"b\": [\n    1\n  ]\n}"
        );
    }
}
