//! The store fixture: every test runs once on each engine.

use crate::ports::free_port;
use crate::process::Process;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
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

    /// `embedded` or `redis`.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Embedded { .. } => "embedded",
            Store::Redis { .. } => "redis",
        }
    }

    pub fn home(&self) -> &Path {
        match self {
            Store::Embedded { home } | Store::Redis { home, .. } => home.path(),
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
            "KAFKA_BROKERS",
            "KAR_RUNTIME_PORT",
            "KAR_APP_PORT",
        ] {
            command.env_remove(var);
        }
        command.env("KAR_HOME", self.home());
        if let Store::Redis { server, .. } = self {
            command
                .env("REDIS_HOST", "127.0.0.1")
                .env("REDIS_PORT", server.port().to_string());
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
    _dir: TempDir,
}

impl RedisServer {
    /// Starts it and waits until it accepts connections.
    pub fn start() -> RedisServer {
        let dir = tempdir("kar-redis-");
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
            let mut process = Process::spawn(format!("redis-server :{port}"), command);
            if process.wait_for_output("Ready to accept connections", REDIS_START_TIMEOUT) {
                return RedisServer {
                    port,
                    process,
                    _dir: dir,
                };
            }
            process.kill();
            last_output = process.output();
        }
        panic!("redis-server did not start (is it installed? see scripts/setup-test-deps.sh); last output:\n{last_output}");
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
