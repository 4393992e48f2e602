//! The JSON admin API under `/kar/admin/v1` (README, "Admin API"; design in
//! `docs/admin-api.md`): the pending requests (paginated list, one with its
//! children, kill, pause, resume), drain and the sidecars here; the dashboard's
//! read-only views (actors, an actor's state, reminders, subscriptions, latency) in
//! `admin_views.rs`. Outside the upstream contract (`/kar/v1` is untouched), JSON
//! both ways, one error shape `{"error": {"code", "message"}}`, and answered only to
//! loopback peers unless an API token is set (then `guard.rs` checked it).

use super::admin_views as views;
use super::Request;
use crate::query::form_value;
use crate::reply::{self, Response};
use crate::server::Ctx;
use http::{Method, StatusCode};
use kar_protocol::RequestId;
use kar_runtime::control::{
    request_json, Killed, Paused, RequestFilter, RequestStatus, Resumed, Routing,
};
use kar_runtime::RuntimeError;
use percent_encoding::percent_decode_str;
use serde_json::{json, Value};
use std::net::SocketAddr;

/// The prefix of every admin route.
pub(crate) const PREFIX: &str = "/kar/admin/v1/";
/// Requests per page unless `limit` says otherwise, and the most it may say.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// A JSON error: `{"error": {"code": ..., "message": ...}}`.
pub(super) fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    let code = match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::CONFLICT => "conflict",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "internal",
    };
    let body = json!({"error": {"code": code, "message": message.to_string()}});
    reply::typed(status, reply::JSON, body.to_string())
}

pub(super) fn ok(value: Value) -> Response {
    reply::typed(StatusCode::OK, reply::JSON, value.to_string())
}

pub(super) fn failed(e: RuntimeError) -> Response {
    match e {
        RuntimeError::ShuttingDown => error(StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
        // The store refuses malformed input (a cursor no page gave) as configuration.
        RuntimeError::Store(kar_runtime::views::StoreError::Config(reason)) => {
            error(StatusCode::BAD_REQUEST, reason)
        }
        other => error(StatusCode::SERVICE_UNAVAILABLE, other),
    }
}

pub(crate) async fn handle(ctx: &Ctx, peer: Option<SocketAddr>, request: Request) -> Response {
    // With an API token, `guard.rs` let through only peers that presented it.
    if !peer.is_some_and(|p| p.ip().is_loopback()) && ctx.config.api_token.is_none() {
        return error(
            StatusCode::FORBIDDEN,
            "the admin API answers loopback peers only (unless -api_token is set)",
        );
    }
    let path = request.uri().path().trim_start_matches(PREFIX);
    let segments: Vec<String> = path
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let query = request.uri().query();
    let route = match segments.as_slice() {
        ["requests"] => Some((Method::GET, Op::List)),
        ["requests", id] if !id.is_empty() => Some((Method::GET, Op::Get(id))),
        ["requests", id, "kill"] => Some((Method::POST, Op::Kill(id))),
        ["requests", id, "pause"] => Some((Method::POST, Op::Pause(id))),
        ["requests", id, "resume"] => Some((Method::POST, Op::Resume(id))),
        ["drain"] => Some((Method::POST, Op::Drain)),
        ["sidecars"] => Some((Method::GET, Op::Sidecars)),
        ["actors"] => Some((Method::GET, Op::Actors)),
        ["actors", actor_type, actor_id, "state"] => {
            Some((Method::GET, Op::ActorState(actor_type, actor_id)))
        }
        ["reminders"] => Some((Method::GET, Op::Reminders)),
        ["subscriptions"] => Some((Method::GET, Op::Subscriptions)),
        ["latency"] => Some((Method::GET, Op::Latency)),
        _ => None,
    };
    let checked = match route {
        None => Err(error(
            StatusCode::NOT_FOUND,
            format!("no admin route {}", request.uri().path()),
        )),
        Some((want, _)) if *request.method() != want => Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{} accepts {want} only", request.uri().path()),
        )),
        Some((_, op)) => Ok(op),
    };
    match checked {
        Ok(Op::List) => list(ctx, query).await,
        Ok(Op::Get(id)) => get(ctx, id).await,
        Ok(Op::Kill(id)) => kill(ctx, id).await,
        Ok(Op::Pause(id)) => pause(ctx, id).await,
        Ok(Op::Resume(id)) => resume(ctx, id).await,
        Ok(Op::Drain) => drain(ctx, query).await,
        Ok(Op::Sidecars) => sidecars(ctx).await,
        Ok(Op::Actors) => views::actors(ctx, query).await,
        Ok(Op::ActorState(actor_type, actor_id)) => {
            views::actor_state(ctx, actor_type, actor_id).await
        }
        Ok(Op::Reminders) => views::reminders(ctx, query).await,
        Ok(Op::Subscriptions) => views::subscriptions(ctx, query).await,
        Ok(Op::Latency) => views::latency(ctx).await,
        Err(response) => response,
    }
}

