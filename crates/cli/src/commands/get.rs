//! `kar get [OPTIONS]` (spec §5.6): query a running application.

use super::{join_as_client, Context};
use crate::flags::{Flag, Kind};
use anyhow::{bail, Result};
use kar_protocol::reminder::to_go_json;
use kar_protocol::{format_go_duration, gojson, ActorRef, Binding, Member, Reminder, Subscription};
use serde_json::{json, Map};
use std::collections::BTreeMap;

const SUBSYSTEM: Flag = Flag::new(
    "s",
    Kind::String,
    "actors",
    "Subsystem to query: actors, sidecars, reminders, subscriptions (also events), requests, or request (one, by id)",
);
const MEMORY_RESIDENT: Flag = Flag::new(
    "mr",
    Kind::Bool,
    "false",
    "Only list memory-resident actor instances",
);
const BY_SIDECAR: Flag = Flag::new(
    "by_sidecar",
    Kind::Bool,
    "false",
    "With -mr: list the memory-resident instances of each sidecar (how actors spread over replicas)",
);
const ACTOR_TYPE: Flag = Flag::new("t", Kind::String, "", "Actor type to query");
const ACTOR_ID: Flag = Flag::new("i", Kind::String, "", "Actor id to query");
const OUTPUT: Flag = Flag::new(
    "o",
    Kind::String,
    "",
    "Output format: json for JSON, text otherwise",
);

const STATUS: Flag = Flag::new(
    "status",
    Kind::String,
    "",
    "Only list requests of this status: queued, running, held, parked or paused (-s requests)",
);

pub const FLAGS: &[&Flag] = &[
    &SUBSYSTEM,
    &MEMORY_RESIDENT,
    &BY_SIDECAR,
    &ACTOR_TYPE,
    &ACTOR_ID,
    &OUTPUT,
    &STATUS,
];

pub async fn run(ctx: Context) -> Result<i32> {
    let subsystem = ctx.matches.str("s").to_string();
    let json = matches!(ctx.matches.str("o"), "json" | "application/json");
    match subsystem.to_ascii_lowercase().as_str() {
        "sidecars" | "sidecar" => {
            // The timeout only bounds requests, which this query makes none of.
            let runtime = join_as_client(&ctx.global, None).await?;
            let members = runtime.members().await;
            runtime.shutdown().await;
            match members {
                Ok(members) => {
                    println!("{}", format_sidecars(members, json));
                    Ok(0)
                }
                Err(e) => {
                    tracing::error!("error in Get on {subsystem}: {e}");
                    Ok(1)
                }
            }
        }
        "actors" | "actor" => actors(&ctx, &subsystem, json).await,
        "requests" => super::requests::list(&ctx, json).await,
        "request" => super::requests::one(&ctx, json).await,
        "reminders" | "reminder" => {
            let store = super::open_store(&ctx.global).await?;
            let listed = store.reminders().list_all().await;
            print_listing(&ctx, &subsystem, listed, json, |r| {
                (r.to_json(), reminder_line(r))
            })
        }
        "subscriptions" | "subscription" | "events" | "event" => {
            let store = super::open_store(&ctx.global).await?;
            let listed = store.subscriptions().list_all().await;
            print_listing(&ctx, &subsystem, listed, json, |s| {
                (s.to_json(), subscription_line(s))
            })
        }
        _ => {
            tracing::error!("invalid argument {subsystem} to call Inform");
            Ok(1)
        }
    }
}

/// `kar get -s actors` (spec §5.6): persisted state of one actor (`-i`), every
/// placed instance, or the memory-resident ones (`-mr`).
async fn actors(ctx: &Context, subsystem: &str, json: bool) -> Result<i32> {
    let actor_type = ctx.matches.str("t").to_string();
    let actor_id = ctx.matches.str("i").to_string();
    if !actor_id.is_empty() {
        if actor_type.is_empty() {
            bail!("kar get -s actors -i ID also needs the actor type (-t TYPE)");
        }
        let store = super::open_store(&ctx.global).await?;
        let actor = ActorRef::new(actor_type.clone(), actor_id.clone());
        return match store.state_get_all(&actor).await {
            Ok(state) if state.is_empty() => {
                println!("Actor {actor_type}[{actor_id}] has no persisted state");
                Ok(0)
            }
            Ok(state) => {
                println!(
                    "Persisted state of actor {actor_type}[{actor_id}] is:\n{}",
                    gojson::to_string_pretty(&state.to_json())
                );
                Ok(0)
            }
            Err(e) => {
                tracing::error!("error in Get on {subsystem}: {e}");
                Ok(1)
            }
        };
    }
    if ctx.matches.bool("mr") && ctx.matches.bool("by_sidecar") {
        return actors_by_sidecar(ctx, subsystem, json).await;
    }
    let (listing, all_prefix, type_prefix) = if ctx.matches.bool("mr") {
        let runtime = join_as_client(&ctx.global, None).await?;
        let listing = runtime.mesh_actors().await;
        runtime.shutdown().await;
        (
            listing.map_err(|e| e.to_string()),
            "Listing all memory-resident actor instances:",
            "Memory-resident instances of actor type",
        )
    } else {
        let store = super::open_store(&ctx.global).await?;
        let listing = store.placements().await.map(|placements| {
            let mut by_type: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (actor, _node) in placements {
                by_type.entry(actor.actor_type).or_default().push(actor.id);
            }
            by_type
        });
        (
            listing.map_err(|e| e.to_string()),
            "Listing all known actor instances:",
            "Known instances of actor type",
        )
    };
    match listing {
        Ok(mut by_type) => {
            if !actor_type.is_empty() {
                by_type.retain(|t, _| *t == actor_type);
                println!("{type_prefix} {actor_type} are:");
            } else {
                println!("{all_prefix}");
            }
            println!("{}", format_actors(&by_type, json));
            Ok(0)
        }
        Err(e) => {
            tracing::error!("error in Get on {subsystem}: {e}");
            Ok(1)
        }
    }
}

