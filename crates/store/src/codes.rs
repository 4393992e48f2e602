//! The codes the engines store for a request's status and kind: one definition for
//! the SQL of the embedded engine, the Lua scripts and the Rust of the Redis engine.
//!
//! The values are those of the released stores: changing one is a data migration.
//! SQL and Lua need them as literals (SQLite uses a partial index only when the query
//! names the status as a literal, not as a bound parameter), hence the macros
//! [`status!`] and [`kind!`], which expand to literals for `concat!`; [`Status`] and
//! the kind functions are the typed side, and decoding an unknown code is
//! [`StoreError::Corrupt`] (never a guess).

use crate::StoreError;
use kar_protocol::RequestKind;

/// `status!(sql, Queued)`: the literal of a request status as an engine stores it
/// (`sql`: the embedded engine's `requests.status`; `redis`: the `status` field of a
/// Redis request hash).
macro_rules! status {
    (sql,Queued) => {
        "queued"
    };
    (sql,Parked) => {
        "parked"
    };
    (sql,Held) => {
        "held"
    };
    (sql,Done) => {
        "done"
    };
    (sql,Paused) => {
        "paused"
    };
    (redis,Queued) => {
        "q"
    };
    (redis,Parked) => {
        "p"
    };
    (redis,Held) => {
        "h"
    };
    (redis,Done) => {
        "d"
    };
    (redis,Paused) => {
        "x"
    };
}

/// `kind!(Tell)`: the code of a request kind (the same integer in both engines; Redis
/// stores its decimal text).
macro_rules! kind {
    (Call) => {
        0
    };
    (Tell) => {
        1
    };
    (Promise) => {
        2
    };
}

/// `sql_status!(Queued)`: the quoted SQL literal of a status, for `concat!` into a
/// statement of the embedded engine.
macro_rules! sql_status {
    ($status:ident) => {
        concat!("'", $crate::codes::status!(sql, $status), "'")
    };
}

pub(crate) use {kind, sql_status, status};

/// Where a stored request is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Assigned to a live member, in its inbox.
    Queued,
    /// Nobody offers its target yet: waits for a member that does.
    Parked,
    /// A re-delivery waiting for the children of its failed attempt (guarantee 5).
    Held,
    /// Finished; its outcome waits for its caller.
    Done,
    /// Its executor died `max_attempts` times: in no inbox, assigned to nobody, never
    /// re-routed until resumed (`RequestStore::resume`).
    Paused,
}

const STATUSES: [Status; 5] = [
    Status::Queued,
    Status::Parked,
    Status::Held,
    Status::Done,
    Status::Paused,
];

impl Status {
    /// As the embedded engine stores it.
    pub(crate) const fn sql(self) -> &'static str {
        match self {
            Status::Queued => status!(sql, Queued),
            Status::Parked => status!(sql, Parked),
            Status::Held => status!(sql, Held),
            Status::Done => status!(sql, Done),
            Status::Paused => status!(sql, Paused),
        }
    }

    /// As the Redis engine stores it.
    // Used by the Redis engine once it reads its codes from here (branch h-redis).
    #[allow(dead_code)]
    pub(crate) const fn redis(self) -> &'static str {
        match self {
            Status::Queued => status!(redis, Queued),
            Status::Parked => status!(redis, Parked),
            Status::Held => status!(redis, Held),
            Status::Done => status!(redis, Done),
            Status::Paused => status!(redis, Paused),
        }
    }

    /// Decodes the embedded engine's code of request `key`.
    pub(crate) fn from_sql(key: &str, code: &str) -> Result<Status, StoreError> {
        STATUSES
            .into_iter()
            .find(|s| s.sql() == code)
            .ok_or_else(|| corrupt(key, "status", code))
    }

    /// Decodes the Redis engine's code of request `key`.
    #[allow(dead_code)] // See `redis`.
    pub(crate) fn from_redis(key: &str, code: &[u8]) -> Result<Status, StoreError> {
        STATUSES
            .into_iter()
            .find(|s| s.redis().as_bytes() == code)
            .ok_or_else(|| corrupt(key, "status", &String::from_utf8_lossy(code)))
    }
}

/// The stored code of a request kind.
pub(crate) const fn kind_code(kind: RequestKind) -> i64 {
    match kind {
        RequestKind::Call => kind!(Call),
        RequestKind::Tell => kind!(Tell),
        RequestKind::Promise => kind!(Promise),
    }
}

/// Decodes the kind code of request `key`.
pub(crate) fn kind_from_code(key: &str, code: i64) -> Result<RequestKind, StoreError> {
    match code {
        kind!(Call) => Ok(RequestKind::Call),
        kind!(Tell) => Ok(RequestKind::Tell),
        kind!(Promise) => Ok(RequestKind::Promise),
        _ => Err(corrupt(key, "kind", &code.to_string())),
    }
}

