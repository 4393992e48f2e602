//! Interpretation of actor method replies (spec §3.3, §4.3, §9.3): a `200` body
//! `{"tailCall": true, "value": {...}}` continues the same request elsewhere.

use serde_json::Value;

/// The next step of a request, as an actor method asked for it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Continuation {
    Actor {
        actor_type: String,
        id: String,
        /// Method path, starting with `/`.
        path: String,
        payload: String,
        release_lock: bool,
    },
    Service {
        name: String,
        path: String,
        payload: String,
        /// `None`: a bare `GET` with no headers and no re-wrapping.
        method: Option<String>,
    },
}

/// What a `200` reply asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Interpretation {
    /// Relay the reply as it is.
    Final,
    TailCall(Continuation),
    /// `tailCall` is set but the value cannot be followed (the caller gets `500`).
    Malformed(String),
}

pub(crate) fn interpret(status: u16, body: &[u8]) -> Interpretation {
    if status != 200 {
        return Interpretation::Final;
    }
    // Cheap pre-check: most replies are not tail calls.
    if !body.windows(8).any(|w| w == b"tailCall") {
        return Interpretation::Final;
    }
    let Ok(Value::Object(envelope)) = serde_json::from_slice::<Value>(body) else {
        return Interpretation::Final;
    };
    if envelope.get("tailCall") != Some(&Value::Bool(true)) {
        return Interpretation::Final;
    }
    let Some(Value::Object(value)) = envelope.get("value") else {
        return Interpretation::Final;
    };
    let text = |name: &str| -> Result<Option<String>, String> {
        match value.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // Spec §9.3: numbers (a JS proxy with a numeric id) are stringified.
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(other) => Err(format!("{name} must be a string, got {other}")),
        }
    };
    // Spec §9.3: a non-string payload is JSON-encoded.
    let payload = match value.get("payload") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let result = (|| -> Result<Option<Continuation>, String> {
        let method = text("method")?;
        if let Some(actor_type) = text("actorType")? {
            let id = text("actorId")?.ok_or("actorId is missing")?;
            let path = text("path")?.ok_or("path is missing")?;
            if !path.starts_with('/') {
                return Err(format!("path {path:?} must start with /"));
            }
            let release_lock = text("releaseLock")?.is_some_and(|v| v == "true");
            return Ok(Some(Continuation::Actor {
                actor_type,
                id,
                path,
                payload,
                release_lock,
            }));
        }
        if let Some(name) = text("serviceName")? {
            let path = text("path")?.unwrap_or_else(|| "/".to_string());
            return Ok(Some(Continuation::Service {
                name,
                path,
                payload,
                method,
            }));
        }
        Ok(None)
    })();
    match result {
        Ok(Some(c)) => Interpretation::TailCall(c),
        Ok(None) => Interpretation::Final,
        Err(reason) => Interpretation::Malformed(reason),
    }
}

/// Re-wraps a service reply for an actor caller (spec §4.3): `{"value": <body parsed
/// as JSON, or the raw body string>}`.
pub(crate) fn wrap_value(body: &[u8]) -> Vec<u8> {
    let value = serde_json::from_slice::<Value>(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
    serde_json::json!({ "value": value })
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_replies_are_final() {
        assert_eq!(interpret(200, br#"{"value":42}"#), Interpretation::Final);
        assert_eq!(
            interpret(404, br#"{"tailCall":true}"#),
            Interpretation::Final
        );
        assert_eq!(interpret(200, b"not json tailCall"), Interpretation::Final);
    }

    #[test]
    fn actor_tail_call_with_numeric_id() {
        let body = br#"{"tailCall":true,"value":{"actorType":"A","actorId":7,"path":"/m","payload":"[1]","releaseLock":"true"}}"#;
        assert_eq!(
            interpret(200, body),
            Interpretation::TailCall(Continuation::Actor {
                actor_type: "A".into(),
                id: "7".into(),
                path: "/m".into(),
                payload: "[1]".into(),
                release_lock: true,
            })
        );
    }

    #[test]
    fn service_tail_call_and_non_string_payload() {
        let body = br#"{"tailCall":true,"value":{"serviceName":"s","path":"/p","payload":{"a":1},"method":"POST"}}"#;
        assert_eq!(
            interpret(200, body),
            Interpretation::TailCall(Continuation::Service {
                name: "s".into(),
                path: "/p".into(),
                payload: r#"{"a":1}"#.into(),
                method: Some("POST".into()),
            })
        );
    }

    #[test]
    fn malformed_and_targetless_tail_calls() {
        let body = br#"{"tailCall":true,"value":{"actorType":"A","path":"/m"}}"#;
        assert!(matches!(interpret(200, body), Interpretation::Malformed(_)));
        let body = br#"{"tailCall":true,"value":{"actorType":"A","actorId":"1","path":[1]}}"#;
        assert!(matches!(interpret(200, body), Interpretation::Malformed(_)));
        assert_eq!(
            interpret(200, br#"{"tailCall":true,"value":{}}"#),
            Interpretation::Final
        );
    }

    #[test]
    fn wraps_service_replies() {
        assert_eq!(wrap_value(b"[1,2]"), br#"{"value":[1,2]}"#.to_vec());
        assert_eq!(wrap_value(b"hello"), br#"{"value":"hello"}"#.to_vec());
    }
}
