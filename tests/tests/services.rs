//! Services end to end: JavaScript and Python components in separate `kar run`
//! processes, the published SDKs and curl as clients, on both stores.
//!
//! Components of one test are started at the same moment, in no particular order: a
//! request to a service that has not joined yet is parked until it joins, so no test
//! waits for a server to be ready.

use kar_tests::{
    curl_checks, free_port, kar, node, python, store_test, unique_app, Component, Process,
};
use std::ffi::OsString;
use std::time::Duration;

/// Upper bound for a client component to finish (they take a few seconds).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);

fn expect_all(clients: &mut [Process]) {
    for client in clients {
        client.expect_success(CLIENT_TIMEOUT);
    }
}

store_test!(
    /// The JS (express) and Python (Flask) services, reached over HTTP/1.1, answer the
    /// JS and the Python SDK clients.
    fn js_and_python_services_answer_both_sdks(store) {
        let app = unique_app("svc");
        let _js = Component::new(store, &app)
            .name("js service")
            .service("greeter")
            .command(node("service.js", &[]))
            .spawn();
        let _flask = Component::new(store, &app)
            .name("flask service")
            .service("pygreeter")
            .command(python("service_flask.py", &[]))
            .spawn();
        let client = |name: &str, argv| Component::new(store, &app).name(name).command(argv).spawn();
        expect_all(&mut [
            client("js client -> js", node("client.js", &["sdk", "greeter", "js", "1.1"])),
            client("js client -> flask", node("client.js", &["sdk", "pygreeter", "python", "1.1"])),
            client("python client -> js", python("client.py", &["sdk", "greeter", "js", "1.1"])),
            client("python client -> flask", python("client.py", &["sdk", "pygreeter", "python", "1.1"])),
        ]);
    }
);

store_test!(
    /// `-h2c`: the sidecar reaches h2c-capable apps (hypercorn, kar-sdk's spdy server)
    /// with HTTP/2 prior knowledge; HTTP/1.1 to hypercorn works too.
    fn h2c_apps(store) {
        let app = unique_app("h2c");
        let _asgi_h2c = Component::new(store, &app)
            .name("hypercorn service (-h2c)")
            .service("asgi-h2c")
            .h2c()
            .command(python("service_asgi.py", &[]))
            .spawn();
        let _asgi_http1 = Component::new(store, &app)
            .name("hypercorn service (HTTP/1.1)")
            .service("asgi-http1")
            .env("GREETER_TAG", "asgi-http1")
            .command(python("service_asgi.py", &[]))
            .spawn();
        let _js_h2c = Component::new(store, &app)
            .name("js spdy service (-h2c)")
            .service("js-h2c")
            .h2c()
            .command(node("service.js", &["--h2c"]))
            .spawn();
        let client = |name: &str, argv| Component::new(store, &app).name(name).command(argv).spawn();
        expect_all(&mut [
            client("js client -> asgi h2c", node("client.js", &["sdk", "asgi-h2c", "python-asgi", "2"])),
            client("js client -> js h2c", node("client.js", &["sdk", "js-h2c", "js", "2"])),
            client("python client -> asgi h2c", python("client.py", &["sdk", "asgi-h2c", "python-asgi", "2"])),
            client("python client -> asgi http1", python("client.py", &["sdk", "asgi-http1", "asgi-http1", "1.1"])),
        ]);
    }
);

store_test!(
    /// Plain curl against the runtime port, over HTTP/1.1 and h2c prior knowledge; the
    /// sidecar listens on the `-runtime_port` it was given and exports it.
    fn curl_http1_and_h2c(store) {
        let app = unique_app("curl");
        let _js = Component::new(store, &app)
            .name("js service")
            .service("greeter")
            .command(node("service.js", &[]))
            .spawn();
        let port = free_port();
        let mut checks: Vec<OsString> = vec![
            "bash".into(),
            "-c".into(),
            format!(
                r#"[ "$KAR_RUNTIME_PORT" = {port} ] || {{ echo "FAIL KAR_RUNTIME_PORT is $KAR_RUNTIME_PORT, expected {port}"; exit 1; }}; exec "$@""#
            )
            .into(),
            "check-port".into(),
        ];
        checks.extend(curl_checks("greeter"));
        expect_all(&mut [
            Component::new(store, &app)
                .name("curl client (fixed runtime port)")
                .runtime_port(port)
                .command(checks)
                .spawn(),
            Component::new(store, &app)
                .name("curl client")
                .command(curl_checks("greeter"))
                .spawn(),
        ]);
    }
);

store_test!(
    /// 250 calls in flight at once over the JS SDK's single HTTP/2 session.
    fn concurrent_calls(store) {
        let app = unique_app("conc");
        let _js = Component::new(store, &app)
            .name("js service")
            .service("greeter")
            .command(node("service.js", &[]))
            .spawn();
        expect_all(&mut [Component::new(store, &app)
            .name("js client, 250 concurrent calls")
            .command(node("client.js", &["concurrent", "greeter", "250"]))
            .spawn()]);
    }
);

