//! Reaching Redis: the client (address, TLS, credentials) and the probe that opening
//! the store runs first, so that every set-up error is reported at once, in one
//! clear line, instead of as a hang or a failing transition later: unreachable
//! server, refused TLS handshake (wrong CA, plain server), refused credentials, or an
//! ACL user that lacks a command kar needs ([`COMMANDS`]; the README gives the
//! matching `ACL SETUSER` line).

use super::scripts::ACL_CHECK;
use super::{Keys, CONNECT_TIMEOUT};
use crate::{RedisConfig, StoreError};
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo,
    TlsCertificates,
};
use std::sync::Arc;

/// Every command kar sends, directly or from its scripts (`redis.call` in `lua/`;
/// a unit test keeps the two in step), each with valid arguments (`K` stands for a
/// key): the ACL check asks Redis whether the user may run exactly that (Redis 7.0
/// crashes when `redis.acl_check_cmd` gets arguments a command cannot take). The
/// README's ACL line grants these and no other, on the keys `kar:*`.
pub(crate) const COMMANDS: &[&str] = &[
    // Sent by the client itself.
    "PING",
    "EVALSHA 0000000000000000000000000000000000000000 1 K",
    "SCRIPT|LOAD return",
    "XREAD COUNT 1 BLOCK 1 STREAMS K 0",
    "XTRIM K MINID 0",
    "HGETALL K",
    // Run inside the scripts.
    "DEL K",
    "EXISTS K",
    "GET K",
    "SET K v",
    "INCR K",
    "PEXPIRE K 1",
    "TYPE K",
    "SCAN 0",
    "TIME",
    "HDEL K f",
    "HEXISTS K f",
    "HGET K f",
    "HINCRBY K f 1",
    "HKEYS K",
    "HLEN K",
    "HMGET K f",
    "HSET K f v",
    "SADD K m",
    "SCARD K",
    "SMEMBERS K",
    "SPOP K",
    "SREM K m",
    "XADD K * f v",
    "XDEL K 0-1",
    "XRANGE K - +",
    "ZADD K 1 m",
    "ZCARD K",
    "ZRANGE K 0 -1",
    "ZRANGEBYSCORE K -inf +inf",
    "ZREM K m",
    "ZSCORE K m",
    "HVALS K",
];

/// Where connections go: a fixed server, or the primary that Sentinel names at the
/// moment a connection is made (so that connections made after a failover reach the
/// new primary).
#[derive(Clone)]
pub(crate) struct Connector(Arc<Target>);

enum Target {
    Direct(Client),
    Sentinel {
        /// Plain connections to the Sentinels.
        sentinels: Vec<Client>,
        master: String,
        /// The settings of the primary's connections (TLS, credentials); its host and
        /// port are Sentinel's answer.
        config: RedisConfig,
    },
}

impl Connector {
    /// The client of the primary now.
    pub(crate) async fn client(&self) -> Result<Client, redis::RedisError> {
        match &*self.0 {
            Target::Direct(client) => Ok(client.clone()),
            Target::Sentinel {
                sentinels,
                master,
                config,
            } => {
                let (host, port) = primary_of(sentinels, master).await?;
                let config = RedisConfig {
                    host,
                    port,
                    ..config.clone()
                };
                client_of(&config).map(|(client, _)| client).map_err(|e| {
                    redis::RedisError::from((
                        redis::ErrorKind::InvalidClientConfig,
                        "primary named by Sentinel",
                        e.to_string(),
                    ))
                })
            }
        }
    }

    /// A new connection to the primary now.
    pub(crate) async fn connect(
        &self,
        config: &AsyncConnectionConfig,
    ) -> Result<MultiplexedConnection, redis::RedisError> {
        self.client()
            .await?
            .get_multiplexed_async_connection_with_config(config)
            .await
    }
}

