//! The global options of every command (spec §5.2) and where their values come from:
//! flag > environment variable > `-config_dir` file > default. Also the store
//! selection of spec §9.14 and the port variables of §5.2/§9.8.

use crate::flags::{Flag, Kind, Matches, Value};
use crate::logging::LogLevel;
use anyhow::{anyhow, bail, Context, Result};
use kar_store::{RedisConfig, StoreConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

const APP: Flag = Flag::new(
    "app",
    Kind::String,
    "",
    "The name of the application [required]",
);
const KAFKA_BROKERS: Flag = Flag::new(
    "kafka_brokers",
    Kind::String,
    "",
    "Comma-separated list of Kafka brokers (ignored: no Kafka transport yet)",
);
const KAFKA_ENABLE_TLS: Flag = Flag::new(
    "kafka_enable_tls",
    Kind::Bool,
    "false",
    "Use TLS to communicate with Kafka (ignored)",
);
const KAFKA_USERNAME: Flag = Flag::new(
    "kafka_username",
    Kind::String,
    "token",
    "SASL user name (ignored)",
);
const KAFKA_PASSWORD: Flag = Flag::new(
    "kafka_password",
    Kind::String,
    "",
    "SASL password (ignored)",
);
const KAFKA_VERSION: Flag = Flag::new(
    "kafka_version",
    Kind::String,
    "2.8.1",
    "Kafka cluster version (ignored)",
);
const KAFKA_TLS_SKIP_VERIFY: Flag = Flag::new(
    "kafka_tls_skip_verify",
    Kind::Bool,
    "false",
    "Skip server name verification for Kafka when connecting over TLS (ignored)",
);
const KAFKA_TOPIC_CONFIG: Flag = Flag::new(
    "kafka_topic_config",
    Kind::String,
    "",
    "Kafka topic configuration k1=v1,k2=v2 (ignored)",
);
const REDIS_HOST: Flag = Flag::new(
    "redis_host",
    Kind::String,
    "",
    "The host of the Redis server (without it, the embedded store in $KAR_HOME is used)",
);
const REDIS_PORT: Flag = Flag::new(
    "redis_port",
    Kind::Int,
    "6379",
    "The port of the Redis server",
);
const REDIS_ENABLE_TLS: Flag = Flag::new(
    "redis_enable_tls",
    Kind::Bool,
    "false",
    "Use TLS to communicate with Redis",
);
const REDIS_TLS_SKIP_VERIFY: Flag = Flag::new(
    "redis_tls_skip_verify",
    Kind::Bool,
    "false",
    "Skip server name verification for Redis when connecting over TLS",
);
const REDIS_USER: Flag = Flag::new(
    "redis_user",
    Kind::String,
    "",
    "The user name of the Redis server",
);
const REDIS_PASSWORD: Flag = Flag::new(
    "redis_password",
    Kind::String,
    "",
    "The password of the Redis server",
);
const REDIS_CA_CERT: Flag = Flag::new(
    "redis_ca_cert",
    Kind::String,
    "",
    "The base64-encoded PEM CA certificate of the Redis server",
);
const REDIS_LEASE: Flag = Flag::new(
    "redis_lease",
    Kind::Duration,
    "3s",
    "Membership lease with the Redis store: a sidecar that cannot renew it in time leaves the mesh",
);
const REQUEST_RETRY_LIMIT: Flag = Flag::new(
    "request_retry_limit",
    Kind::Duration,
    "-1s",
    "Request timeout and retry window for requests to the application component\n(negative: no timeout, retry for 15 minutes)",
);
const REDIS_SLOW_OP_THRESHOLD: Flag = Flag::new(
    "redis_slow_op_threshold",
    Kind::Duration,
    "1s",
    "Log Redis operations that take longer than this",
);
const V: Flag = Flag::new(
    "v",
    Kind::String,
    "error",
    "Logging verbosity: fatal, error, warning, info or debug (or 0 to 4)",
);
const CONFIG_DIR: Flag = Flag::new(
    "config_dir",
    Kind::String,
    "",
    "Directory containing configuration files, one value per file",
);
const PLACEMENT_CACHE: Flag = Flag::new(
    "placement_cache",
    Kind::Bool,
    "true",
    "Cache actor placement decisions",
);
const DEBUG: Flag = Flag::new(
    "debug",
    Kind::Bool,
    "false",
    "Enable debugger support (accepted, unused)",
);

/// The flags every command accepts, in addition to its own.
pub const GLOBAL_FLAGS: &[&Flag] = &[
    &APP,
    &KAFKA_BROKERS,
    &KAFKA_ENABLE_TLS,
    &KAFKA_USERNAME,
    &KAFKA_PASSWORD,
    &KAFKA_VERSION,
    &KAFKA_TLS_SKIP_VERIFY,
    &KAFKA_TOPIC_CONFIG,
    &REDIS_HOST,
    &REDIS_PORT,
    &REDIS_ENABLE_TLS,
    &REDIS_TLS_SKIP_VERIFY,
    &REDIS_USER,
    &REDIS_PASSWORD,
    &REDIS_CA_CERT,
    &REDIS_LEASE,
    &REQUEST_RETRY_LIMIT,
    &REDIS_SLOW_OP_THRESHOLD,
    &V,
    &CONFIG_DIR,
    &PLACEMENT_CACHE,
    &DEBUG,
];

/// Options that may also come from an environment variable or a `-config_dir` file.
const SOURCES: &[(&str, &str, &str)] = &[
    ("kafka_brokers", "KAFKA_BROKERS", "kafka_brokers"),
    ("kafka_enable_tls", "KAFKA_ENABLE_TLS", "kafka_enable_tls"),
    ("kafka_username", "KAFKA_USERNAME", "kafka_username"),
    ("kafka_password", "KAFKA_PASSWORD", "kafka_password"),
    ("kafka_version", "KAFKA_VERSION", "kafka_version"),
    (
        "kafka_tls_skip_verify",
        "KAFKA_TLS_SKIP_VERIFY",
        "kafka_tls_skip_verify",
    ),
    ("redis_host", "REDIS_HOST", "redis_host"),
    ("redis_port", "REDIS_PORT", "redis_port"),
    ("redis_enable_tls", "REDIS_ENABLE_TLS", "redis_enable_tls"),
    (
        "redis_tls_skip_verify",
        "REDIS_TLS_SKIP_VERIFY",
        "redis_tls_skip_verify",
    ),
    ("redis_user", "REDIS_USER", "redis_user"),
    ("redis_password", "REDIS_PASSWORD", "redis_password"),
    ("redis_ca_cert", "REDIS_CA", "redis_ca"),
];

const KAFKA_OPTIONS: &[&str] = &[
    "kafka_brokers",
    "kafka_enable_tls",
    "kafka_username",
    "kafka_password",
    "kafka_version",
    "kafka_tls_skip_verify",
    "kafka_topic_config",
];

/// Reads environment variables; injectable so tests need not touch the process
/// environment.
pub trait Env {
    /// The variable's value; empty values count as unset, like Go's `os.Getenv` checks.
    fn get(&self, name: &str) -> Option<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

/// The resolved global options.
#[derive(Clone, Debug)]
pub struct GlobalConfig {
    pub app: String,
    pub store: StoreConfig,
    /// `-request_retry_limit` in signed nanoseconds (negative: no limit).
    pub request_retry_limit_nanos: i64,
    /// Kafka options that were given (they are ignored; the caller says so once).
    pub ignored_kafka: Vec<&'static str>,
    /// A Redis CA certificate was given (the Redis engine uses the system roots).
    pub redis_ca_cert: bool,
}

impl GlobalConfig {
    /// The app client's request timeout and retry window; `None` when negative.
    pub fn request_retry_limit(&self) -> Option<Duration> {
        u64::try_from(self.request_retry_limit_nanos)
            .ok()
            .map(Duration::from_nanos)
    }

    /// `KAR_REQUEST_TIMEOUT` for the child: the limit in whole milliseconds, like Go's
    /// `Duration.Milliseconds()` (truncated towards zero).
    pub fn request_timeout_millis(&self) -> i64 {
        self.request_retry_limit_nanos / 1_000_000
    }
}

/// The `-v` level; invalid values are ignored (default `error`).
pub fn log_level(matches: &Matches) -> LogLevel {
    LogLevel::parse(matches.str("v")).unwrap_or(LogLevel::Error)
}

/// Resolves the global options from the parsed flags, the environment and the
/// `-config_dir` files.
pub fn resolve(matches: &Matches, env: &dyn Env) -> Result<GlobalConfig> {
    let app = matches.str("app").to_string();
    if app.is_empty() {
        bail!("app name is required");
    }
    let config_dir = Some(matches.str("config_dir"))
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    let sourced = |name: &str| resolve_option(matches, env, config_dir.as_deref(), name);

    let mut ignored_kafka = Vec::new();
    for name in KAFKA_OPTIONS {
        if sourced(name)?.1 {
            ignored_kafka.push(*name);
        }
    }

    let str_of = |name: &str| -> Result<String> {
        match sourced(name)?.0 {
            Value::Str(s) => Ok(s),
            other => Err(anyhow!("option {name} has unexpected value {other:?}")),
        }
    };
    let bool_of = |name: &str| -> Result<bool> { Ok(sourced(name)?.0 == Value::Bool(true)) };

    let redis_host = str_of("redis_host")?;
    let store = if redis_host.is_empty() {
        StoreConfig::Embedded {
            dir: kar_home(env)?,
        }
    } else {
        let port = match sourced("redis_port")?.0 {
            Value::Int(p) => p,
            _ => 6379,
        };
        let port = u16::try_from(port).map_err(|_| anyhow!("invalid Redis port {port}"))?;
        let lease = matches.duration("redis_lease");
        if lease <= 0 {
            bail!(
                "the Redis lease must be positive; got -redis_lease {}",
                kar_protocol::format_go_duration(lease)
            );
        }
        let user = str_of("redis_user")?;
        let password = str_of("redis_password")?;
        StoreConfig::Redis(RedisConfig {
            host: redis_host,
            port,
            user: Some(user).filter(|u| !u.is_empty()),
            password: Some(password).filter(|p| !p.is_empty()),
            tls: bool_of("redis_enable_tls")?,
            tls_skip_verify: bool_of("redis_tls_skip_verify")?,
            lease: Duration::from_nanos(lease.unsigned_abs()),
        })
    };
    let redis_ca_cert = !str_of("redis_ca_cert")?.is_empty();
    Ok(GlobalConfig {
        app,
        store,
        request_retry_limit_nanos: matches.duration("request_retry_limit"),
        ignored_kafka,
        redis_ca_cert,
    })
}

/// The value of an option and whether it was configured anywhere (flag, environment
/// or file) rather than defaulted.
fn resolve_option(
    matches: &Matches,
    env: &dyn Env,
    config_dir: Option<&Path>,
    name: &str,
) -> Result<(Value, bool)> {
    let default = || {
        matches
            .value(name)
            .cloned()
            .ok_or_else(|| anyhow!("unknown option {name}"))
    };
    if matches.is_set(name) {
        return Ok((default()?, true));
    }
    let Some((_, var, file)) = SOURCES.iter().find(|(flag, _, _)| *flag == name) else {
        return Ok((default()?, false));
    };
    let kind = crate::flags::kind_of(crate::config::GLOBAL_FLAGS, name)
        .ok_or_else(|| anyhow!("unknown option {name}"))?;
    if let Some(text) = env.get(var) {
        let value = Value::parse(kind, &text)
            .map_err(|e| anyhow!("invalid value {text:?} for environment variable {var}: {e}"))?;
        return Ok((value, true));
    }
    if let Some(dir) = config_dir {
        let path = dir.join(file);
        match std::fs::read_to_string(&path) {
            // Contents are used raw, as upstream does (no trimming).
            Ok(text) => {
                let value = Value::parse(kind, &text).map_err(|e| {
                    anyhow!(
                        "invalid value {text:?} in configuration file {}: {e}",
                        path.display()
                    )
                })?;
                return Ok((value, true));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read configuration file {}", path.display()))
            }
        }
    }
    Ok((default()?, false))
}

/// The directory of the embedded store: `$KAR_HOME`, else `$XDG_DATA_HOME/kar`, else
/// `~/.local/share/kar`.
pub fn kar_home(env: &dyn Env) -> Result<PathBuf> {
    if let Some(home) = env.get("KAR_HOME") {
        return Ok(PathBuf::from(home));
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(data) = env
        .get("XDG_DATA_HOME")
        .filter(|d| Path::new(d).is_absolute())
    {
        return Ok(Path::new(&data).join("kar"));
    }
    if let Some(home) = env.get("HOME") {
        return Ok(Path::new(&home).join(".local").join("share").join("kar"));
    }
    bail!("cannot locate the embedded store: set KAR_HOME (or HOME)")
}

/// The runtime port of `kar run`: the flag, or `KAR_RUNTIME_PORT` when the flag is 0.
pub fn runtime_port(flag: i64, env: &dyn Env) -> Result<u16> {
    let port = match env.get("KAR_RUNTIME_PORT").filter(|_| flag == 0) {
        Some(text) => parse_port_var("KAR_RUNTIME_PORT", &text)?,
        None => flag,
    };
    u16::try_from(port).map_err(|_| anyhow!("invalid runtime port {port}"))
}

/// The app port of `kar run`: the flag, or `KAR_APP_PORT` when the flag is exactly its
/// default 8080.
pub fn app_port(flag: i64, env: &dyn Env) -> Result<u16> {
    let port = match env.get("KAR_APP_PORT").filter(|_| flag == 8080) {
        Some(text) => parse_port_var("KAR_APP_PORT", &text)?,
        None => flag,
    };
    u16::try_from(port).map_err(|_| anyhow!("invalid app port {port}"))
}

fn parse_port_var(var: &str, text: &str) -> Result<i64> {
    text.parse::<i64>()
        .map_err(|_| anyhow!("invalid value {text:?} for environment variable {var}: parse error"))
}

/// A Go duration flag as an optional timeout: zero or negative means none.
pub fn optional_duration(nanos: i64) -> Option<Duration> {
    u64::try_from(nanos)
        .ok()
        .filter(|n| *n > 0)
        .map(Duration::from_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flags::parse;
    use std::collections::HashMap;

    struct FakeEnv(HashMap<String, String>);

    impl FakeEnv {
        fn new(vars: &[(&str, &str)]) -> FakeEnv {
            FakeEnv(
                vars.iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        }
    }

    impl Env for FakeEnv {
        fn get(&self, name: &str) -> Option<String> {
            self.0.get(name).cloned().filter(|v| !v.is_empty())
        }
    }

    fn matches(args: &[&str]) -> Matches {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(GLOBAL_FLAGS, &args).unwrap()
    }

    fn redis(config: &GlobalConfig) -> &RedisConfig {
        match &config.store {
            StoreConfig::Redis(r) => r,
            other => panic!("expected redis, got {other:?}"),
        }
    }

    #[test]
    fn app_is_required() {
        let err = resolve(&matches(&[]), &FakeEnv::new(&[("HOME", "/h")])).unwrap_err();
        assert_eq!(err.to_string(), "app name is required");
    }

    #[test]
    fn embedded_store_location() {
        let m = matches(&["-app", "a"]);
        let dir = |vars: &[(&str, &str)]| match resolve(&m, &FakeEnv::new(vars)).unwrap().store {
            StoreConfig::Embedded { dir } => dir,
            other => panic!("expected embedded, got {other:?}"),
        };
        assert_eq!(dir(&[("HOME", "/h")]), PathBuf::from("/h/.local/share/kar"));
        assert_eq!(
            dir(&[("HOME", "/h"), ("XDG_DATA_HOME", "/x")]),
            PathBuf::from("/x/kar")
        );
        assert_eq!(
            dir(&[("HOME", "/h"), ("XDG_DATA_HOME", "rel")]),
            PathBuf::from("/h/.local/share/kar")
        );
        assert_eq!(
            dir(&[("HOME", "/h"), ("XDG_DATA_HOME", "/x"), ("KAR_HOME", "/k")]),
            PathBuf::from("/k")
        );
        assert!(resolve(&m, &FakeEnv::new(&[])).is_err());
    }

    #[test]
    fn precedence_flag_env_file_default() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("redis_host"), "file-host").unwrap();
        std::fs::write(dir.path().join("redis_port"), "7000").unwrap();
        std::fs::write(dir.path().join("redis_user"), "file-user").unwrap();
        let cfg_dir = dir.path().to_str().unwrap();

        // File only.
        let m = matches(&["-app", "a", "-config_dir", cfg_dir]);
        let c = resolve(&m, &FakeEnv::new(&[])).unwrap();
        assert_eq!(redis(&c).host, "file-host");
        assert_eq!(redis(&c).port, 7000);
        assert_eq!(redis(&c).user.as_deref(), Some("file-user"));
        assert_eq!(redis(&c).password, None);
        assert_eq!(redis(&c).lease, Duration::from_secs(3));

        // Environment beats the file.
        let env = FakeEnv::new(&[("REDIS_HOST", "env-host"), ("REDIS_PORT", "7001")]);
        let c = resolve(&m, &env).unwrap();
        assert_eq!(redis(&c).host, "env-host");
        assert_eq!(redis(&c).port, 7001);
        assert_eq!(redis(&c).user.as_deref(), Some("file-user"));

        // The flag beats both, even when it equals the default.
        let m = matches(&[
            "-app",
            "a",
            "-config_dir",
            cfg_dir,
            "-redis_host",
            "flag-host",
            "-redis_port",
            "6379",
            "-redis_lease=500ms",
        ]);
        let c = resolve(&m, &env).unwrap();
        assert_eq!(redis(&c).host, "flag-host");
        assert_eq!(redis(&c).port, 6379);
        assert_eq!(redis(&c).lease, Duration::from_millis(500));

        // Default port without any source.
        let c = resolve(
            &matches(&["-app", "a", "-redis_host", "h"]),
            &FakeEnv::new(&[]),
        )
        .unwrap();
        assert_eq!(redis(&c).port, 6379);
        assert!(!redis(&c).tls);
    }

    #[test]
    fn booleans_from_env_and_files_use_go_parse_bool() {
        let env = FakeEnv::new(&[("REDIS_HOST", "h"), ("REDIS_ENABLE_TLS", "T")]);
        let c = resolve(&matches(&["-app", "a"]), &env).unwrap();
        assert!(redis(&c).tls);
        let env = FakeEnv::new(&[("REDIS_HOST", "h"), ("REDIS_ENABLE_TLS", "yes")]);
        let err = resolve(&matches(&["-app", "a"]), &env).unwrap_err();
        assert!(err.to_string().contains("REDIS_ENABLE_TLS"), "{err}");

        // File contents are raw: a trailing newline makes the value invalid.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("redis_tls_skip_verify"), "true\n").unwrap();
        let m = matches(&[
            "-app",
            "a",
            "-redis_host",
            "h",
            "-config_dir",
            dir.path().to_str().unwrap(),
        ]);
        assert!(resolve(&m, &FakeEnv::new(&[])).is_err());
        std::fs::write(dir.path().join("redis_tls_skip_verify"), "1").unwrap();
        assert!(redis(&resolve(&m, &FakeEnv::new(&[])).unwrap()).tls_skip_verify);
    }

    #[test]
    fn bad_redis_settings_are_errors() {
        let env = FakeEnv::new(&[("REDIS_PORT", "http")]);
        assert!(resolve(&matches(&["-app", "a", "-redis_host", "h"]), &env).is_err());
        let m = matches(&["-app", "a", "-redis_host", "h", "-redis_port", "70000"]);
        assert!(resolve(&m, &FakeEnv::new(&[])).is_err());
        let m = matches(&["-app", "a", "-redis_host", "h", "-redis_lease", "0s"]);
        assert!(resolve(&m, &FakeEnv::new(&[])).is_err());
    }

    #[test]
    fn kafka_settings_are_noticed() {
        let env = FakeEnv::new(&[("HOME", "/h"), ("KAFKA_BROKERS", "b:9092")]);
        let c = resolve(&matches(&["-app", "a", "-kafka_enable_tls"]), &env).unwrap();
        assert_eq!(c.ignored_kafka, vec!["kafka_brokers", "kafka_enable_tls"]);
        let c = resolve(&matches(&["-app", "a"]), &FakeEnv::new(&[("HOME", "/h")])).unwrap();
        assert!(c.ignored_kafka.is_empty());
    }

    #[test]
    fn request_retry_limit() {
        let env = FakeEnv::new(&[("HOME", "/h")]);
        let c = resolve(&matches(&["-app", "a"]), &env).unwrap();
        assert_eq!(c.request_retry_limit(), None);
        assert_eq!(c.request_timeout_millis(), -1000);
        let c = resolve(
            &matches(&["-app", "a", "-request_retry_limit", "2.5s"]),
            &env,
        )
        .unwrap();
        assert_eq!(c.request_retry_limit(), Some(Duration::from_millis(2500)));
        assert_eq!(c.request_timeout_millis(), 2500);
        let c = resolve(&matches(&["-app", "a", "-request_retry_limit", "0"]), &env).unwrap();
        assert_eq!(c.request_retry_limit(), Some(Duration::ZERO));
        assert_eq!(c.request_timeout_millis(), 0);
    }

    #[test]
    fn port_variables() {
        let env = FakeEnv::new(&[("KAR_RUNTIME_PORT", "3500"), ("KAR_APP_PORT", "9000")]);
        assert_eq!(runtime_port(0, &env).unwrap(), 3500);
        assert_eq!(runtime_port(4000, &env).unwrap(), 4000);
        assert_eq!(app_port(8080, &env).unwrap(), 9000);
        assert_eq!(app_port(8081, &env).unwrap(), 8081);
        let none = FakeEnv::new(&[]);
        assert_eq!(runtime_port(0, &none).unwrap(), 0);
        assert_eq!(app_port(8080, &none).unwrap(), 8080);
        let bad = FakeEnv::new(&[("KAR_RUNTIME_PORT", "x"), ("KAR_APP_PORT", "99999")]);
        assert!(runtime_port(0, &bad).is_err());
        assert!(app_port(8080, &bad).is_err());
        assert!(runtime_port(-1, &none).is_err());
    }

    #[test]
    fn log_levels() {
        assert_eq!(log_level(&matches(&[])), LogLevel::Error);
        assert_eq!(log_level(&matches(&["-v", "INFO"])), LogLevel::Info);
        assert_eq!(log_level(&matches(&["-v", "3"])), LogLevel::Info);
        assert_eq!(log_level(&matches(&["-v", "loud"])), LogLevel::Error);
    }

    #[test]
    fn optional_durations() {
        assert_eq!(optional_duration(0), None);
        assert_eq!(optional_duration(-5), None);
        assert_eq!(optional_duration(1_000), Some(Duration::from_micros(1)));
    }
}
