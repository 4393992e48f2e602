//! Bank transfers with tail calls: `Account.transfer` debits the source account and
//! tail-calls `credit` on the destination, so the caller's one request covers both
//! steps. Each step records its transfer id in the same atomic state update as the
//! new balance, so a re-executed step (at-least-once delivery) changes nothing.
//!
//! The process hosts the `Account` actors and runs the check itself: concurrent random
//! transfers between a few accounts, then every balance must equal its opening
//! balance plus what the successful transfers moved, and the total must be unchanged.
//! Prints `bank: OK` and exits 0, or what went wrong and exits 1.
//!
//! `kar run -app bank -actors Account -- target/debug/bank`

use kar_examples::serve_and_check;
use kar_sdk::{async_trait, Actor, Client, Context, Error, Outcome, Server, TailCall};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

const ACCOUNTS: usize = 5;
const OPENING: i64 = 1_000;
const WORKERS: u64 = 6;
const TRANSFERS_PER_WORKER: u64 = 20;

struct Account;

fn int(args: &[Value], i: usize) -> Result<i64, Error> {
    args.get(i)
        .and_then(Value::as_i64)
        .ok_or_else(|| Error::msg(format!("argument {i} must be an integer")))
}

fn text(args: &[Value], i: usize) -> Result<String, Error> {
    args.get(i)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::msg(format!("argument {i} must be a string")))
}

async fn balance(ctx: &Context) -> Result<i64, Error> {
    Ok(ctx.state().get::<i64>("balance").await?.unwrap_or(0))
}

/// Sets the balance and marks `step` done, in one atomic update.
async fn apply(ctx: &Context, balance: i64, step: &str) -> Result<(), Error> {
    ctx.state()
        .update(json!({
            "updates": { "balance": balance },
            "submapupdates": { "applied": { step: true } },
        }))
        .await?;
    Ok(())
}

async fn applied(ctx: &Context, step: &str) -> Result<bool, Error> {
    ctx.state().submap("applied").contains(step).await
}

#[async_trait]
impl Actor for Account {
    async fn invoke(
        &self,
        ctx: &Context,
        method: &str,
        args: Vec<Value>,
    ) -> Result<Outcome, Error> {
        match method {
            "open" => {
                let amount = int(&args, 0)?;
                if !ctx.state().contains("balance").await? {
                    ctx.state().set("balance", amount).await?;
                }
                Outcome::value(balance(ctx).await?)
            }
            "balance" => Outcome::value(balance(ctx).await?),
            // transfer(to, amount, id): debit here, then continue with credit there.
            "transfer" => {
                let to = text(&args, 0)?;
                let amount = int(&args, 1)?;
                let id = text(&args, 2)?;
                let step = format!("debit {id}");
                if !applied(ctx, &step).await? {
                    let current = balance(ctx).await?;
                    if current < amount {
                        return Err(Error::msg(format!(
                            "insufficient funds: {} has {current}, needs {amount}",
                            ctx.id()
                        )));
                    }
                    apply(ctx, current - amount, &step).await?;
                }
                Ok(Outcome::TailCall(TailCall::actor(
                    "Account",
                    &to,
                    "credit",
                    vec![json!(amount), json!(id)],
                )))
            }
            "credit" => {
                let amount = int(&args, 0)?;
                let id = text(&args, 1)?;
                let step = format!("credit {id}");
                let current = balance(ctx).await?;
                if applied(ctx, &step).await? {
                    return Outcome::value(current);
                }
                apply(ctx, current + amount, &step).await?;
                Outcome::value(current + amount)
            }
            other => Err(Error::no_such_method(other)),
        }
    }
}

/// A small deterministic generator: no dependency needed for picking accounts.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

async fn check(client: Client) -> Result<String, String> {
    // Fresh account ids per run: the store outlives this process.
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let names: Vec<String> = (0..ACCOUNTS).map(|i| format!("{run}-{i}")).collect();
    for name in &names {
        let opened: i64 = client
            .actor("Account", name)
            .call("open", (OPENING,))
            .await
            .map_err(|e| format!("open {name}: {e}"))?;
        if opened != OPENING {
            return Err(format!("{name} opened with {opened}"));
        }
    }

    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let client = client.clone();
        let names = names.clone();
        workers.push(tokio::spawn(async move {
            let mut rng = Lcg(run as u64 ^ (worker + 1).wrapping_mul(0x9e3779b97f4a7c15));
            let mut moved: Vec<(usize, usize, i64)> = Vec::new();
            let mut rejected = 0u64;
            for n in 0..TRANSFERS_PER_WORKER {
                let from = rng.next(ACCOUNTS as u64) as usize;
                let to = (from + 1 + rng.next(ACCOUNTS as u64 - 1) as usize) % ACCOUNTS;
                let amount = 1 + rng.next(400) as i64;
                let id = format!("w{worker}-t{n}");
                let result: Result<i64, Error> = client
                    .actor("Account", &names[from])
                    .call("transfer", (&names[to], amount, &id))
                    .await;
                match result {
                    Ok(_) => moved.push((from, to, amount)),
                    Err(Error::Failed { message, .. })
                        if message.starts_with("insufficient funds") =>
                    {
                        rejected += 1
                    }
                    Err(e) => return Err(format!("transfer {id}: {e}")),
                }
            }
            Ok((moved, rejected))
        }));
    }
    let mut expected = [OPENING; ACCOUNTS];
    let (mut done, mut rejected) = (0, 0);
    for worker in workers {
        let (moved, refused) = worker.await.map_err(|e| format!("worker: {e}"))??;
        for (from, to, amount) in moved {
            expected[from] -= amount;
            expected[to] += amount;
            done += 1;
        }
        rejected += refused;
    }

    let mut balances = HashMap::new();
    for (i, name) in names.iter().enumerate() {
        let balance: i64 = client
            .actor("Account", name)
            .call("balance", ())
            .await
            .map_err(|e| format!("balance {name}: {e}"))?;
        if balance != expected[i] || balance < 0 {
            return Err(format!(
                "{name}: balance {balance}, expected {}",
                expected[i]
            ));
        }
        balances.insert(name.clone(), balance);
    }
    let total: i64 = balances.values().sum();
    if total != OPENING * ACCOUNTS as i64 {
        return Err(format!(
            "total {total}, expected {}",
            OPENING * ACCOUNTS as i64
        ));
    }
    for name in &names {
        if let Err(e) = client.actor("Account", name).remove().await {
            eprintln!("bank: cannot remove {name}: {e}");
        }
    }
    Ok(format!(
        "{done} transfers, {rejected} refused for insufficient funds, total {total} unchanged"
    ))
}

#[tokio::main]
async fn main() -> ExitCode {
    let server = Server::new().actor("Account", |_| Box::new(Account));
    serve_and_check("bank", server, check).await
}
