//! The short form of the benchmark that CI runs (through `scripts/test.sh`): every
//! workload kind of `kar-bench` on both stores, with tiny sizes and without the
//! Restate and Node sides (they need `bench/run.sh`'s npm installs). It checks that the
//! benchmark runs and reports every table, not the figures (those belong to
//! `bench/run.sh` on a quiet host).

use std::path::PathBuf;
use std::process::Command;

/// `$KAR_BIN`, or the `kar` of the same target directory and profile (the workspace
/// build of `scripts/test.sh` makes it).
fn kar_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("KAR_BIN") {
        return PathBuf::from(bin);
    }
    let bench = PathBuf::from(env!("CARGO_BIN_EXE_kar-bench"));
    let bin = bench.with_file_name("kar");
    assert!(
        bin.is_file(),
        "the kar binary {} is missing: `cargo build -p kar` first (or set KAR_BIN)",
        bin.display()
    );
    bin
}

/// Runs `kar-bench` with `args` (plus `--kar` and `--out`), checks that it succeeded,
/// and returns its output directory with the report `latest.md` in it.
fn run_bench(args: &[&str]) -> tempfile::TempDir {
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_kar-bench"))
        .arg("--kar")
        .arg(kar_bin())
        .args(args)
        .arg("--out")
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "kar-bench failed: {}\n{}\n{}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    out
}

/// The report of a run in `out`.
fn report(out: &tempfile::TempDir) -> String {
    std::fs::read_to_string(out.path().join("latest.md")).unwrap()
}

#[test]
fn short_benchmark_reports_every_table() {
    let out = run_bench(&[
        "--calls",
        "50",
        "--seconds",
        "1",
        "--concurrency",
        "8",
        "--stores",
        "embedded,redis",
        "--events",
        "20",
        "--event-rate",
        "1",
        "--stateful",
        "rust",
        "--stateful-clients",
        "4",
        "--stateful-stores",
        "embedded-fsync,redis-fsync",
        "--scaling",
        "1,4",
        "--scaling-seconds",
        "1",
    ]);
    let report = report(&out);
    for expected in [
        "| direct HTTP (baseline) |",
        "| kar embedded |",
        "| kar redis |",
        "| kar embedded, HTTP/1.1 client |",
        "| kar redis, HTTP/1.1 client |",
        "Resources of the keyed calls above",
        "The floor of a durable call",
        "| cross-process wake-up (one byte, one way) |",
        "| commit, embedded: ",
        "| commit, redis: ",
        "| store | floor p50 (ms): 2 × HTTP + 2 × commit + 2 × wake-up |",
        "Events, sustained",
        "| Rust | kar embedded-fsync | OS crash, power loss",
        "| Rust | kar redis-fsync | OS crash, power loss",
        "Throughput against clients",
        "| kar redis-fsync (`Counter.add`, Rust SDK) |",
    ] {
        assert!(
            report.contains(expected),
            "no {expected:?} in the report:\n{report}"
        );
    }
    let samples = std::fs::read_to_string(out.path().join("latest-samples.tmp")).unwrap();
    assert!(
        samples.contains("kar embedded-fsync (Rust) (counter),scale:4,"),
        "{samples}"
    );
}

/// The cost-as-the-work-grows workloads (`--growth`) at tiny sizes on the embedded
/// store: they complete, every actor's state is read back (the benchmark checks each
/// entry and fails otherwise), and every tell of the backlog ran exactly once.
#[test]
fn short_growth_reports_every_workload() {
    let out = run_bench(&[
        "--stores",
        "embedded",
        "--growth",
        "2000,2000,1000",
        "--growth-only",
    ]);
    let report = report(&out);
    for expected in [
        "Actors on kar embedded:",
        "| figure | 200 actors | 2000 actors | growth (full / tenth) |",
        "Backlog of tells on kar embedded:",
        "| tells never executed | 0 | 0 | – |",
        "| tells executed twice | 0 | 0 | – |",
        "Periodic reminders on kar embedded:",
        "| firings/s demanded | 100 | 1000 | 10.0× |",
    ] {
        assert!(
            report.contains(expected),
            "no {expected:?} in the report:\n{report}"
        );
    }
    // No workload failed (failures are reported, not fatal), the others were skipped.
    assert!(!report.contains("**Failed on"), "{report}");
    assert!(!report.contains("| kar embedded |"), "{report}");
}
