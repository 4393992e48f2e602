//! The global options of every command (spec §5.2) and where their values come from:
//! flag > environment variable > `-config_dir` file > default. Also the store
//! selection of spec §9.14 and the port variables of §5.2/§9.8.
//!
//! * [`options`]: the global flags and which may come from elsewhere;
//! * [`env`](mod@env): the environment (injectable), `$KAR_HOME` and the port variables;
//! * `token`: `-api_token` of `kar run` (flag, `KAR_API_TOKEN`, `-config_dir` file);
//! * `redis_ca`: the Redis CA certificate (base64-encoded PEM, or PEM);
//! * here: [`resolve`] into a [`GlobalConfig`].

mod env;
mod options;
mod token;

pub use env::{app_port, kar_home, runtime_port, Env, ProcessEnv};
pub use options::GLOBAL_FLAGS;
pub use token::api_token;

use crate::flags::{Matches, Value};
use crate::logging::LogLevel;
use anyhow::{anyhow, bail, Context, Result};
use kar_store::{EmbeddedSync, RedisConfig, StoreConfig};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The resolved global options.
#[derive(Clone, Debug)]
pub struct GlobalConfig {
    pub app: String,
    pub store: StoreConfig,
    /// `-request_retry_limit` in signed nanoseconds (negative: no limit).
    pub request_retry_limit_nanos: i64,
    /// `-kafka_brokers` / `KAFKA_BROKERS`, as given ("" for none).
    pub kafka_brokers: String,
    /// Kafka options that were given but are not used (the caller says so once).
    pub ignored_kafka: Vec<&'static str>,
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
    for name in options::kafka_options() {
        if sourced(name)?.1 {
            ignored_kafka.push(name);
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
    let store_sync = matches.str("store_sync");
    let sync: EmbeddedSync = store_sync
        .parse()
        .map_err(|_| anyhow!("invalid -store_sync {store_sync:?} (off, normal or full)"))?;
    let sentinels = sentinels(&str_of("redis_sentinel")?)?;
    let store = if redis_host.is_empty() && sentinels.is_empty() {
        StoreConfig::Embedded {
            dir: kar_home(env)?,
            sync,
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
        let ca_cert = redis_ca_cert(&str_of("redis_ca_cert")?)?;
        // Unset: the store's default (500 ms, at most a quarter of the lease).
        let fence_margin = match sourced("redis_fence_margin")? {
            (Value::Duration(margin), true) => {
                let margin = u64::try_from(margin).map_err(|_| {
                    anyhow!(
                        "the fencing margin cannot be negative; got -redis_fence_margin {}",
                        kar_protocol::format_go_duration(margin)
                    )
                })?;
                Some(Duration::from_nanos(margin))
            }
            _ => None,
        };
        StoreConfig::Redis(RedisConfig {
            host: redis_host,
            port,
            user: Some(user).filter(|u| !u.is_empty()),
            password: Some(password).filter(|p| !p.is_empty()),
            tls: bool_of("redis_enable_tls")?,
            tls_skip_verify: bool_of("redis_tls_skip_verify")?,
            ca_cert,
            lease: Duration::from_nanos(lease.unsigned_abs()),
            fence_margin,
            wait_replicas: match sourced("redis_wait_replicas")?.0 {
                Value::Int(n) => {
                    u32::try_from(n).map_err(|_| anyhow!("invalid -redis_wait_replicas {n}"))?
                }
                _ => 0,
            },
            wait_timeout: match sourced("redis_wait_timeout")?.0 {
                Value::Duration(d) if d > 0 => Duration::from_nanos(d.unsigned_abs()),
                Value::Duration(d) => bail!(
                    "the replication wait timeout must be positive; got -redis_wait_timeout {}",
                    kar_protocol::format_go_duration(d)
                ),
                _ => Duration::from_secs(1),
            },
            sentinels,
            sentinel_master: str_of("redis_sentinel_master")?,
        })
    };
    Ok(GlobalConfig {
        app,
        store,
        kafka_brokers: str_of("kafka_brokers")?,
        request_retry_limit_nanos: matches.duration("request_retry_limit"),
        ignored_kafka,
    })
}

/// `-redis_sentinel host:port,...`.
fn sentinels(value: &str) -> Result<Vec<(String, u16)>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (host, port) = s
                .rsplit_once(':')
                .ok_or_else(|| anyhow!("-redis_sentinel: {s:?} is not host:port"))?;
            let port = port
                .parse()
                .map_err(|_| anyhow!("-redis_sentinel: invalid port in {s:?}"))?;
            Ok((host.to_string(), port))
        })
        .collect()
}

