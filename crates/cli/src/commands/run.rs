//! `kar run [OPTIONS] [-- COMMAND ARGS...]` (spec §5.3): a sidecar beside one
//! application component.

use super::{open_store_with, Context, Signals};
use crate::child;
use crate::config::{self, optional_duration, ProcessEnv};
use crate::flags::{Flag, Kind, Matches};
use crate::logging;
use anyhow::{anyhow, Context as _, Result};
use kar_runtime::{KafkaConfig, Runtime, RuntimeConfig, TopicBinding};
use kar_sidecar::{serve, ApiToken, AppClientConfig, HttpAppClient, ServerConfig, ServerHandle};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

const SERVICE: Flag = Flag::new(
    "service",
    Kind::String,
    "kar.none",
    "The name of the service provided by this component",
);
const ACTORS: Flag = Flag::new(
    "actors",
    Kind::String,
    "",
    "The actor types provided by this component, separated by commas",
);
const APP_PORT: Flag = Flag::new(
    "app_port",
    Kind::Int,
    "8080",
    "The port used by the sidecar to connect to the component ($KAR_APP_PORT when left at 8080)",
);
const RUNTIME_PORT: Flag = Flag::new(
    "runtime_port",
    Kind::Int,
    "0",
    "The port used by the component to connect to the sidecar ($KAR_RUNTIME_PORT when 0;\nrandom if that is unset too)",
);
const ACTOR_COLLECTOR_INTERVAL: Flag = Flag::new(
    "actor_collector_interval",
    Kind::Duration,
    "10s",
    "Actor collector interval (0 disables idle actor collection)",
);
const ACTOR_REMINDER_INTERVAL: Flag = Flag::new(
    "actor_reminder_interval",
    Kind::Duration,
    "100ms",
    "Actor reminder processing interval",
);
const ACTOR_REMINDER_ACCEPTABLE_DELAY: Flag = Flag::new(
    "actor_reminder_acceptable_delay",
    Kind::Duration,
    "3s",
    "Log a warning when a reminder fires later than this",
);
const ACTOR_BUSY_TIMEOUT: Flag = Flag::new(
    "actor_busy_timeout",
    Kind::Duration,
    "2m",
    "Time to wait on a busy actor before timing out (0 is infinite)",
);
pub(super) const MISSING_COMPONENT_TIMEOUT: Flag = Flag::new(
    "missing_component_timeout",
    Kind::Duration,
    "2m",
    "Time to wait for a missing service or actor type before failing a request (0 is infinite)",
);
const H2C: Flag = Flag::new(
    "h2c",
    Kind::Bool,
    "false",
    "Use HTTP/2 without TLS (prior knowledge) to talk to the component",
);
const KUBERNETES_MODE: Flag = Flag::new(
    "kubernetes_mode",
    Kind::Bool,
    "false",
    "Listen on all network interfaces instead of 127.0.0.1",
);
const SIDECAR_MODE: Flag = Flag::new(
    "sidecar_mode",
    Kind::Bool,
    "false",
    "Run as a sidecar container (accepted, unused)",
);
const HOSTNAME: Flag = Flag::new(
    "hostname",
    Kind::String,
    "localhost",
    "Hostname (accepted, unused)",
);
const CANCEL: Flag = Flag::new(
    "cancel",
    Kind::Bool,
    "false",
    "Do not execute recovered calls whose caller is gone",
);
const MAX_ATTEMPTS: Flag = Flag::new(
    "max_attempts",
    Kind::Int,
    "3",
    "Pause a request step once its executor died this many times (0 = never)",
);

const API_TOKEN: Flag = Flag::new(
    "api_token",
    Kind::String,
    "",
    "Require this token (Authorization: Bearer) from peers other than 127.0.0.1 and ::1\n\
     (also KAR_API_TOKEN, or the file api_token in -config_dir)",
);
const MAX_BODY_BYTES: Flag = Flag::new(
    "max_body_bytes",
    Kind::Int,
    "16777216",
    "Largest request body accepted on the runtime port, in bytes (larger: 413)",
);
const KAFKA_TOPICS: Flag = Flag::new(
    "kafka_topics",
    Kind::String,
    "",
    "Topics bound to Kafka topics (needs -kafka_brokers): TOPIC or TOPIC=KAFKA_TOPIC, comma-separated",
);
const EVENT_RETENTION: Flag = Flag::new(
    "event_retention",
    Kind::Duration,
    "15m",
    "How long events are kept in the store once every subscription was delivered them",
);
const IDEMPOTENCY_RETENTION: Flag = Flag::new(
    "idempotency_retention",
    Kind::Duration,
    "24h",
    "How long an Idempotency-Key maps to its request, after it was sent and after it completed",
);

