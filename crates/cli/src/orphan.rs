//! The component must not outlive its sidecar: if `kar run` is killed (even with
//! SIGKILL), the mesh re-runs the component's requests elsewhere, and a component
//! still running them here would make two attempts overlap.
//!
//! Linux's parent-death signal does this, but it must be set in the child between
//! `fork` and `exec`, which std only allows through an `unsafe` hook. Instead `kar`
//! starts the component through itself: `kar __component <sidecar pid> -- COMMAND...`
//! sets the signal on itself (a safe call) and then `exec`s COMMAND, which keeps it.

use rustix::process::Signal;
use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// The hidden command name.
pub const COMMAND: &str = "__component";

/// The command line that starts `program args...` as an orphan-proof component of
/// this process.
pub fn wrap(program: &Path, args: &[String]) -> std::io::Result<(PathBuf, Vec<OsString>)> {
    let kar = std::env::current_exe()?;
    let mut argv: Vec<OsString> = vec![
        COMMAND.into(),
        std::process::id().to_string().into(),
        "--".into(),
        program.as_os_str().to_owned(),
    ];
    argv.extend(args.iter().map(OsString::from));
    Ok((kar, argv))
}

/// `kar __component <sidecar pid> -- COMMAND...`: never returns on success.
pub fn exec_component(args: &[String]) -> i32 {
    let [sidecar, dashes, program, rest @ ..] = args else {
        eprintln!("usage: kar {COMMAND} <sidecar pid> -- COMMAND [ARGS...]");
        return 2;
    };
    if dashes != "--" {
        eprintln!("usage: kar {COMMAND} <sidecar pid> -- COMMAND [ARGS...]");
        return 2;
    }
    if let Err(e) = rustix::process::set_parent_process_death_signal(Some(Signal::KILL)) {
        eprintln!("cannot tie the component to its sidecar: {e}");
        return 1;
    }
    // The sidecar may have died before the signal was set: then nobody would kill us.
    let parent = rustix::process::getppid().map(|pid| pid.as_raw_nonzero().get().to_string());
    if parent.as_deref() != Some(sidecar.as_str()) {
        return 1;
    }
    let error = std::process::Command::new(program).args(rest).exec();
    eprintln!("failed to start {program}: {error}");
    127
}

/// Resolves `program` like `execvp` would, so that a missing program is reported by
/// the sidecar itself (`[FATAL]`, exit 1) rather than by the wrapper.
pub fn resolve(program: &str) -> std::io::Result<PathBuf> {
    let not_found = || {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("executable file not found: {program}"),
        )
    };
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(not_found())
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(not_found)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
