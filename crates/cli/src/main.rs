//! The `kar` command (spec §5): `kar run` launches an application component beside a
//! sidecar; the other commands query and administer running applications.
//!
//! # Map
//!
//! | module | what lives there |
//! | --- | --- |
//! | `main.rs` | argument dispatch: help and version, flag parsing, logging, global config, the tokio runtime, exit codes (`[FATAL]` + 1 on error) |
//! | `flags` | Go `flag` semantics (`-f v`, `-f=v`, `--f`, last wins), `Flag` definitions and parsed `Matches` |
//! | `config/` | the global options: `options` (the flags every command takes and which also come from the environment or `-config_dir`), `env` (injectable environment, `$KAR_HOME`, port variables), `mod.rs` (`resolve` into a `GlobalConfig`: app, store selection, retry limit) |
//! | `commands/` | one file per command (`run`, `get`, `invoke`, `rest`, `purge`, `drain`, `kill`, `pause`, `resume`, `version`; `requests.rs`: `get -s requests` and `get -s request`); `mod.rs` holds each command's `CommandSpec` (usage text, flags), the `COMMANDS` table, `execute` and the helpers they share (`open_store`, `join_as_client`, `Signals`) |
//! | `usage` | the usage texts in the layout of spec §5.1, built from the specs and flags |
//! | `logging` | Go `log`-style lines (`YYYY/MM/DD HH:MM:SS.uuuuuu [LEVEL] msg`) and the `-v` levels |
//! | `child` | the component of `kar run -- COMMAND`: spawn, relay its output as `[STDOUT]`/`[STDERR]` lines, stop it |
//! | `telemetry` | the OTLP trace exporter, from the standard `OTEL_*` variables (off when unset) |
//! | `orphan` | the hidden `__component` command that makes the component die with its sidecar |
//!
//! # Adding a command
//!
//! 1. Write `commands/<name>.rs` with its own flags (`pub const FLAGS: &[&Flag]`, each
//!    a `Flag::new(name, kind, default, usage)`) and `pub async fn run(ctx: Context) ->
//!    Result<i32>` (the exit code; an `Err` becomes `[FATAL]` and exit 1). Read flags
//!    from `ctx.matches`, the app and store from `ctx.global`; reach the store with
//!    `open_store` or the mesh with `join_as_client`.
//! 2. In `commands/mod.rs`: `mod <name>;`, a `CommandSpec` constant (summary, usage,
//!    description, flags, whether the global flags apply), an entry in `COMMANDS` (the
//!    order of the top-level usage) and an arm in `execute`.
//! 3. Test the flags and output in `crates/cli/tests/cli.rs` (it runs the binary).
//!
//! A new global option is a `Flag` in `config/options.rs` added to `GLOBAL_FLAGS`
//! (and to `SOURCED` if upstream also reads it from the environment), resolved in
//! `config::resolve`.

mod child;
mod commands;
mod config;
mod flags;
mod logging;
mod orphan;
mod telemetry;
mod usage;

use commands::{CommandSpec, Context, COMMANDS};
use flags::FlagError;
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code = cli(&args);
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// Runs `kar` with `args` (without the program name) and returns the exit code.
fn cli(args: &[String]) -> i32 {
    let Some(name) = args.first() else {
        return invalid_command();
    };
    match name.as_str() {
        orphan::COMMAND => orphan::exec_component(&args[1..]),
        "help" | "-h" | "--h" | "-help" | "--help" => {
            match args.get(1).and_then(|n| commands::find(n)) {
                Some(spec) if name == "help" => print!("{}", usage::command(spec)),
                _ => print!("{}", usage::top_level(COMMANDS)),
            }
            0
        }
        // Spec §5.1: `kar version` parses no other flag.
        "version" => {
            commands::print_version();
            0
        }
        other => match commands::find(other) {
            Some(spec) => command(spec, &args[1..]),
            None => invalid_command(),
        },
    }
}

fn invalid_command() -> i32 {
    eprint!("invalid command\n{}", usage::top_level(COMMANDS));
    2
}

fn command(spec: &'static CommandSpec, args: &[String]) -> i32 {
    let flags: Vec<&flags::Flag> = spec
        .flags
        .iter()
        .chain(config::GLOBAL_FLAGS.iter())
        .copied()
        .collect();
    let matches = match flags::parse(&flags, args) {
        Ok(matches) => matches,
        Err(FlagError::Help) => {
            print!("{}", usage::command(spec));
            return 0;
        }
        Err(FlagError::Invalid(message)) => {
            eprint!("{message}\n{}", usage::command(spec));
            return 2;
        }
    };
    logging::init(config::log_level(&matches));
    let global = match config::resolve(&matches, &config::ProcessEnv) {
        Ok(global) => global,
        Err(e) => return fatal(e),
    };
    if !global.ignored_kafka.is_empty() {
        eprintln!(
            "kar: ignoring the Kafka settings ({}): kar reaches Kafka over plain TCP without SASL",
            global.ignored_kafka.join(", ")
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fatal(anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    let traces = match runtime.block_on(async { telemetry::init(&global.app) }) {
        Ok(traces) => traces,
        Err(e) => return fatal(e),
    };
    let result = runtime.block_on(commands::execute(spec, Context { matches, global }));
    if let Some(traces) = traces {
        // The batch processor answers from the runtime while this thread waits.
        let _ = runtime.block_on(tokio::task::spawn_blocking(move || traces.shutdown()));
    }
    match result {
        Ok(code) => code,
        Err(e) => fatal(e),
    }
}

/// Logs `[FATAL] <error>` on one line and returns exit code 1.
fn fatal(error: anyhow::Error) -> i32 {
    logging::fatal(&one_line(&error));
    1
}

/// The error and its causes, `: `-separated on one line, leaving out a cause whose
/// text the message so far already holds (store errors quote their source in their
/// own reason).
fn one_line(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if message.contains(&text) {
            continue;
        }
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&text);
    }
    message.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_quoted_is_not_repeated() {
        let source = std::io::Error::other("Connection refused (os error 111)");
        let store = kar_store::StoreError::unavailable_from(
            "failed to connect to Redis at 127.0.0.1:1: Connection refused (os error 111)",
            source,
        );
        let error = anyhow::Error::new(store).context("cannot open the store");
        assert_eq!(
            one_line(&error),
            "cannot open the store: store unavailable: failed to connect to Redis at \
             127.0.0.1:1: Connection refused (os error 111)"
        );
        let plain = anyhow::anyhow!("no\nnewline").context("outer");
        assert_eq!(one_line(&plain), "outer: no newline");
    }
}
