//! Actor state (spec §2.4, decisions §9.3, §9.4, §9.15). State routes go to the
//! store (through the runtime's state façade) from whichever sidecar receives them:
//! no routing to the actor's host, no actor lock, no activation, no check that the
//! actor type exists.

use super::bindings::one_line;
use super::Request;
use crate::body;
use crate::query::form_value;
use crate::reply::{self, Response, JSON};
use crate::router::{self, ActorRoute};
use crate::server::Ctx;
use bytes::Bytes;
use http::header::{HeaderValue, LOCATION};
use http::{Method, StatusCode};
use kar_protocol::paths::encode_segment;
use kar_protocol::state_ops::{parse_map_op, parse_update};
use kar_protocol::{gojson, ActorRef};
use kar_runtime::{RuntimeError, State};
use serde_json::Value;

/// `/kar/v1/actor/{type}/{id}/state[/{key}[/{subkey}]]`, every method the router lets
/// through for these paths.
pub(crate) async fn handle(
    ctx: &Ctx,
    actor: router::ActorRef,
    route: ActorRoute,
    request: Request,
) -> Response {
    let actor = ActorRef::new(actor.actor_type, actor.id);
    let state = ctx.runtime.state();
    let (parts, body) = request.into_parts();
    // Only the exact string `true` enables it (spec §2.0).
    let nil_on_absent = form_value(parts.uri.query(), "nilOnAbsent").as_deref() == Some("true");
    let body = if parts.method == Method::PUT || parts.method == Method::POST {
        match body::read(body, &parts.headers, ctx.config.max_body_bytes).await {
            Ok(body) => body,
            Err(response) => return response,
        }
    } else {
        Bytes::new()
    };
    match (route, parts.method) {
        (ActorRoute::State, Method::GET) => get_all(state, &actor).await,
        (ActorRoute::State, Method::POST) => update(state, &actor, &body).await,
        (ActorRoute::State, Method::DELETE) => remove_all(state, &actor).await,
        (ActorRoute::StateKey { key }, method) => {
            entry(state, &actor, &key, None, method, body, nil_on_absent).await
        }
        (ActorRoute::StateSubkey { key, subkey }, method) => {
            entry(
                state,
                &actor,
                &key,
                Some(&subkey),
                method,
                body,
                nil_on_absent,
            )
            .await
        }
        // The router admits no other combination.
        (route, method) => reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not supported on {}", route_name(&route)),
        ),
    }
}

fn route_name(route: &ActorRoute) -> &'static str {
    match route {
        ActorRoute::State => "actor state",
        ActorRoute::StateKey { .. } => "actor state entries",
        ActorRoute::StateSubkey { .. } => "actor submap entries",
        _ => "this route",
    }
}

/// The routes of one flat entry (`subkey` None) or one submap entry.
async fn entry(
    state: State<'_>,
    actor: &ActorRef,
    key: &str,
    subkey: Option<&str>,
    method: Method,
    body: Bytes,
    nil_on_absent: bool,
) -> Response {
    let entry = state.entry(actor, key, subkey);
    match method {
        Method::GET => match entry.get().await {
            // The stored text, verbatim (it was never validated as JSON).
            Ok(Some(value)) => reply::typed(StatusCode::OK, JSON, value),
            // No Content-Type at all: the Python SDK hands back the raw response.
            Ok(None) if nil_on_absent => reply::empty(StatusCode::OK),
            Ok(None) => reply::error(StatusCode::NOT_FOUND, "Not Found"),
            Err(e) => store_error("cannot read actor state", &e),
        },
        Method::HEAD => match entry.get().await {
            Ok(Some(_)) => reply::empty(StatusCode::OK),
            Ok(None) => reply::error(StatusCode::NOT_FOUND, "key not present"),
            Err(e) => store_error("cannot read actor state", &e),
        },
        Method::PUT => match entry.set(body).await {
            Ok(true) => created(actor, key, subkey),
            Ok(false) => reply::empty(StatusCode::NO_CONTENT),
            Err(e) => store_error("cannot write actor state", &e),
        },
        Method::DELETE => match entry.remove().await {
            Ok(removed) => reply::text(StatusCode::OK, if removed { "1" } else { "0" }),
            Err(e) => store_error("cannot remove actor state", &e),
        },
        Method::POST if subkey.is_none() => map_op(state, actor, key, &body).await,
        method => reply::error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not supported on actor state entries"),
        ),
    }
}

