//! An operator's view and control of pending requests, shared by `kar get -s
//! requests` (the CLI, straight against the store) and the sidecar's admin API: the
//! listing's statuses (the store's, with *running* told apart from *queued* by asking
//! the assignees: [`Runtime::running_requests`]), the JSON of one request (the
//! stable fields of `docs/admin-api.md`), and kill, pause and resume.

use crate::{Runtime, RuntimeError};
use kar_protocol::{Request, RequestId, RequestKind, Target};
pub use kar_store_api::{
    Killed, Paused, PendingRequest, PendingStatus, RequestFilter, RequestPage, Resumed, Routing,
};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The status of a pending request shown to operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestStatus {
    /// Assigned to a member, not handed to its component yet (in its inbox, waiting
    /// for an actor lock or a back-off).
    Queued,
    /// Handed to the component of its assignee, not finished.
    Running,
    Held,
    Parked,
    Paused,
}

impl RequestStatus {
    pub const ALL: [RequestStatus; 5] = [
        RequestStatus::Queued,
        RequestStatus::Running,
        RequestStatus::Held,
        RequestStatus::Parked,
        RequestStatus::Paused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Queued => "queued",
            RequestStatus::Running => "running",
            RequestStatus::Held => "held",
            RequestStatus::Parked => "parked",
            RequestStatus::Paused => "paused",
        }
    }

    /// The store status a filter on this status reads.
    pub fn stored(self) -> PendingStatus {
        match self {
            RequestStatus::Queued | RequestStatus::Running => PendingStatus::Queued,
            RequestStatus::Held => PendingStatus::Held,
            RequestStatus::Parked => PendingStatus::Parked,
            RequestStatus::Paused => PendingStatus::Paused,
        }
    }

    /// The status of a stored request, `running` among the ids handed to components.
    pub fn of(pending: &PendingRequest, running: &HashSet<RequestId>) -> RequestStatus {
        match pending.status {
            PendingStatus::Queued if running.contains(&pending.request.id) => {
                RequestStatus::Running
            }
            PendingStatus::Queued => RequestStatus::Queued,
            PendingStatus::Held => RequestStatus::Held,
            PendingStatus::Parked => RequestStatus::Parked,
            PendingStatus::Paused => RequestStatus::Paused,
        }
    }
}

impl fmt::Display for RequestStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RequestStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RequestStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown request status {s:?} (one of queued, running, held, parked, paused)"
                )
            })
    }
}

/// The kind shown for a request: `call`, `tell`, `promise`, `reminder` (a firing),
/// `event` (a delivery), `tail_call` (a step after the first).
pub fn kind_name(request: &Request) -> &'static str {
    if request.step > 0 {
        return "tail_call";
    }
    match request.kind {
        RequestKind::Call => "call",
        RequestKind::Promise => "promise",
        RequestKind::Tell if request.flow.0.starts_with("flow-reminder-") => "reminder",
        RequestKind::Tell if request.flow.0.starts_with("flow-event-") => "event",
        RequestKind::Tell => "tell",
    }
}

/// The target as the listing shows it: `service` or `Type[id]`.
pub fn target_name(target: &Target) -> String {
    match target {
        Target::Service { name } => name.clone(),
        Target::Actor { actor_type, id } => format!("{actor_type}[{id}]"),
    }
}

/// The JSON of one pending request (`docs/admin-api.md`, "Request"); `now` in Unix
/// milliseconds gives its age.
pub fn request_json(pending: &PendingRequest, status: RequestStatus, now: u64) -> Value {
    let r = &pending.request;
    let mut out = Map::new();
    out.insert("id".into(), json!(r.id.0));
    out.insert("kind".into(), json!(kind_name(r)));
    let target = match &r.target {
        Target::Service { name } => json!({ "service": name }),
        Target::Actor { actor_type, id } => json!({ "actor_type": actor_type, "actor_id": id }),
    };
    out.insert("target".into(), target);
    out.insert("method".into(), json!(r.invocation.method));
    out.insert("path".into(), json!(r.invocation.path));
    out.insert("status".into(), json!(status.as_str()));
    out.insert("step".into(), json!(r.step));
    out.insert("attempt".into(), json!(r.attempt));
    if let Some(assignee) = &pending.assignee {
        out.insert("assignee".into(), json!(assignee.0));
    }
    out.insert("caller".into(), json!(r.caller.0));
    out.insert("flow".into(), json!(r.flow.0));
    if let Some(parent) = &r.parent {
        out.insert("parent".into(), json!(parent.0));
    }
    if let Some(at) = r.id.accepted_at_millis() {
        let stamp = kar_protocol::time::Timestamp::from_unix_millis(at as i64);
        out.insert("accepted_at".into(), json!(stamp.format_rfc3339_nano()));
        out.insert("age_ms".into(), json!(now.saturating_sub(at)));
    }
    Value::Object(out)
}

/// A request's age for a text listing: `850ms`, `12s`, `3m4s`, `2h5m`, `-` if unknown.
pub fn age_text(request: &Request, now: u64) -> String {
    let Some(at) = request.id.accepted_at_millis() else {
        return "-".into();
    };
    let ms = now.saturating_sub(at);
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

impl Runtime {
    /// One page of the pending requests `filter` keeps (see
    /// [`kar_store_api::ControlStore::list_requests`]).
    pub async fn list_requests(
        &self,
        filter: &RequestFilter,
        after: Option<u64>,
        limit: usize,
    ) -> Result<RequestPage, RuntimeError> {
        Ok(self.store.list_requests(filter, after, limit).await?)
    }

    /// One pending request with its pending children.
    pub async fn request_with_children(
        &self,
        id: &RequestId,
    ) -> Result<Option<(PendingRequest, Vec<PendingRequest>)>, RuntimeError> {
        Ok(self.store.request_with_children(id).await?)
    }

    /// The running requests among `requests` (asks their assignees).
    pub async fn running_among<'a>(
        self: &Arc<Self>,
        requests: impl IntoIterator<Item = &'a PendingRequest>,
    ) -> HashSet<RequestId> {
        let mut assignees: Vec<_> = requests
            .into_iter()
            .filter(|r| r.status == PendingStatus::Queued)
            .filter_map(|r| r.assignee.clone())
            .collect();
        assignees.sort();
        assignees.dedup();
        if assignees.is_empty() {
            return HashSet::new();
        }
        self.running_requests(&assignees).await
    }

    pub async fn kill_request(&self, id: &RequestId) -> Result<Killed, RuntimeError> {
        Ok(self.store.kill(id).await?)
    }

    pub async fn pause_request(&self, id: &RequestId) -> Result<Paused, RuntimeError> {
        Ok(self.store.pause(id).await?)
    }

    pub async fn resume_request(&self, id: &RequestId) -> Result<Resumed, RuntimeError> {
        Ok(self.store.resume(id).await?)
    }

    /// Deletes the application's pending requests (`kar drain`): the number deleted.
    pub async fn drain_requests(&self) -> Result<u64, RuntimeError> {
        Ok(self.store.drain().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_and_print() {
        for status in RequestStatus::ALL {
            assert_eq!(status.as_str().parse::<RequestStatus>(), Ok(status));
        }
        let err = "Queued".parse::<RequestStatus>().unwrap_err();
        assert!(err.contains("unknown request status \"Queued\""), "{err}");
    }
}
