//! The `kar` commands (spec §5): their descriptions, flags and implementations.

mod dashboard;
mod drain;
mod get;
mod invoke;
mod kill;
mod pause;
mod purge;
mod requests;
mod rest;
mod resume;
mod run;
mod version;

use crate::config::GlobalConfig;
use crate::flags::{Flag, Matches};
use anyhow::{Context as _, Result};
use kar_runtime::{Runtime, RuntimeConfig};
use kar_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// What `kar COMMAND -h` and the top-level usage say about a command.
pub struct CommandSpec {
    pub name: &'static str,
    /// One line for the top-level usage.
    pub summary: &'static str,
    pub usage: &'static str,
    pub description: &'static str,
    /// The command's own flags (listed under "Options:").
    pub flags: &'static [&'static Flag],
    /// Whether the global flags apply.
    pub global_flags: bool,
}

pub const RUN: CommandSpec = CommandSpec {
    name: "run",
    summary: "run application component",
    usage: "kar run [OPTIONS] [-- COMMAND ARGS...]",
    description: "Run a sidecar for an application component, and launch COMMAND (the component)\n\
                  beside it, if given. Without COMMAND the sidecar runs until it is interrupted\n\
                  or shut down.",
    flags: run::FLAGS,
    global_flags: true,
};

pub const GET: CommandSpec = CommandSpec {
    name: "get",
    summary: "query running application",
    usage: "kar get [OPTIONS]",
    description: "Query the state of a running application: its sidecars (-s sidecars), its\nactors (-s actors), its reminders (-s reminders), its event subscriptions\n(-s subscriptions), its pending requests (-s requests [-status S]) or one of them\n(-s request ID, with its parent and children).",
    flags: get::FLAGS,
    global_flags: true,
};

pub const INVOKE: CommandSpec = CommandSpec {
    name: "invoke",
    summary: "invoke actor instance",
    usage: "kar invoke [OPTIONS] ACTOR_TYPE ACTOR_ID METHOD [ARGS...]",
    description: "Invoke METHOD on the actor instance ACTOR_TYPE[ACTOR_ID]; each ARG is a JSON value\n(or a string).",
    flags: invoke::FLAGS,
    global_flags: true,
};

pub const REST: CommandSpec = CommandSpec {
    name: "rest",
    summary: "perform a REST operation on a service endpoint",
    usage: "kar rest [OPTIONS] REST_METHOD SERVICE_NAME PATH [REQUEST_BODY]",
    description: "Perform a REST operation (GET, POST, ...) on PATH of the service SERVICE_NAME and\nprint the response.",
    flags: rest::FLAGS,
    global_flags: true,
};

pub const PURGE: CommandSpec = CommandSpec {
    name: "purge",
    summary: "purge application messages and state",
    usage: "kar purge [OPTIONS]",
    description: "Delete every pending request and all the state of the application. Use only when\nno component of the application is running.",
    flags: &[],
    global_flags: true,
};

pub const DRAIN: CommandSpec = CommandSpec {
    name: "drain",
    summary: "drain application messages",
    usage: "kar drain [OPTIONS]",
    description: "Delete the pending requests of the application (queued, parked, held, paused),\n\
                  preserving actor state, reminders and subscriptions. Refuses while sidecars of\n\
                  the application are live, unless -force is given.",
    flags: drain::FLAGS,
    global_flags: true,
};

pub const RESUME: CommandSpec = CommandSpec {
    name: "resume",
    summary: "resume a paused request",
    usage: "kar resume [OPTIONS] REQUEST_ID",
    description: "Resume a request that was paused because its executor died -max_attempts times:\n\
                  it is delivered again, its attempt count starting afresh. Works straight against\n\
                  the store, with or without running sidecars.",
    flags: &[],
    global_flags: true,
};

pub const KILL: CommandSpec = CommandSpec {
    name: "kill",
    summary: "kill a pending request",
    usage: "kar kill [OPTIONS] REQUEST_ID",
    description:
        "End a pending request now: its caller gets the error \"killed by an operator\",\n\
                  a running attempt is abandoned (its outcome discarded) and the actor's next\n\
                  request runs. Works straight against the store, with or without running sidecars.",
    flags: &[],
    global_flags: true,
};

