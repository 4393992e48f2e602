//! An operator's control of pending requests (issue 9, points 2, 3 and 6), on both
//! stores, with the component `tests/apps/js/control/server.js` (a service `ctl` and
//! an actor type `Bench` whose `hang` never answers): `kar get -s requests` tells
//! running from queued, `kar kill` ends a hung call (its caller gets the killed
//! error) and frees the actor for the calls queued behind it, in order; bad input is
//! refused with exit 1 and changes nothing.

use kar_tests::{free_port, kar, node, poll_until, store_test, unique_app, Component, Process};
use serde_json::Value;
use std::io::{Read, Write};
use std::time::Duration;

/// Upper bound for a process to print what the test waits for.
const PATIENCE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(50);
/// What a caller of a killed request sees (a component through its sidecar: `500
/// failed to send message: killed by an operator`; the CLI callers print it).
const KILLED: &str = "killed by an operator";

fn server(store: &kar_tests::Store, app: &str) -> Process {
    let server = Component::new(store, app)
        .name("control server")
        .service("ctl")
        .actors(&["Bench"])
        .command(node("control/server.js", &[]))
        .spawn();
    server.expect_output("control server listening on ", PATIENCE);
    server
}

/// `kar get -app APP -o json -s requests ARGS...`: the listed requests.
fn listing(store: &kar_tests::Store, app: &str, args: &[&str]) -> Vec<Value> {
    let mut argv = vec!["get", "-app", app, "-o", "json", "-s", "requests"];
    argv.extend(args);
    let got = kar(store, &argv).expect_success(PATIENCE);
    match serde_json::from_str(got.stdout.trim()) {
        // The age changes from one listing to the next: left out.
        Ok(Value::Array(mut items)) => {
            for item in &mut items {
                item.as_object_mut().map(|o| o.remove("age_ms"));
            }
            items
        }
        _ => panic!("kar get printed no JSON array:\n{}", got.output),
    }
}

/// Polls the listing until `ok` holds for it; returns it.
fn listing_until(store: &kar_tests::Store, app: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut last = Vec::new();
    let reached = poll_until(PATIENCE, POLL, || {
        last = listing(store, app, &[]);
        ok(&last)
    });
    assert!(
        reached,
        "listing never reached the expected state: {last:#?}"
    );
    last
}

fn field<'v>(request: &'v Value, name: &str) -> &'v str {
    request[name].as_str().unwrap_or_default()
}

fn kill(store: &kar_tests::Store, app: &str, id: &str) {
    let killed = kar(store, &["kill", "-app", app, id]).expect_success(PATIENCE);
    assert!(
        killed.stdout.contains(&format!("killed {id}")),
        "{}",
        killed.output
    );
}

