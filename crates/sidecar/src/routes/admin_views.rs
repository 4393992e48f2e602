//! The admin API's read-only views for the dashboard (README, "Dashboard"): actor
//! placements with whether each instance is activated, one actor's state, reminders
//! with their next firing, subscriptions with their lag, and the latency per method
//! merged across the mesh. Lists are paginated like `requests` (`limit`, `cursor`,
//! `next_cursor`); errors have the admin API's shape (`admin.rs`).

use super::admin::{error, failed, ok, page_limit};
use crate::query::form_value;
use crate::reply::Response;
use crate::server::Ctx;
use http::StatusCode;
use kar_protocol::{format_go_duration, gojson, ActorRef, Binding};
use kar_runtime::latency::{merge, quantile};
use serde_json::{json, Value};
use std::collections::HashSet;

/// A non-empty query parameter.
fn param(query: Option<&str>, name: &str) -> Option<String> {
    form_value(query, name).filter(|v| !v.is_empty())
}

/// `GET actors?actor_type=&limit=&cursor=`: one page of placements, each with
/// `active` (activated in its sidecar's component now, as the members answer).
pub(super) async fn actors(ctx: &Ctx, query: Option<&str>) -> Response {
    let limit = match page_limit(query) {
        Ok(limit) => limit,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let actor_type = param(query, "actor_type");
    let cursor = param(query, "cursor");
    let page = match ctx
        .runtime
        .list_placements(actor_type.as_deref(), cursor.as_deref(), limit)
        .await
    {
        Ok(page) => page,
        Err(e) => return failed(e),
    };
    let active: HashSet<ActorRef> = if page.placements.is_empty() {
        HashSet::new()
    } else {
        match ctx.runtime.mesh_actors().await {
            Ok(by_type) => by_type
                .into_iter()
                .flat_map(|(t, ids)| ids.into_iter().map(move |id| ActorRef::new(t.clone(), id)))
                .collect(),
            Err(e) => return failed(e),
        }
    };
    let actors: Vec<Value> = page
        .placements
        .iter()
        .map(|(actor, node)| {
            json!({
                "actor_type": actor.actor_type,
                "actor_id": actor.id,
                "sidecar": node.0,
                "active": active.contains(actor),
            })
        })
        .collect();
    let mut body = json!({ "actors": actors });
    if let Some(next) = page.next {
        body["next_cursor"] = json!(next);
    }
    ok(body)
}

/// `GET actors/{type}/{id}/state`: the persisted state, read only (`{}` if none).
pub(super) async fn actor_state(ctx: &Ctx, actor_type: &str, actor_id: &str) -> Response {
    if actor_type.is_empty() || actor_id.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "an actor needs a type and an id: actors/{type}/{id}/state",
        );
    }
    let actor = ActorRef::new(actor_type, actor_id);
    match ctx.runtime.state().get_all(&actor).await {
        Ok(state) => ok(json!({
            "actor_type": actor_type,
            "actor_id": actor_id,
            "state": state.to_json(),
        })),
        Err(e) => failed(e),
    }
}

/// The position of a binding in the listings' order: actor type, actor id, id.
type Key = (String, String, String);

fn key_of(binding: &impl Binding) -> Key {
    let (t, i, id) = binding.sort_key();
    (t.to_string(), i.to_string(), id.to_string())
}

/// The cursor of a reminder or subscription listing: the key of the last item of the
/// previous page, as a JSON array (opaque to clients).
fn binding_cursor(query: Option<&str>) -> Result<Option<Key>, String> {
    match param(query, "cursor") {
        None => Ok(None),
        Some(text) => serde_json::from_str::<Key>(&text)
            .map(Some)
            .map_err(|_| format!("malformed cursor {text:?}")),
    }
}

/// The `limit` and `cursor` of a reminder or subscription listing, or why not.
fn binding_page(query: Option<&str>) -> Result<(usize, Option<Key>), String> {
    page_limit(query).and_then(|limit| Ok((limit, binding_cursor(query)?)))
}

/// One page of `items` (sorted by key) after `cursor`, kept by `keep`, and the cursor
/// of the next page. Reminders and subscriptions are read whole from the store (one
/// per actor binding: far fewer than requests), then paged here.
fn page_of<'a, T: Binding>(
    items: &'a [T],
    cursor: Option<&Key>,
    limit: usize,
    keep: impl Fn(&T) -> bool,
) -> (Vec<&'a T>, Option<String>) {
    let mut page: Vec<&'a T> = items
        .iter()
        .filter(|item| cursor.is_none_or(|c| key_of(*item) > *c))
        .filter(|item| keep(item))
        .take(limit + 1)
        .collect();
    let more = page.len() > limit;
    page.truncate(limit);
    let next = more
        .then(|| page.last())
        .flatten()
        .map(|last| json!(key_of(*last)).to_string());
    (page, next)
}

