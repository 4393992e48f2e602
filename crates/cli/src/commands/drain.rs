//! `kar drain -app A [-force]` (spec §5.7): delete the application's pending requests
//! (queued, parked, held, paused), keep actor state, placements, reminders and
//! subscriptions. Like `kar purge`, it works straight against the store and does not
//! join the mesh. It refuses while sidecars of the application are live (their
//! requests would vanish under them) unless `-force` is given.

use super::{open_store, Context};
use crate::flags::{Flag, Kind};
use anyhow::Result;

const FORCE: Flag = Flag::new(
    "force",
    Kind::Bool,
    "false",
    "drain even while sidecars of the application are live",
);

pub const FLAGS: &[&Flag] = &[&FORCE];

pub async fn run(ctx: Context) -> Result<i32> {
    let app = &ctx.global.app;
    let store = open_store(&ctx.global).await?;
    if !ctx.matches.bool("force") {
        match store.members().await {
            Ok(members) if !members.is_empty() => {
                let n = members.len();
                let sidecars = if n == 1 { "sidecar" } else { "sidecars" };
                eprintln!(
                    "refusing to drain application {app}: {n} {sidecars} of it live \
                     (stop them first, or use -force)"
                );
                return Ok(1);
            }
            Ok(_) => {}
            // As for kar purge (spec §5.7), store errors are only logged.
            Err(e) => {
                tracing::error!("failed to list the sidecars of application {app}: {e}");
                return Ok(0);
            }
        }
    }
    match store.drain().await {
        Ok(drained) => println!("drained {drained} pending requests"),
        Err(e) => tracing::error!("failed to drain application {app}: {e}"),
    }
    Ok(0)
}
