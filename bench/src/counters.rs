//! The stateful keyed counters of the fair comparison, one process each (run by
//! `kar-bench <command>`), in Rust on both sides:
//!
//! * `kar-counter`: a kar component built with the Rust SDK (`crates/sdk`), actor type
//!   `Counter` whose method `add(delta)` reads `count` from the actor's state and
//!   writes it back through the SDK, as an application does; started by `kar run`
//!   (it reads `KAR_APP_PORT` and `KAR_RUNTIME_PORT`).
//! * `restate-counter PORT`: Restate's Rust SDK (crate `restate-sdk` 0.12, which its
//!   README pairs with Restate 1.7), virtual object `Counter` whose handler `add(delta)`
//!   does the same with `ctx.get` / `ctx.set`.

use anyhow::{Context as _, Result};
use kar_sdk::{async_trait, Actor, Context, Error, Outcome, Server};
use serde_json::Value;

pub const KAR_COMMAND: &str = "kar-counter";
pub const RESTATE_COMMAND: &str = "restate-counter";

struct KarCounter;

#[async_trait]
impl Actor for KarCounter {
    async fn invoke(
        &self,
        ctx: &Context,
        method: &str,
        args: Vec<Value>,
    ) -> kar_sdk::Result<Outcome> {
        match method {
            "add" => {
                let delta = args.first().and_then(Value::as_i64).unwrap_or(1);
                let state = ctx.state();
                let count = state.get::<i64>("count").await?.unwrap_or(0) + delta;
                state.set("count", count).await?;
                Outcome::value(count)
            }
            other => Err(Error::no_such_method(other)),
        }
    }
}

/// `kar-bench kar-counter`: serves actor type `Counter` until SIGTERM.
pub async fn serve_kar() -> Result<()> {
    Server::new()
        .actor("Counter", |_| Box::new(KarCounter))
        .run()
        .await
        .context("serving the kar Counter")
}

mod restate_side {
    use restate_sdk::prelude::*;

    pub struct Counter;

    #[restate_sdk::object]
    impl Counter {
        #[handler]
        async fn add(&self, ctx: ObjectContext<'_>, delta: i64) -> Result<i64, TerminalError> {
            let count = ctx.get::<i64>("count").await?.unwrap_or(0) + delta;
            ctx.set("count", count);
            Ok(count)
        }
    }
}

/// `kar-bench restate-counter PORT`: serves the Restate `Counter` on loopback.
pub async fn serve_restate(args: &[String]) -> Result<()> {
    use restate_sdk::prelude::{Endpoint, HttpServer};
    let port: u16 = args
        .first()
        .context("usage: kar-bench restate-counter PORT")?
        .parse()
        .context("PORT")?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    HttpServer::new(Endpoint::builder().bind(restate_side::Counter).build())
        .serve(listener)
        .await;
    Ok(())
}