/// The `actor_type` and `actor_id` filters of the binding listings.
fn selects(query: Option<&str>) -> impl Fn(&ActorRef) -> bool {
    let actor_type = param(query, "actor_type");
    let actor_id = param(query, "actor_id");
    move |actor: &ActorRef| {
        actor_type.as_ref().is_none_or(|t| *t == actor.actor_type)
            && actor_id.as_ref().is_none_or(|i| *i == actor.id)
    }
}

/// `GET reminders?actor_type=&actor_id=&limit=&cursor=`: with `next_fire` (RFC 3339)
/// and `next_fire_in_ms` (negative when overdue).
pub(super) async fn reminders(ctx: &Ctx, query: Option<&str>) -> Response {
    let (limit, cursor) = match binding_page(query) {
        Ok(page) => page,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let mut all = match ctx.runtime.all_reminders().await {
        Ok(all) => all,
        Err(e) => return failed(e),
    };
    all.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let selected = selects(query);
    let (page, next) = page_of(&all, cursor.as_ref(), limit, |r| selected(&r.actor));
    let now = kar_protocol::now_millis() as i64;
    let reminders: Vec<Value> = page
        .into_iter()
        .map(|r| {
            let mut out = json!({
                "actor_type": r.actor.actor_type,
                "actor_id": r.actor.id,
                "id": r.id,
                "path": r.path,
                "next_fire": kar_protocol::time::Timestamp::from_unix_millis(r.target)
                    .format_rfc3339_nano(),
                "next_fire_in_ms": r.target - now,
            });
            if r.period != 0 {
                out["period"] = json!(format_go_duration(r.period));
            }
            if !r.data.is_empty() {
                out["data"] = gojson::parse_or_null(&r.data);
            }
            out
        })
        .collect();
    let mut body = json!({ "reminders": reminders });
    if let Some(next) = next {
        body["next_cursor"] = json!(next);
    }
    ok(body)
}

/// `GET subscriptions?actor_type=&actor_id=&topic=&limit=&cursor=`: with `position`
/// (last event handed to the subscriber), `lag` (events after it) and `in_flight`.
pub(super) async fn subscriptions(ctx: &Ctx, query: Option<&str>) -> Response {
    let (limit, cursor) = match binding_page(query) {
        Ok(page) => page,
        Err(reason) => return error(StatusCode::BAD_REQUEST, reason),
    };
    let lags = match ctx.runtime.subscription_lags().await {
        Ok(lags) => lags,
        Err(e) => return failed(e),
    };
    let subs: Vec<_> = lags.iter().map(|l| l.subscription.clone()).collect();
    let selected = selects(query);
    let topic = param(query, "topic");
    let (page, next) = page_of(&subs, cursor.as_ref(), limit, |s| {
        selected(&s.actor) && topic.as_ref().is_none_or(|t| *t == s.topic)
    });
    let subscriptions: Vec<Value> = page
        .into_iter()
        .filter_map(|s| lags.iter().find(|l| l.subscription == *s))
        .map(|l| {
            let s = &l.subscription;
            json!({
                "actor_type": s.actor.actor_type,
                "actor_id": s.actor.id,
                "id": s.id,
                "topic": s.topic,
                "path": s.path,
                "position": l.position,
                "lag": l.lag,
                "in_flight": l.in_flight,
            })
        })
        .collect();
    let mut body = json!({ "subscriptions": subscriptions });
    if let Some(next) = next {
        body["next_cursor"] = json!(next);
    }
    ok(body)
}

/// `GET latency`: per method (`<type>:<method>`, `<service>:<path>`), how long the
/// components took to answer, merged over every sidecar that answered.
pub(super) async fn latency(ctx: &Ctx) -> Response {
    let by_member = match ctx.runtime.mesh_latency().await {
        Ok(by_member) => by_member,
        Err(e) => return failed(e),
    };
    let sidecars: Vec<&str> = by_member.iter().map(|(node, _)| node.0.as_str()).collect();
    let merged = merge(by_member.iter().map(|(_, methods)| methods.clone()));
    let ms = |micros: Option<f64>| micros.map(|us| (us / 10.0).round() / 100.0);
    let methods: Vec<Value> = merged
        .iter()
        .filter(|m| m.count > 0)
        .map(|m| {
            json!({
                "method": m.method,
                "count": m.count,
                "p50_ms": ms(quantile(m, 0.5)),
                "p99_ms": ms(quantile(m, 0.99)),
                "mean_ms": ms(Some(m.sum_micros as f64 / m.count as f64)),
            })
        })
        .collect();
    ok(json!({ "methods": methods, "sidecars": sidecars }))
}