store_test!(
    fn kill_ends_a_hung_call(store) {
        let app = unique_app("kill");
        let server = server(store, &app);
        let mut caller = kar(store, &["rest", "-app", &app, "post", "ctl", "/hang"]);
        server.expect_output("control: hang /hang", PATIENCE);
        let listed = listing_until(store, &app, |l| {
            l.len() == 1 && field(&l[0], "status") == "running"
        });
        let hung = &listed[0];
        assert_eq!(field(hung, "kind"), "call");
        assert_eq!(hung["target"], serde_json::json!({"service": "ctl"}));
        assert_eq!(field(hung, "method"), "POST");
        assert_eq!(field(hung, "path"), "/hang");
        assert_eq!(hung["attempt"], 0);
        assert!(field(hung, "assignee").starts_with("node-"), "{hung}");
        assert!(field(hung, "accepted_at").ends_with('Z'), "{hung}");
        let id = field(hung, "id").to_string();

        kill(store, &app, &id);
        let exited = caller.wait(PATIENCE);
        assert!(exited.output.contains(KILLED), "{}", exited.output);
        assert_eq!(listing(store, &app, &[]), Vec::<Value>::new());
        server.expect_output(&format!("request {id} abandoned"), PATIENCE);
        // The sidecar keeps serving.
        let ok = kar(store, &["rest", "-app", &app, "post", "ctl", "/ok"]).expect_success(PATIENCE);
        assert!(ok.stdout.contains("ok"), "{}", ok.output);

        // Bad input: exit 1, one clear line, nothing changes.
        let parked = kar(store, &["rest", "-app", &app, "post", "nobody", "/x"]);
        let listed = listing_until(store, &app, |l| l.len() == 1);
        assert_eq!(field(&listed[0], "status"), "parked");
        let other = unique_app("other");
        let unknown = "req-00000000-0000-7000-8000-000000000000";
        let parked_id = field(&listed[0], "id").to_string();
        for (args, says) in [
            (vec!["kill", "-app", &app, unknown], format!("no request {unknown} in application {app}")),
            (vec!["pause", "-app", &app, unknown], format!("no request {unknown} in application {app}")),
            (vec!["kill", "-app", &other, &parked_id], format!("no request {parked_id} in application {other}")),
            (vec!["kill", "-app", &app, &id], format!("request {id} ")),
            (vec!["kill", "-app", &app], "kill expects one argument, a request id; got 0".to_string()),
            (vec!["get", "-app", &app, "-s", "requests", "--status", "bogus"], "unknown request status \"bogus\"".to_string()),
            (vec!["get", "-app", &app, "-s", "request", unknown], format!("no pending request {unknown} in application {app}")),
        ] {
            let mut command = kar(store, &args);
            let exited = command.wait(PATIENCE);
            assert_eq!(exited.code(), Some(1), "{args:?}: {}", exited.output);
            assert!(exited.output.contains(&says), "{args:?}: {}", exited.output);
            assert!(!exited.output.contains("panicked"), "{}", exited.output);
        }
        assert_eq!(listing(store, &app, &[]), listed, "nothing changed");
        // Pause and resume the parked one, then kill it: its caller gets the error.
        let paused = kar(store, &["pause", "-app", &app, &parked_id]).expect_success(PATIENCE);
        assert!(paused.stdout.contains(&format!("paused {parked_id}")), "{}", paused.output);
        let listed = listing(store, &app, &["--status", "paused"]);
        assert_eq!(listed.len(), 1, "{listed:#?}");
        kar(store, &["resume", "-app", &app, &parked_id]).expect_success(PATIENCE);
        assert_eq!(field(&listing(store, &app, &[])[0], "status"), "parked");
        kill(store, &app, &parked_id);
        let mut parked = parked;
        let exited = parked.wait(PATIENCE);
        assert!(exited.output.contains(KILLED), "{}", exited.output);
        assert_eq!(listing(store, &app, &[]), Vec::<Value>::new());
    }
);