/// Decodes a kind code stored as decimal text (Redis) of request `key`.
#[allow(dead_code)] // See `Status::redis`.
pub(crate) fn kind_from_text(key: &str, code: &[u8]) -> Result<RequestKind, StoreError> {
    std::str::from_utf8(code)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| corrupt(key, "kind", &String::from_utf8_lossy(code)))
        .and_then(|code| kind_from_code(key, code))
}

/// The codes as Lua locals, for the Redis scripts to start with (so that no script
/// spells a code itself): `QUEUED`, `PARKED`, `HELD`, `DONE`, `PAUSED` (statuses) and `CALL`,
/// `TELL`, `PROMISE` (kinds, as the decimal text that `HGET` returns).
#[allow(dead_code)] // See `Status::redis`.
pub(crate) const LUA: &str = concat!(
    "local QUEUED, PARKED, HELD, DONE, PAUSED = '",
    status!(redis, Queued),
    "', '",
    status!(redis, Parked),
    "', '",
    status!(redis, Held),
    "', '",
    status!(redis, Done),
    "', '",
    status!(redis, Paused),
    "'\nlocal CALL, TELL, PROMISE = '",
    kind!(Call),
    "', '",
    kind!(Tell),
    "', '",
    kind!(Promise),
    "'\n",
);

/// The warning of a recovery that paused request `id` (both engines).
pub(crate) fn log_paused(app: &str, id: &str, policy: crate::RecoveryPolicy) {
    let m = policy.max_attempts;
    tracing::warn!(
        "request {id} paused after {m} attempts (max_attempts {m}): its executor died each time; \
         resume it with kar resume -app {app} {id}"
    );
}

fn corrupt(key: &str, what: &str, code: &str) -> StoreError {
    StoreError::Corrupt {
        key: key.to_string(),
        reason: format!("unknown request {what} code {code:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [RequestKind; 3] = [RequestKind::Call, RequestKind::Tell, RequestKind::Promise];

    #[test]
    fn codes_round_trip() {
        for status in STATUSES {
            assert_eq!(Status::from_sql("r", status.sql()).ok(), Some(status));
            let redis = status.redis().as_bytes();
            assert_eq!(Status::from_redis("r", redis).ok(), Some(status));
        }
        for kind in KINDS {
            assert_eq!(kind_from_code("r", kind_code(kind)).ok(), Some(kind));
            let text = kind_code(kind).to_string();
            assert_eq!(kind_from_text("r", text.as_bytes()).ok(), Some(kind));
        }
    }

    #[test]
    fn unknown_codes_are_corrupt() {
        fn corrupt<T>(r: Result<T, StoreError>) -> bool {
            matches!(r, Err(StoreError::Corrupt { .. }))
        }
        assert!(corrupt(kind_from_code("r", 3)));
        assert!(corrupt(kind_from_code("r", -1)));
        assert!(corrupt(kind_from_text("r", b"")));
        assert!(corrupt(kind_from_text("r", b"x")));
        assert!(corrupt(Status::from_sql("r", "q")));
        assert!(corrupt(Status::from_redis("r", b"queued")));
    }

    /// The values of the released stores (a change here is a data migration).
    #[test]
    fn stored_values_are_those_released() {
        let sql: Vec<_> = STATUSES.iter().map(|s| s.sql()).collect();
        assert_eq!(sql, ["queued", "parked", "held", "done", "paused"]);
        let redis: Vec<_> = STATUSES.iter().map(|s| s.redis()).collect();
        assert_eq!(redis, ["q", "p", "h", "d", "x"]);
        assert_eq!(KINDS.map(kind_code), [0, 1, 2]);
        assert!(LUA.contains("local QUEUED, PARKED, HELD, DONE, PAUSED = 'q', 'p', 'h', 'd', 'x'"));
        assert!(LUA.contains("local CALL, TELL, PROMISE = '0', '1', '2'"));
    }

    /// The partial indexes of the embedded schema are written in SQL: they must name
    /// the statuses the queries use, or the planner stops using them.
    #[test]
    fn schema_indexes_name_the_codes() {
        let schema = include_str!("embedded/schema.sql");
        for literal in [
            concat!("WHERE status = ", sql_status!(Queued), ";"),
            concat!("WHERE status = ", sql_status!(Parked), ";"),
            concat!("WHERE status = ", sql_status!(Done), ";"),
        ] {
            assert!(schema.contains(literal), "{literal}");
        }
    }
}