/// Asks the Sentinels, in turn, where the primary `master` is.
async fn primary_of(
    sentinels: &[Client],
    master: &str,
) -> Result<(String, u16), redis::RedisError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(CONNECT_TIMEOUT));
    let mut last = None;
    for sentinel in sentinels {
        let answer = async {
            let mut conn = sentinel
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("SENTINEL")
                .arg("get-master-addr-by-name")
                .arg(master)
                .query_async::<Option<(String, u16)>>(&mut conn)
                .await
        };
        match answer.await {
            Ok(Some(addr)) => return Ok(addr),
            Ok(None) => {
                last = Some(redis::RedisError::from((
                    redis::ErrorKind::MasterNameNotFoundBySentinel,
                    "Sentinel knows no primary named",
                    master.to_string(),
                )))
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        redis::RedisError::from((redis::ErrorKind::EmptySentinelList, "no Sentinel given"))
    }))
}

/// The connector of `config` (not connected yet) and the address it names (the
/// Sentinels' for a Sentinel set-up).
pub(super) fn client(config: &RedisConfig) -> Result<(Connector, String), StoreError> {
    if config.sentinels.is_empty() {
        let (client, addr) = client_of(config)?;
        return Ok((Connector(Arc::new(Target::Direct(client))), addr));
    }
    let mut sentinels = Vec::new();
    for (host, port) in &config.sentinels {
        let client = ConnectionAddr::Tcp(host.clone(), *port)
            .into_connection_info()
            .and_then(Client::open)
            .map_err(|e| StoreError::Config(format!("invalid Sentinel {host}:{port}: {e}")))?;
        sentinels.push(client);
    }
    let addr = format!(
        "primary {} of Sentinel {}",
        config.sentinel_master,
        config
            .sentinels
            .iter()
            .map(|(h, p)| format!("{h}:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    Ok((
        Connector(Arc::new(Target::Sentinel {
            sentinels,
            master: config.sentinel_master.clone(),
            config: config.clone(),
        })),
        addr,
    ))
}

/// The client of the server of `config` (not connected yet) and its address.
fn client_of(config: &RedisConfig) -> Result<(Client, String), StoreError> {
    let port = if config.port == 0 { 6379 } else { config.port };
    let addr = format!("{}:{}", config.host, port);
    let mut redis_info = RedisConnectionInfo::default();
    if let Some(user) = config.user.as_deref().filter(|u| !u.is_empty()) {
        redis_info = redis_info.set_username(user);
    }
    if let Some(password) = config.password.as_deref().filter(|p| !p.is_empty()) {
        redis_info = redis_info.set_password(password);
    }
    let invalid =
        |e: redis::RedisError| StoreError::Config(format!("invalid Redis address {addr}: {e}"));
    let conn_addr = if config.tls {
        ConnectionAddr::TcpTls {
            host: config.host.clone(),
            port,
            insecure: config.tls_skip_verify,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(config.host.clone(), port)
    };
    let info = conn_addr
        .into_connection_info()
        .map_err(invalid)?
        .set_redis_settings(redis_info);
    let client = match (&config.ca_cert, config.tls) {
        (Some(ca), true) => {
            install_crypto_provider();
            Client::build_with_tls(
                info,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                },
            )
            .map_err(|e| StoreError::Config(format!("invalid Redis CA certificate: {e}")))?
        }
        (_, tls) => {
            if tls {
                install_crypto_provider();
            }
            Client::open(info).map_err(invalid)?
        }
    };
    Ok((client, addr))
}

/// rustls needs a process-wide crypto provider; kar builds it with *ring* only (it
/// builds fast with a C compiler alone; rustls deprecates it for lacking post-quantum
/// key exchange, which Redis servers do not offer anyway).
#[allow(deprecated)]
fn install_crypto_provider() {
    // Fails only if one is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One direct connection first, so that an unreachable server, a refused TLS
/// handshake or refused credentials are reported at once instead of after the
/// connection manager's retries; then the ACL check.
pub(super) async fn probe(
    connector: &Connector,
    config: &RedisConfig,
    addr: &str,
    keys: &Keys,
) -> Result<(), StoreError> {
    let probe_config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(CONNECT_TIMEOUT));
    let fail = |e| connect_error(addr, config, e);
    let mut conn = connector.connect(&probe_config).await.map_err(fail)?;
    redis::cmd("PING")
        .query_async::<()>(&mut conn)
        .await
        .map_err(fail)?;
    let mut invocation = ACL_CHECK.invocation(keys);
    invocation.arg(super::topic_keys("acl-probe")[0].as_str());
    for command in COMMANDS {
        invocation.arg(*command);
    }
    let denied: Vec<String> = invocation.invoke_async(&mut conn).await.map_err(fail)?;
    if denied.is_empty() {
        return Ok(());
    }
    let user = config.user.as_deref().unwrap_or("default");
    Err(StoreError::Config(format!(
        "the Redis user {user} at {addr} may not run {} on the keys kar:* \
         (kar needs the commands of the ACL line in the README)",
        denied.join(", ")
    )))
}

/// A failure to open a connection, classified by `From<RedisError>` (kar-store-api)
/// with its source kept: refused credentials or permissions, and TLS handshakes that
/// fail (a certificate that does not verify, a server that does not speak TLS) stay
/// configuration errors; anything else means the server cannot be used now
/// (unreachable, or not answering like Redis), which a later attempt may find
/// otherwise.
pub(super) fn connect_error(addr: &str, config: &RedisConfig, e: redis::RedisError) -> StoreError {
    let text = e.to_string();
    // A server that speaks the other protocol leaves the connection unanswered, or
    // drops it.
    let mismatch = e.is_timeout() || e.is_connection_dropped() || text.contains("reset by peer");
    if config.tls && is_tls_failure(&text) {
        return StoreError::Config(format!(
            "TLS connection to Redis at {addr} failed: {text} \
             (check -redis_ca_cert / REDIS_CA, or -redis_tls_skip_verify)"
        ));
    }
    match StoreError::from(e) {
        StoreError::Config(reason) => {
            StoreError::Config(format!("Redis at {addr} refused the connection: {reason}"))
        }
        StoreError::Unavailable { reason, source } | StoreError::Invariant { reason, source } => {
            let hint = match (mismatch, config.tls) {
                (false, _) => "",
                (true, true) => " (does the server serve TLS on this port?)",
                (true, false) => " (if the server only accepts TLS, set -redis_enable_tls)",
            };
            StoreError::Unavailable {
                reason: format!("failed to connect to Redis at {addr}: {reason}{hint}"),
                source,
            }
        }
        other => other,
    }
}

/// Whether a connection error comes from the TLS layer (rustls' messages).
fn is_tls_failure(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "certificate",
        "tls",
        "handshake",
        "corrupt message",
        "alert",
    ]
    .iter()
    .any(|word| text.contains(word))
}

#[cfg(test)]
mod tests {
    use super::COMMANDS;

    /// The name of a command of [`COMMANDS`] (`CMD` or `CMD|SUBCOMMAND`).
    fn command_name(form: &str) -> &str {
        form.split(' ').next().unwrap_or(form)
    }

    /// Every command the scripts run is in [`COMMANDS`] (so the ACL check and the
    /// README's ACL line cover it).
    #[test]
    fn every_command_of_the_scripts_is_listed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/redis/lua");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let source = std::fs::read_to_string(&path).unwrap();
            for quote in ['\'', '"'] {
                for call in ["redis.call(", "redis.pcall("] {
                    let opening = format!("{call}{quote}");
                    for (at, _) in source.match_indices(&opening) {
                        let rest = &source[at + opening.len()..];
                        let command = &rest[..rest.find(quote).unwrap()];
                        let command = command.to_ascii_uppercase();
                        assert!(
                            COMMANDS.iter().any(|form| command_name(form) == command),
                            "{} runs {command}, missing from COMMANDS",
                            path.display()
                        );
                    }
                }
            }
        }
    }
}
