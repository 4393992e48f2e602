//! Usage texts in the layout of spec §5.1.

use crate::commands::CommandSpec;
use crate::config::GLOBAL_FLAGS;
use crate::flags::print_defaults;

/// The usage of `kar` itself (`kar help`, and after `invalid command`).
pub fn top_level(commands: &[&CommandSpec]) -> String {
    let width = commands.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut list = String::new();
    for command in commands {
        list.push_str(&format!("  {:width$}  {}\n", command.name, command.summary));
    }
    format!(
        "Usage:\n  kar COMMAND [OPTIONS] [ARGS]\n\n\
         kar runs application components beside a sidecar, and queries and administers\n\
         running applications.\n\n\
         Available Commands:\n{list}\n\
         Global Options:\n{}\n\
         Use \"kar COMMAND -h\" for more information about a command\n",
        print_defaults(GLOBAL_FLAGS)
    )
}

/// The usage of one command (`kar COMMAND -h`, and after a bad flag).
pub fn command(spec: &CommandSpec) -> String {
    let mut out = format!("Usage:\n  {}\n\n{}\n\n", spec.usage, spec.description);
    if !spec.flags.is_empty() {
        out.push_str("Options:\n");
        out.push_str(&print_defaults(spec.flags));
    }
    if spec.global_flags {
        out.push_str("Global Options:\n");
        out.push_str(&print_defaults(GLOBAL_FLAGS));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::{COMMANDS, RUN, VERSION};

    #[test]
    fn top_level_lists_every_command() {
        let text = top_level(COMMANDS);
        assert!(text.starts_with("Usage:\n  kar COMMAND [OPTIONS] [ARGS]\n\n"));
        for (name, summary) in [
            ("run", "run application component"),
            ("get", "query running application"),
            ("invoke", "invoke actor instance"),
            ("rest", "perform a REST operation on a service endpoint"),
            ("purge", "purge application messages and state"),
            ("drain", "drain application messages"),
            ("dashboard", "serve a web dashboard of the application"),
            ("version", "print version"),
            ("help", "print help message"),
        ] {
            assert!(
                text.lines()
                    .any(|l| l.trim_start().starts_with(name) && l.ends_with(summary)),
                "{name} missing in\n{text}"
            );
        }
        assert!(text.contains("Global Options:\n  -app string\n"));
        assert!(text.ends_with("Use \"kar COMMAND -h\" for more information about a command\n"));
    }

    #[test]
    fn command_usage_has_options_then_global_options() {
        let text = command(&RUN);
        assert!(text.starts_with("Usage:\n  kar run [OPTIONS] [-- COMMAND ARGS...]\n\n"));
        let options = text
            .find("\nOptions:\n  -actor_busy_timeout duration\n")
            .unwrap();
        let global = text.find("\nGlobal Options:\n  -app string\n").unwrap();
        assert!(options < global);
        assert!(text.contains("  -app_port int\n"));
        assert!(text.contains("(default 8080)"));
        assert!(text.contains("(default 2m0s)"));
        let text = command(&VERSION);
        assert!(!text.contains("Options:"));
    }
}
