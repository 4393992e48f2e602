//! A spawned process (and everything it starts) with its output captured.

use rustix::process::{kill_process, kill_process_group, Pid, Signal};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait for the output pipes to close once the process exited (a leftover
/// grandchild may hold them open).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What a process printed, line by line, as it arrives.
#[derive(Default)]
struct Log {
    state: Mutex<LogState>,
    changed: Condvar,
}

#[derive(Default)]
struct LogState {
    stdout: String,
    stderr: String,
    /// Both streams interleaved in arrival order, stderr lines marked.
    combined: String,
    open_streams: usize,
}

impl Log {
    fn lock(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn capture(self: &Arc<Self>, stream: impl Read + Send + 'static, is_stderr: bool) {
        self.lock().open_streams += 1;
        let log = self.clone();
        thread::spawn(move || {
            let mut reader = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end_matches(['\n', '\r']);
                        let mut state = log.lock();
                        let (own, mark) = if is_stderr {
                            (&mut state.stderr, "[stderr] ")
                        } else {
                            (&mut state.stdout, "")
                        };
                        own.push_str(text);
                        own.push('\n');
                        state.combined.push_str(mark);
                        state.combined.push_str(text);
                        state.combined.push('\n');
                        log.changed.notify_all();
                    }
                }
            }
            log.lock().open_streams -= 1;
            log.changed.notify_all();
        });
    }

    /// Waits until `done` holds or `timeout` passes; returns whether it holds.
    fn wait_until(&self, timeout: Duration, done: impl Fn(&LogState) -> bool) -> bool {
        let state = self.lock();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| !done(s))
            .unwrap_or_else(|e| e.into_inner());
        done(&state)
    }
}

/// How a process ended, and what it printed.
#[derive(Debug)]
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// stdout and stderr interleaved, stderr lines prefixed with `[stderr] `.
    pub output: String,
    pub elapsed: Duration,
}

