//! Services end to end: JavaScript and Python components in separate `kar run`
//! processes, the published SDKs and curl as clients, on both stores.
//!
//! Components of one test are started at the same moment, in no particular order: a
//! request to a service that has not joined yet is parked until it joins, so no test
//! waits for a server to be ready.

use kar_tests::{
    curl_checks, expect_clients, free_port, kar, node, python, sidecars, store_test, unique_app,
    Component, Process, Store,
};
use std::ffi::OsString;
use std::time::Duration;

/// Upper bound for the clients of a test to finish (they take a few seconds).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

/// A `kar run -service NAME` component running `argv`.
fn server(store: &Store, app: &str, name: &str, service: &str, argv: Vec<OsString>) -> Process {
    Component::new(store, app)
        .name(name)
        .service(service)
        .command(argv)
        .spawn()
}

/// A `kar run` component without a service, running `argv`.
fn client(store: &Store, app: &str, name: &str, argv: Vec<OsString>) -> Process {
    Component::new(store, app).name(name).command(argv).spawn()
}

/// The `sdk` scenario of the JS (`sdk` "js") or the Python client (else), one client a
/// row `(sdk, service, expected, protocol)`: each calls `service`, expecting the
/// implementation `expected` to answer over HTTP `protocol`.
fn sdk_clients(store: &Store, app: &str, rows: &[(&str, &str, &str, &str)]) -> Vec<Process> {
    rows.iter()
        .map(|&(sdk, service, expected, protocol)| {
            let name = format!("{sdk} client -> {service} ({expected}, HTTP/{protocol})");
            let args = ["sdk", service, expected, protocol];
            let argv = match sdk {
                "js" => node("client.js", &args),
                _ => python("client.py", &args),
            };
            client(store, app, &name, argv)
        })
        .collect()
}

store_test!(
    /// The JS (express) and Python (Flask) services, reached over HTTP/1.1, answer the
    /// JS and the Python SDK clients.
    fn js_and_python_services_answer_both_sdks(store) {
        let app = unique_app("svc");
        let mut servers = [
            server(store, &app, "js service", "greeter", node("service.js", &[])),
            server(store, &app, "flask service", "pygreeter", python("service_flask.py", &[])),
        ];
        let mut clients = sdk_clients(
            store,
            &app,
            &[
                ("js", "greeter", "js", "1.1"),
                ("js", "pygreeter", "python", "1.1"),
                ("python", "greeter", "js", "1.1"),
                ("python", "pygreeter", "python", "1.1"),
            ],
        );
        expect_clients(&mut clients, &mut servers, CLIENT_TIMEOUT);
    }
);

store_test!(
    /// `-h2c`: the sidecar reaches h2c-capable apps (hypercorn, kar-sdk's spdy server)
    /// with HTTP/2 prior knowledge (the apps report the protocol they saw); without it,
    /// HTTP/1.1 to hypercorn.
    fn h2c_apps(store) {
        let app = unique_app("h2c");
        let mut servers = [
            Component::new(store, &app)
                .name("hypercorn service (-h2c)")
                .service("asgi-h2c")
                .h2c()
                .command(python("service_asgi.py", &[]))
                .spawn(),
            Component::new(store, &app)
                .name("hypercorn service (HTTP/1.1)")
                .service("asgi-http1")
                .env("GREETER_TAG", "asgi-http1")
                .command(python("service_asgi.py", &[]))
                .spawn(),
            Component::new(store, &app)
                .name("js spdy service (-h2c)")
                .service("js-h2c")
                .h2c()
                .command(node("service.js", &["--h2c"]))
                .spawn(),
        ];
        let mut clients = sdk_clients(
            store,
            &app,
            &[
                ("js", "asgi-h2c", "python-asgi", "2"),
                ("js", "js-h2c", "js", "2"),
                ("python", "asgi-h2c", "python-asgi", "2"),
                ("python", "asgi-http1", "asgi-http1", "1.1"),
            ],
        );
        expect_clients(&mut clients, &mut servers, CLIENT_TIMEOUT);
    }
);

store_test!(
    /// Plain curl against the runtime port, over HTTP/1.1 and h2c prior knowledge; the
    /// sidecar listens on the `-runtime_port` it was given and exports it.
    fn curl_http1_and_h2c(store) {
        let app = unique_app("curl");
        let mut servers = [server(store, &app, "js service", "greeter", node("service.js", &[]))];
        let port = free_port();
        let mut on_fixed_port: Vec<OsString> = vec![
            "bash".into(),
            "-c".into(),
            format!(
                r#"[ "$KAR_RUNTIME_PORT" = {port} ] || {{ echo "FAIL KAR_RUNTIME_PORT is $KAR_RUNTIME_PORT, expected {port}"; exit 1; }}; exec "$@""#
            )
            .into(),
            "check-port".into(),
        ];
        on_fixed_port.extend(curl_checks("greeter"));
        let mut clients = [
            Component::new(store, &app)
                .name("curl client (fixed runtime port)")
                .runtime_port(port)
                .command(on_fixed_port)
                .spawn(),
            client(store, &app, "curl client", curl_checks("greeter")),
        ];
        expect_clients(&mut clients, &mut servers, CLIENT_TIMEOUT);
    }
);

store_test!(
    /// 250 calls in flight at once over the JS SDK's single HTTP/2 session.
    fn concurrent_calls(store) {
        let app = unique_app("conc");
        let mut servers = [server(store, &app, "js service", "greeter", node("service.js", &[]))];
        let mut clients = [client(
            store,
            &app,
            "js client, 250 concurrent calls",
            node("client.js", &["concurrent", "greeter", "250"]),
        )];
        expect_clients(&mut clients, &mut servers, CLIENT_TIMEOUT);
    }
);

