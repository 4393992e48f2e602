//! Process tests of the `kar` binary: exit codes, usage, log layout, the child relay
//! of `kar run`, and `kar rest` / `kar get` / `kar purge` against a real sidecar with
//! the embedded store in a temporary `KAR_HOME`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const KAR: &str = env!("CARGO_BIN_EXE_kar");

/// Variables that would change which store or ports `kar` uses.
const INHERITED: &[&str] = &[
    "KAR_HOME",
    "KAR_RUNTIME_PORT",
    "KAR_APP_PORT",
    "KAR_REQUEST_TIMEOUT",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_USER",
    "REDIS_PASSWORD",
    "REDIS_ENABLE_TLS",
    "KAFKA_BROKERS",
];

struct Home(tempfile::TempDir);

impl Home {
    fn new() -> Home {
        Home(tempfile::tempdir().unwrap())
    }

    fn kar(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(KAR);
        for var in INHERITED {
            cmd.env_remove(var);
        }
        cmd.env("KAR_HOME", self.0.path()).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    fn output(&self, args: &[&str]) -> Output {
        self.kar(args).output().unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `YYYY/MM/DD HH:MM:SS.uuuuuu [TAG] rest`
fn log_line<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    let bytes = line.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        range
            .into_iter()
            .all(|i| bytes.get(i).is_some_and(u8::is_ascii_digit))
    };
    let layout = digits(0..4)
        && bytes.get(4) == Some(&b'/')
        && digits(5..7)
        && bytes.get(7) == Some(&b'/')
        && digits(8..10)
        && bytes.get(10) == Some(&b' ')
        && digits(11..13)
        && bytes.get(13) == Some(&b':')
        && digits(14..16)
        && bytes.get(16) == Some(&b':')
        && digits(17..19)
        && bytes.get(19) == Some(&b'.')
        && digits(20..26)
        && bytes.get(26) == Some(&b' ');
    if !layout {
        return None;
    }
    line[27..].strip_prefix(&format!("[{tag}] "))
}

fn assert_single_fatal(o: &Output, expected_prefix: &str) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "stdout: {}\nstderr: {}",
        stdout(o),
        stderr(o)
    );
    let out = stdout(o);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got:\n{out}");
    let message = log_line(lines[0], "FATAL").unwrap_or_else(|| panic!("not a FATAL line: {out}"));
    assert!(message.starts_with(expected_prefix), "{message}");
}