impl Exited {
    /// The exit code (`None` if killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// A running process in its own process group. Dropping it kills the whole group
/// (the process and its children); if the current thread is panicking (or
/// `KAR_TESTS_SHOW_OUTPUT` is set), the output is printed first so the test failure
/// shows it.
pub struct Process {
    name: String,
    pid: Pid,
    started: Instant,
    log: Arc<Log>,
    exit: mpsc::Receiver<(ExitStatus, Instant)>,
    /// The exit status and when the waiter saw it.
    ended: Option<(ExitStatus, Instant)>,
}

impl Process {
    /// Spawns `command` in a new process group with stdin closed and its output
    /// captured. `name` identifies it in failure messages.
    pub fn spawn(name: impl Into<String>, mut command: Command) -> Process {
        let name = name.into();
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({command:?}): {e}"));
        let pid = Pid::from_child(&child);
        let log = Arc::new(Log::default());
        if let Some(stdout) = child.stdout.take() {
            log.capture(stdout, false);
        }
        if let Some(stderr) = child.stderr.take() {
            log.capture(stderr, true);
        }
        // The waiter owns the child so that it is reaped as soon as it exits.
        let (tx, exit) = mpsc::channel();
        thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = tx.send((status, Instant::now()));
            }
        });
        Process {
            name,
            pid,
            started: Instant::now(),
            log,
            exit,
            ended: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get() as u32
    }

    /// Everything printed so far (stderr lines prefixed with `[stderr] `).
    pub fn output(&self) -> String {
        self.log.lock().combined.clone()
    }

    /// Waits until the output contains `needle`; returns false after `timeout`.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> bool {
        self.log
            .wait_until(timeout, |s| s.combined.contains(needle))
    }

    /// Waits until the output contains `needle`; panics with the output after `timeout`.
    pub fn expect_output(&self, needle: &str, timeout: Duration) {
        assert!(
            self.wait_for_output(needle, timeout),
            "{} did not print {needle:?} within {timeout:?}; output:\n{}",
            self.name,
            self.output()
        );
    }

    /// Waits until the process printed `line` as the end of a line (`kar run` prefixes
    /// its component's lines); panics with the output after `timeout`.
    pub fn expect_line(&self, line: &str, timeout: Duration) {
        self.expect_output(&format!("{line}\n"), timeout);
    }

    /// How many lines of the output so far contain `needle`.
    pub fn count_lines(&self, needle: &str) -> usize {
        self.output()
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Waits for the process to exit; `None` after `timeout` (the process keeps running).
    pub fn wait_with_timeout(&mut self, timeout: Duration) -> Option<Exited> {
        if self.ended.is_none() {
            self.ended = self.exit.recv_timeout(timeout).ok();
        }
        let (status, at) = self.ended?;
        let elapsed = at.duration_since(self.started);
        self.log.wait_until(DRAIN_TIMEOUT, |s| s.open_streams == 0);
        let state = self.log.lock();
        Some(Exited {
            status,
            stdout: state.stdout.clone(),
            stderr: state.stderr.clone(),
            output: state.combined.clone(),
            elapsed,
        })
    }

    /// Waits for the process to exit; after `timeout` kills it and panics with its output.
    pub fn wait(&mut self, timeout: Duration) -> Exited {
        match self.wait_with_timeout(timeout) {
            Some(exited) => exited,
            None => {
                self.kill();
                panic!(
                    "{} did not exit within {timeout:?}; last lines of its output:\n{}",
                    self.name,
                    tail(&self.output())
                );
            }
        }
    }

    /// Waits for the process to exit with status 0; panics with its output otherwise.
    pub fn expect_success(&mut self, timeout: Duration) -> Exited {
        let exited = self.wait(timeout);
        assert!(
            exited.status.success(),
            "{} failed ({}); last lines of its output:\n{}",
            self.name,
            describe(exited.status),
            tail(&exited.output)
        );
        exited
    }

    /// Panics if the process has exited (for servers that must outlive their clients).
    pub fn assert_running(&mut self) {
        if let Some(exited) = self.wait_with_timeout(Duration::ZERO) {
            panic!(
                "{} exited early ({}); last lines of its output:\n{}",
                self.name,
                describe(exited.status),
                tail(&exited.output)
            );
        }
    }

    /// Asks the process to stop (SIGTERM to the process itself, not its group: `kar run`
    /// stops its component) and waits for it; kills the group after `timeout`.
    pub fn terminate(&mut self, timeout: Duration) -> Option<Exited> {
        if self.ended.is_none() {
            let _ = kill_process(self.pid, Signal::TERM);
        }
        let exited = self.wait_with_timeout(timeout);
        if exited.is_none() {
            self.kill();
        }
        exited
    }

    /// `kill -9` of this process alone (for `kar run`: the sidecar; its component
    /// dies with it through its parent-death signal), then reaps it.
    pub fn kill_process_only(&mut self) {
        let _ = kill_process(self.pid, Signal::KILL);
        if self.ended.is_none() {
            self.ended = self.exit.recv_timeout(DRAIN_TIMEOUT).ok();
        }
    }

    /// SIGSTOP to this process alone: it freezes, its children keep running.
    pub fn stop(&self) {
        let _ = kill_process(self.pid, Signal::STOP);
    }

    /// SIGCONT to this process alone.
    pub fn resume(&self) {
        let _ = kill_process(self.pid, Signal::CONT);
    }

    /// The pids of this process's direct children (for `kar run`: its component).
    pub fn child_pids(&self) -> Vec<u32> {
        let pid = self.pid();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// `kill -9` of this process's children only (for `kar run`: the component,
    /// while the sidecar lives on). Returns how many were signalled.
    pub fn kill_children(&self) -> usize {
        let children = self.child_pids();
        for child in &children {
            if let Some(pid) = Pid::from_raw(*child as i32) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
        children.len()
    }

    /// Kills the whole process group and reaps the process.
    pub fn kill(&mut self) {
        let _ = kill_process_group(self.pid, Signal::KILL);
        if self.ended.is_none() {
            self.ended = self.exit.recv_timeout(DRAIN_TIMEOUT).ok();
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if thread::panicking() || std::env::var_os("KAR_TESTS_SHOW_OUTPUT").is_some() {
            eprintln!(
                "----- output of {} (pid {}) -----\n{}----- end of {} -----",
                self.name,
                self.pid(),
                self.output(),
                self.name
            );
        }
    }
}

/// Whether `pid` runs no code any more: it is gone, or a zombie nobody reaped yet.
pub fn pid_is_gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.trim_start().chars().next()
        })
        .is_none_or(|state| state == 'Z' || state == 'X')
}

/// Waits for every client to exit with status 0 within `timeout` (in total) while every
/// server keeps running; panics at the first failure, naming the process.
pub fn expect_clients(clients: &mut [Process], servers: &mut [Process], timeout: Duration) {
    // Short waits so that a server dying (say, failing to start) fails the test at once
    // instead of leaving its clients waiting for it until the timeout.
    const SLICE: Duration = Duration::from_millis(100);
    let deadline = Instant::now() + timeout;
    let mut pending: Vec<&mut Process> = clients.iter_mut().collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for client in pending {
            match client.wait_with_timeout(SLICE) {
                Some(exited) => assert!(
                    exited.status.success(),
                    "{} failed ({}); last lines of its output:\n{}",
                    client.name,
                    describe(exited.status),
                    tail(&exited.output)
                ),
                None => still.push(client),
            }
        }
        pending = still;
        for server in servers.iter_mut() {
            server.assert_running();
        }
        if Instant::now() > deadline {
            for client in &mut pending {
                client.kill();
            }
            let names: Vec<&str> = pending.iter().map(|c| c.name()).collect();
            panic!("still running after {timeout:?}: {names:?}");
        }
    }
}

/// The last lines of an output, for panic messages (the whole output of every process
/// of a failed test is printed when its handle drops).
fn tail(output: &str) -> String {
    const LINES: usize = 20;
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}

/// `exit code N` or `killed by signal N`.
pub(crate) fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => status.to_string(),
    }
}