const SHUTDOWN_GRACE_FLAG: Flag = Flag::new(
    "shutdown_grace",
    Kind::Duration,
    "30s",
    "On SIGTERM or a shutdown request, how long running requests may finish before the sidecar leaves",
);
const ACTOR_REBALANCE_RATE: Flag = Flag::new(
    "actor_rebalance_rate",
    Kind::Int,
    "100",
    "Most actors per second this sidecar moves to replicas holding fewer of their type (0 = never)",
);
const MAX_CONCURRENT_TELLS: Flag = Flag::new(
    "max_concurrent_tells",
    Kind::Int,
    "256",
    "Most tells (async invocations, reminder firings, event deliveries) executing at once here;\n\
     the others wait in arrival order (0 = no cap)",
);
const MAX_PENDING_FIRINGS: Flag = Flag::new(
    "max_pending_firings",
    Kind::Int,
    "1024",
    "Most reminder firings of the application enqueued and not finished before this sidecar\n\
     fires no more: due reminders wait, late periodic ones coalesce (0 = no bound)",
);

pub const FLAGS: &[&Flag] = &[
    &SERVICE,
    &ACTORS,
    &APP_PORT,
    &RUNTIME_PORT,
    &ACTOR_COLLECTOR_INTERVAL,
    &ACTOR_REMINDER_INTERVAL,
    &ACTOR_REMINDER_ACCEPTABLE_DELAY,
    &ACTOR_BUSY_TIMEOUT,
    &MISSING_COMPONENT_TIMEOUT,
    &H2C,
    &KUBERNETES_MODE,
    &SIDECAR_MODE,
    &HOSTNAME,
    &CANCEL,
    &MAX_ATTEMPTS,
    &API_TOKEN,
    &MAX_BODY_BYTES,
    &KAFKA_TOPICS,
    &EVENT_RETENTION,
    &IDEMPOTENCY_RETENTION,
    &SHUTDOWN_GRACE_FLAG,
    &ACTOR_REBALANCE_RATE,
    &MAX_CONCURRENT_TELLS,
    &MAX_PENDING_FIRINGS,
];

/// How much longer than `-shutdown_grace` leaving may take in all (the leave's own
/// store transition, and stopping the server) before `kar run` exits anyway.
const LEAVE_MARGIN: Duration = Duration::from_secs(10);

/// The options of `kar run` beyond the global ones.
#[derive(Clone, Debug, PartialEq)]
pub struct RunOptions {
    pub service: String,
    pub actors: Vec<String>,
    pub app_port: u16,
    pub runtime_port: u16,
    pub missing_component_timeout: Option<Duration>,
    pub h2c: bool,
    pub kubernetes_mode: bool,
    /// The component's command line; empty when none was given.
    pub command: Vec<String>,
    pub actor_collector_interval: Option<Duration>,
    pub actor_reminder_interval: Option<Duration>,
    pub actor_reminder_acceptable_delay: Option<Duration>,
    pub actor_busy_timeout: Option<Duration>,
    pub cancel: bool,
    /// The attempt cap of the recoveries this sidecar performs (`RecoveryPolicy`).
    pub max_attempts: u32,
    /// Required from peers other than 127.0.0.1/::1 when set.
    pub api_token: Option<ApiToken>,
    pub max_body_bytes: usize,
    /// `-kafka_topics`, parsed.
    pub kafka_topics: Vec<TopicBinding>,
    pub event_retention: Duration,
    /// `-idempotency_retention` (0: keys are forgotten at once).
    pub idempotency_retention: Duration,
    /// `-shutdown_grace`: what running requests get to finish in a graceful leave.
    pub shutdown_grace: Duration,
    /// `-actor_rebalance_rate`: actor moves per second (0: no rebalancing).
    pub actor_rebalance_rate: u32,
    /// `-max_concurrent_tells` (0: no cap).
    pub max_concurrent_tells: usize,
    /// `-max_pending_firings` (0: no bound).
    pub max_pending_firings: usize,
}

