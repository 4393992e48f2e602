//! Decoding the replies of scripts and commands.

use crate::StoreError;
use bytes::Bytes;
use redis::Value;

pub(super) fn unexpected(what: &str, value: &Value) -> StoreError {
    StoreError::Corrupt {
        key: what.to_string(),
        reason: format!("unexpected reply {value:?}"),
    }
}

pub(super) fn value_bytes(value: Value) -> Result<Vec<u8>, StoreError> {
    match value {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        other => Err(unexpected("string", &other)),
    }
}

pub(super) fn value_string(value: Value) -> Result<String, StoreError> {
    String::from_utf8(value_bytes(value)?).map_err(|e| StoreError::Corrupt {
        key: "string".into(),
        reason: e.to_string(),
    })
}

/// `[k1, v1, k2, v2, ...]` (or a RESP3 map) as pairs.
pub(super) fn value_pairs(value: Value) -> Result<Vec<(String, Bytes)>, StoreError> {
    let items = match value {
        Value::Array(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        Value::Nil => Vec::new(),
        other => return Err(unexpected("pairs", &other)),
    };
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        out.push((value_string(k)?, Bytes::from(value_bytes(v)?)));
    }
    Ok(out)
}