/// `201` for a new entry: a `Location` naming it (each segment percent-encoded so
/// that any key makes a valid URL), no body, no Content-Type.
fn created(actor: &ActorRef, key: &str, subkey: Option<&str>) -> Response {
    let mut location = format!(
        "/kar/v1/actor/{}/{}/state/{}",
        encode_segment(&actor.actor_type),
        encode_segment(&actor.id),
        encode_segment(key)
    );
    if let Some(subkey) = subkey {
        location.push('/');
        location.push_str(&encode_segment(subkey));
    }
    let mut response = reply::empty(StatusCode::CREATED);
    match HeaderValue::from_str(&location) {
        Ok(value) => {
            response.headers_mut().insert(LOCATION, value);
        }
        // Unreachable: percent-encoding leaves only visible ASCII.
        Err(e) => tracing::warn!("cannot set Location {location:?}: {e}"),
    }
    response
}

/// `GET .../state`: every entry, values parsed as JSON (invalid → `null`) and
/// re-encoded as Go does (members sorted, float64 numbers).
async fn get_all(state: State<'_>, actor: &ActorRef) -> Response {
    match state.get_all(actor).await {
        Ok(state) => reply::typed(StatusCode::OK, JSON, gojson::to_string(&state.to_json())),
        Err(e) => store_error("cannot read actor state", &e),
    }
}

/// `DELETE .../state`: `1` if any state existed, else `0`.
async fn remove_all(state: State<'_>, actor: &ActorRef) -> Response {
    match state.remove_all(actor).await {
        Ok(removed) => reply::text(StatusCode::OK, if removed > 0 { "1" } else { "0" }),
        Err(e) => store_error("cannot remove actor state", &e),
    }
}

/// `POST .../state`: a stateUpdateOp, applied as one atomic transition (§9.15).
async fn update(state: State<'_>, actor: &ActorRef, body: &[u8]) -> Response {
    let Ok(update) = parse_update(body) else {
        return reply::error(
            StatusCode::BAD_REQUEST,
            "Request body was not a StateUpdateOp",
        );
    };
    match state.update(actor, &update).await {
        Ok(counts) => reply::typed(
            StatusCode::OK,
            JSON,
            format!(
                r#"{{"removed":{},"added":{}}}"#,
                counts.removed, counts.added
            ),
        ),
        Err(e) => store_error("cannot update actor state", &e),
    }
}

/// `POST .../state/{key}`: `{"op": "get"|"keys"|"size"|"clear"}` on one submap.
async fn map_op(state: State<'_>, actor: &ActorRef, key: &str, body: &[u8]) -> Response {
    let Ok(op) = parse_map_op(body) else {
        return reply::error(StatusCode::BAD_REQUEST, "Request body was not a MapOp");
    };
    match op.as_str() {
        "get" => match state.submap_entries(actor, key).await {
            Ok(entries) => {
                let mut object = serde_json::Map::new();
                for (subkey, value) in entries {
                    match serde_json::from_slice::<Value>(&value) {
                        Ok(value) => {
                            object.insert(subkey, value);
                        }
                        Err(e) => {
                            return reply::error(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                one_line(&format!(
                                    "submapOps:get: subMapScan failed: Failed to deserialize submap value: {e}"
                                )),
                            )
                        }
                    }
                }
                json(&Value::Object(object))
            }
            Err(e) => store_error("submapOps:get", &e),
        },
        "keys" => match state.submap_entries(actor, key).await {
            // Insertion order (spec §2.4), as the store keeps it.
            Ok(entries) => json(&Value::Array(
                entries
                    .into_iter()
                    .map(|(subkey, _)| Value::String(subkey))
                    .collect(),
            )),
            Err(e) => store_error("submapOps:keys", &e),
        },
        "size" => match state.submap_entries(actor, key).await {
            Ok(entries) => reply::typed(StatusCode::OK, JSON, entries.len().to_string()),
            Err(e) => store_error("submapOps:size", &e),
        },
        // An empty submap clears to 0 (decision §9.3; Go crashes there).
        "clear" => match state.submap_clear(actor, key).await {
            Ok(removed) => reply::typed(StatusCode::OK, JSON, removed.to_string()),
            Err(e) => store_error("submapOps:clear", &e),
        },
        other => reply::error(
            StatusCode::BAD_REQUEST,
            one_line(&format!("Unsupported map operation {other}")),
        ),
    }
}

fn json(value: &Value) -> Response {
    reply::typed(StatusCode::OK, JSON, gojson::to_string(value))
}

/// `500` with the store's reason on one line (decision §9.3).
fn store_error(what: &str, e: &RuntimeError) -> Response {
    tracing::error!("{what}: {e}");
    reply::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        one_line(&format!("{what}: {e}")),
    )
}
