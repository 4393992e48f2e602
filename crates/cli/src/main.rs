//! The `kar` command (spec §5): `kar run` launches an application component beside a
//! sidecar; the other commands query and administer running applications.

mod child;
mod commands;
mod config;
mod flags;
mod logging;
mod orphan;
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
            "kar: ignoring the Kafka settings ({}): this kar has no Kafka transport",
            global.ignored_kafka.join(", ")
        );
    }
    if global.redis_ca_cert {
        tracing::warn!(
            "-redis_ca_cert is not supported yet: the system's root certificates are used"
        );
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fatal(anyhow::Error::new(e).context("cannot start the async runtime")),
    };
    let result = runtime.block_on(commands::execute(spec, Context { matches, global }));
    match result {
        Ok(code) => code,
        Err(e) => fatal(e),
    }
}

/// Logs `[FATAL] <error>` on one line and returns exit code 1.
fn fatal(error: anyhow::Error) -> i32 {
    let message = format!("{error:#}").replace('\n', " ");
    logging::fatal(&message);
    1
}
