//! The application component launched by `kar run -- COMMAND` (spec §5.3): it inherits
//! our environment and stdin, and its stdout/stderr lines are relayed to our stdout as
//! `<timestamp> [STDOUT] <line>` / `[STDERR] <line>`.

use crate::logging;
use std::io::{BufRead, BufReader, Read};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

/// Longest line relayed as one log line; longer ones are split. Go's scanner stops
/// the relay at 64 KiB instead; splitting keeps the output flowing with bounded memory.
const MAX_LINE: usize = 1 << 20;

/// How long to wait, once the child has exited, for the rest of its output. Only a
/// grandchild that inherited the pipes can hold them open longer.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

pub struct RunningChild {
    child: Child,
    relays: Vec<oneshot::Receiver<()>>,
}

/// Starts `command` (program and arguments) with `extra_env` added to our environment.
pub fn spawn(command: &[String], extra_env: &[(&str, String)]) -> std::io::Result<RunningChild> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"))?;
    let (kar, argv) = crate::orphan::wrap(&crate::orphan::resolve(program)?, args)?;
    let mut child = Command::new(kar)
        .args(argv)
        .envs(extra_env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut relays = Vec::new();
    if let Some(out) = child.stdout.take() {
        relays.push(relay(out.into_owned_fd()?, "STDOUT"));
    }
    if let Some(err) = child.stderr.take() {
        relays.push(relay(err.into_owned_fd()?, "STDERR"));
    }
    Ok(RunningChild { child, relays })
}

impl RunningChild {
    /// Waits for the child to exit, then for its remaining output to be relayed.
    /// Cancel-safe: the child keeps running if the future is dropped.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        let drained = futures_join(std::mem::take(&mut self.relays));
        if tokio::time::timeout(DRAIN_TIMEOUT, drained).await.is_err() {
            tracing::debug!(
                "the service's output is still open after it exited; not waiting for it"
            );
        }
        Ok(status)
    }

    /// Kills the child with SIGKILL (spec §4.9: no grace period on SIGINT/SIGTERM).
    pub fn kill(&mut self) {
        if let Err(e) = self.child.start_kill() {
            // Already reaped or gone: nothing left to kill.
            tracing::debug!("cannot kill the service: {e}");
        }
    }
}

async fn futures_join(relays: Vec<oneshot::Receiver<()>>) {
    for relay in relays {
        // An error only means the relay thread ended without saying so.
        let _ = relay.await;
    }
}

/// The exit code `kar run` reports for a child that ended on its own: its own code,
/// or 128 + the signal that killed it (the shell's convention), so that a component
/// that crashed (SIGSEGV, SIGABRT, the OOM killer's SIGKILL...) never looks like
/// success to a supervisor. Upstream KAR exits 0 then. (When `kar run` itself kills
/// the child on SIGINT/SIGTERM it exits 0: that is decided by the caller.)
pub fn exit_code(status: &ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        // Stopped or continued: not an end, and `wait` does not report those.
        (None, None) => 1,
    }
}

/// Whether the child died of a signal that stopping `kar run` involves: the SIGKILL
/// of [`RunningChild::kill`], or SIGINT/SIGTERM sent to the whole process group.
pub fn ended_by_stop_signal(status: &ExitStatus) -> bool {
    use rustix::process::Signal;
    use std::os::unix::process::ExitStatusExt;
    let stops = [Signal::KILL, Signal::INT, Signal::TERM].map(Signal::as_raw);
    status
        .signal()
        .is_some_and(|signal| stops.contains(&signal))
}

/// Whether the child died of SIGINT or SIGTERM (the signals of a stop).
pub fn died_of_interrupt(status: &ExitStatus) -> bool {
    use rustix::process::Signal;
    use std::os::unix::process::ExitStatusExt;
    let stops = [Signal::INT, Signal::TERM].map(Signal::as_raw);
    status
        .signal()
        .is_some_and(|signal| stops.contains(&signal))
}

/// The name of signal `number` for the logs (`SIGSEGV`), or its number.
pub fn signal_name(number: i32) -> String {
    let name = match number {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        5 => "SIGTRAP",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        10 => "SIGUSR1",
        11 => "SIGSEGV",
        12 => "SIGUSR2",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => return format!("signal {number}"),
    };
    name.to_string()
}

/// Relays `stream` line by line on a thread of its own, so that a slow stdout never
/// blocks the async runtime. The receiver resolves at end of stream.
fn relay(stream: impl Into<std::fs::File>, tag: &'static str) -> oneshot::Receiver<()> {
    let (done_tx, done_rx) = oneshot::channel();
    let file: std::fs::File = stream.into();
    let spawned = std::thread::Builder::new()
        .name(format!("relay-{}", tag.to_ascii_lowercase()))
        .spawn(move || {
            relay_lines(file, |line| logging::write_line(tag, line));
            let _ = done_tx.send(());
        });
    if let Err(e) = spawned {
        tracing::error!("cannot relay the service's {tag}: {e}");
    }
    done_rx
}

/// Calls `emit` with every line of `input` (without its `\n` or `\r\n`), splitting
/// lines longer than [`MAX_LINE`]; a last line without newline is emitted too.
fn relay_lines(input: impl Read, mut emit: impl FnMut(&[u8])) {
    let mut reader = BufReader::new(input);
    let mut line = Vec::new();
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!("stopped reading the service's output: {e}");
                break;
            }
        };
        if buf.is_empty() {
            if !line.is_empty() {
                emit(&line);
            }
            return;
        }
        let room = MAX_LINE - line.len();
        let (take, complete) = match buf.iter().take(room).position(|b| *b == b'\n') {
            Some(pos) => (pos + 1, true),
            None => (buf.len().min(room), buf.len() >= room),
        };
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if complete {
            if line.last() == Some(&b'\n') {
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
            }
            emit(&line);
            line.clear();
        }
    }
    if !line.is_empty() {
        emit(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        relay_lines(input, |l| out.push(l.to_vec()));
        out
    }

    #[test]
    fn splits_lines() {
        assert_eq!(
            lines(b"a\nb\r\n\nc"),
            vec![b"a".to_vec(), b"b".to_vec(), vec![], b"c".to_vec()]
        );
        assert!(lines(b"").is_empty());
        assert_eq!(lines(b"\xff\xfe\n"), vec![b"\xff\xfe".to_vec()]);
    }

    #[test]
    fn splits_overlong_lines() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.push(b'\n');
        let out = lines(&input);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), MAX_LINE);
        assert_eq!(out[1].len(), 10);
    }

    #[test]
    fn exit_codes() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(exit_code(&ExitStatus::from_raw(3 << 8)), 3);
        assert_eq!(exit_code(&ExitStatus::from_raw(0)), 0);
        // Killed by SIGKILL, by SIGSEGV (with a core dump): 128 + signal.
        assert_eq!(exit_code(&ExitStatus::from_raw(9)), 137);
        assert_eq!(exit_code(&ExitStatus::from_raw(11 | 0x80)), 139);
        assert!(ended_by_stop_signal(&ExitStatus::from_raw(9)));
        assert!(ended_by_stop_signal(&ExitStatus::from_raw(15)));
        assert!(ended_by_stop_signal(&ExitStatus::from_raw(2)));
        assert!(!ended_by_stop_signal(&ExitStatus::from_raw(11 | 0x80)));
        assert!(!ended_by_stop_signal(&ExitStatus::from_raw(3 << 8)));
        assert_eq!(signal_name(6), "SIGABRT");
        assert_eq!(signal_name(64), "signal 64");
    }
}