impl RunOptions {
    pub fn from_matches(m: &Matches, env: &dyn config::Env) -> Result<RunOptions> {
        let actors = m
            .str("actors")
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect();
        Ok(RunOptions {
            service: m.str("service").to_string(),
            actors,
            app_port: config::app_port(m.int("app_port"), env)?,
            runtime_port: config::runtime_port(m.int("runtime_port"), env)?,
            missing_component_timeout: optional_duration(m.duration("missing_component_timeout")),
            h2c: m.bool("h2c"),
            kubernetes_mode: m.bool("kubernetes_mode"),
            command: m.args.clone(),
            actor_collector_interval: optional_duration(m.duration("actor_collector_interval")),
            actor_reminder_interval: optional_duration(m.duration("actor_reminder_interval")),
            actor_reminder_acceptable_delay: optional_duration(
                m.duration("actor_reminder_acceptable_delay"),
            ),
            actor_busy_timeout: optional_duration(m.duration("actor_busy_timeout")),
            cancel: m.bool("cancel"),
            max_attempts: u32::try_from(m.int("max_attempts"))
                .map_err(|_| anyhow!("-max_attempts must be between 0 and {}", u32::MAX))?,
            api_token: config::api_token(m, env)?.and_then(ApiToken::new),
            max_body_bytes: usize::try_from(m.int("max_body_bytes"))
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| anyhow!("-max_body_bytes must be a positive number of bytes"))?,
            kafka_topics: KafkaConfig::parse_topics(m.str("kafka_topics"))
                .map_err(|e| anyhow!(e))?,
            event_retention: u64::try_from(m.duration("event_retention"))
                .map(Duration::from_nanos)
                .map_err(|_| anyhow!("-event_retention must not be negative"))?,
            idempotency_retention: u64::try_from(m.duration("idempotency_retention"))
                .map(Duration::from_nanos)
                .map_err(|_| anyhow!("-idempotency_retention must not be negative"))?,
            shutdown_grace: u64::try_from(m.duration("shutdown_grace"))
                .map(Duration::from_nanos)
                .map_err(|_| anyhow!("-shutdown_grace must not be negative"))?,
            actor_rebalance_rate: u32::try_from(m.int("actor_rebalance_rate"))
                .map_err(|_| anyhow!("-actor_rebalance_rate must be between 0 and {}", u32::MAX))?,
            max_concurrent_tells: usize::try_from(m.int("max_concurrent_tells"))
                .map_err(|_| anyhow!("-max_concurrent_tells must not be negative"))?,
            max_pending_firings: usize::try_from(m.int("max_pending_firings"))
                .map_err(|_| anyhow!("-max_pending_firings must not be negative"))?,
        })
    }
}

/// The Kafka settings: `None` without brokers (then no topic may be bound).
fn kafka_config(brokers: &str, topics: &[TopicBinding]) -> Result<Option<KafkaConfig>> {
    let brokers = KafkaConfig::parse_brokers(brokers);
    if brokers.is_empty() {
        if !topics.is_empty() {
            return Err(anyhow!(
                "-kafka_topics needs -kafka_brokers (or KAFKA_BROKERS)"
            ));
        }
        return Ok(None);
    }
    Ok(Some(KafkaConfig {
        brokers,
        topics: topics.to_vec(),
    }))
}