/// `kar get -s actors -mr -by_sidecar`: the memory-resident instances of each
/// sidecar (`-t` keeps one type): JSON `{node: {type: [ids]}}`, or per sidecar a
/// line `<node>: <type> <count>` per type followed by the ids.
async fn actors_by_sidecar(ctx: &Context, subsystem: &str, json: bool) -> Result<i32> {
    let actor_type = ctx.matches.str("t").to_string();
    let runtime = join_as_client(&ctx.global, None).await?;
    let listing = runtime.mesh_actors_by_member().await;
    let me = runtime.node().0.clone();
    runtime.shutdown().await;
    let mut by_node = match listing {
        Ok(mut by_node) => {
            // This command's own member hosts nothing.
            by_node.remove(&me);
            by_node
        }
        Err(e) => {
            tracing::error!("error in Get on {subsystem}: {e}");
            return Ok(1);
        }
    };
    for by_type in by_node.values_mut() {
        if !actor_type.is_empty() {
            by_type.retain(|t, _| *t == actor_type);
        }
    }
    if json {
        let value = serde_json::to_value(&by_node).unwrap_or_default();
        println!("{}", gojson::to_string_pretty(&value));
        return Ok(0);
    }
    for (node, by_type) in &by_node {
        println!("{node}:");
        for (actor_type, ids) in by_type {
            println!("  {actor_type} {}: {}", ids.len(), ids.join(" "));
        }
    }
    Ok(0)
}

/// Prints the reminders or subscriptions of the application read from the store (no
/// mesh join), keeping those of the actors `-t` / `-i` select: a JSON array of the
/// spec's objects (§2.5, §2.6) with `-o json`, else one line per item. Items are
/// sorted by actor type, actor id and item id.
fn print_listing<T: Binding>(
    ctx: &Context,
    subsystem: &str,
    listed: Result<Vec<T>, kar_store::StoreError>,
    json: bool,
    render: impl Fn(&T) -> (serde_json::Value, String),
) -> Result<i32> {
    let actor_type = ctx.matches.str("t");
    let actor_id = ctx.matches.str("i");
    let mut items = match listed {
        Ok(items) => items,
        Err(e) => {
            tracing::error!("error in Get on {subsystem}: {e}");
            return Ok(1);
        }
    };
    items.retain(|item| item.selected_by(actor_type, actor_id));
    items.sort_by(|x, y| x.sort_key().cmp(&y.sort_key()));
    let rendered: Vec<_> = items.iter().map(render).collect();
    if json {
        let array = serde_json::Value::Array(rendered.into_iter().map(|(v, _)| v).collect());
        println!("{}", to_go_json(&array));
    } else {
        for (_, line) in rendered {
            println!("{line}");
        }
    }
    Ok(0)
}

/// `Type[ID] id`: how a listed reminder or subscription line starts.
fn line_head(binding: &impl Binding) -> String {
    let actor = binding.actor();
    format!("{}[{}] {}", actor.actor_type, actor.id, binding.id())
}

/// `Type[ID] id path=/p targetTime=<RFC 3339> [period=<Go duration>] [data=<JSON>]`.
pub fn reminder_line(r: &Reminder) -> String {
    let mut line = format!(
        "{} path={} targetTime={}",
        line_head(r),
        r.path,
        r.target_time()
    );
    if r.period != 0 {
        line.push_str(&format!(" period={}", format_go_duration(r.period)));
    }
    if !r.data.is_empty() {
        line.push_str(&format!(" data={}", String::from_utf8_lossy(&r.data)));
    }
    line
}

