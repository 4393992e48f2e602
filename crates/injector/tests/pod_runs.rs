//! The injected pod "run" on this machine: the containers' commands of the pod the
//! injector returned, started as processes on loopback (the pod's shared network
//! namespace), with the runtime-config secret as a directory. The example service
//! answers through kar; the probe, the preStop hook and the token behave as in a pod.

mod support;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Container;
use kar_tests::{apps_dir, http1, kar_bin, store_test, unique_app, Process, Store, TlsRedisServer};
use serde_json::json;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use support::{create_review, patched, pod, response, Certs, Injector};

const TOKEN: &str = "pod-token-5d1e";
const MOUNT: &str = "/var/run/secrets/kar.ibm.com";
const TIMEOUT: Duration = Duration::from_secs(60);
const COMPONENT: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// The kubelet and other pods: not 127.0.0.1.
const REMOTE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

store_test!(fn sidecar_container(store) {
    run_pod(store, true, None);
});

store_test!(fn single_container(store) {
    run_pod(store, false, None);
});

/// The secret holds an external Redis over TLS with a password and a private CA
/// (`redis_ca`, base64-encoded PEM), as the kar-injector chart writes it.
#[test]
fn the_store_over_tls_with_a_password_and_a_ca_from_the_secret() {
    let redis = TlsRedisServer::start();
    // Only its $KAR_HOME is used, and must stay empty: kar uses the Redis server.
    let store = Store::embedded();
    run_pod(&store, true, Some(&redis));
    assert!(redis.commands_processed() > 0);
    let unused = std::fs::read_dir(store.home()).unwrap().next().is_none();
    assert!(unused, "kar used the embedded store");
}

