//! Dining philosophers with actors: each `Fork` is an actor that one philosopher at a
//! time may hold; each `Philosopher` dines through one long chain of tail calls
//! (`getFirstFork` → `getSecondFork` → `eat` → `getFirstFork` ...) started by a
//! single tell. Philosophers take their lower-numbered fork first, so no deadlock.
//!
//! The process hosts both actor types and runs the check: every philosopher must eat
//! exactly `MEALS` times, must hold both forks whenever it eats, and every fork must
//! be free at the end. Prints `philosophers: OK` and exits 0, or what went wrong and
//! exits 1.
//!
//! `kar run -app dp -actors Fork,Philosopher -- philosophers`

use kar_examples::serve_and_check;
use kar_sdk::{async_trait, Actor, Client, Context, Error, Outcome, Server, TailCall};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PHILOSOPHERS: usize = 5;
const MEALS: i64 = 6;
/// How long a philosopher waits before trying again for a fork that is in use.
const RETRY: Duration = Duration::from_millis(5);
const DEADLINE: Duration = Duration::from_secs(120);

struct Fork;

#[async_trait]
impl Actor for Fork {
    async fn invoke(
        &self,
        ctx: &Context,
        method: &str,
        args: Vec<Value>,
    ) -> Result<Outcome, Error> {
        let who = args.first().cloned().unwrap_or(Value::Null);
        let holder: Option<Value> = ctx.state().get("holder").await?;
        match method {
            "pickUp" => match holder {
                Some(holder) => Outcome::value(holder == who),
                None => {
                    ctx.state().set("holder", &who).await?;
                    Outcome::value(true)
                }
            },
            "putDown" => {
                if holder.as_ref() == Some(&who) {
                    ctx.state().remove("holder").await?;
                }
                Ok(Outcome::Void)
            }
            "holder" => Outcome::value(holder),
            other => Err(Error::no_such_method(other)),
        }
    }
}

struct Philosopher;

impl Philosopher {
    async fn forks(ctx: &Context) -> Result<(String, String), Error> {
        let first: Option<String> = ctx.state().get("first").await?;
        let second: Option<String> = ctx.state().get("second").await?;
        match (first, second) {
            (Some(first), Some(second)) => Ok((first, second)),
            _ => Err(Error::msg("not seated at a table")),
        }
    }

    fn next(ctx: &Context, method: &str) -> Outcome {
        // Releasing the lock between steps lets `kar` serve other requests (the
        // checker's state reads do not need it, but removals and tells do).
        Outcome::TailCall(TailCall::actor_releasing_lock(
            "Philosopher",
            ctx.id(),
            method,
            Vec::new(),
        ))
    }

    /// Step `method`: picks up `fork` and goes on with `then`, or, the fork being
    /// taken, tries `method` again after a pause.
    async fn get_fork(
        ctx: &Context,
        fork: &str,
        method: &str,
        then: &str,
    ) -> Result<Outcome, Error> {
        if Self::pick_up(ctx, fork).await? {
            return Ok(Self::next(ctx, then));
        }
        tokio::time::sleep(RETRY).await;
        Ok(Self::next(ctx, method))
    }

    async fn pick_up(ctx: &Context, fork: &str) -> Result<bool, Error> {
        ctx.actor("Fork", fork).call("pickUp", (ctx.id(),)).await
    }
}