store_test!(
    fn killing_a_hung_actor_method_runs_the_next_in_order(store) {
        let app = unique_app("hang");
        let server = server(store, &app);
        let mut hang = kar(store, &["invoke", "-app", &app, "Bench", "1", "hang"]);
        server.expect_output("control: hang /kar/impl/v1/actor/Bench/1/hang", PATIENCE);
        let mut first = kar(store, &["invoke", "-app", &app, "Bench", "1", "echo", "1"]);
        listing_until(store, &app, |l| l.len() == 2);
        let mut second = kar(store, &["invoke", "-app", &app, "Bench", "1", "echo", "2"]);
        let listed = listing_until(store, &app, |l| l.len() == 3);
        let statuses: Vec<&str> = listed.iter().map(|r| field(r, "status")).collect();
        assert_eq!(statuses, ["running", "queued", "queued"], "{listed:#?}");
        let paths: Vec<&str> = listed.iter().map(|r| field(r, "path")).collect();
        assert_eq!(
            paths,
            [
                "/kar/impl/v1/actor/Bench/1/hang",
                "/kar/impl/v1/actor/Bench/1/echo",
                "/kar/impl/v1/actor/Bench/1/echo"
            ]
        );
        for r in &listed {
            assert_eq!(r["target"], serde_json::json!({"actor_type": "Bench", "actor_id": "1"}));
        }
        // The filters: one running, two queued.
        assert_eq!(listing(store, &app, &["--status", "running"]).len(), 1);
        assert_eq!(listing(store, &app, &["-status", "queued", "-t", "Bench", "-i", "1"]).len(), 2);
        assert_eq!(listing(store, &app, &["-t", "Bench", "-i", "2"]).len(), 0);
        // One of them with its chain.
        let id = field(&listed[0], "id").to_string();
        let one = kar(store, &["get", "-app", &app, "-o", "json", "-s", "request", &id])
            .expect_success(PATIENCE);
        let one: Value = serde_json::from_str(one.stdout.trim()).expect("JSON");
        assert_eq!(field(&one, "id"), id);
        assert_eq!(one["children"], serde_json::json!([]));

        kill(store, &app, &id);
        let exited = hang.wait(PATIENCE);
        assert!(exited.output.contains(KILLED), "{}", exited.output);
        let first = first.expect_success(PATIENCE);
        assert!(first.stdout.contains("Method result: 1"), "{}", first.output);
        let second = second.expect_success(PATIENCE);
        assert!(second.stdout.contains("Method result: 2"), "{}", second.output);
        let out = server.output();
        let one = out.find("control: echo 1").expect("echo 1 ran");
        let two = out.find("control: echo 2").expect("echo 2 ran");
        assert!(one < two, "in order:\n{out}");
        assert_eq!(listing(store, &app, &[]), Vec::<Value>::new());
    }
);

/// One HTTP/1.1 exchange with the sidecar on `port`: the status and the JSON body.
fn http(port: u16, method: &str, path: &str) -> (u16, Value) {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{method} {path}: {head}"
    );
    let body =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {body}"));
    (status, body)
}