enum Op<'a> {
    List,
    Get(&'a str),
    Kill(&'a str),
    Pause(&'a str),
    Resume(&'a str),
    Drain,
    Sidecars,
    Actors,
    ActorState(&'a str, &'a str),
    Reminders,
    Subscriptions,
    Latency,
}

/// `limit`: [`DEFAULT_LIMIT`] when absent, 1 to [`MAX_LIMIT`], else why not (a 400).
pub(super) fn page_limit(query: Option<&str>) -> Result<usize, String> {
    match form_value(query, "limit").filter(|v| !v.is_empty()) {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            _ => Err(format!(
                "limit must be a number from 1 to {MAX_LIMIT}, not {text:?}"
            )),
        },
    }
}

pub(super) fn app(ctx: &Ctx) -> &str {
    &ctx.runtime.config().app
}

/// `GET requests?status=&actor_type=&actor_id=&service=&limit=&cursor=`.
async fn list(ctx: &Ctx, query: Option<&str>) -> Response {
    let param = |name: &str| form_value(query, name).filter(|v| !v.is_empty());
    let status = match param("status").map(|s| s.parse::<RequestStatus>()) {
        None => None,
        Some(Ok(status)) => Some(status),
        Some(Err(e)) => return error(StatusCode::BAD_REQUEST, e),
    };
    let limit = match page_limit(query) {
        Ok(limit) => limit,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let after = match param("cursor").map(|c| c.parse::<u64>()) {
        None => None,
        Some(Ok(after)) => Some(after),
        Some(Err(_)) => return error(StatusCode::BAD_REQUEST, "malformed cursor"),
    };
    let filter = RequestFilter {
        status: status.map(RequestStatus::stored),
        actor_type: param("actor_type"),
        actor_id: param("actor_id"),
        service: param("service"),
    };
    let page = match ctx.runtime.list_requests(&filter, after, limit).await {
        Ok(page) => page,
        Err(e) => return failed(e),
    };
    let running = ctx.runtime.running_among(&page.requests).await;
    let now = kar_protocol::now_millis();
    let requests: Vec<Value> = page
        .requests
        .iter()
        .filter_map(|r| {
            let shown = RequestStatus::of(r, &running);
            (status.is_none_or(|s| s == shown)).then(|| request_json(r, shown, now))
        })
        .collect();
    let mut body = json!({ "requests": requests });
    if let Some(next) = page.next {
        body["next_cursor"] = json!(next.to_string());
    }
    ok(body)
}

/// `GET requests/{id}`: the request with `children` (and its `parent`).
async fn get(ctx: &Ctx, id: &str) -> Response {
    let found = match ctx
        .runtime
        .request_with_children(&RequestId(id.to_string()))
        .await
    {
        Ok(found) => found,
        Err(e) => return failed(e),
    };
    let Some((request, children)) = found else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no pending request {id} in application {}", app(ctx)),
        );
    };
    let running = ctx
        .runtime
        .running_among(std::iter::once(&request).chain(&children))
        .await;
    let now = kar_protocol::now_millis();
    let mut body = request_json(&request, RequestStatus::of(&request, &running), now);
    body["children"] = children
        .iter()
        .map(|c| request_json(c, RequestStatus::of(c, &running), now))
        .collect();
    ok(body)
}

fn unknown(ctx: &Ctx, id: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("no request {id} in application {}", app(ctx)),
    )
}