store_test!(
    /// A client that starts before its server waits (the request is parked) and
    /// succeeds once the server joins.
    fn client_started_before_server(store) {
        let app = unique_app("early");
        let mut clients = [client(store, &app, "js client", node("client.js", &["sdk", "greeter", "js"]))];
        assert!(
            clients[0].wait_for_output("client starting", CLIENT_TIMEOUT),
            "the client did not start; output:\n{}",
            clients[0].output()
        );
        let mut servers = [server(
            store,
            &app,
            "js service (started after the client)",
            "greeter",
            node("service.js", &[]),
        )];
        expect_clients(&mut clients, &mut servers, CLIENT_TIMEOUT);
    }
);

store_test!(
    /// `-missing_component_timeout 2s` and no server: the call fails with 500
    /// `failed to send message: deadline expired...` after about 2 s (the client
    /// measures it).
    fn missing_component_timeout(store) {
        let app = unique_app("missing");
        let mut clients = [Component::new(store, &app)
            .name("js client")
            .missing_component_timeout("2s")
            .command(node("client.js", &["missing", "ghost", "1500", "10000"]))
            .spawn()];
        expect_clients(&mut clients, &mut [], CLIENT_TIMEOUT);
    }
);

store_test!(
    /// `kar rest` calls a service and prints its reply.
    fn kar_rest_prints_the_reply(store) {
        let app = unique_app("rest");
        let mut servers = [server(store, &app, "js service", "greeter", node("service.js", &[]))];
        // No wait for the service: the request is parked until it joins.
        let mut calls = [
            kar(store, &["rest", "-app", &app, "post", "greeter", "helloJson", r#"{"name":"X"}"#]),
            kar(
                store,
                &["rest", "-app", &app, "-content_type", "text/plain", "post", "greeter", "helloText", "Y"],
            ),
        ];
        expect_clients(&mut calls, &mut servers, CLIENT_TIMEOUT);
        for (call, expected) in calls.iter_mut().zip([r#"{"greetings":"Hello X"}"#, "Hello Y"]) {
            let exited = call.wait(Duration::ZERO);
            assert!(
                exited.stdout.lines().any(|l| l.trim() == expected),
                "{} should print {expected}; output:\n{}",
                call.name(),
                exited.output
            );
        }
    }
);

/// `kar get -app APP -s sidecars -o json`: node id → the services it offers.
fn services_of_sidecars(store: &Store, app: &str) -> Vec<(String, Vec<String>)> {
    sidecars(store, app)
        .into_iter()
        .map(|(node, info)| {
            let services = info["services"]
                .as_array()
                .unwrap_or_else(|| panic!("no services array for {node} in {info}"))
                .iter()
                .map(|s| s.as_str().unwrap_or_default().to_string())
                .collect();
            (node, services)
        })
        .collect()
}

store_test!(
    /// Two applications share one store without seeing each other: the same service
    /// name answers differently in each, `kar get` lists each app's own sidecars, and
    /// `kar purge` deletes one app's pending requests only.
    fn apps_are_isolated_and_purge_is_per_app(store) {
        let (one, two) = (unique_app("one"), unique_app("two"));
        let mut greeters = Vec::new();
        let mut clients = Vec::new();
        for app in [&one, &two] {
            greeters.push(
                Component::new(store, app)
                    .name("js service")
                    .service("greeter")
                    .env("GREETER_TAG", app.as_str())
                    .command(node("service.js", &[]))
                    .spawn(),
            );
            clients.push(client(store, app, "js client", node("client.js", &["whoami", "greeter", app])));
            clients.push(client(store, app, "python client", python("client.py", &["whoami", "greeter", app])));
        }
        expect_clients(&mut clients, &mut greeters, CLIENT_TIMEOUT);

        let (listed_one, listed_two) = (services_of_sidecars(store, &one), services_of_sidecars(store, &two));
        for (app, listed) in [(&one, &listed_one), (&two, &listed_two)] {
            let greeters = listed.iter().filter(|(_, s)| s.contains(&"greeter".to_string()));
            assert_eq!(greeters.count(), 1, "app {app} should list one greeter sidecar: {listed:?}");
        }
        for (node, _) in &listed_one {
            assert!(
                listed_two.iter().all(|(other, _)| other != node),
                "{node} is listed in both apps: {listed_one:?} {listed_two:?}"
            );
        }
        for greeter in &mut greeters {
            greeter.terminate(CLIENT_TIMEOUT);
        }

        // A tell to a service nobody offers stays parked in the store...
        let tell = ["tell", "ghost", "parked", "parked tell"];
        let mut tells = [
            client(store, &one, "js client (tell to a missing service)", node("client.js", &tell)),
            client(store, &two, "js client (tell to a missing service)", node("client.js", &tell)),
        ];
        expect_clients(&mut tells, &mut [], CLIENT_TIMEOUT);
        // ...until its app is purged.
        kar(store, &["purge", "-app", &one]).expect_success(CLIENT_TIMEOUT);

        let mut ghosts = [
            server(store, &one, "js service ghost", "ghost", node("service.js", &[])),
            server(store, &two, "js service ghost", "ghost", node("service.js", &[])),
        ];
        let mut checks = [
            client(
                store,
                &two,
                "js client (the parked tell of the other app arrives)",
                node("client.js", &["expect-recorded", "ghost", "parked", "parked tell"]),
            ),
            client(
                store,
                &one,
                "js client (the parked tell of the purged app is gone)",
                node("client.js", &["expect-purged", "ghost", "parked"]),
            ),
        ];
        expect_clients(&mut checks, &mut ghosts, CLIENT_TIMEOUT);
    }
);
