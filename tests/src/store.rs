//! The store fixture: every test runs once on each engine.

use crate::ports::free_port;
use crate::process::Process;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// How long a fresh `redis-server` may take to accept connections.
const REDIS_START_TIMEOUT: Duration = Duration::from_secs(20);

/// The store the `kar` processes of one test share.
pub enum Store {
    /// The embedded store in a private `$KAR_HOME`, deleted on drop.
    Embedded { home: TempDir },
    /// A private `redis-server` on a free loopback port, killed on drop. `home` is the
    /// `$KAR_HOME` given to `kar` so nothing touches the user's real one.
    Redis { server: RedisServer, home: TempDir },
    /// A Redis server the test runs elsewhere (on a simulated host, `netns`).
    RedisAt {
        host: String,
        port: u16,
        home: TempDir,
    },
    /// Redis found through Sentinels the test runs (`crate::RedisHa`): `host:port,...`.
    RedisSentinel { sentinels: String, home: TempDir },
}

impl Store {
    pub fn embedded() -> Store {
        Store::Embedded {
            home: tempdir("kar-home-"),
        }
    }

    pub fn redis() -> Store {
        Store::Redis {
            server: RedisServer::start(),
            home: tempdir("kar-home-"),
        }
    }

    /// Redis over TLS (a CA made for the test, given as `REDIS_CA`), logged in as the
    /// ACL user of the README.
    pub fn redis_tls() -> Store {
        Store::Redis {
            server: RedisServer::start_tls(),
            home: tempdir("kar-home-"),
        }
    }

    /// A Redis server at `host:port`, run by the test.
    pub fn redis_at(host: &str, port: u16) -> Store {
        Store::RedisAt {
            host: host.to_string(),
            port,
            home: tempdir("kar-home-"),
        }
    }

    /// Redis through the Sentinels at `sentinels` (`host:port,...`), run by the test.
    pub fn redis_sentinel(sentinels: &str) -> Store {
        Store::RedisSentinel {
            sentinels: sentinels.to_string(),
            home: tempdir("kar-home-"),
        }
    }

    /// `embedded` or `redis`.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Embedded { .. } => "embedded",
            Store::Redis { .. } | Store::RedisAt { .. } | Store::RedisSentinel { .. } => "redis",
        }
    }

    pub fn home(&self) -> &Path {
        match self {
            Store::Embedded { home }
            | Store::Redis { home, .. }
            | Store::RedisAt { home, .. }
            | Store::RedisSentinel { home, .. } => home.path(),
        }
    }

    /// Panics unless the `kar` processes of the test really used this store (and not,
    /// say, the embedded one while a Redis variant was meant).
    pub fn assert_used(&self) {
        match self {
            Store::Embedded { home } => {
                let used = std::fs::read_dir(home.path()).is_ok_and(|mut d| d.next().is_some());
                assert!(
                    used,
                    "the embedded store in {} was never used",
                    home.path().display()
                );
            }
            Store::Redis { server, .. } => {
                let commands = server.commands_processed();
                assert!(
                    commands > 0,
                    "redis-server :{} processed no command",
                    server.port()
                );
            }
            // The test that runs it checks its own workload.
            Store::RedisAt { .. } | Store::RedisSentinel { .. } => {}
        }
    }

    /// Points `command` (a `kar` invocation) at this store, whatever the environment of
    /// the test says.
    pub fn configure(&self, command: &mut Command) {
        for var in [
            "REDIS_HOST",
            "REDIS_PORT",
            "REDIS_USER",
            "REDIS_PASSWORD",
            "REDIS_ENABLE_TLS",
            "REDIS_TLS_SKIP_VERIFY",
            "REDIS_CA",
            "REDIS_SENTINEL",
            "REDIS_SENTINEL_MASTER",
            "REDIS_WAIT_REPLICAS",
            "REDIS_WAIT_TIMEOUT",
            "KAFKA_BROKERS",
            "KAR_RUNTIME_PORT",
            "KAR_APP_PORT",
        ] {
            command.env_remove(var);
        }
        command.env("KAR_HOME", self.home());
        if let Store::RedisAt { host, port, .. } = self {
            command
                .env("REDIS_HOST", host)
                .env("REDIS_PORT", port.to_string());
        }
        if let Store::RedisSentinel { sentinels, .. } = self {
            command.env("REDIS_SENTINEL", sentinels);
        }
        if let Store::Redis { server, .. } = self {
            command.env("REDIS_HOST", "127.0.0.1");
            match server.tls() {
                None => command.env("REDIS_PORT", server.port().to_string()),
                Some(tls) => command
                    .env("REDIS_PORT", tls.port.to_string())
                    .env("REDIS_ENABLE_TLS", "true")
                    .env("REDIS_CA", tls.ca_base64())
                    .env("REDIS_USER", "kar")
                    .env("REDIS_PASSWORD", &tls.password),
            };
        }
    }
}

fn tempdir(prefix: &str) -> TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("create a temporary directory")
}

/// A private `redis-server` (no persistence) on a free loopback port.
pub struct RedisServer {
    port: u16,
    process: Process,
    tls: Option<Tls>,
    _dir: TempDir,
}

/// The TLS side of a [`RedisServer::start_tls`] server: its port, where its CA lives,
/// and the password of its ACL user `kar` (the README's line).
pub struct Tls {
    pub port: u16,
    pub dir: PathBuf,
    pub password: String,
}

impl Tls {
    /// `REDIS_CA` for the test's CA (the base64 of its PEM, as upstream KAR takes it).
    pub fn ca_base64(&self) -> String {
        self.ca_base64_of("ca.crt")
    }