#[test]
fn version() {
    let o = Home::new().output(&["version"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), format!("{}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_goes_to_stdout() {
    let home = Home::new();
    for args in [&["help"][..], &["-h"], &["--help"], &["-help"], &["--h"]] {
        let o = home.output(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        let out = stdout(&o);
        assert!(out.starts_with("Usage:\n  kar COMMAND"), "{out}");
        assert!(out.contains("Use \"kar COMMAND -h\" for more information about a command"));
        assert!(o.stderr.is_empty());
    }
    for args in [&["run", "-h"][..], &["run", "--help"], &["help", "run"]] {
        let o = home.output(args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        let out = stdout(&o);
        assert!(out.starts_with("Usage:\n  kar run [OPTIONS]"), "{out}");
        assert!(out.contains("\nOptions:\n") && out.contains("\nGlobal Options:\n"));
    }
}

#[test]
fn missing_or_unknown_command_exits_2() {
    let home = Home::new();
    for args in [&[][..], &["frobnicate"], &["-app", "x"]] {
        let o = home.output(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = stderr(&o);
        assert!(err.starts_with("invalid command\nUsage:\n"), "{err}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn bad_flags_exit_2() {
    let home = Home::new();
    let o = home.output(&["run", "-app", "x", "-bogus"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.starts_with("flag provided but not defined: -bogus\nUsage:\n  kar run"),
        "{err}"
    );
    assert!(o.stdout.is_empty());

    let o = home.output(&[
        "rest",
        "-missing_component_timeout",
        "soon",
        "GET",
        "s",
        "/",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o)
        .starts_with("invalid value \"soon\" for flag -missing_component_timeout: parse error\n"));

    let o = home.output(&["run", "-h2c=maybe"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).starts_with("invalid boolean value \"maybe\" for -h2c: parse error\n"));
}

#[test]
fn app_is_required() {
    let o = Home::new().output(&["run"]);
    assert_single_fatal(&o, "app name is required");
    assert!(o.stderr.is_empty());
}

#[test]
fn run_relays_child_output_and_exit_code() {
    let home = Home::new();
    let script = "echo hi; echo err >&2; \
                  echo \"rp=$KAR_RUNTIME_PORT ap=$KAR_APP_PORT rt=$KAR_REQUEST_TIMEOUT\"; \
                  printf 'no newline'; exit 3";
    let o = home.output(&["run", "-app", "x", "--", "sh", "-c", script]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(3), "{out}{}", stderr(&o));
    let relayed: Vec<(&str, &str)> = out
        .lines()
        .filter_map(|l| {
            log_line(l, "STDOUT")
                .map(|m| ("STDOUT", m))
                .or_else(|| log_line(l, "STDERR").map(|m| ("STDERR", m)))
        })
        .collect();
    assert!(relayed.contains(&("STDOUT", "hi")), "{out}");
    assert!(relayed.contains(&("STDERR", "err")), "{out}");
    assert!(relayed.contains(&("STDOUT", "no newline")), "{out}");
    let ports = relayed
        .iter()
        .find_map(|(_, m)| m.strip_prefix("rp="))
        .unwrap_or_else(|| panic!("no env line in {out}"));
    let (runtime_port, rest) = ports.split_once(' ').unwrap();
    assert!(runtime_port.parse::<u16>().unwrap() > 0);
    assert_eq!(rest, "ap=8080 rt=-1000");
    // At the default level only the relayed lines appear.
    assert_eq!(relayed.len(), out.lines().count(), "{out}");
}

#[test]
fn run_exports_configured_ports_and_timeout() {
    let home = Home::new();
    let o = home
        .kar(&[
            "run",
            "-app",
            "x",
            "-request_retry_limit",
            "1.5s",
            "--",
            "sh",
            "-c",
            "echo \"$KAR_APP_PORT $KAR_REQUEST_TIMEOUT\"",
        ])
        .env("KAR_APP_PORT", "9123")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| log_line(l, "STDOUT") == Some("9123 1500")),
        "{out}"
    );
}

#[test]
fn run_reports_child_start_failure() {
    let o = Home::new().output(&["run", "-app", "x", "--", "/nonexistent/program"]);
    assert_single_fatal(&o, "failed to start service /nonexistent/program");
}

#[test]
fn unreachable_redis_is_one_fatal_line_quickly() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let start = Instant::now();
    let o = Home::new()
        .kar(&["run", "-app", "x", "--", "true"])
        .env("REDIS_HOST", "127.0.0.1")
        .env("REDIS_PORT", port.to_string())
        .output()
        .unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    assert_single_fatal(&o, "");
}

#[test]
fn busy_runtime_port_is_fatal() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = Home::new().output(&["run", "-app", "x", "-runtime_port", &port, "--", "true"]);
    assert_single_fatal(&o, "TCP listener failed: ");
}

#[test]
fn cooperative_shutdown_waits_for_the_child() {
    // The child asks for shutdown, reads the answer, and only then exits with 4: kar
    // must neither kill it nor exit before it.
    let script = "exec 3<>/dev/tcp/127.0.0.1/$KAR_RUNTIME_PORT; \
                  printf 'POST /kar/v1/system/shutdown HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n' >&3; \
                  head -n 1 <&3; echo after; exit 4";
    let o = Home::new().output(&["run", "-app", "x", "--", "bash", "-c", script]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(4), "{out}{}", stderr(&o));
    let relayed: Vec<&str> = out.lines().filter_map(|l| log_line(l, "STDOUT")).collect();
    assert_eq!(relayed, vec!["HTTP/1.1 200 OK", "after"], "{out}");
}

/// A `kar run` in the background whose stdout lines are collected.
struct Background {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Background {
    fn start(mut cmd: Command) -> Background {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Background {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle` and returns it.
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!("no line with {needle:?} ({e}); got {:#?}", self.seen),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait(&mut self) -> Option<i32> {
        self.child.wait().unwrap().code()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `kar run -app x <flags> -- sh` whose child prints its pid and sleeps; returns the
/// run and the child's pid once it printed it.
fn run_sleeping_child(home: &Home, flags: &[&str]) -> (Background, String) {
    let mut args = vec!["run", "-app", "x"];
    args.extend_from_slice(flags);
    args.extend(["--", "sh", "-c", "echo pid=$$; exec sleep 600"]);
    let mut run = Background::start(home.kar(&args));
    let line = run.wait_for("[STDOUT] pid=");
    let pid = line.rsplit("pid=").next().unwrap().to_string();
    (run, pid)
}

#[test]
fn sigterm_kills_the_child_and_exits() {
    let home = Home::new();
    let (mut run, pid) = run_sleeping_child(&home, &["-v", "info"]);
    run.signal("TERM");
    assert_eq!(run.wait(), Some(0));
    run.wait_for("service was interrupted");
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the child {pid} is still alive"
    );
}

/// A component's port served by the test: every request's path is sent to `paths`,
/// and the request is never answered (the component "runs" it until it dies).
fn hanging_app_port(paths: mpsc::Sender<(usize, String)>, replica: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let mut line = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            let path = line.split(' ').nth(1).unwrap_or_default().to_string();
            held.push(stream);
            if paths.send((replica, path)).is_err() {
                break;
            }
        }
    });
    port
}

/// A replica of service `s` whose component (a shell, pid printed) exits with 3 on
/// SIGUSR1; its port is served by the test (see `hanging_app_port`).
fn crash_replica(home: &Home, app_port: u16) -> (Background, String) {
    let port = app_port.to_string();
    let script = "trap 'kill $s; exit 3' USR1; sleep 600 >/dev/null 2>&1 & s=$!; \
                  echo pid=$$; wait $s";
    let mut run = Background::start(home.kar(&[
        "run",
        "-app",
        "x",
        "-service",
        "s",
        "-app_port",
        &port,
        "-v",
        "info",
        "--",
        "sh",
        "-c",
        script,
    ]));
    let line = run.wait_for("[STDOUT] pid=");
    let pid = line.rsplit("pid=").next().unwrap().to_string();
    (run, pid)
}

/// `kill -SIGNAL PID` (a negative PID names a process group).
fn kill(signal: &str, pid: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), "--", pid])
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_component_that_dies_running_a_request_sets_the_exit_code() {
    // Two replicas of `s`; a call to `/crash` reaches one of them, whose component then
    // exits with 3 (it is running the request); the request goes to the other replica,
    // whose component is then killed by SIGKILL from outside (as the OOM killer would).
    // Each `kar run` must exit with its component's status: 3, and 128 + 9.
    let home = Home::new();
    let (paths, received) = mpsc::channel();
    let mut replicas = [
        crash_replica(&home, hanging_app_port(paths.clone(), 0)),
        crash_replica(&home, hanging_app_port(paths, 1)),
    ];
    let _caller = Background::start(home.kar(&["rest", "-app", "x", "post", "s", "/crash"]));
    for (signal, code, log) in [
        ("USR1", 3, "service exited with status code 3"),
        ("KILL", 137, "service was killed by SIGKILL"),
    ] {
        let (replica, path) = received.recv_timeout(Duration::from_secs(20)).unwrap();
        assert_eq!(path, "/crash");
        let (run, pid) = &mut replicas[replica];
        kill(signal, pid);
        assert_eq!(run.wait(), Some(code), "{:#?}", run.seen);
        run.wait_for(log);
    }
}

#[test]
fn sigint_kills_the_child_and_exits_0() {
    let home = Home::new();
    let (mut run, pid) = run_sleeping_child(&home, &["-v", "info"]);
    run.signal("INT");
    assert_eq!(run.wait(), Some(0));
    run.wait_for("service was interrupted");
    assert!(is_dead(&pid), "the child {pid} is still alive");
}

#[test]
fn sigterm_to_the_process_group_exits_0() {
    // systemd and `docker stop` signal the component too: it dies of the SIGTERM
    // before kar kills it, and that is still the stop, not a crash.
    use std::os::unix::process::CommandExt;
    let home = Home::new();
    let mut cmd = home.kar(&["run", "-app", "x", "-v", "info", "--", "sh", "-c"]);
    cmd.arg("echo pid=$$; exec sleep 600").process_group(0);
    let mut run = Background::start(cmd);
    let line = run.wait_for("[STDOUT] pid=");
    let pid = line.rsplit("pid=").next().unwrap().to_string();
    kill("TERM", &format!("-{}", run.child.id()));
    assert_eq!(run.wait(), Some(0), "{:#?}", run.seen);
    run.wait_for("service was interrupted");
    assert!(is_dead(&pid), "the child {pid} is still alive");
}

/// Whether `pid` is gone (or a zombie: dead, waiting to be reaped by init).
fn is_dead(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn the_component_dies_with_a_killed_sidecar() {
    let home = Home::new();
    let (mut run, pid) = run_sleeping_child(&home, &[]);
    assert!(!is_dead(&pid));
    run.signal("KILL");
    run.wait();
    // The kernel delivers the parent-death signal as the sidecar exits; the child's
    // death follows within moments (bounded wait for an event we cannot subscribe to).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !is_dead(&pid) {
        assert!(
            Instant::now() < deadline,
            "the component {pid} outlived its sidecar"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn run_without_command_stops_on_shutdown_route() {
    let home = Home::new();
    let mut run = Background::start(home.kar(&["run", "-app", "x", "-v", "info"]));
    let port = runtime_port(&mut run);
    let response = http(port, "POST", "/kar/v1/system/shutdown", "");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(run.wait(), Some(0));
}

fn runtime_port(run: &mut Background) -> u16 {
    let line = run.wait_for("KAR_RUNTIME_PORT=");
    let port = line.split("KAR_RUNTIME_PORT=").nth(1).unwrap();
    port.split(' ').next().unwrap().parse().unwrap()
}

/// One HTTP/1.1 request with `Connection: close`; returns the raw response.
fn http(port: u16, method: &str, path: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A minimal HTTP/1.1 service: `/echo` answers 200 with `<method> <path> <body>`
/// (and the request's Content-Type), anything else 404 `no such page`.
fn start_service() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            std::thread::spawn(move || serve_connection(stream));
        }
    });
    port
}

fn serve_connection(stream: TcpStream) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        let mut content_type = String::from("-");
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "content-type" => content_type = value.trim().to_string(),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut parts = request_line.split(' ');
        let method = parts.next().unwrap().to_string();
        let path = parts.next().unwrap().to_string();
        let (status, text) = if path.starts_with("/echo") {
            (
                "200 OK",
                format!(
                    "{method} {path} {content_type} {}",
                    String::from_utf8_lossy(&body)
                ),
            )
        } else {
            ("404 Not Found", "no such page".to_string())
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn rest_get_and_purge_against_a_running_service() {
    let home = Home::new();
    let app_port = start_service().to_string();
    let mut run = Background::start(home.kar(&[
        "run",
        "-app",
        "shop",
        "-service",
        "echoer",
        "-app_port",
        &app_port,
        "-v",
        "info",
    ]));
    let runtime_port = runtime_port(&mut run);

    let o = home.output(&[
        "rest",
        "-app",
        "shop",
        "post",
        "echoer",
        "echo/x?q=1",
        "hello",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(stdout(&o), "POST /echo/x?q=1 application/json hello\n");

    let o = home.output(&[
        "rest",
        "-app",
        "shop",
        "-content_type",
        "text/plain",
        "PUT",
        "echoer",
        "/echo",
        "b",
    ]);
    assert_eq!(stdout(&o), "PUT /echo text/plain b\n");

    let o = home.output(&["rest", "-app", "shop", "GET", "echoer", "/echo"]);
    assert_eq!(stdout(&o), "GET /echo - \n");

    let o = home.output(&["rest", "-app", "shop", "GET", "echoer", "/missing"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(o.stdout.is_empty());
    assert_eq!(
        stderr(&o),
        "[STDERR] HTTP status: 404\n[STDERR] no such page\n"
    );

    let o = home.output(&["rest", "-app", "shop", "GET", "echoer"]);
    assert_single_fatal(&o, "rest expects either three or four arguments; got 2");

    // A service nobody offers fails at its start deadline.
    let o = home.output(&[
        "rest",
        "-app",
        "shop",
        "-missing_component_timeout",
        "200ms",
        "GET",
        "nobody",
        "/",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let message = log_line(out.trim_end(), "ERROR").unwrap_or_else(|| panic!("{out}"));
    assert!(
        message.starts_with("error invoking the service: deadline expired"),
        "{message}"
    );

    let o = home.output(&["get", "-app", "shop", "-s", "sidecars", "-o", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let topology: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let nodes = topology.as_object().unwrap();
    let sidecar = nodes
        .values()
        .find(|n| n["services"] == serde_json::json!(["echoer"]))
        .unwrap_or_else(|| panic!("{topology}"));
    assert_eq!(sidecar["port"], runtime_port);
    assert_eq!(sidecar["actors"], serde_json::json!([]));

    let o = home.output(&["get", "-app", "shop", "-s", "Sidecars"]);
    let out = stdout(&o);
    assert!(
        out.starts_with("\nSidecar : host : port \n : Actors\n : Services\n"),
        "{out}"
    );
    assert!(
        out.contains(&format!(":{runtime_port}\n : []\n : [echoer]\n")),
        "{out}"
    );

    let o = home.output(&["get", "-app", "shop", "-s", "nonsense"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        log_line(stdout(&o).trim_end(), "ERROR"),
        Some("invalid argument nonsense to call Inform")
    );

    run.signal("INT");
    assert_eq!(run.wait(), Some(0));

    let o = home.output(&["purge", "-app", "shop", "-v", "info"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(
        out.lines()
            .any(|l| log_line(l, "INFO").is_some_and(|m| m.ends_with(" deleted keys"))),
        "{out}"
    );
}

#[test]
fn get_lists_reminders_and_subscriptions() {
    let home = Home::new();
    // A sidecar without a component: the reminders are far in the future and no event
    // is published, so nothing is delivered; the routes only write the store.
    let mut run = Background::start(home.kar(&["run", "-app", "sched", "-v", "info"]));
    let port = runtime_port(&mut run);
    for (actor, id, body) in [
        (
            "B/2",
            "r1",
            r#"{"path":"/tick","targetTime":"2100-01-02T03:04:05Z","period":"1h","data":["p",7]}"#,
        ),
        (
            "A/1",
            "r2",
            r#"{"path":"/once","targetTime":"2100-01-01T00:00:00Z"}"#,
        ),
        (
            "A/1",
            "r0",
            r#"{"path":"/x","targetTime":"2100-01-01T00:00:00Z"}"#,
        ),
    ] {
        let response = http(
            port,
            "PUT",
            &format!("/kar/v1/actor/{actor}/reminders/{id}"),
            body,
        );
        assert!(response.starts_with("HTTP/1.1 204"), "{response}");
    }
    let response = http(
        port,
        "PUT",
        "/kar/v1/actor/A/1/events/s1",
        r#"{"path":"/on","topic":"news","group":"g"}"#,
    );
    assert!(response.starts_with("HTTP/1.1 204"), "{response}");

    let o = home.output(&["get", "-app", "sched", "-s", "reminders"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        "A[1] r0 path=/x targetTime=2100-01-01T00:00:00Z\n\
         A[1] r2 path=/once targetTime=2100-01-01T00:00:00Z\n\
         B[2] r1 path=/tick targetTime=2100-01-02T03:04:05Z period=1h0m0s data=[\"p\",7]\n"
    );
    let o = home.output(&[
        "get",
        "-app",
        "sched",
        "-s",
        "Reminders",
        "-t",
        "B",
        "-o",
        "json",
    ]);
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{
            "Actor": {"Type": "B", "ID": "2"},
            "id": "r1",
            "path": "/tick",
            "targetTime": "2100-01-02T03:04:05Z",
            "period": 3_600_000_000_000_i64,
            "encodedData": "[\"p\",7]"
        }])
    );
    let o = home.output(&[
        "get",
        "-app",
        "sched",
        "-s",
        "reminders",
        "-t",
        "A",
        "-i",
        "2",
    ]);
    assert_eq!(stdout(&o), "");

    let o = home.output(&["get", "-app", "sched", "-s", "subscriptions"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "A[1] s1 topic=news path=/on group=g\n");
    let o = home.output(&["get", "-app", "sched", "-s", "events", "-o", "json"]);
    let listed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{
            "actor": {"Type": "A", "ID": "1"},
            "id": "s1",
            "path": "/on",
            "topic": "news",
            "group": "g",
            "oldestoffset": false
        }])
    );
    // Another application sees none of them.
    let o = home.output(&["get", "-app", "other", "-s", "reminders", "-o", "json"]);
    assert_eq!(stdout(&o), "[]\n");

    run.signal("INT");
    assert_eq!(run.wait(), Some(0));
}

/// `POST` of a tell (`Pragma: async`) through a sidecar.
fn tell(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: x\r\nPragma: async\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn drain_deletes_pending_requests_and_keeps_state() {
    let home = Home::new();
    // A sidecar without a component: it writes state and sends a tell to a service
    // nobody offers (parked).
    let mut run = Background::start(home.kar(&["run", "-app", "depot", "-v", "info"]));
    let port = runtime_port(&mut run);
    let response = http(port, "PUT", "/kar/v1/actor/Box/1/state/k", "7");
    assert!(response.starts_with("HTTP/1.1 20"), "{response}");
    let response = tell(port, "/kar/v1/service/nobody/call/x");
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");

    // Refused while the sidecar is live; nothing changes.
    let o = home.output(&["drain", "-app", "depot"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        stderr(&o),
        "refusing to drain application depot: 1 sidecar of it live \
         (stop them first, or use -force)\n"
    );
    assert!(o.stdout.is_empty());

    run.signal("INT");
    assert_eq!(run.wait(), Some(0));
    let o = home.output(&["drain", "-app", "depot"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "drained 1 pending requests\n");
    let o = home.output(&["drain", "-app", "depot"]);
    assert_eq!(stdout(&o), "drained 0 pending requests\n");
    let o = home.output(&[
        "get", "-app", "depot", "-s", "actors", "-t", "Box", "-i", "1",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"k\": 7"), "{}", stdout(&o));

    // -force drains while a sidecar is live.
    let mut run = Background::start(home.kar(&["run", "-app", "depot", "-v", "info"]));
    let port = runtime_port(&mut run);
    let response = tell(port, "/kar/v1/service/nobody/call/y");
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");
    let o = home.output(&["drain", "-app", "depot", "-force"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o), "drained 1 pending requests\n");
    run.signal("INT");
    assert_eq!(run.wait(), Some(0));
    let o = home.output(&[
        "get", "-app", "depot", "-s", "actors", "-t", "Box", "-i", "1",
    ]);
    assert!(stdout(&o).contains("\"k\": 7"), "{}", stdout(&o));
}
