//! `kar get -s requests [-t TYPE] [-i ID] [-status S] [-o json]` (the pending
//! requests, page by page) and `kar get -s request ID` (one, with its parent and
//! children). Read straight from the store, with no sidecar needed; while sidecars
//! are live the CLI joins the mesh briefly to ask them which of their queued
//! requests their components are running.

use super::{join_as_client, open_store, Context};
use anyhow::Result;
use kar_protocol::{now_millis, RequestId};
use kar_runtime::control::{age_text, kind_name, request_json, target_name, RequestStatus};
use kar_runtime::Runtime;
use kar_store::{PendingRequest, RequestFilter, Store};
use std::collections::HashSet;
use std::io::Write;
use std::sync::Arc;

/// Requests read per page.
const PAGE: usize = 1000;

/// What the listing needs to tell running requests from queued ones: the mesh
/// member the CLI joined as (while sidecars are live) and their running requests.
struct Running {
    runtime: Option<Arc<Runtime>>,
    ids: HashSet<RequestId>,
}

impl Running {
    /// Asks the live members, if any (joining the mesh for that).
    async fn ask(ctx: &Context, store: &Arc<dyn Store>) -> Result<Running> {
        let members = store.members().await?;
        if members.is_empty() {
            return Ok(Running {
                runtime: None,
                ids: HashSet::new(),
            });
        }
        let runtime = join_as_client(&ctx.global, None).await?;
        let nodes: Vec<_> = members.into_iter().map(|m| m.node).collect();
        let ids = runtime.running_requests(&nodes).await;
        Ok(Running {
            runtime: Some(runtime),
            ids,
        })
    }

    async fn done(self) {
        if let Some(runtime) = self.runtime {
            runtime.shutdown().await;
        }
    }
}

/// `-status`: `None` when absent; a bad one is reported (exit 1).
fn status_flag(ctx: &Context) -> Result<Option<RequestStatus>, String> {
    match ctx.matches.str("status") {
        "" => Ok(None),
        text => text.parse().map(Some),
    }
}

pub async fn list(ctx: &Context, json: bool) -> Result<i32> {
    let status = match status_flag(ctx) {
        Ok(status) => status,
        Err(e) => {
            eprintln!("{e}");
            return Ok(1);
        }
    };
    let non_empty = |name: &str| Some(ctx.matches.str(name).to_string()).filter(|s| !s.is_empty());
    let filter = RequestFilter {
        status: status.map(RequestStatus::stored),
        actor_type: non_empty("t"),
        actor_id: non_empty("i"),
        service: None,
    };
    let store = open_store(&ctx.global).await?;
    let running = Running::ask(ctx, &store).await?;
    let listed = print_pages(&*store, &filter, status, &running.ids, json).await;
    running.done().await;
    match listed {
        Ok(()) => Ok(0),
        Err(e) => {
            eprintln!(
                "cannot list the requests of application {}: {e}",
                ctx.global.app
            );
            Ok(1)
        }
    }
}

/// Prints every page: a JSON array (one request per line), or a table.
async fn print_pages(
    store: &dyn Store,
    filter: &RequestFilter,
    status: Option<RequestStatus>,
    running: &HashSet<RequestId>,
    json: bool,
) -> Result<()> {
    let now = now_millis();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut first = true;
    if json {
        write!(out, "[")?;
    } else {
        writeln!(
            out,
            "{:<40} {:<9} {:<24} {:<24} {:<8} {:>7} {:<41} {:<41} {:<41} {:<40} AGE",
            "ID",
            "KIND",
            "TARGET",
            "METHOD PATH",
            "STATUS",
            "ATTEMPT",
            "ASSIGNEE",
            "CALLER",
            "FLOW",
            "PARENT"
        )?;
    }
    let mut after = None;
    loop {
        let page = store.list_requests(filter, after, PAGE).await?;
        for pending in &page.requests {
            let shown = RequestStatus::of(pending, running);
            if status.is_some_and(|s| s != shown) {
                continue;
            }
            if json {
                let sep = if first { "\n" } else { ",\n" };
                write!(out, "{sep}{}", request_json(pending, shown, now))?;
            } else {
                writeln!(out, "{}", line(pending, shown, now))?;
            }
            first = false;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if json {
        writeln!(out, "{}]", if first { "" } else { "\n" })?;
    }
    out.flush()?;
    Ok(())
}

fn line(pending: &PendingRequest, status: RequestStatus, now: u64) -> String {
    let r = &pending.request;
    let none = || "-".to_string();
    format!(
        "{:<40} {:<9} {:<24} {:<24} {:<8} {:>7} {:<41} {:<41} {:<41} {:<40} {}",
        r.id.0,
        kind_name(r),
        target_name(&r.target),
        format!("{} {}", r.invocation.method, r.invocation.path),
        status.as_str(),
        r.attempt,
        pending.assignee.as_ref().map_or_else(none, |n| n.0.clone()),
        r.caller.0,
        r.flow.0,
        r.parent.as_ref().map_or_else(none, |p| p.0.clone()),
        age_text(r, now)
    )
}

/// `kar get -s request ID`.
pub async fn one(ctx: &Context, json: bool) -> Result<i32> {
    let app = &ctx.global.app;
    let [id] = &ctx.matches.args[..] else {
        eprintln!(
            "get -s request expects one argument, a request id; got {}",
            ctx.matches.args.len()
        );
        return Ok(1);
    };
    let store = open_store(&ctx.global).await?;
    let found = match store.request_with_children(&RequestId(id.clone())).await {
        Ok(found) => found,
        Err(e) => {
            eprintln!("cannot read request {id} of application {app}: {e}");
            return Ok(1);
        }
    };
    let Some((request, children)) = found else {
        eprintln!("no pending request {id} in application {app}");
        return Ok(1);
    };
    let running = Running::ask(ctx, &store).await?;
    let now = now_millis();
    let status = RequestStatus::of(&request, &running.ids);
    if json {
        let mut value = request_json(&request, status, now);
        let kids: Vec<_> = children
            .iter()
            .map(|c| request_json(c, RequestStatus::of(c, &running.ids), now))
            .collect();
        value["children"] = serde_json::Value::Array(kids);
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("{}", line(&request, status, now));
        match &request.request.parent {
            Some(parent) => println!("parent: {parent}"),
            None => println!("parent: -"),
        }
        println!("children: {}", children.len());
        for child in &children {
            println!(
                "{}",
                line(child, RequestStatus::of(child, &running.ids), now)
            );
        }
    }
    running.done().await;
    Ok(0)
}