    /// `REDIS_CA` for the certificate `file` of the server's directory.
    pub fn ca_base64_of(&self, file: &str) -> String {
        use base64::Engine as _;
        let pem = std::fs::read(self.dir.join(file)).expect("read a CA certificate");
        base64::engine::general_purpose::STANDARD.encode(pem)
    }
}

/// Makes, with `openssl`, a CA (`<name>ca.crt`) and a certificate it signs for
/// 127.0.0.1 and localhost (`<name>server.crt`, `<name>server.key`) in `dir`.
pub fn make_certificates(dir: &Path, name: &str) {
    let run = |args: &[&str]| {
        let output = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl must be installed (scripts/setup-test-deps.sh)");
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    let f = |suffix: &str| format!("{name}{suffix}");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=kar test CA",
        "-keyout",
        &f("ca.key"),
        "-out",
        &f("ca.crt"),
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        &f("server.key"),
        "-out",
        &f("server.csr"),
    ]);
    std::fs::write(
        dir.join(f("server.ext")),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("write the certificate extensions");
    run(&[
        "x509",
        "-req",
        "-in",
        &f("server.csr"),
        "-CA",
        &f("ca.crt"),
        "-CAkey",
        &f("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        &f("server.ext"),
        "-out",
        &f("server.crt"),
    ]);
}

/// The README's `ACL SETUSER kar ...` line, as arguments after `SETUSER`, with
/// `password` for the placeholder: the tests run with the line users copy.
pub fn readme_acl_args(password: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(crate::repo_root().join("README.md")).expect("read README.md");
    let line = readme
        .lines()
        .find(|l| l.trim_start().starts_with("ACL SETUSER kar "))
        .expect("the README gives the ACL line of kar's Redis user");
    line.split_whitespace()
        .skip(2)
        .map(|arg| {
            if arg.starts_with('>') {
                format!(">{password}")
            } else {
                arg.to_string()
            }
        })
        .collect()
}

impl RedisServer {
    /// Starts it and waits until it accepts connections.
    pub fn start() -> RedisServer {
        Self::start_with(false)
    }

    /// Starts one that also serves TLS (a CA made for it by `openssl`), with the ACL
    /// user `kar` of the README. The plain port stays open for the tests' own checks.
    pub fn start_tls() -> RedisServer {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> RedisServer {
        let dir = tempdir("kar-redis-");
        if tls {
            make_certificates(dir.path(), "");
        }
        let mut last_output = String::new();
        // Another process may grab the port between the check and redis binding it.
        for _ in 0..5 {
            let port = free_port();
            let mut command = Command::new("redis-server");
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .args(["--protected-mode", "yes", "--loglevel", "notice"])
                .arg("--dir")
                .arg(dir.path())
                .current_dir(dir.path());
            let tls_port = tls.then(|| {
                let tls_port = free_port();
                command
                    .args(["--tls-port", &tls_port.to_string()])
                    .args([
                        "--tls-cert-file",
                        "server.crt",
                        "--tls-key-file",
                        "server.key",
                    ])
                    .args(["--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no"]);
                tls_port
            });
            let mut process = Process::spawn(format!("redis-server :{port}"), command);
            if process.wait_for_output("Ready to accept connections", REDIS_START_TIMEOUT) {
                let mut server = RedisServer {
                    port,
                    process,
                    tls: None,
                    _dir: dir,
                };
                if let Some(tls_port) = tls_port {
                    let password = format!("pw{:x}", rand::random::<u64>());
                    let mut args = vec!["ACL".to_string(), "SETUSER".to_string()];
                    args.extend(readme_acl_args(&password));
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    assert_eq!(server.query(&args), "OK", "ACL SETUSER");
                    server.tls = Some(Tls {
                        port: tls_port,
                        dir: server._dir.path().to_path_buf(),
                        password,
                    });
                }
                return server;
            }
            process.kill();
            last_output = process.output();
        }
        panic!("redis-server did not start (is it installed? see scripts/setup-test-deps.sh); last output:\n{last_output}");
    }

    /// The TLS side of a [`RedisServer::start_tls`] server.
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// Runs `ACL SETUSER args...` (plain port).
    pub fn acl_setuser(&self, args: &[&str]) {
        let mut all = vec!["ACL", "SETUSER"];
        all.extend_from_slice(args);
        assert_eq!(self.query(&all), "OK", "ACL SETUSER {args:?}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `total_commands_processed` of `INFO stats` (this query not included).
    pub fn commands_processed(&self) -> u64 {
        let stats = self.query(&["INFO", "stats"]);
        stats
            .lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected INFO stats reply from redis-server:\n{stats}"))
    }

    /// Sends one command and returns its bulk-string or simple-string reply.
    fn query(&self, args: &[&str]) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("cannot connect to redis-server :{}: {e}", self.port));
        let mut request = format!("*{}\r\n", args.len());
        for arg in args {
            request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        stream
            .write_all(request.as_bytes())
            .expect("write to redis-server");
        let mut reader = BufReader::new(stream);
        let mut header = String::new();
        reader
            .read_line(&mut header)
            .expect("read from redis-server");
        match header.as_bytes().first() {
            Some(b'$') => {
                let len: usize = header[1..].trim().parse().expect("bulk string length");
                let mut body = vec![0; len + 2];
                std::io::Read::read_exact(&mut reader, &mut body).expect("read from redis-server");
                String::from_utf8_lossy(&body[..len]).into_owned()
            }
            Some(b'+') => header[1..].trim_end().to_string(),
            _ => panic!("unexpected reply from redis-server: {header:?}"),
        }
    }
}
