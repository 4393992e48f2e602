//! `kar dashboard` (issue 13, item 3), on both stores: a mesh of two sidecars (the
//! plain node:http component `tests/apps/js/control/server.js`, actor type `Bench`)
//! with three active actors, state, two reminders, one subscription and a paused
//! request. The admin API views it serves (actors, state, reminders, subscriptions,
//! latency) are checked over HTTP, with their pagination and bad input (4xx with a
//! one-line reason), the API token and the refusal of a non-loopback address without one; then the page itself runs in
//! Debian's chromium driven by selenium (`tests/apps/python/dashboard/browser_check.py`):
//! it shows each, Kill removes the paused request (the API agrees, its caller gets the
//! killed error), a screenshot is saved under `target/test-artifacts/`, and the
//! browser logs no error.

use kar_tests::{
    free_port, http1, kar, node, poll_until, python, repo_root, store_test, unique_app, Component,
    Process,
};
use serde_json::{json, Value};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(60);
const LOCAL: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Another loopback address: a peer the API token applies to (`guard.rs`).
const REMOTE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn server(store: &kar_tests::Store, app: &str, runtime_port: u16) -> Process {
    let server = Component::new(store, app)
        .name("dashboard test server")
        .service("ctl")
        .actors(&["Bench"])
        .runtime_port(runtime_port)
        .command(node("control/server.js", &[]))
        .spawn();
    server.expect_output("control server listening on ", PATIENCE);
    server
}

/// One request to `port` from `from`: status and JSON body.
fn call(from: Ipv4Addr, port: u16, method: &str, path: &str, body: &str) -> (u16, Value) {
    let headers = [("Content-Type", "application/json")];
    let reply = http1(from, port, method, path, &headers, body.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let value = if reply.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&reply.body).unwrap_or(Value::String(reply.text()))
    };
    (reply.status, value)
}

