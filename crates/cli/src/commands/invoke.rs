//! `kar invoke [OPTIONS] ACTOR_TYPE ACTOR_ID METHOD [ARGS...]` (spec §5.4): a
//! synchronous actor call in a fresh flow, printed the way the Go CLI prints it.

use super::run::MISSING_COMPONENT_TIMEOUT;
use super::{join_as_client, Context, Signals};
use crate::config::optional_duration;
use crate::flags::{Flag, Kind};
use anyhow::{bail, Result};
use bytes::Bytes;
use kar_protocol::paths::actor_method_path;
use kar_protocol::{Invocation, Reply, RequestKind, Target};
use kar_runtime::Accepted;
use serde_json::Value;
use std::io::Write;

const ACTOR_BUSY_TIMEOUT: Flag = Flag::new(
    "actor_busy_timeout",
    Kind::Duration,
    "2m",
    "Time to wait on a busy actor before timing out (0 is infinite)",
);

pub const FLAGS: &[&Flag] = &[&ACTOR_BUSY_TIMEOUT, &MISSING_COMPONENT_TIMEOUT];

/// The JSON array of arguments: each argument is JSON, or else a string.
pub fn arguments(args: &[String]) -> Value {
    Value::Array(
        args.iter()
            .map(|arg| {
                serde_json::from_str(arg).unwrap_or_else(|_| {
                    tracing::warn!("assuming argument {arg} is a string");
                    Value::String(arg.clone())
                })
            })
            .collect(),
    )
}

pub async fn run(ctx: Context) -> Result<i32> {
    let [actor_type, id, method, args @ ..] = ctx.matches.args.as_slice() else {
        bail!("invoke expects at least three arguments");
    };
    let body = arguments(args).to_string();
    let mut signals = Signals::new()?;
    let timeout = optional_duration(ctx.matches.duration("missing_component_timeout"));
    let runtime = join_as_client(&ctx.global, timeout).await?;
    let invocation = Invocation {
        method: "POST".to_string(),
        path: actor_method_path(actor_type, id, method),
        query: None,
        headers: vec![(
            "Content-Type".to_string(),
            "application/kar+json".to_string(),
        )],
        body: Bytes::from(body),
    };
    let target = Target::Actor {
        actor_type: actor_type.clone(),
        id: id.clone(),
    };
    let result = tokio::select! {
        result = runtime.request(target, invocation, RequestKind::Call, None, None) => Some(result),
        name = signals.recv() => {
            tracing::info!("received {name}");
            None
        }
    };
    runtime.shutdown().await;
    Ok(match result {
        Some(Ok(Accepted::Reply(reply))) => {
            print_reply(&reply);
            0
        }
        Some(Ok(Accepted::Queued(id))) => {
            tracing::error!("error invoking the actor: call {id} was queued instead of answered");
            1
        }
        Some(Err(e)) => {
            tracing::error!("error invoking the actor: {e}");
            1
        }
        None => 1,
    })
}

fn print_reply(reply: &Reply) {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    // A closed stdout or stderr leaves nobody to tell.
    match reply.status {
        204 => {
            let _ = writeln!(out, "Method completed normally with void result.");
        }
        200 if reply
            .content_type
            .as_deref()
            .is_some_and(|ct| ct.starts_with("application/kar+json")) =>
        {
            match serde_json::from_slice::<Value>(&reply.body) {
                Ok(envelope) if envelope.get("error").is_some_and(truthy) => {
                    let text = |name: &str| envelope.get(name).map(go_format).unwrap_or_default();
                    let _ = writeln!(err, "[STDERR] Exception raised: {}", text("message"));
                    let _ = writeln!(err, "[STDERR] Stacktrace: {}", text("stack"));
                }
                Ok(envelope) => {
                    let value = envelope.get("value").cloned().unwrap_or(Value::Null);
                    let _ = writeln!(out, "Method result: {}", go_format(&value));
                }
                Err(e) => {
                    let _ = writeln!(err, "[STDERR] Internal error: malformed method result: {e}");
                }
            }
        }
        200 => {
            let _ = out.write_all(&reply.body);
            let _ = out.write_all(b"\n");
        }
        status => {
            let _ = writeln!(err, "[STDERR] HTTP status: {status}");
            let _ = err.write_all(b"[STDERR] ");
            let _ = err.write_all(&reply.body);
            let _ = err.write_all(b"\n");
        }
    }
    let _ = out.flush();
}

fn truthy(value: &Value) -> bool {
    !matches!(value, Value::Null | Value::Bool(false))
}

/// Formats a decoded JSON value as Go's `%v` does for `interface{}` values: strings
/// unquoted, numbers as float64 (`43`, `1e+06`), arrays `[1 2]`, objects
/// `map[a:1 b:2]` with sorted keys, null `<nil>`.
pub fn go_format(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(go_format).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let entries: Vec<String> = entries
                .into_iter()
                .map(|(k, v)| format!("{k}:{}", go_format(v)))
                .collect();
            format!("map[{}]", entries.join(" "))
        }
    }
}

/// `strconv.FormatFloat(f, 'g', -1, 64)`: shortest round-trip digits, in exponent
/// form when the decimal exponent is below -4 or at least 6 (Go prints `1e+06`).
fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".to_string();
    }
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".to_string()
        } else if f > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "4.3e1", "-1.5e-7".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    // Plain decimal notation.
    let point = exp + 1; // digits before the decimal point
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!(
            "{sign}{digits}{}",
            "0".repeat(point as usize - digits.len())
        )
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_like_go_percent_v() {
        assert_eq!(go_format(&json!(43)), "43");
        assert_eq!(go_format(&json!(1e21)), "1e+21");
        assert_eq!(go_format(&json!(123456789.0)), "1.23456789e+08");
        assert_eq!(go_format(&json!(0.5)), "0.5");
        assert_eq!(go_format(&json!(100000)), "100000");
        assert_eq!(go_format(&json!(1000000)), "1e+06");
        assert_eq!(go_format(&json!(0.00001)), "1e-05");
        assert_eq!(go_format(&json!(-2.5)), "-2.5");
        assert_eq!(go_format(&json!("hi")), "hi");
        assert_eq!(go_format(&json!(null)), "<nil>");
        assert_eq!(go_format(&json!([1, 2, 3])), "[1 2 3]");
        assert_eq!(
            go_format(&json!({"b": 2, "a": [true]})),
            "map[a:[true] b:2]"
        );
    }

    #[test]
    fn arguments_are_json_or_strings() {
        let args: Vec<String> = ["1", "\"x\"", "hello", "{\"a\":1}"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(arguments(&args), json!([1, "x", "hello", {"a": 1}]));
    }
}