pub async fn run(ctx: Context) -> Result<i32> {
    let options = RunOptions::from_matches(&ctx.matches, &ProcessEnv)?;
    let global = &ctx.global;
    tracing::warn!("starting...");
    let mut signals = Signals::new()?;

    // The store first: an unreachable store is the most common set-up error, and it
    // must be reported before anything else starts.
    let policy = kar_store::RecoveryPolicy {
        max_attempts: options.max_attempts,
    };
    let store = open_store_with(global, policy).await?;

    // Bind before joining the mesh, so a port conflict leaves no trace in the mesh,
    // and before launching the component, which may connect right away (spec §1.1).
    let ip = if options.kubernetes_mode {
        Ipv4Addr::UNSPECIFIED
    } else {
        Ipv4Addr::LOCALHOST
    };
    let listener = TcpListener::bind((ip, options.runtime_port))
        .await
        .map_err(|e| anyhow!("TCP listener failed: {e}"))?;
    let runtime_port = listener
        .local_addr()
        .map_err(|e| anyhow!("TCP listener failed: {e}"))?
        .port();

    let mut runtime_config = RuntimeConfig::new(global.app.clone());
    runtime_config.service = options.service.clone();
    runtime_config.actors = options.actors.clone();
    runtime_config.runtime_port = runtime_port;
    runtime_config.missing_component_timeout = options.missing_component_timeout;
    runtime_config.actor_busy_timeout = options.actor_busy_timeout;
    runtime_config.actor_collector_interval = options.actor_collector_interval;
    // A zero interval would spin: it keeps the default.
    if let Some(interval) = options.actor_reminder_interval {
        runtime_config.actor_reminder_interval = interval;
    }
    runtime_config.actor_reminder_acceptable_delay = options.actor_reminder_acceptable_delay;
    runtime_config.cancel = options.cancel;
    runtime_config.event_retention = options.event_retention;
    runtime_config.kafka = kafka_config(&global.kafka_brokers, &options.kafka_topics)?;
    runtime_config.idempotency_retention = options.idempotency_retention;
    runtime_config.shutdown_grace = options.shutdown_grace;
    runtime_config.actor_rebalance_rate = options.actor_rebalance_rate;
    runtime_config.max_concurrent_tells = options.max_concurrent_tells;
    runtime_config.max_pending_firings = options.max_pending_firings;
    // Components without -service still host `kar.none`, so they get an app client too.
    let app = HttpAppClient::new(AppClientConfig {
        app_port: options.app_port,
        h2c: options.h2c,
        request_retry_limit: global.request_retry_limit(),
    });
    let runtime = Runtime::start(runtime_config, store, Some(Arc::new(app)))
        .await
        .context("cannot join the mesh")?;
    if options.kubernetes_mode && options.api_token.is_none() {
        // On stderr like the Kafka notice: the default log level would hide a warning.
        eprintln!(
            "kar: warning: -kubernetes_mode without an API token: anyone who can reach port \
             {runtime_port} can call every route of this sidecar; set -api_token or KAR_API_TOKEN"
        );
    }
    let server_config = ServerConfig {
        max_body_bytes: options.max_body_bytes,
        api_token: options.api_token.clone(),
    };
    let server = serve(listener, runtime.clone(), server_config);
    tracing::info!(
        "KAR_RUNTIME_PORT={runtime_port} KAR_APP_PORT={}",
        options.app_port
    );

    if options.command.is_empty() {
        tokio::select! {
            _ = runtime.shutdown_started() => {}
            name = signals.recv() => tracing::info!("received {name}"),
        }
        leave(&runtime, server, &mut signals).await;
        if runtime.is_fenced() {
            tracing::error!("this sidecar lost its membership in the mesh; exiting");
            return Ok(1);
        }
        tracing::warn!("exiting...");
        return Ok(0);
    }

    tracing::info!("launching service...");
    let env = [
        ("KAR_RUNTIME_PORT", runtime_port.to_string()),
        ("KAR_APP_PORT", options.app_port.to_string()),
        (
            "KAR_REQUEST_TIMEOUT",
            global.request_timeout_millis().to_string(),
        ),
    ];
    let mut child = match child::spawn(&options.command, &env) {
        Ok(child) => child,
        Err(e) => {
            logging::fatal(&format!(
                "failed to start service {}: {e}",
                options.command[0]
            ));
            leave(&runtime, server, &mut signals).await;
            return Ok(1);
        }
    };

    // Every path that ends with the component gone reports its own exit status
    // (`child::exit_code`), unless `kar` killed it on purpose (SIGINT/SIGTERM: 0;
    // fencing: 1). A component that crashed while running a request must never make
    // `kar run` look successful to its supervisor.
    let code = tokio::select! {
        status = child.wait() => {
            let code = match status {
                Ok(status) if child::died_of_interrupt(&status) => {
                    stop_or_crash(status, &mut signals).await
                }
                status => report_exit(status),
            };
            runtime.component_exited();
            leave(&runtime, server, &mut signals).await;
            code
        }
        _ = runtime.shutdown_started() => {
            if runtime.is_fenced() {
                // The mesh declared us dead and may already run our requests
                // elsewhere: the component must stop now (self-fencing).
                tracing::error!("this sidecar lost its membership; stopping the component");
                let code = interrupt(&mut child).await.unwrap_or(1);
                // The instant the fencing margin protects: from here on another
                // member may run this component's requests.
                tracing::warn!("component stopped (fenced)");
                runtime.component_exited();
                leave(&runtime, server, &mut signals).await;
                return Ok(code);
            }
            // Spec §4.9: a cooperative shutdown leaves the mesh but lets the component
            // exit on its own (the SDKs call shutdown and then exit). It may also die
            // meanwhile, possibly in the middle of a request that leaving waits for:
            // then that request is abandoned (handed to another member), not waited on.
            let mut exited = None;
            let interrupted = {
                let leaving = leave(&runtime, server, &mut signals);
                tokio::pin!(leaving);
                tokio::select! {
                    interrupted = &mut leaving => interrupted,
                    status = child.wait() => {
                        exited = Some(report_exit(status));
                        runtime.component_exited();
                        leaving.await
                    }
                }
            };
            match exited {
                Some(code) => code,
                // Spec §4.9: SIGINT/SIGTERM kills the component at once.
                None if interrupted => interrupt(&mut child).await.unwrap_or(0),
                None => tokio::select! {
                    status = child.wait() => report_exit(status),
                    name = signals.recv() => {
                        tracing::info!("received {name}");
                        interrupt(&mut child).await.unwrap_or(0)
                    }
                },
            }
        }
        name = signals.recv() => {
            tracing::info!("received {name}");
            if name == "SIGTERM" {
                leave_then_stop(&runtime, server, &mut signals, &mut child).await
            } else {
                // Spec §4.9: SIGINT kills the component at once.
                let code = interrupt(&mut child).await.unwrap_or(0);
                runtime.component_exited();
                leave(&runtime, server, &mut signals).await;
                code
            }
        }
    };
    tracing::warn!("exiting...");
    Ok(code)
}

