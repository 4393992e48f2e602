//! The global flags every command accepts (spec §5.2), and which of them may also
//! come from an environment variable or a `-config_dir` file.

use crate::flags::{Flag, Kind};

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
    "Comma-separated list of Kafka brokers (host:port), for the topics of kar run -kafka_topics",
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
const STORE_SYNC: Flag = Flag::new(
    "store_sync",
    Kind::String,
    "normal",
    "When a commit of the embedded store reaches the disk: off, normal (fsync at checkpoints;\nan OS crash may lose the latest commits) or full (fsync before every commit is acknowledged)",
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
    &STORE_SYNC,
    &REQUEST_RETRY_LIMIT,
    &REDIS_SLOW_OP_THRESHOLD,
    &V,
    &CONFIG_DIR,
    &PLACEMENT_CACHE,
    &DEBUG,
];

/// Options that may also come from the environment variable named like the option in
/// upper case, or from the `-config_dir` file named like the option.
const SOURCED: &[&str] = &[
    "kafka_brokers",
    "kafka_enable_tls",
    "kafka_username",
    "kafka_password",
    "kafka_version",
    "kafka_tls_skip_verify",
    "redis_host",
    "redis_port",
    "redis_enable_tls",
    "redis_tls_skip_verify",
    "redis_user",
    "redis_password",
];

/// `-redis_ca_cert` is the one exception to the naming rule: upstream reads it from
/// `REDIS_CA` and the file `redis_ca`.
const REDIS_CA_CERT_SOURCE: (&str, &str, &str) = ("redis_ca_cert", "REDIS_CA", "redis_ca");

/// The environment variable and the `-config_dir` file an option may come from, if
/// it may come from anywhere but the command line.
pub(super) fn sources_of(name: &str) -> Option<(String, String)> {
    let (flag, var, file) = REDIS_CA_CERT_SOURCE;
    if name == flag {
        return Some((var.to_string(), file.to_string()));
    }
    SOURCED
        .contains(&name)
        .then(|| (name.to_ascii_uppercase(), name.to_string()))
}

/// The Kafka options kar does not use (every `-kafka_*` flag but `-kafka_brokers`):
/// accepted for compatibility, noticed when set.
pub(super) fn kafka_options() -> impl Iterator<Item = &'static str> {
    GLOBAL_FLAGS
        .iter()
        .map(|flag| flag.name)
        .filter(|name| name.starts_with("kafka_") && *name != "kafka_brokers")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_follow_the_upstream_names() {
        assert_eq!(
            sources_of("redis_host"),
            Some(("REDIS_HOST".to_string(), "redis_host".to_string()))
        );
        assert_eq!(
            sources_of("kafka_tls_skip_verify"),
            Some((
                "KAFKA_TLS_SKIP_VERIFY".to_string(),
                "kafka_tls_skip_verify".to_string()
            ))
        );
        assert_eq!(
            sources_of("redis_ca_cert"),
            Some(("REDIS_CA".to_string(), "redis_ca".to_string()))
        );
        assert_eq!(sources_of("kafka_topic_config"), None);
        assert_eq!(sources_of("app"), None);
        assert_eq!(kafka_options().count(), 6);
    }
}
