//! Redis over TLS with an ACL user: a CA made by the test (`openssl`), given to `kar`
//! as `REDIS_CA` (base64 PEM, as upstream KAR), and the README's `ACL SETUSER kar`
//! line. Real calls go through; a wrong CA and a user without the permissions kar
//! needs stop `kar run` at once with one `[FATAL]` line (exit 1), never a hang.

use kar_tests::{expect_clients, make_certificates, node, unique_app, Component, Store};
use std::time::Duration;

/// Upper bound for the clients to finish (they take a few seconds).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);
/// Upper bound for `kar run` to give up on a bad set-up (it fails at its first
/// connection: a few seconds at most).
const SETUP_FAILURE_TIMEOUT: Duration = Duration::from_secs(30);

/// The JS service answers the JS SDK client, every sidecar on TLS as the ACL user.
#[test]
fn calls_over_tls_as_the_readme_acl_user() {
    let store = Store::redis_tls();
    let app = unique_app("tls");
    let mut servers = [Component::new(&store, &app)
        .name("js service")
        .service("greeter")
        .command(node("service.js", &[]))
        .spawn()];
    let mut clients = [Component::new(&store, &app)
        .name("js client")
        .command(node("client.js", &["sdk", "greeter", "js", "1.1"]))
        .spawn()];
    expect_clients(&mut clients, &mut servers, CLIENT_TIMEOUT);
    store.assert_used();
    assert!(
        servers[0].output().contains("rediss://127.0.0.1:"),
        "the sidecar did not use TLS:\n{}",
        servers[0].output()
    );
}

/// A CA other than the server's: `kar run` exits 1 with one `[FATAL]` line naming
/// TLS and the setting to check, before starting its component.
#[test]
fn a_wrong_ca_stops_kar_run_with_a_fatal_line() {
    let store = Store::redis_tls();
    let Store::Redis { server, .. } = &store else {
        unreachable!()
    };
    let tls = server.tls().expect("a TLS server");
    make_certificates(&tls.dir, "other-");
    let mut sidecar = Component::new(&store, &unique_app("tls-ca"))
        .name("kar run (wrong CA)")
        .service("greeter")
        .env("REDIS_CA", tls.ca_base64_of("other-ca.crt"))
        .command(node("service.js", &[]))
        .spawn();
    let exited = sidecar.wait(SETUP_FAILURE_TIMEOUT);
    assert_eq!(exited.code(), Some(1), "{}", exited.output);
    let fatal: Vec<&str> = exited
        .output
        .lines()
        .filter(|l| l.contains("[FATAL]"))
        .collect();
    assert_eq!(fatal.len(), 1, "{}", exited.output);
    assert!(
        fatal[0].contains("TLS") && fatal[0].contains("REDIS_CA"),
        "{}",
        fatal[0]
    );
    assert!(
        !exited.output.contains("launching service"),
        "{}",
        exited.output
    );
}

/// A user that may read but not write kar's keys: `kar run` exits 1 with one
/// `[FATAL]` line naming the user and the commands it lacks.
#[test]
fn a_user_without_the_needed_permissions_is_told_which() {
    let store = Store::redis_tls();
    let Store::Redis { server, .. } = &store else {
        unreachable!()
    };
    server.acl_setuser(&[
        "reader",
        "on",
        ">pw",
        "~kar:*",
        "-@all",
        "+@read",
        "+ping",
        "+evalsha",
        "+script|load",
    ]);
    let mut sidecar = Component::new(&store, &unique_app("tls-acl"))
        .name("kar run (read-only user)")
        .service("greeter")
        .env("REDIS_USER", "reader")
        .env("REDIS_PASSWORD", "pw")
        .command(node("service.js", &[]))
        .spawn();
    let exited = sidecar.wait(SETUP_FAILURE_TIMEOUT);
    assert_eq!(exited.code(), Some(1), "{}", exited.output);
    let fatal: Vec<&str> = exited
        .output
        .lines()
        .filter(|l| l.contains("[FATAL]"))
        .collect();
    assert_eq!(fatal.len(), 1, "{}", exited.output);
    assert!(
        fatal[0].contains("reader") && fatal[0].contains("HSET") && fatal[0].contains("XADD"),
        "{}",
        fatal[0]
    );
}
