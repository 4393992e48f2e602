//! `kar get [OPTIONS]` (spec §5.6): query a running application.

use super::{join_as_client, Context};
use crate::flags::{Flag, Kind};
use anyhow::{bail, Result};
use kar_protocol::Member;
use serde_json::{json, Map};

const SUBSYSTEM: Flag = Flag::new(
    "s",
    Kind::String,
    "actors",
    "Subsystem to query: actors or sidecars",
);
const MEMORY_RESIDENT: Flag = Flag::new(
    "mr",
    Kind::Bool,
    "false",
    "Only list memory-resident actor instances",
);
const ACTOR_TYPE: Flag = Flag::new("t", Kind::String, "", "Actor type to query");
const ACTOR_ID: Flag = Flag::new("i", Kind::String, "", "Actor id to query");
const OUTPUT: Flag = Flag::new(
    "o",
    Kind::String,
    "",
    "Output format: json for JSON, text otherwise",
);

pub const FLAGS: &[&Flag] = &[
    &SUBSYSTEM,
    &MEMORY_RESIDENT,
    &ACTOR_TYPE,
    &ACTOR_ID,
    &OUTPUT,
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
        "actors" | "actor" => bail!("kar get -s {subsystem} is not implemented yet"),
        _ => {
            tracing::error!("invalid argument {subsystem} to call Inform");
            Ok(1)
        }
    }
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
    fn text_layout() {
        assert_eq!(
            format_sidecars(members(), false),
            "\nSidecar : host : port \n : Actors\n : Services\
             \nnode-a:3500\n : [A B]\n : [greeter]\
             \nnode-b:0\n : []\n : [kar.none]"
        );
    }
}