/// The CA certificate of `-redis_ca_cert` / `REDIS_CA`: the base64 encoding of a PEM
/// file, as upstream KAR takes it (a PEM given as is is accepted too); `None` when
/// empty (the system's root certificates).
fn redis_ca_cert(value: &str) -> Result<Option<Vec<u8>>> {
    use base64::Engine as _;
    if value.trim().is_empty() {
        return Ok(None);
    }
    let pem = if value.contains("-----BEGIN") {
        value.as_bytes().to_vec()
    } else {
        let compact: String = value.split_whitespace().collect();
        base64::engine::general_purpose::STANDARD
            .decode(compact)
            .map_err(|e| anyhow!("-redis_ca_cert (REDIS_CA) is not base64: {e}"))?
    };
    if !pem.windows(10).any(|w| w == b"-----BEGIN") {
        bail!("-redis_ca_cert (REDIS_CA) does not hold a PEM certificate once decoded");
    }
    Ok(Some(pem))
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
    let Some((var, file)) = options::sources_of(name) else {
        return Ok((default()?, false));
    };
    let kind = crate::flags::kind_of(GLOBAL_FLAGS, name)
        .ok_or_else(|| anyhow!("unknown option {name}"))?;
    if let Some(text) = env.get(&var) {
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
    use env::tests::FakeEnv;

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
            StoreConfig::Embedded { dir, .. } => dir,
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
    fn store_sync_levels() {
        let env = FakeEnv::new(&[("HOME", "/h")]);
        let sync = |args: &[&str]| match resolve(&matches(args), &env).map(|c| c.store) {
            Ok(StoreConfig::Embedded { sync, .. }) => Ok(sync),
            Ok(other) => panic!("expected embedded, got {other:?}"),
            Err(e) => Err(e.to_string()),
        };
        assert_eq!(sync(&["-app", "a"]), Ok(EmbeddedSync::Normal));
        assert_eq!(
            sync(&["-app", "a", "-store_sync", "full"]),
            Ok(EmbeddedSync::Full)
        );
        assert_eq!(
            sync(&["-app", "a", "-store_sync", "OFF"]),
            Ok(EmbeddedSync::Off)
        );
        assert_eq!(
            sync(&["-app", "a", "-store_sync", "always"]),
            Err("invalid -store_sync \"always\" (off, normal or full)".to_string())
        );
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
    fn redis_sentinels_and_wait() {
        let env = FakeEnv::new(&[]);
        let c = resolve(
            &matches(&[
                "-app",
                "a",
                "-redis_sentinel",
                "s1:26379, s2:26380",
                "-redis_wait_replicas",
                "1",
            ]),
            &env,
        )
        .unwrap();
        assert_eq!(
            redis(&c).sentinels,
            vec![("s1".to_string(), 26379), ("s2".to_string(), 26380)]
        );
        assert_eq!(redis(&c).sentinel_master, "mymaster");
        assert_eq!(redis(&c).wait_replicas, 1);
        assert_eq!(redis(&c).wait_timeout, Duration::from_secs(1));
        assert!(resolve(&matches(&["-app", "a", "-redis_sentinel", "s1"]), &env).is_err());
    }

    #[test]
    fn redis_fence_margin() {
        let env = FakeEnv::new(&[("REDIS_HOST", "h")]);
        let margin = |args: &[&str]| {
            let mut all = vec!["-app", "a"];
            all.extend_from_slice(args);
            resolve(&matches(&all), &env).map(|c| redis(&c).fence_margin)
        };
        assert_eq!(margin(&[]).unwrap(), None);
        assert_eq!(
            margin(&["-redis_fence_margin", "200ms"]).unwrap(),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            margin(&["-redis_fence_margin", "0"]).unwrap(),
            Some(Duration::ZERO)
        );
        assert!(margin(&["-redis_fence_margin", "-1s"]).is_err());
        let env = FakeEnv::new(&[("REDIS_HOST", "h"), ("REDIS_FENCE_MARGIN", "1s")]);
        let c = resolve(&matches(&["-app", "a"]), &env).unwrap();
        assert_eq!(redis(&c).fence_margin, Some(Duration::from_secs(1)));
    }

    #[test]
    fn redis_ca_cert_is_base64_pem() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        use base64::Engine as _;
        let encoded = base64::engine::general_purpose::STANDARD.encode(pem);
        let env = FakeEnv::new(&[("REDIS_HOST", "h"), ("REDIS_CA", encoded.as_str())]);
        let c = resolve(&matches(&["-app", "a"]), &env).unwrap();
        assert_eq!(redis(&c).ca_cert.as_deref(), Some(pem.as_bytes()));
        // Wrapped base64 (as `base64` prints it) and a PEM as is work too.
        let wrapped = format!("{}\n{}", &encoded[..20], &encoded[20..]);
        assert_eq!(
            redis_ca_cert(&wrapped).unwrap().as_deref(),
            Some(pem.as_bytes())
        );
        assert_eq!(redis_ca_cert(pem).unwrap().as_deref(), Some(pem.as_bytes()));
        assert_eq!(redis_ca_cert("").unwrap(), None);
        let err = redis_ca_cert("not base64!").unwrap_err().to_string();
        assert!(err.contains("REDIS_CA"), "{err}");
        assert!(redis_ca_cert("aGVsbG8=").is_err());
    }

    #[test]
    fn kafka_settings_are_noticed() {
        let env = FakeEnv::new(&[("HOME", "/h"), ("KAFKA_BROKERS", "b:9092")]);
        let c = resolve(&matches(&["-app", "a", "-kafka_enable_tls"]), &env).unwrap();
        assert_eq!(c.ignored_kafka, vec!["kafka_enable_tls"]);
        assert_eq!(c.kafka_brokers, "b:9092");
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