fn error_code(answer: &(u16, Value)) -> (u16, &str) {
    let message = answer.1["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty() && !message.contains('\n'), "{answer:?}");
    (
        answer.0,
        answer.1["error"]["code"].as_str().unwrap_or_default(),
    )
}

store_test!(
    fn admin_api_lists_pages_and_controls_requests(store) {
        let app = unique_app("admin");
        let port = free_port();
        let server = Component::new(store, &app)
            .name("control server")
            .service("ctl")
            .actors(&["Bench"])
            .runtime_port(port)
            .command(node("control/server.js", &[]))
            .spawn();
        server.expect_output("control server listening on ", PATIENCE);
        // Five calls parked (nobody offers "nobody"), their callers blocked.
        let mut callers = Vec::new();
        for i in 0..5 {
            callers.push(kar(store, &["rest", "-app", &app, "post", "nobody", &format!("/p{i}")]));
            listing_until(store, &app, |l| l.len() == i + 1);
        }
        // Pages of two: 2, 2, 1, in arrival order.
        let mut ids = Vec::new();
        let mut pages = 0;
        let mut path = "/kar/admin/v1/requests?limit=2".to_string();
        loop {
            let (status, body) = http(port, "GET", &path);
            assert_eq!(status, 200, "{body}");
            pages += 1;
            for r in body["requests"].as_array().expect("requests") {
                assert_eq!(r["status"], "parked", "{r}");
                assert_eq!(r["kind"], "call", "{r}");
                assert_eq!(r["target"]["service"], "nobody", "{r}");
                ids.push((field(r, "id").to_string(), field(r, "path").to_string()));
            }
            match body["next_cursor"].as_str() {
                Some(cursor) => path = format!("/kar/admin/v1/requests?limit=2&cursor={cursor}"),
                None => break,
            }
        }
        assert!(pages >= 3, "{pages} pages");
        let paths: Vec<&str> = ids.iter().map(|(_, p)| p.as_str()).collect();
        assert_eq!(paths, ["/p0", "/p1", "/p2", "/p3", "/p4"]);
        let (status, body) = http(port, "GET", "/kar/admin/v1/requests?status=parked&service=nobody");
        assert_eq!((status, body["requests"].as_array().map(Vec::len)), (200, Some(5)));
        let (_, body) = http(port, "GET", "/kar/admin/v1/requests?actor_type=Bench");
        assert_eq!(body["requests"], serde_json::json!([]));

        // One request, with its children.
        let id = &ids[0].0;
        let (status, one) = http(port, "GET", &format!("/kar/admin/v1/requests/{id}"));
        assert_eq!(status, 200, "{one}");
        assert_eq!(field(&one, "id"), id);
        assert_eq!(one["children"], serde_json::json!([]));

        // Pause, resume, kill.
        let control = |op: &str, id: &str| http(port, "POST", &format!("/kar/admin/v1/requests/{id}/{op}"));
        assert_eq!(control("pause", id).0, 200);
        let (_, body) = http(port, "GET", "/kar/admin/v1/requests?status=paused");
        assert_eq!(body["requests"][0]["id"].as_str(), Some(id.as_str()), "{body}");
        assert_eq!(error_code(&control("pause", id)), (409, "conflict"));
        let (status, resumed) = control("resume", id);
        assert_eq!((status, resumed["status"].as_str()), (200, Some("parked")));
        assert_eq!(error_code(&control("resume", id)), (409, "conflict"));
        let (status, killed) = control("kill", id);
        assert_eq!((status, killed["killed"].as_bool()), (200, Some(true)), "{killed}");
        let exited = callers[0].wait(PATIENCE);
        assert!(exited.output.contains(KILLED), "{}", exited.output);
        let again = control("kill", id);
        assert!(matches!(error_code(&again), (404, "not_found") | (409, "conflict")), "{again:?}");

        // Bad input: 4xx JSON errors.
        let unknown = "req-00000000-0000-7000-8000-000000000000";
        for (method, path, want) in [
            ("GET", format!("/kar/admin/v1/requests/{unknown}"), (404, "not_found")),
            ("POST", format!("/kar/admin/v1/requests/{unknown}/kill"), (404, "not_found")),
            ("GET", "/kar/admin/v1/requests?status=bogus".to_string(), (400, "bad_request")),
            ("GET", "/kar/admin/v1/requests?limit=0".to_string(), (400, "bad_request")),
            ("GET", "/kar/admin/v1/requests?limit=1001".to_string(), (400, "bad_request")),
            ("GET", "/kar/admin/v1/requests?cursor=x".to_string(), (400, "bad_request")),
            ("GET", format!("/kar/admin/v1/requests/{id}/kill"), (405, "method_not_allowed")),
            ("GET", "/kar/admin/v1/nothing".to_string(), (404, "not_found")),
            ("POST", "/kar/admin/v1/drain".to_string(), (409, "conflict")),
            ("POST", "/kar/admin/v1/drain?force=maybe".to_string(), (400, "bad_request")),
        ] {
            let answer = http(port, method, &path);
            assert_eq!(error_code(&answer), want, "{method} {path}: {answer:?}");
        }
        assert_eq!(listing(store, &app, &[]).len(), 4, "bad input changed nothing");

        // The sidecars; then drain (forced).
        let (status, body) = http(port, "GET", "/kar/admin/v1/sidecars");
        assert_eq!(status, 200);
        let ours = body["sidecars"]
            .as_array()
            .expect("sidecars")
            .iter()
            .find(|s| s["runtime_port"] == port)
            .unwrap_or_else(|| panic!("{body}"));
        assert_eq!(ours["services"], serde_json::json!(["ctl"]));
        assert_eq!(ours["actor_types"], serde_json::json!(["Bench"]));
        let (status, body) = http(port, "POST", "/kar/admin/v1/drain?force=true");
        assert_eq!((status, body["drained"].as_u64()), (200, Some(4)), "{body}");
        assert_eq!(listing(store, &app, &[]), Vec::<Value>::new());
        drop(callers);
        drop(server);
    }
);