pub const PAUSE: CommandSpec = CommandSpec {
    name: "pause",
    summary: "pause a pending request",
    usage: "kar pause [OPTIONS] REQUEST_ID",
    description: "Stop delivering a pending request until kar resume; a running attempt is\n\
                  abandoned (resume runs it again). Works straight against the store.",
    flags: &[],
    global_flags: true,
};

pub const DASHBOARD: CommandSpec = CommandSpec {
    name: "dashboard",
    summary: "serve a web dashboard of the application",
    usage: "kar dashboard [OPTIONS]",
    description: "Serve a web page showing the application's sidecars, actors and their state,\n\
                  reminders, subscriptions, pending requests (with Kill and Resume) and latency\n\
                  per method, with the JSON admin API under /kar/admin/v1. Binds to loopback\n\
                  unless -host says otherwise. Runs until interrupted.",
    flags: dashboard::FLAGS,
    global_flags: true,
};

pub const VERSION: CommandSpec = CommandSpec {
    name: "version",
    summary: "print version",
    usage: "kar version",
    description: "Print the version of kar.",
    flags: &[],
    global_flags: false,
};

pub const HELP: CommandSpec = CommandSpec {
    name: "help",
    summary: "print help message",
    usage: "kar help [COMMAND]",
    description: "Print the usage of kar, or of COMMAND.",
    flags: &[],
    global_flags: false,
};

/// Every command, in the order of the top-level usage.
pub const COMMANDS: &[&CommandSpec] = &[
    &RUN, &GET, &INVOKE, &REST, &PURGE, &DRAIN, &KILL, &PAUSE, &RESUME, &DASHBOARD, &VERSION, &HELP,
];

pub fn find(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().copied().find(|c| c.name == name)
}

/// What a command gets to work with.
pub struct Context {
    pub matches: Matches,
    pub global: GlobalConfig,
}

/// Runs a command whose flags were parsed; the result is the process exit code.
/// An error ends the process with a `[FATAL]` line and exit code 1.
pub async fn execute(spec: &CommandSpec, ctx: Context) -> Result<i32> {
    match spec.name {
        "run" => run::run(ctx).await,
        "get" => get::run(ctx).await,
        "invoke" => invoke::run(ctx).await,
        "rest" => rest::run(ctx).await,
        "purge" => purge::run(ctx).await,
        "drain" => drain::run(ctx).await,
        "resume" => resume::run(ctx).await,
        "kill" => kill::run(ctx).await,
        "pause" => pause::run(ctx).await,
        "dashboard" => dashboard::run(ctx).await,
        other => anyhow::bail!("no implementation for command {other}"),
    }
}

pub use version::print as print_version;

/// Opens the application's store.
async fn open_store(global: &GlobalConfig) -> Result<Arc<dyn Store>> {
    kar_store::open(&global.store, &global.app)
        .await
        .context("cannot open the store")
}

/// Opens the application's store; the recoveries it performs follow `policy`.
async fn open_store_with(
    global: &GlobalConfig,
    policy: kar_store::RecoveryPolicy,
) -> Result<Arc<dyn Store>> {
    kar_store::open_with(&global.store, &global.app, policy)
        .await
        .context("cannot open the store")
}

/// Joins the mesh as a member without a component (service `kar.none`), as the
/// commands that talk to running applications do.
async fn join_as_client(
    global: &GlobalConfig,
    missing_component_timeout: Option<Duration>,
) -> Result<Arc<Runtime>> {
    let store = open_store(global).await?;
    let mut config = RuntimeConfig::new(global.app.clone());
    config.missing_component_timeout = missing_component_timeout;
    Runtime::start(config, store, None)
        .await
        .context("cannot join the mesh")
}

/// SIGINT and SIGTERM.
pub struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn new() -> Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
        })
    }

    /// Resolves at the next SIGINT or SIGTERM, with its name.
    pub async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        }
    }
}
