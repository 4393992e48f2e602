//! System routes (spec §2.8) and the metrics endpoint (spec §2.9).

use super::Request;
use crate::reply::{self, Response, JSON};
use crate::server::Ctx;
use http::header::ACCEPT;
use http::StatusCode;
use kar_protocol::{gojson, Member};
use serde::Serialize;
use std::collections::BTreeMap;

/// `GET /kar/v1/system/health`
pub(crate) fn health() -> Response {
    reply::text(StatusCode::OK, "OK")
}

/// `GET|POST /kar/v1/system/shutdown`: answers, then leaves the mesh.
pub(crate) fn shutdown(ctx: &Ctx) -> Response {
    tracing::info!("shutdown requested by the component");
    let runtime = ctx.runtime.clone();
    tokio::spawn(async move { runtime.shutdown().await });
    reply::text(StatusCode::OK, "OK")
}

/// The Content-Type of the text forms of `information` (set explicitly by Go).
const TEXT: &str = "text/plain";

/// `GET /kar/v1/system/information/{component}`: JSON iff `Accept` is exactly
/// `application/json` (spec §8.16).
pub(crate) async fn information(ctx: &Ctx, component: &str, request: &Request) -> Response {
    let json = request
        .headers()
        .get(ACCEPT)
        .is_some_and(|accept| accept.as_bytes() == JSON.as_bytes());
    let result = match component {
        "id" => Ok(id(ctx, json)),
        "sidecars" | "Sidecars" => match ctx.runtime.members().await {
            Ok(members) => sidecars(members, json),
            Err(e) => Err(e.to_string()),
        },
        "actors" | "Actors" => match ctx.runtime.mesh_actors().await {
            Ok(by_type) => actors(by_type, json),
            Err(e) => Err(e.to_string()),
        },
        "sidecar_actors" => actors(ctx.runtime.local_actors(), json),
        other => {
            return reply::error(
                StatusCode::BAD_REQUEST,
                format!("Invalid information query: {other}"),
            )
        }
    };
    match result {
        Ok(response) => response,
        Err(e) => reply::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Failed to acquire {component} information: {e}"),
        ),
    }
}

fn id(ctx: &Ctx, json: bool) -> Response {
    let node = ctx.runtime.node().as_str();
    if json {
        reply::typed(
            StatusCode::OK,
            JSON,
            serde_json::json!({ "id": node }).to_string(),
        )
    } else {
        reply::typed(StatusCode::OK, TEXT, format!("{node}\n"))
    }
}

#[derive(Serialize)]
struct SidecarInfo<'a> {
    port: u16,
    actors: &'a [String],
    services: [&'a str; 1],
}

fn sidecars(mut members: Vec<Member>, json: bool) -> Result<Response, String> {
    members.sort_by(|a, b| a.node.cmp(&b.node));
    if json {
        let info: BTreeMap<&str, SidecarInfo<'_>> = members
            .iter()
            .map(|m| {
                let info = SidecarInfo {
                    port: m.runtime_port,
                    actors: &m.actors,
                    services: [m.service.as_str()],
                };
                (m.node.as_str(), info)
            })
            .collect();
        let body = serde_json::to_string(&info).map_err(|e| e.to_string())?;
        return Ok(reply::typed(StatusCode::OK, JSON, body));
    }
    // Go: "\nSidecar\n : Actors\n : Services" then per node
    // "\n<node>:<port>\n : [A B]\n : [svc]" (`%v` of string slices).
    let mut text = String::from("\nSidecar\n : Actors\n : Services");
    for m in &members {
        text.push_str(&format!(
            "\n{}:{}\n : [{}]\n : [{}]",
            m.node,
            m.runtime_port,
            m.actors.join(" "),
            m.service
        ));
    }
    Ok(reply::typed(StatusCode::OK, TEXT, text))
}

/// `type → [ids]` (ids sorted): JSON pretty-printed with a 2-space indent as Go's
/// `json.MarshalIndent` does; text as `<type>: [\n` + `    <id>\n` per id + `]\n`
/// per type.
fn actors(mut by_type: BTreeMap<String, Vec<String>>, json: bool) -> Result<Response, String> {
    for ids in by_type.values_mut() {
        ids.sort();
    }
    if json {
        let value = serde_json::to_value(&by_type).map_err(|e| e.to_string())?;
        return Ok(reply::typed(
            StatusCode::OK,
            JSON,
            gojson::to_string_pretty(&value),
        ));
    }
    let mut text = String::new();
    for (actor_type, ids) in &by_type {
        text.push_str(&format!("{actor_type}: [\n"));
        for id in ids {
            text.push_str(&format!("    {id}\n"));
        }
        text.push_str("]\n");
    }
    Ok(reply::typed(StatusCode::OK, TEXT, text))
}

/// `GET /metrics`: Prometheus text format.
pub(crate) async fn metrics(ctx: &Ctx) -> Response {
    reply::typed(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        ctx.runtime.metrics_text().await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kar_protocol::NodeId;

    fn body(response: Response) -> String {
        use http_body_util::BodyExt;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let collected = runtime.block_on(response.into_body().collect()).unwrap();
        String::from_utf8(collected.to_bytes().to_vec()).unwrap()
    }

    #[test]
    fn sidecar_formats() {
        let members = vec![
            Member {
                node: NodeId::from("node-b"),
                service: "kar.none".into(),
                actors: vec!["A".into(), "B".into()],
                runtime_port: 3500,
            },
            Member {
                node: NodeId::from("node-a"),
                service: "svc".into(),
                actors: vec![],
                runtime_port: 3501,
            },
        ];
        let text = body(sidecars(members.clone(), false).unwrap());
        assert_eq!(
            text,
            "\nSidecar\n : Actors\n : Services\nnode-a:3501\n : []\n : [svc]\nnode-b:3500\n : [A B]\n : [kar.none]"
        );
        let json = body(sidecars(members, true).unwrap());
        assert_eq!(
            json,
            r#"{"node-a":{"port":3501,"actors":[],"services":["svc"]},"node-b":{"port":3500,"actors":["A","B"],"services":["kar.none"]}}"#
        );
    }

    #[test]
    fn actor_formats() {
        let mut by_type = BTreeMap::new();
        by_type.insert("T".to_string(), vec!["2".to_string(), "1".to_string()]);
        by_type.insert("<U>".to_string(), vec!["a&b".to_string()]);
        assert_eq!(
            body(actors(by_type.clone(), false).unwrap()),
            "<U>: [\n    a&b\n]\nT: [\n    1\n    2\n]\n"
        );
        assert_eq!(
            body(actors(by_type, true).unwrap()),
            "{\n  \"\\u003cU\\u003e\": [\n    \"a\\u0026b\"\n  ],\n  \"T\": [\n    \"1\",\n    \"2\"\n  ]\n}"
        );
        assert_eq!(body(actors(BTreeMap::new(), true).unwrap()), "{}");
    }
}
