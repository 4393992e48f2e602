//! The Rust examples (`examples/rust`, written with the Rust SDK) run under real `kar`
//! sidecars on both stores and check their own results (each exits non-zero when its
//! check fails). `cargo build --workspace` builds them next to `kar`.

use kar_tests::{expect_clients, kar_bin, store_test, unique_app, Component, Process};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(120);

/// An example binary, built beside `kar`.
fn example(name: &str) -> Vec<OsString> {
    let bin: PathBuf = kar_bin().with_file_name(name);
    assert!(
        bin.is_file(),
        "example {} is missing: run `cargo build --workspace`",
        bin.display()
    );
    vec![bin.into_os_string()]
}

store_test!(
    /// `hello`: a service and a client calling it.
    fn hello(store) {
        let app = unique_app("hello");
        let mut servers: [Process; 1] = [Component::new(store, &app)
            .name("hello-server")
            .service("greeter")
            .command(example("hello-server"))
            .spawn()];
        let mut clients = [Component::new(store, &app)
            .name("hello-client")
            .command(example("hello-client"))
            .spawn()];
        expect_clients(&mut clients, &mut servers, TIMEOUT);
    }
);

/// Runs a self-checking example (it hosts `actors` and checks its own results) to
/// its successful exit.
fn self_checking(store: &kar_tests::Store, name: &str, actors: &[&str]) {
    let app = unique_app(name);
    let mut runs = [Component::new(store, &app)
        .name(name)
        .actors(actors)
        .command(example(name))
        .spawn()];
    expect_clients(&mut runs, &mut [], TIMEOUT);
}

store_test!(
    /// `bank`: transfers as tail-call chains (debit → credit) with an invariant check.
    fn bank(store) {
        self_checking(store, "bank", &["Account"]);
    }
);

store_test!(
    /// `philosophers`: tells, tail calls, state and removal.
    fn philosophers(store) {
        self_checking(store, "philosophers", &["Fork", "Philosopher"]);
    }
);