store_test!(
    /// A client that starts before its server waits (the request is parked) and
    /// succeeds once the server joins.
    fn client_started_before_server(store) {
        let app = unique_app("early");
        let mut client = Component::new(store, &app)
            .name("js client")
            .command(node("client.js", &["sdk", "greeter", "js"]))
            .spawn();
        assert!(
            client.wait_for_output("client starting", CLIENT_TIMEOUT),
            "the client did not start; output:\n{}",
            client.output()
        );
        let _js = Component::new(store, &app)
            .name("js service (started after the client)")
            .service("greeter")
            .command(node("service.js", &[]))
            .spawn();
        client.expect_success(CLIENT_TIMEOUT);
    }
);

store_test!(
    /// `-missing_component_timeout 2s` and no server: the call fails with 500
    /// `failed to send message: deadline expired...` after about 2 s.
    fn missing_component_timeout(store) {
        let app = unique_app("missing");
        let mut client = Component::new(store, &app)
            .name("js client")
            .missing_component_timeout("2s")
            .command(node("client.js", &["missing", "ghost", "1500", "10000"]))
            .spawn();
        client.expect_success(CLIENT_TIMEOUT);
    }
);

store_test!(
    /// `kar rest` calls a service and prints its reply.
    fn kar_rest_prints_the_reply(store) {
        let app = unique_app("rest");
        let _js = Component::new(store, &app)
            .name("js service")
            .service("greeter")
            .command(node("service.js", &[]))
            .spawn();
        // No wait for the service: the request is parked until it joins.
        let json = kar(store, &["rest", "-app", &app, "post", "greeter", "helloJson", r#"{"name":"X"}"#])
            .expect_success(CLIENT_TIMEOUT);
        assert!(
            json.stdout.lines().any(|l| l.trim() == r#"{"greetings":"Hello X"}"#),
            "kar rest should print the JSON reply; output:\n{}",
            json.output
        );
        let text = kar(
            store,
            &["rest", "-app", &app, "-content_type", "text/plain", "post", "greeter", "helloText", "Y"],
        )
        .expect_success(CLIENT_TIMEOUT);
        assert!(
            text.stdout.lines().any(|l| l.trim() == "Hello Y"),
            "kar rest should print the text reply; output:\n{}",
            text.output
        );
    }
);

/// `kar get -app APP -s sidecars -o json`: node id → the services it offers.
fn sidecars(store: &kar_tests::Store, app: &str) -> Vec<(String, Vec<String>)> {
    let get = kar(store, &["get", "-app", app, "-s", "sidecars", "-o", "json"])
        .expect_success(CLIENT_TIMEOUT);
    let json = get
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("kar get printed no JSON object; output:\n{}", get.output));
    let sidecars: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json)
        .unwrap_or_else(|e| {
            panic!(
                "kar get printed malformed JSON ({e}); output:\n{}",
                get.output
            )
        });
    sidecars
        .into_iter()
        .map(|(node, info)| {
            let services = info["services"]
                .as_array()
                .unwrap_or_else(|| panic!("no services array for {node} in {json}"))
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
            clients.push(
                Component::new(store, app)
                    .name("js client")
                    .command(node("client.js", &["whoami", "greeter", app]))
                    .spawn(),
            );
            clients.push(
                Component::new(store, app)
                    .name("python client")
                    .command(python("client.py", &["whoami", "greeter", app]))
                    .spawn(),
            );
        }
        expect_all(&mut clients);

        let (listed_one, listed_two) = (sidecars(store, &one), sidecars(store, &two));
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
        let mut tells: Vec<Process> = [&one, &two]
            .iter()
            .map(|app| {
                Component::new(store, app)
                    .name("js client (tell to a missing service)")
                    .command(node("client.js", &["tell", "ghost", "parked", "parked tell"]))
                    .spawn()
            })
            .collect();
        expect_all(&mut tells);
        // ...until the app is purged.
        kar(store, &["purge", "-app", &one]).expect_success(CLIENT_TIMEOUT);

        let _ghosts: Vec<Process> = [&one, &two]
            .iter()
            .map(|app| {
                Component::new(store, app)
                    .name("js service ghost")
                    .service("ghost")
                    .command(node("service.js", &[]))
                    .spawn()
            })
            .collect();
        expect_all(&mut [
            Component::new(store, &two)
                .name("js client (parked tell of the unpurged app arrives)")
                .command(node("client.js", &["expect-recorded", "ghost", "parked", "parked tell"]))
                .spawn(),
            Component::new(store, &one)
                .name("js client (parked tell of the purged app is gone)")
                .command(node("client.js", &["expect-purged", "ghost", "parked"]))
                .spawn(),
        ]);
    }
);