/// Kills the component at once (spec §4.9). `None` when the stop ended it: our
/// SIGKILL, or the SIGINT/SIGTERM that stops `kar run` (a terminal's Ctrl-C, systemd
/// and `docker stop` send it to the component too). The component's own exit code
/// when it ended otherwise, as it crashed while the signal or the fencing came: that
/// end is reported, not hidden behind ours.
async fn interrupt(child: &mut child::RunningChild) -> Option<i32> {
    child.kill();
    match child.wait().await {
        Ok(status) if child::ended_by_stop_signal(&status) => {
            tracing::info!("service was interrupted");
            None
        }
        status => Some(report_exit(status)),
    }
}

/// Logs how the component ended on its own and returns the exit code for it.
fn report_exit(status: std::io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(status) => {
            match (status.code(), status.signal()) {
                (Some(0), _) => tracing::info!("service exited normally"),
                (Some(code), _) => tracing::info!("service exited with status code {code}"),
                (None, Some(signal)) => {
                    tracing::info!("service was killed by {}", child::signal_name(signal))
                }
                (None, None) => tracing::info!("service was interrupted"),
            }
            child::exit_code(&status)
        }
        Err(e) => {
            tracing::error!("cannot wait for the service: {e}");
            1
        }
    }
}

/// How long after its component died of SIGINT/SIGTERM `kar run` looks for the same
/// signal sent to itself: a signal to the whole process group reaches both at once.
const GROUP_SIGNAL_GRACE: Duration = Duration::from_millis(200);

/// The component died of SIGINT/SIGTERM. If `kar run` got the signal too, it was sent
/// to the whole process group (Ctrl-C, systemd, `docker stop`): the stop, exit 0, even
/// when the component saw it first. Otherwise something killed the component alone.
async fn stop_or_crash(status: std::process::ExitStatus, signals: &mut Signals) -> i32 {
    match tokio::time::timeout(GROUP_SIGNAL_GRACE, signals.recv()).await {
        Ok(name) => {
            tracing::info!("received {name}");
            tracing::info!("service was interrupted");
            0
        }
        Err(_) => report_exit(Ok(status)),
    }
}

/// A graceful leave on SIGTERM (issue 16): leave the mesh while the component still
/// runs (running requests finish within `-shutdown_grace`, the actors are
/// deactivated, queued work is handed over), then stop the component: exit 0. A
/// component that dies meanwhile (the SIGTERM was sent to the whole process group)
/// abandons what it ran, as any exit does; a second signal stops everything at once.
async fn leave_then_stop(
    runtime: &Arc<Runtime>,
    server: ServerHandle,
    signals: &mut Signals,
    child: &mut child::RunningChild,
) -> i32 {
    tracing::info!(
        "leaving gracefully (grace {:?})",
        runtime.config().shutdown_grace
    );
    let mut exited = None;
    let interrupted = {
        let leaving = leave(runtime, server, signals);
        tokio::pin!(leaving);
        tokio::select! {
            interrupted = &mut leaving => interrupted,
            status = child.wait() => {
                exited = Some(match status {
                    // The group's SIGTERM reached it too: still our stop.
                    Ok(status) if child::died_of_interrupt(&status) => {
                        tracing::info!("service was interrupted");
                        0
                    }
                    status => report_exit(status),
                });
                runtime.component_exited();
                leaving.await
            }
        }
    };
    if interrupted {
        tracing::warn!("graceful leave interrupted");
    }
    match exited {
        Some(code) => code,
        None => interrupt(child).await.unwrap_or(0),
    }
}

