//! Where the `kar` binary, the test apps and their interpreters are.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Once;

const SETUP_HINT: &str =
    "run `scripts/setup-test-deps.sh && cargo build -p kar --features fault-injection` before `cargo test -p kar-tests`";

/// The root of the workspace.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// `tests/apps`.
pub fn apps_dir() -> PathBuf {
    repo_root().join("tests").join("apps")
}

/// The `kar` binary built by the workspace build (or `cargo build -p kar --features
/// fault-injection`, for the fault hooks of bank_faults) into the same target
/// directory and profile as this test (`$KAR_BIN` overrides). Panics with the build command if it
/// is missing.
pub fn kar_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("KAR_BIN") {
        return PathBuf::from(bin);
    }
    // The test executable is <target>/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("path of the test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable lives in <target>/<profile>/deps");
    let bin = profile_dir.join("kar");
    assert!(
        bin.is_file(),
        "the kar binary {} is missing: {SETUP_HINT} (or set KAR_BIN)",
        bin.display()
    );
    static WARNED: Once = Once::new();
    WARNED.call_once(|| warn_if_stale(&bin));
    bin
}

/// Warns (shown with the output of failed tests) when a source file of the workspace
/// crates is newer than the binary: the tests would run yesterday's `kar`.
fn warn_if_stale(bin: &Path) {
    let Ok(built) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return;
    };
    let mut newer = None;
    let mut dirs = vec![repo_root().join("crates")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.metadata() {
                Ok(m) if m.is_dir() => dirs.push(path),
                Ok(m) if m.modified().is_ok_and(|t| t > built) => newer = Some(path),
                _ => {}
            }
        }
    }
    if let Some(path) = newer {
        eprintln!(
            "warning: {} is older than {}: run `cargo build -p kar --features fault-injection` to test the current code",
            bin.display(),
            path.display()
        );
    }
}

fn require(path: PathBuf, what: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{what} {} is missing: {SETUP_HINT}",
        path.display()
    );
    path
}

/// `node tests/apps/js/<script> <args>`, checking that the npm packages are installed.
pub fn node(script: &str, args: &[&str]) -> Vec<OsString> {
    let js = apps_dir().join("js");
    require(js.join("node_modules").join("kar-sdk"), "npm package");
    let mut argv: Vec<OsString> = vec!["node".into(), require(js.join(script), "app").into()];
    argv.extend(args.iter().map(OsString::from));
    argv
}

/// `<repo>/.venv/bin/python tests/apps/python/<script> <args>`.
pub fn python(script: &str, args: &[&str]) -> Vec<OsString> {
    let venv_python = require(
        repo_root().join(".venv").join("bin").join("python"),
        "Python venv",
    );
    let app = require(apps_dir().join("python").join(script), "app");
    let mut argv: Vec<OsString> = vec![venv_python.into(), app.into()];
    argv.extend(args.iter().map(OsString::from));
    argv
}

/// `bash tests/apps/curl/checks.sh <service>`: plain curl over HTTP/1.1 and h2c.
pub fn curl_checks(service: &str) -> Vec<OsString> {
    let script = require(apps_dir().join("curl").join("checks.sh"), "app");
    vec!["bash".into(), script.into(), service.into()]
}
