//! `kar kill -app A REQUEST_ID`: ends a pending request now. Its caller gets the
//! error `killed by an operator`, a running attempt is abandoned by its sidecar (the
//! component's handler may still finish its own work; its outcome is discarded), and
//! the actor's next request runs. Like `kar resume`, it works straight against the
//! store: no sidecar needs to run, and running ones keep serving.

use super::{open_store, Context};
use anyhow::Result;
use kar_protocol::RequestId;
use kar_store::Killed;

pub async fn run(ctx: Context) -> Result<i32> {
    let app = &ctx.global.app;
    let [id] = &ctx.matches.args[..] else {
        eprintln!(
            "kill expects one argument, a request id; got {}",
            ctx.matches.args.len()
        );
        return Ok(1);
    };
    let store = open_store(&ctx.global).await?;
    let killed = match store.kill(&RequestId(id.clone())).await {
        Ok(killed) => killed,
        Err(e) => {
            eprintln!("cannot kill request {id} of application {app}: {e}");
            return Ok(1);
        }
    };
    Ok(match killed {
        Killed::Killed {
            assignee: Some(node),
        } => {
            println!("killed {id} (its sidecar {node} abandons it)");
            0
        }
        Killed::Killed { assignee: None } => {
            println!("killed {id}");
            0
        }
        Killed::Unknown => {
            eprintln!("no request {id} in application {app}");
            1
        }
        Killed::AlreadyComplete => {
            eprintln!("request {id} of application {app} is already complete: nothing to kill");
            1
        }
    })
}
