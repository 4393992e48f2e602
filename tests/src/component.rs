//! `kar run ... -- <command>` and one-shot `kar` commands against a test store.

use crate::paths::{apps_dir, kar_bin};
use crate::ports::free_port;
use crate::process::Process;
use crate::store::Store;
use std::ffi::OsString;
use std::process::Command;

/// Builder of one application component: `kar run` with its flags, the store's
/// environment and the component's command.
pub struct Component<'a> {
    store: &'a Store,
    app: String,
    name: String,
    service: Option<String>,
    actors: Vec<String>,
    app_port: u16,
    runtime_port: Option<u16>,
    h2c: bool,
    missing_component_timeout: Option<String>,
    verbosity: String,
    extra_args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    command: Vec<OsString>,
    /// A command that runs `kar` (e.g. `ip netns exec NS`), if any.
    wrapper: Vec<String>,
}

impl<'a> Component<'a> {
    /// A component of application `app`. It gets its own free app port (the `-app_port`
    /// default 8080 would clash between parallel tests) and logs at `-v info`.
    pub fn new(store: &'a Store, app: &str) -> Self {
        Component {
            store,
            app: app.to_string(),
            name: format!("kar run -app {app} ({} store)", store.kind()),
            service: None,
            actors: Vec::new(),
            app_port: free_port(),
            runtime_port: None,
            h2c: false,
            missing_component_timeout: None,
            verbosity: "info".to_string(),
            extra_args: Vec::new(),
            env: Vec::new(),
            command: Vec::new(),
            wrapper: Vec::new(),
        }
    }

    /// The name used in failure messages.
    pub fn name(mut self, name: &str) -> Self {
        self.name = format!("{name} ({} store, app {})", self.store.kind(), self.app);
        self
    }

    pub fn service(mut self, service: &str) -> Self {
        self.service = Some(service.to_string());
        self
    }

    pub fn actors(mut self, actors: &[&str]) -> Self {
        self.actors = actors.iter().map(|a| a.to_string()).collect();
        self
    }

    pub fn app_port(mut self, port: u16) -> Self {
        self.app_port = port;
        self
    }

    pub fn runtime_port(mut self, port: u16) -> Self {
        self.runtime_port = Some(port);
        self
    }

    /// `-h2c`: the sidecar talks HTTP/2 with prior knowledge to the app.
    pub fn h2c(mut self) -> Self {
        self.h2c = true;
        self
    }

    /// `-missing_component_timeout <duration>` (Go syntax, e.g. `2s`).
    pub fn missing_component_timeout(mut self, duration: &str) -> Self {
        self.missing_component_timeout = Some(duration.to_string());
        self
    }

    /// `-v <level>` (default `info`).
    pub fn verbosity(mut self, level: &str) -> Self {
        self.verbosity = level.to_string();
        self
    }

    /// An extra `kar run` flag (before `--`).
    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.extra_args.push(arg.into());
        self
    }

    /// An environment variable for `kar` and, through it, the component.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The component's command line (see [`crate::node`], [`crate::python`]).
    pub fn command(mut self, argv: Vec<OsString>) -> Self {
        self.command = argv;
        self
    }

    /// Runs `kar` through `wrapper` (`ip netns exec NS`: on a simulated host).
    pub fn within(mut self, wrapper: Vec<String>) -> Self {
        self.wrapper = wrapper;
        self
    }

    /// The `kar run` argument list this builder stands for.
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["run".into(), "-app".into(), self.app.clone().into()];
        if let Some(service) = &self.service {
            args.extend(["-service".into(), service.into()]);
        }
        if !self.actors.is_empty() {
            args.extend(["-actors".into(), self.actors.join(",").into()]);
        }
        args.extend(["-app_port".into(), self.app_port.to_string().into()]);
        if let Some(port) = self.runtime_port {
            args.extend(["-runtime_port".into(), port.to_string().into()]);
        }
        if self.h2c {
            args.push("-h2c".into());
        }
        if let Some(timeout) = &self.missing_component_timeout {
            args.extend(["-missing_component_timeout".into(), timeout.into()]);
        }
        args.extend(["-v".into(), self.verbosity.clone().into()]);
        args.extend(self.extra_args.iter().cloned());
        if !self.command.is_empty() {
            args.push("--".into());
            args.extend(self.command.iter().cloned());
        }
        args
    }

    /// Starts `kar run`.
    pub fn spawn(self) -> Process {
        let mut command = match self.wrapper.split_first() {
            None => Command::new(kar_bin()),
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(kar_bin());
                command
            }
        };
        command.args(self.args()).current_dir(apps_dir());
        self.store.configure(&mut command);
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        Process::spawn(self.name, command)
    }
}

/// A client component of `app` (no service, no actors): the Node script `script`
/// (under `tests/apps/js`) with `args`, named after both. Spawn it, or add options
/// first.
pub fn node_client<'a>(store: &'a Store, app: &str, script: &str, args: &[&str]) -> Component<'a> {
    Component::new(store, app)
        .name(&format!("{script} {}", args.join(" ")))
        .command(crate::node(script, args))
}

/// Starts a one-shot `kar <args>` command (rest, get, purge, ...) against `store`.
pub fn kar(store: &Store, args: &[&str]) -> Process {
    let mut command = Command::new(kar_bin());
    command.args(args).current_dir(apps_dir());
    store.configure(&mut command);
    Process::spawn(
        format!("kar {} ({} store)", args.join(" "), store.kind()),
        command,
    )
}

/// `kar get -app APP -s sidecars -o json`: each member's node id and its entry
/// (`{"port", "actors", "services"}`). `kar get` itself is listed while it runs (runtime
/// port 0).
pub fn sidecars(store: &Store, app: &str) -> Vec<(String, serde_json::Value)> {
    let get = kar(store, &["get", "-app", app, "-s", "sidecars", "-o", "json"])
        .expect_success(std::time::Duration::from_secs(60));
    let json = get
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("kar get printed no JSON object; output:\n{}", get.output));
    let sidecars: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
        .unwrap_or_else(|e| {
            panic!(
                "kar get printed malformed JSON ({e}); output:\n{}",
                get.output
            )
        });
    sidecars.into_iter().collect()
}