fn get(port: u16, path: &str) -> Value {
    let (status, body) = call(LOCAL, port, "GET", &format!("/kar/admin/v1/{path}"), "");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

/// Every item of a paginated list, following `next_cursor`; and how many pages.
fn all_pages(port: u16, list: &str, limit: usize) -> (Vec<Value>, usize) {
    let (mut items, mut pages) = (Vec::new(), 0);
    let mut path = format!("{list}?limit={limit}");
    loop {
        let body = get(port, &path);
        pages += 1;
        let page = body[list].as_array().expect("a list").clone();
        assert!(page.len() <= limit, "{body}");
        items.extend(page);
        match body["next_cursor"].as_str() {
            Some(cursor) => {
                let cursor = percent_encoding::utf8_percent_encode(
                    cursor,
                    percent_encoding::NON_ALPHANUMERIC,
                );
                path = format!("{list}?limit={limit}&cursor={cursor}");
            }
            None => return (items, pages),
        }
        assert!(pages < 100, "the listing never ends");
    }
}

/// The refusal of bad input: a 4xx with the stable code and a one-line message.
fn refused(answer: (u16, Value), want: (u16, &str), what: &str) {
    let message = answer.1["error"]["message"].as_str().unwrap_or_default();
    assert!(
        !message.is_empty() && !message.contains('\n'),
        "{what}: {answer:?}"
    );
    assert_eq!(
        (
            answer.0,
            answer.1["error"]["code"].as_str().unwrap_or_default()
        ),
        want,
        "{what}: {answer:?}"
    );
}

/// Starts `kar dashboard -app APP ARGS...` and waits for its URL: the process, port.
fn dashboard(store: &kar_tests::Store, app: &str, args: &[&str]) -> (Process, u16) {
    let mut argv = vec!["dashboard", "-app", app, "-port", "0"];
    argv.extend(args);
    let process = kar(store, &argv);
    process.expect_output("dashboard of application ", PATIENCE);
    let out = process.output();
    let port = out
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no URL printed:\n{out}"));
    (process, port)
}

fn browser_available() -> bool {
    ["/usr/bin/chromium", "/usr/bin/chromedriver"]
        .iter()
        .all(|p| Path::new(p).exists())
}

store_test!(
    fn dashboard_shows_the_mesh_and_kills_from_the_browser(store) {
        let app = unique_app("dash");
        let (p1, p2) = (free_port(), free_port());
        let _one = server(store, &app, p1);
        let _two = server(store, &app, p2);

        // Three active actors (placed on either sidecar), one with state.
        for id in ["a1", "a2", "a3"] {
            let invoked = kar(store, &["invoke", "-app", &app, "Bench", id, "echo", "1"])
                .expect_success(PATIENCE);
            assert!(invoked.stdout.contains("Method result"), "{}", invoked.output);
        }
        let put = |path: &str, body: &str| {
            let (status, answer) = call(LOCAL, p1, "PUT", path, body);
            assert!(status < 300, "PUT {path}: {status} {answer}");
        };
        let post = |path: &str, body: &str| {
            let (status, answer) = call(LOCAL, p1, "POST", path, body);
            assert!(status < 300, "POST {path}: {status} {answer}");
        };
        put("/kar/v1/actor/Bench/a1/state/greeting", r#""hello dashboard""#);
        // Two reminders far in the future, one subscription with events to deliver.
        for (actor, id) in [("a1", "tick"), ("a2", "tock")] {
            put(
                &format!("/kar/v1/actor/Bench/{actor}/reminders/{id}"),
                &json!({"path": "/echo", "targetTime": "2099-01-01T00:00:00Z",
                        "period": "1h", "data": [7]})
                .to_string(),
            );
        }
        let topic = format!("news-{app}");
        put(&format!("/kar/v1/event/{topic}"), "{}");
        put(
            "/kar/v1/actor/Bench/a3/events/headlines",
            &json!({"path": "/echo", "topic": topic}).to_string(),
        );
        post(&format!("/kar/v1/event/{topic}/publish"), r#""e1""#);
        // A paused request, its caller blocked.
        let mut caller = kar(store, &["rest", "-app", &app, "post", "nobody", "/stuck"]);

        let (mut dash, port) = dashboard(store, &app, &[]);
        let mut stuck = String::new();
        assert!(
            poll_until(PATIENCE, Duration::from_millis(50), || {
                let body = get(port, "requests?status=parked&service=nobody");
                stuck = body["requests"][0]["id"].as_str().unwrap_or_default().to_string();
                !stuck.is_empty()
            }),
            "the call to nobody was never parked"
        );
        kar(store, &["pause", "-app", &app, &stuck]).expect_success(PATIENCE);

        // The sidecars, with what they offer.
        let sidecars = get(port, "sidecars");
        assert_eq!(sidecars["app"], app.as_str());
        let node_on = |runtime_port: u16| {
            sidecars["sidecars"]
                .as_array()
                .expect("sidecars")
                .iter()
                .find(|s| s["runtime_port"] == runtime_port)
                .unwrap_or_else(|| panic!("no sidecar on {runtime_port}: {sidecars}"))
                .clone()
        };
        let (one, two) = (node_on(p1), node_on(p2));
        assert_eq!(one["actor_types"], json!(["Bench"]));
        let nodes = [
            one["node"].as_str().expect("node").to_string(),
            two["node"].as_str().expect("node").to_string(),
        ];

        // Actors, by pages of one: each once, active, on one of the two sidecars.
        let (actors, pages) = all_pages(port, "actors", 1);
        let mut ids: Vec<&str> = actors.iter().map(|a| a["actor_id"].as_str().unwrap_or("")).collect();
        ids.sort_unstable();
        assert_eq!(ids, ["a1", "a2", "a3"], "{actors:?}");
        assert!((3..=4).contains(&pages), "paged by one: {pages} pages");
        for a in &actors {
            assert_eq!(a["actor_type"], "Bench", "{a}");
            assert_eq!(a["active"], true, "{a}");
            assert!(nodes.iter().any(|n| a["sidecar"] == n.as_str()), "{a}");
        }
        assert_eq!(get(port, "actors?actor_type=Nobody")["actors"], json!([]));
        let state = get(port, "actors/Bench/a1/state");
        assert_eq!(state["state"], json!({"greeting": "hello dashboard"}), "{state}");
        assert_eq!(get(port, "actors/Bench/zz/state")["state"], json!({}));

        // Reminders with their next firing, by pages of one.
        let (reminders, pages) = all_pages(port, "reminders", 1);
        assert_eq!(pages, 2);
        let names: Vec<&str> = reminders.iter().map(|r| r["id"].as_str().unwrap_or("")).collect();
        assert_eq!(names, ["tick", "tock"]);
        for r in &reminders {
            assert_eq!(r["next_fire"], "2099-01-01T00:00:00Z", "{r}");
            assert!(r["next_fire_in_ms"].as_i64().unwrap_or(0) > 0, "{r}");
            assert_eq!(r["period"], "1h0m0s", "{r}");
            assert_eq!(r["data"], json!([7]), "{r}");
        }
        assert_eq!(get(port, "reminders?actor_id=a2")["reminders"][0]["id"], "tock");
        // A sidecar serves the same views on its runtime port.
        let on_sidecar = get(p2, "reminders?actor_id=a1");
        assert_eq!(on_sidecar["reminders"][0]["next_fire"], "2099-01-01T00:00:00Z", "{on_sidecar}");

        // The subscription with its position and lag (the event is delivered soon).
        let subs = get(port, "subscriptions")["subscriptions"].clone();
        assert_eq!(subs.as_array().map(Vec::len), Some(1), "{subs}");
        assert_eq!(subs[0]["topic"], topic.as_str());
        assert!(subs[0]["lag"].is_u64(), "{subs}");
        assert!(
            poll_until(PATIENCE, Duration::from_millis(100), || {
                let s = &get(port, "subscriptions")["subscriptions"][0];
                s["position"] == 1 && s["lag"] == 0 && s["in_flight"] == false
            }),
            "the event was never delivered: {}",
            get(port, "subscriptions")
        );

        // Latency per method, merged over both sidecars.
        let latency = get(port, "latency");
        let echo = latency["methods"]
            .as_array()
            .expect("methods")
            .iter()
            .find(|m| m["method"].as_str().is_some_and(|m| m.contains("echo")))
            .unwrap_or_else(|| panic!("no echo method: {latency}"))
            .clone();
        assert!(echo["count"].as_u64().unwrap_or(0) >= 3, "{echo}");
        assert!(echo["p50_ms"].is_number() && echo["p99_ms"].is_number(), "{echo}");
        for n in &nodes {
            assert!(latency["sidecars"].as_array().expect("sidecars").contains(&json!(n)), "{latency}");
        }

        // Bad input: 4xx with a one-line reason.
        for (method, path, want) in [
            ("GET", "actors?limit=0", (400, "bad_request")),
            ("GET", "actors?limit=many", (400, "bad_request")),
            ("GET", "actors?cursor=zzz", (400, "bad_request")),
            ("GET", "reminders?cursor=zzz", (400, "bad_request")),
            ("GET", "reminders?limit=1001", (400, "bad_request")),
            ("GET", "subscriptions?cursor=%5B1%5D", (400, "bad_request")),
            ("POST", "actors", (405, "method_not_allowed")),
            ("DELETE", "actors/Bench/a1/state", (405, "method_not_allowed")),
            ("GET", "actors/Bench/state", (404, "not_found")),
            ("GET", "latency/more", (404, "not_found")),
        ] {
            let answer = call(LOCAL, port, method, &format!("/kar/admin/v1/{path}"), "");
            refused(answer, want, &format!("{method} {path}"));
        }
        // The page itself, and nothing else of a sidecar's API.
        let page = http1(LOCAL, port, "GET", "/", &[], b"").expect("page");
        assert_eq!(page.status, 200);
        assert!(page.header("content-type").is_some_and(|t| t.starts_with("text/html")), "{page:?}");
        assert!(page.text().contains("<title>kar dashboard</title>"));
        let (status, body) = call(LOCAL, port, "GET", "/kar/v1/system/health", "");
        assert_eq!(status, 404, "{body}");

        // The API token: required from peers other than 127.0.0.1, except for the page.
        let (mut guarded, guarded_port) = dashboard(store, &app, &["-api_token", "s3cret"]);
        let (status, _) = call(REMOTE, guarded_port, "GET", "/kar/admin/v1/sidecars", "");
        assert_eq!(status, 401);
        let with_token = http1(REMOTE, guarded_port, "GET", "/kar/admin/v1/sidecars",
            &[("Authorization", "Bearer s3cret")], b"").expect("sidecars");
        assert_eq!(with_token.status, 200, "{}", with_token.text());
        let page = http1(REMOTE, guarded_port, "GET", "/", &[], b"").expect("page");
        assert_eq!(page.status, 200, "the page needs no token (it asks for one)");
        guarded.terminate(PATIENCE);
        let refusal = kar(store, &["dashboard", "-app", &app, "-host", "0.0.0.0"]).wait(PATIENCE);
        assert_eq!(refusal.code(), Some(1), "{}", refusal.output);
        assert!(refusal.output.contains("without -api_token"), "{}", refusal.output);

        // The page in a real browser.
        if !browser_available() {
            eprintln!(
                "SKIPPED the browser part: /usr/bin/chromium and /usr/bin/chromedriver are \
                 missing (scripts/setup-test-deps.sh installs them as root)"
            );
        } else {
            let artifacts = repo_root().join("target").join("test-artifacts");
            std::fs::create_dir_all(&artifacts).expect("artifacts dir");
            let shot = artifacts.join(format!("dashboard-{}.png", store.kind()));
            let _ = std::fs::remove_file(&shot);
            let url = format!("http://127.0.0.1:{port}/");
            let shot_arg = shot.to_string_lossy().into_owned();
            let args = [
                "--url", &url, "--sidecar", &nodes[0], "--sidecar", &nodes[1],
                "--active", "3", "--reminders", "2", "--subscriptions", "1",
                "--paused", &stuck, "--state-actor", "Bench/a1",
                "--state-text", "hello dashboard", "--screenshot", &shot_arg,
            ];
            let mut command = std::process::Command::new(&python("dashboard/browser_check.py", &[])[0]);
            command.args(&python("dashboard/browser_check.py", &args)[1..]);
            let browser = Process::spawn("browser_check.py", command).expect_success(Duration::from_secs(180));
            assert!(browser.stdout.contains("ok no console errors"), "{}", browser.output);
            let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
            assert!(size > 10_000, "screenshot {} has {size} bytes", shot.display());
            eprintln!("dashboard screenshot: {}", shot.display());
            // Killed from the page: its caller got the error; the API lists it no more.
            let exited = caller.wait(PATIENCE);
            assert!(exited.output.contains("killed by an operator"), "{}", exited.output);
            let (status, _) = call(LOCAL, port, "GET", &format!("/kar/admin/v1/requests/{stuck}"), "");
            assert_eq!(status, 404);
        }
        dash.terminate(PATIENCE);
    }
);