/// `Type[ID] id topic=<topic> path=/p group=<group> [contentType=<ct>] [oldest]`.
pub fn subscription_line(s: &Subscription) -> String {
    let group = if s.group.is_empty() { &s.id } else { &s.group };
    let mut line = format!(
        "{} topic={} path={} group={group}",
        line_head(s),
        s.topic,
        s.path
    );
    if !s.content_type.is_empty() {
        line.push_str(&format!(" contentType={}", s.content_type));
    }
    if s.oldest {
        line.push_str(" oldest");
    }
    line
}

/// Instances by type as spec §2.8 lays them out: indented JSON, or per type
/// `<type>: [` then one indented id per line and `]`.
pub fn format_actors(by_type: &BTreeMap<String, Vec<String>>, json: bool) -> String {
    if json {
        let value = serde_json::to_value(by_type).unwrap_or_default();
        return gojson::to_string_pretty(&value);
    }
    let mut out = String::new();
    for (actor_type, ids) in by_type {
        let mut ids = ids.clone();
        ids.sort();
        out.push_str(&format!("{actor_type}: [\n"));
        for id in ids {
            out.push_str(&format!("    {id}\n"));
        }
        out.push_str("]\n");
    }
    out
}

/// The topology in the layouts of spec §5.6: a compact JSON object keyed by node, or
/// text with one block per node. Nodes are sorted (upstream prints map order).
pub fn format_sidecars(mut members: Vec<Member>, json: bool) -> String {
    members.sort_by(|a, b| a.node.cmp(&b.node));
    if json {
        let mut map = Map::new();
        for m in members {
            map.insert(
                m.node.0,
                json!({"port": m.runtime_port, "actors": m.actors, "services": [m.service]}),
            );
        }
        return serde_json::Value::Object(map).to_string();
    }
    let mut out = String::from("\nSidecar : host : port \n : Actors\n : Services");
    for m in members {
        out.push_str(&format!(
            "\n{}:{}\n : [{}]\n : [{}]",
            m.node,
            m.runtime_port,
            m.actors.join(" "),
            m.service
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kar_protocol::NodeId;

    fn members() -> Vec<Member> {
        vec![
            Member {
                node: NodeId::from("node-b"),
                service: "kar.none".into(),
                actors: vec![],
                runtime_port: 0,
            },
            Member {
                node: NodeId::from("node-a"),
                service: "greeter".into(),
                actors: vec!["A".into(), "B".into()],
                runtime_port: 3500,
            },
        ]
    }

    #[test]
    fn json_layout() {
        assert_eq!(
            format_sidecars(members(), true),
            r#"{"node-a":{"port":3500,"actors":["A","B"],"services":["greeter"]},"node-b":{"port":0,"actors":[],"services":["kar.none"]}}"#
        );
    }

    #[test]
    fn actor_listing_layouts() {
        let mut by_type = BTreeMap::new();
        by_type.insert("B".to_string(), vec!["2".to_string(), "1".to_string()]);
        by_type.insert("A".to_string(), vec!["x".to_string()]);
        assert_eq!(
            format_actors(&by_type, false),
            "A: [\n    x\n]\nB: [\n    1\n    2\n]\n"
        );
        assert_eq!(
            format_actors(&by_type, true),
            "{\n  \"A\": [\n    \"x\"\n  ],\n  \"B\": [\n    \"2\",\n    \"1\"\n  ]\n}"
        );
    }

    #[test]
    fn reminder_and_subscription_lines() {
        let r = Reminder {
            actor: ActorRef::new("T", "1"),
            id: "r".into(),
            path: "/tick".into(),
            target: 0,
            target_text: Some("2030-01-02T03:04:05Z".into()),
            period: 1_500_000_000,
            data: bytes::Bytes::from_static(b"[\"p\",7]"),
            trace: None,
        };
        assert_eq!(
            reminder_line(&r),
            r#"T[1] r path=/tick targetTime=2030-01-02T03:04:05Z period=1.5s data=["p",7]"#
        );
        let s = Subscription {
            actor: ActorRef::new("T", "1"),
            id: "s".into(),
            path: "/on".into(),
            topic: "news".into(),
            content_type: String::new(),
            group: String::new(),
            oldest: true,
        };
        assert_eq!(
            subscription_line(&s),
            "T[1] s topic=news path=/on group=s oldest"
        );
    }

    #[test]
    fn text_layout() {
        assert_eq!(
            format_sidecars(members(), false),
            "\nSidecar : host : port \n : Actors\n : Services\
             \nnode-a:3500\n : [A B]\n : [greeter]\
             \nnode-b:0\n : []\n : [kar.none]"
        );
    }
}