/// Cooperative shutdown: leave the mesh (see [`Runtime::shutdown`]), then stop
/// serving (calls still blocked get 503). The server keeps serving while the runtime
/// leaves, so that requests finishing within the grace period can still call out.
/// A signal abandons it: then it returns `true`.
async fn leave(runtime: &Arc<Runtime>, server: ServerHandle, signals: &mut Signals) -> bool {
    let bound = runtime.config().shutdown_grace + LEAVE_MARGIN;
    let both = async {
        runtime.shutdown().await;
        server.shutdown().await;
    };
    tokio::select! {
        finished = tokio::time::timeout(bound, both) => {
            if finished.is_err() {
                tracing::warn!("still leaving after {bound:?}; exiting anyway");
            }
            false
        }
        name = signals.recv() => {
            tracing::warn!("received {name} during shutdown; exiting now");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GLOBAL_FLAGS;
    use crate::flags::parse;

    struct NoEnv;
    impl config::Env for NoEnv {
        fn get(&self, _: &str) -> Option<String> {
            None
        }
    }

    fn options(args: &[&str]) -> RunOptions {
        let flags: Vec<&Flag> = FLAGS.iter().chain(GLOBAL_FLAGS).copied().collect();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        RunOptions::from_matches(&parse(&flags, &args).unwrap(), &NoEnv).unwrap()
    }

    #[test]
    fn defaults() {
        let o = options(&[]);
        assert_eq!(o.service, "kar.none");
        assert!(o.actors.is_empty());
        assert_eq!(o.app_port, 8080);
        assert_eq!(o.runtime_port, 0);
        assert_eq!(o.missing_component_timeout, Some(Duration::from_secs(120)));
        assert_eq!(o.actor_collector_interval, Some(Duration::from_secs(10)));
        assert_eq!(o.actor_reminder_interval, Some(Duration::from_millis(100)));
        assert_eq!(
            o.actor_reminder_acceptable_delay,
            Some(Duration::from_secs(3))
        );
        assert_eq!(o.actor_busy_timeout, Some(Duration::from_secs(120)));
        assert!(!o.h2c && !o.kubernetes_mode && !o.cancel);
        assert!(o.command.is_empty());
        assert_eq!(o.max_attempts, 3);
        assert_eq!(o.shutdown_grace, Duration::from_secs(30));
        assert_eq!(o.actor_rebalance_rate, 100);
        assert_eq!(
            o.max_concurrent_tells,
            kar_runtime::DEFAULT_MAX_CONCURRENT_TELLS
        );
        assert_eq!(
            options(&["-max_concurrent_tells", "0"]).max_concurrent_tells,
            0
        );
        assert_eq!(
            o.max_pending_firings,
            kar_runtime::DEFAULT_MAX_PENDING_FIRINGS
        );
        assert_eq!(options(&["-max_attempts", "0"]).max_attempts, 0);
        assert_eq!(o.idempotency_retention, Duration::from_secs(24 * 3600));
        assert_eq!(
            options(&["-idempotency_retention", "1m30s"]).idempotency_retention,
            Duration::from_secs(90)
        );
    }

    #[test]
    fn explicit_values_and_command() {
        let o = options(&[
            "-service",
            "greeter",
            "-actors",
            "A, B,,C",
            "-app_port=9000",
            "-runtime_port",
            "3500",
            "-missing_component_timeout",
            "0",
            "-actor_busy_timeout=1m30s",
            "-h2c",
            "-kubernetes_mode",
            "--",
            "node",
            "-v",
            "server.js",
        ]);
        assert_eq!(o.service, "greeter");
        assert_eq!(o.actors, vec!["A", "B", "C"]);
        assert_eq!(o.app_port, 9000);
        assert_eq!(o.runtime_port, 3500);
        assert_eq!(o.missing_component_timeout, None);
        assert_eq!(o.actor_busy_timeout, Some(Duration::from_secs(90)));
        assert!(o.h2c && o.kubernetes_mode);
        assert_eq!(o.command, vec!["node", "-v", "server.js"]);
        // Without `--` the command starts at the first positional argument.
        assert_eq!(
            options(&["-app", "x", "sh", "-c", "true"]).command,
            vec!["sh", "-c", "true"]
        );
    }
}