#[async_trait]
impl Actor for Philosopher {
    async fn invoke(
        &self,
        ctx: &Context,
        method: &str,
        args: Vec<Value>,
    ) -> Result<Outcome, Error> {
        match method {
            // joinTable(firstFork, secondFork, meals)
            "joinTable" => {
                ctx.state()
                    .update(json!({"updates": {
                        "first": args.first(),
                        "second": args.get(1),
                        "toEat": args.get(2),
                        "eaten": 0,
                        "violations": 0,
                    }}))
                    .await?;
                Ok(Self::next(ctx, "getFirstFork"))
            }
            "getFirstFork" => {
                let (first, _) = Self::forks(ctx).await?;
                Self::get_fork(ctx, &first, method, "getSecondFork").await
            }
            "getSecondFork" => {
                let (_, second) = Self::forks(ctx).await?;
                Self::get_fork(ctx, &second, method, "eat").await
            }
            "eat" => {
                let (first, second) = Self::forks(ctx).await?;
                let me = json!(ctx.id());
                let mut violations = 0;
                for fork in [&first, &second] {
                    let holder: Option<Value> = ctx.actor("Fork", fork).call("holder", ()).await?;
                    if holder.as_ref() != Some(&me) {
                        violations += 1;
                    }
                }
                for fork in [&second, &first] {
                    ctx.actor("Fork", fork)
                        .call::<()>("putDown", (ctx.id(),))
                        .await?;
                }
                // A meal counts once both forks are back on the table: the checker
                // reads the forks as soon as every count is complete.
                let eaten = ctx.state().get::<i64>("eaten").await?.unwrap_or(0) + 1;
                let before = ctx.state().get::<i64>("violations").await?.unwrap_or(0);
                ctx.state()
                    .update(json!({"updates": {"eaten": eaten, "violations": before + violations}}))
                    .await?;
                let to_eat = ctx.state().get::<i64>("toEat").await?.unwrap_or(0);
                if eaten < to_eat {
                    Ok(Self::next(ctx, "getFirstFork"))
                } else {
                    Ok(Outcome::Void)
                }
            }
            other => Err(Error::no_such_method(other)),
        }
    }
}

async fn check(client: Client) -> Result<String, String> {
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let fork = |i: usize| format!("{run}-fork-{}", i % PHILOSOPHERS);
    let philosopher = |i: usize| format!("{run}-philosopher-{i}");
    for i in 0..PHILOSOPHERS {
        // Lower-numbered fork first: the last philosopher takes fork 0 first.
        let (a, b) = (i, (i + 1) % PHILOSOPHERS);
        let (first, second) = (fork(a.min(b)), fork(a.max(b)));
        client
            .actor("Philosopher", &philosopher(i))
            .tell("joinTable", (first, second, MEALS))
            .await
            .map_err(|e| format!("joinTable: {e}"))?;
    }
    // Dinner runs in the philosophers' tell chains; watch their state until done.
    let started = Instant::now();
    loop {
        let mut done = 0;
        for i in 0..PHILOSOPHERS {
            let state = client.actor("Philosopher", &philosopher(i)).state();
            let eaten = state
                .get::<i64>("eaten")
                .await
                .map_err(|e| format!("state: {e}"))?
                .unwrap_or(0);
            if eaten > MEALS {
                return Err(format!("{} ate {eaten} times", philosopher(i)));
            }
            if eaten == MEALS {
                done += 1;
            }
        }
        if done == PHILOSOPHERS {
            break;
        }
        if started.elapsed() > DEADLINE {
            return Err(format!(
                "only {done} of {PHILOSOPHERS} finished within {DEADLINE:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..PHILOSOPHERS {
        let actor = client.actor("Philosopher", &philosopher(i));
        let violations = actor
            .state()
            .get::<i64>("violations")
            .await
            .map_err(|e| format!("state: {e}"))?
            .unwrap_or(0);
        if violations != 0 {
            return Err(format!(
                "{} ate without both forks {violations} times",
                philosopher(i)
            ));
        }
        let holder: Option<Value> = client
            .actor("Fork", &fork(i))
            .call("holder", ())
            .await
            .map_err(|e| format!("holder: {e}"))?;
        if let Some(holder) = holder {
            return Err(format!("{} still held by {holder}", fork(i)));
        }
    }
    for i in 0..PHILOSOPHERS {
        let _ = client.actor("Philosopher", &philosopher(i)).remove().await;
        let _ = client.actor("Fork", &fork(i)).remove().await;
    }
    Ok(format!(
        "{PHILOSOPHERS} philosophers ate {MEALS} meals each in {:.1?}",
        started.elapsed()
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    let server = Server::new()
        .actor("Fork", |_| Box::new(Fork))
        .actor("Philosopher", |_| Box::new(Philosopher));
    serve_and_check("philosophers", server, check).await
}
