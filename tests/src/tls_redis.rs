//! A private `redis-server` serving TLS (with a private CA made by `openssl`) and a
//! password, for tests of kar's TLS store configuration. It also listens in plain text
//! on another port, only for the test's own look at its statistics.

use crate::ports::free_port;
use crate::process::Process;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

pub struct TlsRedisServer {
    pub tls_port: u16,
    plain_port: u16,
    pub password: String,
    _process: Process,
    dir: TempDir,
}

impl TlsRedisServer {
    pub fn start() -> TlsRedisServer {
        let dir = tempfile::Builder::new()
            .prefix("kar-redis-tls-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        // ca.crt, and server.crt / server.key for 127.0.0.1 signed by it.
        crate::make_certificates(d, "");
        let password = format!("pw-{:08x}", rand::random::<u32>());
        let mut last_output = String::new();
        for _ in 0..5 {
            let (tls_port, plain_port) = (free_port(), free_port());
            let mut command = Command::new("redis-server");
            command
                .args([
                    "--port",
                    &plain_port.to_string(),
                    "--tls-port",
                    &tls_port.to_string(),
                ])
                .args(["--bind", "127.0.0.1", "--requirepass", &password])
                .arg("--tls-cert-file")
                .arg(d.join("server.crt"))
                .arg("--tls-key-file")
                .arg(d.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(d.join("ca.crt"))
                .args(["--tls-auth-clients", "no"])
                .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
                .arg("--dir")
                .arg(d)
                .current_dir(d);
            let mut process = Process::spawn(format!("redis-server tls :{tls_port}"), command);
            if process.wait_for_output("Ready to accept connections", Duration::from_secs(20)) {
                return TlsRedisServer {
                    tls_port,
                    plain_port,
                    password,
                    _process: process,
                    dir,
                };
            }
            process.kill();
            last_output = process.output();
        }
        panic!("redis-server with TLS did not start; last output:\n{last_output}");
    }

    /// The PEM certificate of the CA that signed the server's certificate.
    pub fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("ca.crt")).unwrap()
    }

    /// `total_commands_processed` (TLS clients included), asked on the plain port.
    pub fn commands_processed(&self) -> u64 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.plain_port)).unwrap();
        let auth = format!(
            "*2\r\n$4\r\nAUTH\r\n${}\r\n{}\r\n*2\r\n$4\r\nINFO\r\n$5\r\nstats\r\n*1\r\n$4\r\nQUIT\r\n",
            self.password.len(),
            self.password
        );
        stream.write_all(auth.as_bytes()).unwrap();
        let mut reply = String::new();
        BufReader::new(&mut stream)
            .read_to_string(&mut reply)
            .unwrap();
        reply
            .lines()
            .find_map(|l| l.strip_prefix("total_commands_processed:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected reply from redis-server:\n{reply}"))
    }
}