async fn kill(ctx: &Ctx, id: &str) -> Response {
    match ctx.runtime.kill_request(&RequestId(id.to_string())).await {
        Ok(Killed::Killed { assignee }) => {
            ok(json!({"id": id, "killed": true, "assignee": assignee.map(|n| n.0)}))
        }
        Ok(Killed::Unknown) => unknown(ctx, id),
        Ok(Killed::AlreadyComplete) => error(
            StatusCode::CONFLICT,
            format!(
                "request {id} of application {} is already complete",
                app(ctx)
            ),
        ),
        Err(e) => failed(e),
    }
}

async fn pause(ctx: &Ctx, id: &str) -> Response {
    match ctx.runtime.pause_request(&RequestId(id.to_string())).await {
        Ok(Paused::Paused { assignee }) => {
            ok(json!({"id": id, "paused": true, "assignee": assignee.map(|n| n.0)}))
        }
        Ok(Paused::Unknown) => unknown(ctx, id),
        Ok(Paused::AlreadyComplete) => error(
            StatusCode::CONFLICT,
            format!(
                "request {id} of application {} is already complete",
                app(ctx)
            ),
        ),
        Ok(Paused::AlreadyPaused) => error(
            StatusCode::CONFLICT,
            format!("request {id} of application {} is already paused", app(ctx)),
        ),
        Err(e) => failed(e),
    }
}

async fn resume(ctx: &Ctx, id: &str) -> Response {
    match ctx.runtime.resume_request(&RequestId(id.to_string())).await {
        Ok(Resumed::Routed(Routing::Assigned(node))) => {
            ok(json!({"id": id, "status": "queued", "assignee": node.0}))
        }
        Ok(Resumed::Routed(Routing::Parked)) => ok(json!({"id": id, "status": "parked"})),
        Ok(Resumed::Held) => ok(json!({"id": id, "status": "held"})),
        Ok(Resumed::Unknown) => unknown(ctx, id),
        Ok(Resumed::NotPaused) => error(
            StatusCode::CONFLICT,
            format!("request {id} of application {} is not paused", app(ctx)),
        ),
        Err(e) => failed(e),
    }
}

/// `POST drain?force=true`: the sidecar answering is itself a live member, so
/// draining through the API always needs `force`.
async fn drain(ctx: &Ctx, query: Option<&str>) -> Response {
    match form_value(query, "force").as_deref() {
        Some("true") => {}
        Some("false") | None => {
            return error(
                StatusCode::CONFLICT,
                format!(
                    "refusing to drain application {}: its sidecars are live (this one at least); use force=true",
                    app(ctx)
                ),
            )
        }
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("force must be true or false, not {other:?}"),
            )
        }
    }
    match ctx.runtime.drain_requests().await {
        Ok(drained) => ok(json!({ "drained": drained })),
        Err(e) => failed(e),
    }
}

/// `GET sidecars`: the live members.
async fn sidecars(ctx: &Ctx) -> Response {
    let mut members = match ctx.runtime.members().await {
        Ok(members) => members,
        Err(e) => return failed(e),
    };
    members.sort_by(|a, b| a.node.cmp(&b.node));
    let sidecars: Vec<Value> = members
        .into_iter()
        .map(|m| {
            json!({
                "node": m.node.0,
                "services": [m.service],
                "actor_types": m.actors,
                "runtime_port": m.runtime_port,
            })
        })
        .collect();
    ok(json!({ "app": app(ctx), "sidecars": sidecars }))
}
