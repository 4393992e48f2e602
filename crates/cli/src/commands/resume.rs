//! `kar resume -app A REQUEST_ID`: resumes a request paused by recovery (its executor
//! died `-max_attempts` times). Like `kar purge`, it works straight against the store:
//! no sidecar needs to run, and running ones keep serving.

use super::{open_store, Context};
use anyhow::Result;
use kar_protocol::RequestId;
use kar_store::{Resumed, Routing};

pub async fn run(ctx: Context) -> Result<i32> {
    let app = &ctx.global.app;
    let [id] = &ctx.matches.args[..] else {
        eprintln!(
            "resume expects one argument, a request id; got {}",
            ctx.matches.args.len()
        );
        return Ok(1);
    };
    let store = open_store(&ctx.global).await?;
    let code = match store.resume(&RequestId(id.clone())).await? {
        Resumed::Routed(Routing::Assigned(_)) | Resumed::Held => {
            println!("resumed {id}");
            0
        }
        Resumed::Routed(Routing::Parked) => {
            println!("resumed {id} (parked until a component offering its target joins)");
            0
        }
        Resumed::Unknown => {
            eprintln!("no request {id} in application {app}");
            1
        }
        Resumed::NotPaused => {
            eprintln!("request {id} of application {app} is not paused: nothing to resume");
            1
        }
    };
    Ok(code)
}