fn run_pod(store: &Store, sidecar_container: bool, tls: Option<&TlsRedisServer>) {
    let certs = Certs::generate();
    let injector = Injector::start(&certs.cert(), &certs.key(), certs.ca(), &[]);
    let app = unique_app("pod");
    let (app_port, runtime_port) = (kar_tests::free_port(), kar_tests::free_port());
    let service = apps_dir().join("js").join("service.js");
    let original = pod(
        json!({
            "kar.ibm.com/app": app,
            "kar.ibm.com/service": "greeter",
            "kar.ibm.com/appPort": app_port.to_string(),
            "kar.ibm.com/runtimePort": runtime_port.to_string(),
            "kar.ibm.com/verbose": "info",
            "kar.ibm.com/sidecarContainer": sidecar_container.to_string(),
        }),
        Some(vec!["node".into(), service.display().to_string()]),
    );
    let answer = injector.review(&create_review("uid-run", original.clone()));
    let (injected, _) = patched(response(&answer, "uid-run"), &original).expect("a patch");

    // The runtime-config secret: the store (Redis from the secret's files, not from
    // the environment) and the API token.
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(secret.path().join("api_token"), TOKEN).unwrap();
    let write = |name: &str, value: &str| std::fs::write(secret.path().join(name), value).unwrap();
    if let Some(redis) = tls {
        write("redis_host", "127.0.0.1");
        write("redis_port", &redis.tls_port.to_string());
        write("redis_password", &redis.password);
        write("redis_enable_tls", "true");
        write(
            "redis_ca",
            &base64::engine::general_purpose::STANDARD.encode(redis.ca_pem()),
        );
    } else if let Store::Redis { server, .. } = store {
        write("redis_host", "127.0.0.1");
        write("redis_port", &server.port().to_string());
    }

    let containers = injected.spec.unwrap().containers;
    // The kar container first: the JS SDK needs kar listening when it starts (in a
    // cluster it restarts until then).
    let mut order: Vec<&Container> = containers.iter().filter(|c| c.name == "kar").collect();
    order.extend(containers.iter().filter(|c| c.name != "kar"));
    let kar_container = if sidecar_container { "kar" } else { "app" };
    let mut processes: Vec<(String, Process)> = Vec::new();
    for container in order {
        let process = start(container, store, secret.path());
        if container.name == kar_container {
            process.expect_output(&format!("KAR_RUNTIME_PORT={runtime_port}"), TIMEOUT);
        }
        processes.push((container.name.clone(), process));
    }
    let kar_spec = containers.iter().find(|c| c.name == kar_container).unwrap();

    // The component reaches its service through kar without a token (loopback).
    let whoami = "/kar/v1/service/greeter/call/whoami";
    let a = http1(COMPONENT, runtime_port, "GET", whoami, &[], b"").unwrap();
    assert_eq!((a.status, a.text().as_str()), (200, "js"), "{}", a.text());
    // Others need the token from the secret.
    let a = http1(REMOTE, runtime_port, "GET", whoami, &[], b"").unwrap();
    assert_eq!(a.status, 401);
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let a = http1(REMOTE, runtime_port, "GET", whoami, &auth, b"").unwrap();
    assert_eq!((a.status, a.text().as_str()), (200, "js"));

    // The liveness probe, as the kubelet sends it (from outside the pod, no token).
    let probe = kar_spec
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    let port = probe.port.clone();
    let port = match port {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(p) => p as u16,
        other => panic!("probe port {other:?}"),
    };
    let a = http1(
        REMOTE,
        port,
        "GET",
        probe.path.as_deref().unwrap(),
        &[],
        b"",
    )
    .unwrap();
    assert_eq!((a.status, a.text().as_str()), (200, "OK"));

    // The preStop hook (with the token: see the README) makes kar leave the mesh.
    let hook = kar_spec
        .lifecycle
        .as_ref()
        .unwrap()
        .pre_stop
        .as_ref()
        .unwrap();
    let hook = hook.http_get.as_ref().unwrap();
    let a = http1(
        REMOTE,
        port,
        "GET",
        hook.path.as_deref().unwrap(),
        &auth,
        b"",
    )
    .unwrap();
    assert_eq!(a.status, 200, "{}", a.text());
    let (_, kar) = processes
        .iter_mut()
        .find(|(name, _)| name == kar_container)
        .unwrap();
    if sidecar_container {
        // A sidecar without a component exits once it has left.
        let exited = kar.wait(TIMEOUT);
        assert_eq!(exited.code(), Some(0), "{}", kar.output());
    } else {
        // kar run has left and lets its component finish; the kubelet's SIGTERM
        // follows the hook.
        kar.expect_output("shutdown requested", TIMEOUT);
        let exited = kar.terminate(TIMEOUT).expect("kar run exits on SIGTERM");
        assert_eq!(exited.code(), Some(0), "{}", kar.output());
    }
    let output = kar.output();
    assert!(!output.contains(TOKEN), "the token was logged:\n{output}");
    if let Some(redis) = tls {
        assert!(
            !output.contains(&redis.password),
            "the password was logged:\n{output}"
        );
    }
}

/// Starts a container's command as a process: `kar` (the sidecar image's entrypoint,
/// or the injected `kar run`) is this workspace's binary, the secret's mount path is
/// the directory `secret`.
fn start(container: &Container, store: &Store, secret: &Path) -> Process {
    let mut argv: Vec<String> = container
        .command
        .clone()
        .unwrap_or_else(|| vec!["kar".into()]);
    argv.extend(container.args.clone().unwrap_or_default());
    let argv: Vec<String> = argv
        .into_iter()
        .map(|a| a.replace(MOUNT, &secret.display().to_string()))
        .collect();
    let program = if argv[0] == "kar" {
        kar_bin()
    } else {
        argv[0].clone().into()
    };
    let mut command = Command::new(program);
    command.args(&argv[1..]).current_dir(apps_dir().join("js"));
    // $KAR_HOME for the embedded store; the Redis address comes from the secret only.
    store.configure(&mut command);
    command.env_remove("REDIS_HOST").env_remove("REDIS_PORT");
    for var in container.env.iter().flatten() {
        command.env(&var.name, var.value.clone().unwrap_or_default());
    }
    Process::spawn(
        format!("container {} ({})", container.name, argv.join(" ")),
        command,
    )
}
