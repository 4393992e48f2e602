//! `kar pause -app A REQUEST_ID`: stops delivering a pending request until `kar
//! resume`. A running attempt is abandoned like a killed one (its sidecar drops the
//! call; its outcome is discarded, and resume runs the step again). Works straight
//! against the store.

use super::{open_store, Context};
use anyhow::Result;
use kar_protocol::RequestId;
use kar_store::Paused;

pub async fn run(ctx: Context) -> Result<i32> {
    let app = &ctx.global.app;
    let [id] = &ctx.matches.args[..] else {
        eprintln!(
            "pause expects one argument, a request id; got {}",
            ctx.matches.args.len()
        );
        return Ok(1);
    };
    let store = open_store(&ctx.global).await?;
    let paused = match store.pause(&RequestId(id.clone())).await {
        Ok(paused) => paused,
        Err(e) => {
            eprintln!("cannot pause request {id} of application {app}: {e}");
            return Ok(1);
        }
    };
    Ok(match paused {
        Paused::Paused {
            assignee: Some(node),
        } => {
            println!("paused {id} (its sidecar {node} abandons the running attempt)");
            0
        }
        Paused::Paused { assignee: None } => {
            println!("paused {id}");
            0
        }
        Paused::Unknown => {
            eprintln!("no request {id} in application {app}");
            1
        }
        Paused::AlreadyComplete => {
            eprintln!("request {id} of application {app} is already complete: nothing to pause");
            1
        }
        Paused::AlreadyPaused => {
            eprintln!("request {id} of application {app} is already paused");
            1
        }
    })
}
