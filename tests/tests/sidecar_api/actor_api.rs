//! Actor calls, actor removal, actor state and the actor listings of the `/kar/v1`
//! server, driven by real HTTP/1.1 and h2c clients, over a real runtime on the
//! embedded store and a real HTTP component hosting actors.

use super::common::*;
use http::{Method, StatusCode};
use kar_protocol::paths::encode_segment;
use serde_json::{json, Value};
use std::time::Duration;

const TEXT_UTF8: &str = "text/plain; charset=utf-8";
const KAR_JSON: &str = "application/kar+json";
const JSON: &str = "application/json";

async fn start(actors: &[&str]) -> (TestApp, Sidecar) {
    let app = start_app(1).await;
    let sidecar = start_sidecar(SidecarOptions::with_actors(app.port, actors)).await;
    app.sidecar.set(sidecar.url.clone()).unwrap();
    (app, sidecar)
}

/// The `value` of an `application/kar+json` reply of the test component's `echo`.
fn value(a: &Answer) -> Value {
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.content_type(), Some(KAR_JSON), "{}", a.text());
    let envelope: Value = serde_json::from_slice(&a.body).unwrap();
    envelope["value"].clone()
}

/// `<flow>:<request>`.
fn session(session: &Value) -> (String, String) {
    let (flow, request) = session.as_str().unwrap().split_once(':').unwrap();
    (flow.to_string(), request.to_string())
}

fn actor_url(actor_type: &str, id: &str) -> String {
    format!(
        "/kar/v1/actor/{}/{}",
        encode_segment(actor_type),
        encode_segment(id)
    )
}

async fn put(http: &Http, path: &str, body: &str) -> Answer {
    http.send(Method::PUT, path, &[], full(body.to_string()))
        .await
}

async fn delete(http: &Http, path: &str) -> Answer {
    http.send(Method::DELETE, path, &[], full("")).await
}

async fn head(http: &Http, path: &str) -> Answer {
    http.send(Method::HEAD, path, &[], full("")).await
}

fn assert_text(a: &Answer, status: StatusCode, body: &str, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text());
    assert_eq!(a.content_type(), Some(TEXT_UTF8), "{what}");
    assert_eq!(a.text(), body, "{what}");
}

fn assert_json(a: &Answer, body: &str, what: &str) {
    assert_eq!(a.status, StatusCode::OK, "{what}: {}", a.text());
    assert_eq!(a.content_type(), Some(JSON), "{what}");
    assert_eq!(a.text(), body, "{what}");
}

fn assert_bare(a: &Answer, status: StatusCode, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.text());
    assert_eq!(a.content_type(), None, "{what}");
    assert!(a.body.is_empty(), "{what}");
}

#[tokio::test]
async fn actor_calls_relay_the_component_replies() {
    let (mut app, sidecar) = start(&["T", "T x"]).await;
    for (n, http) in Http::both(&sidecar.url).into_iter().enumerate() {
        let who = http.name;
        let id = format!("a{n}");
        let base = actor_url("T", &id);

        // First call: activation (with the session), then the method. Incoming
        // Content-Type and headers are not forwarded; the body goes verbatim.
        let a = http
            .post(
                &format!("{base}/call/echo"),
                &[("content-type", "text/plain"), ("x-custom", "1")],
                r#"[1,"a"]"#,
            )
            .await;
        let v = value(&a);
        assert_eq!(v["body"], r#"[1,"a"]"#, "{who}");
        assert_eq!(v["contentType"], KAR_JSON, "{who}");
        assert_eq!(
            v["path"],
            format!("/kar/impl/v1/actor/T/{id}/echo"),
            "{who}"
        );
        assert!(
            !v["headers"]
                .as_array()
                .unwrap()
                .contains(&json!("x-custom")),
            "{who}"
        );
        let (flow, request) = session(&v["session"]);
        assert!(flow.starts_with("flow-"), "{who}: {flow}");
        assert!(request.starts_with("req-"), "{who}: {request}");
        let events = app.take_events();
        assert_eq!(events.len(), 2, "{who}: {events:?}");
        assert_eq!(
            (
                events[0].method.as_str(),
                events[0].id.as_deref(),
                &events[0].name
            ),
            ("GET", Some(id.as_str()), &None),
            "{who}"
        );
        assert_eq!(events[0].session.as_deref(), v["session"].as_str(), "{who}");
        assert!(events[0].body.is_empty(), "{who}");
        assert_eq!(events[1].method, "POST", "{who}");

        // Later calls: no activation. Bodies are never validated.
        for body in [r#"{"args":[1],"kwargs":{"k":2}}"#, "not json", ""] {
            let a = http.post(&format!("{base}/call/echo"), &[], body).await;
            assert_eq!(value(&a)["body"], body, "{who}");
        }
        let events = app.take_events();
        assert!(
            events.iter().all(|e| e.method == "POST"),
            "{who}: {events:?}"
        );

        // The method path goes on still percent-encoded as received.
        let a = http
            .post(&format!("{base}/call/echo/x%2Fy%20z"), &[], "[]")
            .await;
        let v = value(&a);
        assert_eq!(v["method"], "echo/x%2Fy%20z", "{who}");
        assert_eq!(
            v["path"],
            format!("/kar/impl/v1/actor/T/{id}/echo/x%2Fy%20z"),
            "{who}"
        );

        // Types and ids with any character reach the component as one segment each.
        let odd_id = format!("a/b c€_{n}");
        let a = http
            .post(
                &format!("{}/call/echo", actor_url("T x", &odd_id)),
                &[],
                "[]",
            )
            .await;
        let v = value(&a);
        assert_eq!(
            (v["type"].as_str(), v["id"].as_str()),
            (Some("T x"), Some(odd_id.as_str())),
            "{who}"
        );
        assert_eq!(
            v["path"],
            format!("/kar/impl/v1/actor/T%20x/a%2Fb%20c%E2%82%AC_{n}/echo"),
            "{who}"
        );

        // 204: status only.
        let a = http.post(&format!("{base}/call/nothing"), &[], "[]").await;
        assert_bare(&a, StatusCode::NO_CONTENT, who);

        // Unknown method: the component's 404 is relayed, not an error of ours.
        let a = http.post(&format!("{base}/call/missing"), &[], "[]").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{who}");
        assert_eq!(a.content_type(), Some("text/plain"), "{who}");
        assert_eq!(
            a.text(),
            format!("no missing in actor with type T and id {id}"),
            "{who}"
        );

        // A tail call continues the same request (same session) and its last step
        // answers the caller.
        app.take_events();
        let a = http.post(&format!("{base}/call/tail"), &[], "[]").await;
        let v = value(&a);
        assert_eq!(v["body"], r#"["tailed"]"#, "{who}");
        let events = app.take_events();
        let steps: Vec<_> = events
            .iter()
            .map(|e| (e.name.as_deref(), e.session.as_deref()))
            .collect();
        assert_eq!(
            steps,
            [
                (Some("tail"), v["session"].as_str()),
                (Some("echo"), v["session"].as_str())
            ],
            "{who}"
        );

        // A failed activation answers the call with the activation's reply.
        let a = http
            .post(
                &format!("{}/call/echo", actor_url("T", "broken")),
                &[],
                "[]",
            )
            .await;
        assert_eq!(a.status, StatusCode::CONFLICT, "{who}");
        assert_eq!(a.text(), "cannot activate", "{who}");
        let events = app.take_events();
        assert!(
            events.iter().all(|e| e.method == "GET"),
            "{who}: {events:?}"
        );
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn sessions_choose_the_flow() {
    let (mut app, sidecar) = start(&["T"]).await;
    for http in Http::both(&sidecar.url) {
        let who = http.name;
        let echo = format!("{}/call/echo", actor_url("T", "s"));

        // A sync call runs in the session's flow; the component gets a new request id.
        for query in ["session=f1:r0", "session=f1%3Ar0", "session=f1:r0:x"] {
            let v = value(&http.post(&format!("{echo}?{query}"), &[], "[]").await);
            let (flow, request) = session(&v["session"]);
            assert_eq!(flow, "f1", "{who} {query}");
            assert!(request.starts_with("req-"), "{who} {query}: {request}");
        }
        let v = value(&http.post(&format!("{echo}?session=f2"), &[], "[]").await);
        assert_eq!(session(&v["session"]).0, "f2", "{who}");
        // What the Python SDK sends for a proxy without a session.
        let v = value(&http.post(&format!("{echo}?session=None"), &[], "[]").await);
        assert_eq!(session(&v["session"]).0, "None", "{who}");
        for query in ["", "?session=", "?session=:r0", "?other=f1:r0"] {
            let v = value(&http.post(&format!("{echo}{query}"), &[], "[]").await);
            assert!(
                session(&v["session"]).0.starts_with("flow-"),
                "{who} {query}: {}",
                v["session"]
            );
        }

        // The component calls the same instance back with the session it got: the
        // nested call re-enters the lock its own flow holds instead of deadlocking.
        let a = http
            .post(&format!("{}/call/nested", actor_url("T", "s")), &[], "[]")
            .await;
        let inner = value(&a);
        assert_eq!(inner["body"], r#"["inner"]"#, "{who}");
        let events = app.take_events();
        let outer = events
            .iter()
            .find(|e| e.name.as_deref() == Some("nested"))
            .unwrap();
        let (outer_flow, outer_request) = session(&json!(outer.session));
        let (inner_flow, inner_request) = session(&inner["session"]);
        assert_eq!(inner_flow, outer_flow, "{who}");
        assert_ne!(inner_request, outer_request, "{who}");

        // A tell never runs in the caller's flow.
        let a = http
            .post(
                &format!("{echo}?session=f1:r0"),
                &[("pragma", "async")],
                "[\"told\"]",
            )
            .await;
        assert_text(&a, StatusCode::ACCEPTED, "OK", who);
        let event = app.next_event().await;
        assert_eq!(&event.body[..], b"[\"told\"]", "{who}");
        let (flow, _) = session(&json!(event.session));
        assert!(flow.starts_with("flow-"), "{who}: {flow}");

        // Nor does a promise: the session is ignored entirely.
        let a = http
            .post(
                &format!("{echo}?session=f1:r0"),
                &[("pragma", "promise")],
                "[\"promised\"]",
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{who}");
        assert_eq!(a.content_type(), Some(TEXT_UTF8), "{who}");
        let id = a.text();
        assert!(id.starts_with("req-"), "{who}: {id}");
        let a = http
            .post(
                "/kar/v1/await",
                &[("content-type", "text/plain")],
                id.clone(),
            )
            .await;
        let v = value(&a);
        assert_eq!(v["body"], "[\"promised\"]", "{who}");
        let (flow, request) = session(&v["session"]);
        assert!(flow.starts_with("flow-"), "{who}: {flow}");
        // The promise's id is the request id the component saw.
        assert_eq!(request, id, "{who}");
        app.take_events();
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn tell_and_promise_to_a_method() {
    let (mut app, sidecar) = start(&["T"]).await;
    for http in Http::both(&sidecar.url) {
        let who = http.name;
        let base = actor_url("T", "tp");
        let a = http
            .post(
                &format!("{base}/call/echo/told"),
                &[("pragma", "ASYNC")],
                "[1]",
            )
            .await;
        assert_text(&a, StatusCode::ACCEPTED, "OK", who);
        let mut event = app.next_event().await;
        if event.method == "GET" {
            event = app.next_event().await;
        }
        assert_eq!(event.name.as_deref(), Some("echo/told"), "{who}");
        assert_eq!(&event.body[..], b"[1]", "{who}");

        // A tell to an unknown method is still accepted (the 404 is only logged).
        let a = http
            .post(
                &format!("{base}/call/missing"),
                &[("pragma", "async")],
                "[]",
            )
            .await;
        assert_text(&a, StatusCode::ACCEPTED, "OK", who);
        assert_eq!(app.next_event().await.name.as_deref(), Some("missing"));

        // Promises relay the raw envelope through await, 204 and errors included.
        let promise = |method: &'static str| {
            let http = http.clone();
            let base = base.clone();
            async move {
                let a = http
                    .post(
                        &format!("{base}/call/{method}"),
                        &[("pragma", "promise")],
                        "[2]",
                    )
                    .await;
                assert_eq!(a.status, StatusCode::ACCEPTED);
                http.post("/kar/v1/await", &[], a.text()).await
            }
        };
        assert_eq!(value(&promise("echo").await)["body"], "[2]", "{who}");
        let a = promise("missing").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{who}");
        let a = promise("nothing").await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{who}");
        assert!(a.body.is_empty(), "{who}");
        app.take_events();
    }
    sidecar.stop().await;
}

/// The removal runs later, after the `202`; the test can only watch for its effect.
async fn wait_until_gone(http: &Http, path: &str) {
    for _ in 0..400 {
        if http.get(path).await.status == StatusCode::NOT_FOUND {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{path} still exists 10 s after the actor was removed");
}

#[tokio::test]
async fn removing_an_actor_deactivates_it_and_drops_its_state() {
    let (mut app, sidecar) = start(&["T"]).await;
    for (n, http) in Http::both(&sidecar.url).into_iter().enumerate() {
        let who = http.name;
        let id = format!("r/{n}");
        let base = actor_url("T", &id);
        assert_eq!(
            put(&http, &format!("{base}/state/k"), "1").await.status,
            StatusCode::CREATED
        );
        assert_eq!(
            put(&http, &format!("{base}/state/m/s"), "2").await.status,
            StatusCode::CREATED
        );
        value(&http.post(&format!("{base}/call/echo"), &[], "[]").await);
        app.take_events();

        let a = delete(&http, &base).await;
        assert_text(&a, StatusCode::ACCEPTED, "OK", who);
        let event = app.next_event().await;
        assert_eq!(
            (
                event.method.as_str(),
                event.id.as_deref(),
                event.session.as_deref()
            ),
            ("DELETE", Some(id.as_str()), None),
            "{who}"
        );
        wait_until_gone(&http, &format!("{base}/state/k")).await;
        assert_json(&http.get(&format!("{base}/state")).await, "{}", who);
        let a = http.get("/kar/v1/system/information/sidecar_actors").await;
        assert!(!a.text().contains(&id), "{who}: {}", a.text());

        // The next call activates a fresh instance.
        value(&http.post(&format!("{base}/call/echo"), &[], "[]").await);
        let events = app.take_events();
        assert_eq!(events[0].method, "GET", "{who}: {events:?}");

        // An instance that was never activated: its state goes, nothing is deactivated.
        let idle = actor_url("T", &format!("idle{n}"));
        put(&http, &format!("{idle}/state/k"), "1").await;
        assert_text(&delete(&http, &idle).await, StatusCode::ACCEPTED, "OK", who);
        wait_until_gone(&http, &format!("{idle}/state/k")).await;
        assert!(app.take_events().is_empty(), "{who}");
    }
    sidecar.stop().await;
}

/// Keys, subkeys, types and ids of every shape.
const ODD_KEYS: &[&str] = &[
    "k",
    "a/b",
    "with space",
    "under_score",
    "_",
    "€uro",
    "q?x#y%z&+",
];

#[tokio::test]
async fn single_state_entries() {
    let (_app, sidecar) = start(&["T"]).await;
    for (n, http) in Http::both(&sidecar.url).into_iter().enumerate() {
        let who = http.name;
        let (actor_type, id) = ("T y_", format!("i/d €_{n}"));
        let base = format!("{}/state", actor_url(actor_type, &id));
        for key in ODD_KEYS {
            for subkey in [None, Some("s/1 €_")] {
                let mut path = format!("{base}/{}", encode_segment(key));
                if let Some(subkey) = subkey {
                    path.push('/');
                    path.push_str(&encode_segment(subkey));
                }
                let what = format!("{who} {key:?} {subkey:?}");
                let what = what.as_str();

                // Absent.
                let a = http.get(&path).await;
                assert_text(&a, StatusCode::NOT_FOUND, "Not Found\n", what);
                assert_eq!(a.headers["x-content-type-options"], "nosniff", "{what}");
                let a = http.get(&format!("{path}?nilOnAbsent=true")).await;
                assert_bare(&a, StatusCode::OK, what);
                for query in ["nilOnAbsent=TRUE", "nilOnAbsent=1", "nilonabsent=true"] {
                    let a = http.get(&format!("{path}?{query}")).await;
                    assert_eq!(a.status, StatusCode::NOT_FOUND, "{what} {query}");
                }
                assert_eq!(
                    head(&http, &path).await.status,
                    StatusCode::NOT_FOUND,
                    "{what}"
                );
                assert_text(&delete(&http, &path).await, StatusCode::OK, "0", what);

                // Created: 201 with Location, then replaced: 204. The text is
                // stored verbatim, JSON or not.
                let a = put(&http, &path, "not json").await;
                assert_bare(&a, StatusCode::CREATED, what);
                assert_eq!(a.headers["location"], path.as_str(), "{what}");
                let stored = r#" {"b": 1,  "a":[1.50, "<&>"]} "#;
                let a = put(&http, &path, stored).await;
                assert_bare(&a, StatusCode::NO_CONTENT, what);
                assert!(a.headers.get("location").is_none(), "{what}");

                let a = http.get(&path).await;
                assert_json(&a, stored, what);
                let a = http.get(&format!("{path}?nilOnAbsent=true")).await;
                assert_json(&a, stored, what);
                let a = head(&http, &path).await;
                assert_bare(&a, StatusCode::OK, what);

                assert_text(&delete(&http, &path).await, StatusCode::OK, "1", what);
                assert_text(&delete(&http, &path).await, StatusCode::OK, "0", what);
                assert_eq!(
                    http.get(&path).await.status,
                    StatusCode::NOT_FOUND,
                    "{what}"
                );
            }
        }

        // Flat entries and submap entries never collide (decision §9.4).
        let flat = format!("{base}/m");
        let entry = format!("{base}/m/_");
        put(&http, &flat, "1").await;
        put(&http, &entry, "2").await;
        assert_json(&http.get(&flat).await, "1", who);
        assert_json(&http.get(&entry).await, "2", who);
        assert_text(&delete(&http, &flat).await, StatusCode::OK, "1", who);
        assert_json(&http.get(&entry).await, "2", who);
        assert_eq!(
            head(&http, &flat).await.status,
            StatusCode::NOT_FOUND,
            "{who}"
        );
        assert_text(&delete(&http, &entry).await, StatusCode::OK, "1", who);

        // Other actors' state is separate.
        let other = format!("{}/state/k", actor_url(actor_type, &format!("{id}x")));
        put(&http, &format!("{base}/k"), "1").await;
        assert_eq!(
            http.get(&other).await.status,
            StatusCode::NOT_FOUND,
            "{who}"
        );
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn get_all_and_remove_all() {
    let (_app, sidecar) = start(&["T"]).await;
    for (n, http) in Http::both(&sidecar.url).into_iter().enumerate() {
        let who = http.name;
        let base = format!("{}/state", actor_url("T", &format!("all{n}")));
        assert_json(&http.get(&base).await, "{}", who);
        assert_text(&delete(&http, &base).await, StatusCode::OK, "0", who);

        for (key, value) in [
            ("a", r#"{"z":1.0,"a":"<&>"}"#),
            ("big", "12345678901234567890"),
            ("e", "1e21"),
            ("small", "0.0000001"),
            ("bad", "not json"),
            ("under_score", " 1 "),
            ("ü", r#""\u00fc""#),
        ] {
            put(&http, &format!("{base}/{}", encode_segment(key)), value).await;
        }
        for (subkey, value) in [("y", r#""s""#), ("x", "[1, 2.50]")] {
            put(&http, &format!("{base}/m/{subkey}"), value).await;
        }
        put(&http, &format!("{base}/m_x/y"), "true").await;

        // Go's encoding of the decoded values: members sorted, float64 numbers,
        // `<`, `>`, `&` escaped; invalid JSON becomes null.
        let a = http.get(&base).await;
        assert_json(
            &a,
            r#"{"a":{"a":"\u003c\u0026\u003e","z":1},"bad":null,"big":12345678901234567000,"e":1e+21,"m":{"x":[1,2.5],"y":"s"},"m_x":{"y":true},"small":1e-7,"under_score":1,"ü":"ü"}"#,
            who,
        );

        assert_text(&delete(&http, &base).await, StatusCode::OK, "1", who);
        assert_json(&http.get(&base).await, "{}", who);
        assert_text(&delete(&http, &base).await, StatusCode::OK, "0", who);
        assert_eq!(
            http.get(&format!("{base}/m/x")).await.status,
            StatusCode::NOT_FOUND
        );

        // Submap entries alone count as state.
        put(&http, &format!("{base}/m/x"), "1").await;
        assert_text(&delete(&http, &base).await, StatusCode::OK, "1", who);
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn multi_element_updates() {
    let (_app, sidecar) = start(&["T"]).await;
    for (n, http) in Http::both(&sidecar.url).into_iter().enumerate() {
        let who = http.name;
        let base = format!("{}/state", actor_url("T", &format!("u{n}")));
        let update = |body: &'static str| {
            let http = http.clone();
            let base = base.clone();
            async move {
                http.post(&base, &[("content-type", "application/json")], body)
                    .await
            }
        };

        let a = update(
            r#"{"Updates":{"a":1,"b":{"y":2,"x":1.50},"c/ d_€":"<"},"SUBMAPUPDATES":{"m":{"k2":2,"k1":1}},"field1":43}"#,
        )
        .await;
        assert_json(&a, r#"{"removed":0,"added":5}"#, who);
        // Values are stored re-encoded.
        assert_json(
            &http.get(&format!("{base}/b")).await,
            r#"{"x":1.5,"y":2}"#,
            who,
        );
        assert_json(
            &http
                .get(&format!("{base}/{}", encode_segment("c/ d_€")))
                .await,
            r#""\u003c""#,
            who,
        );
        // Submap updates keep the order of the request.
        let a = http
            .post(&format!("{base}/m"), &[], r#"{"op":"keys"}"#)
            .await;
        assert_json(&a, r#"["k2","k1"]"#, who);

        // `added` counts only new fields.
        let a =
            update(r#"{"updates":{"a":2,"new":3},"submapupdates":{"m":{"k1":10,"k3":3}}}"#).await;
        assert_json(&a, r#"{"removed":0,"added":2}"#, who);
        assert_json(&http.get(&format!("{base}/a")).await, "2", who);
        let a = http
            .post(&format!("{base}/m"), &[], r#"{"op":"keys"}"#)
            .await;
        assert_json(&a, r#"["k2","k1","k3"]"#, who);

        // `removed` counts only fields that existed.
        let a = update(
            r#"{"removals":["a","absent"],"submapremovals":{"m":["k1","zz"],"none":["x"]}}"#,
        )
        .await;
        assert_json(&a, r#"{"removed":2,"added":0}"#, who);
        assert_eq!(
            http.get(&format!("{base}/a")).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            http.get(&format!("{base}/m/k1")).await.status,
            StatusCode::NOT_FOUND
        );

        // Removals come first: removing and setting one key re-creates it.
        let a = update(r#"{"removals":["new"],"updates":{"new":5}}"#).await;
        assert_json(&a, r#"{"removed":1,"added":1}"#, who);
        assert_json(&http.get(&format!("{base}/new")).await, "5", who);

        // Unknown members and null are no-ops.
        let before = http.get(&base).await.text();
        for body in [r#"{"field1":43}"#, "null", "{}", r#"{"updates":null}"#] {
            assert_json(&update(body).await, r#"{"removed":0,"added":0}"#, who);
        }
        assert_eq!(http.get(&base).await.text(), before, "{who}");

        // Anything else is refused, and changes nothing.
        for body in [
            "",
            "not json",
            "[]",
            r#"{"removals":"a"}"#,
            r#"{"removals":["b"],"updates":[]}"#,
            r#"{"submapupdates":{"m":[1]}}"#,
            r#"{"submapremovals":{"m":"k2"}}"#,
            r#"{"updates":{"a":1}"#,
        ] {
            let a = update(body).await;
            assert_text(
                &a,
                StatusCode::BAD_REQUEST,
                "Request body was not a StateUpdateOp\n",
                &format!("{who} {body}"),
            );
        }
        assert_eq!(http.get(&base).await.text(), before, "{who}");
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn submap_operations() {
    let (_app, sidecar) = start(&["T"]).await;
    for (n, http) in Http::both(&sidecar.url).into_iter().enumerate() {
        let who = http.name;
        let base = format!("{}/state", actor_url("T", &format!("m{n}")));
        let map = format!("{base}/{}", encode_segment("sub/map €_"));
        let op = |body: &'static str| {
            let http = http.clone();
            let map = map.clone();
            async move { http.post(&map, &[], body).await }
        };

        // An empty submap.
        assert_json(&op(r#"{"op":"get"}"#).await, "{}", who);
        assert_json(&op(r#"{"op":"keys"}"#).await, "[]", who);
        assert_json(&op(r#"{"op":"size"}"#).await, "0", who);
        assert_json(&op(r#"{"op":"clear"}"#).await, "0", who);

        // Insertion order, kept when an entry is replaced.
        for (subkey, value) in [
            ("key3", "3"),
            ("key1", r#"{"b":1,"a":"&"}"#),
            ("key2", "2.50"),
        ] {
            put(&http, &format!("{map}/{subkey}"), value).await;
        }
        put(&http, &format!("{map}/key3"), "33").await;
        // A flat entry of the same name is another namespace.
        put(&http, &map, "\"flat\"").await;
        assert_json(
            &op(r#"{"op":"keys"}"#).await,
            r#"["key3","key1","key2"]"#,
            who,
        );
        assert_json(&op(r#"{"OP":"size","other":[1]}"#).await, "3", who);
        assert_json(
            &op(r#"{"Op":"get"}"#).await,
            r#"{"key1":{"a":"\u0026","b":1},"key2":2.5,"key3":33}"#,
            who,
        );

        assert_json(&op(r#"{"op":"clear"}"#).await, "3", who);
        assert_json(&op(r#"{"op":"size"}"#).await, "0", who);
        assert_json(&http.get(&map).await, "\"flat\"", who);

        // Errors.
        for body in ["", "not json", r#"{"op":1}"#, "[]", r#""get""#] {
            assert_text(
                &op(body).await,
                StatusCode::BAD_REQUEST,
                "Request body was not a MapOp\n",
                &format!("{who} {body}"),
            );
        }
        for (body, name) in [
            (r#"{"op":"SIZE"}"#, "SIZE"),
            ("{}", ""),
            (r#"{"op":"pop"}"#, "pop"),
        ] {
            assert_text(
                &op(body).await,
                StatusCode::BAD_REQUEST,
                &format!("Unsupported map operation {name}\n"),
                &format!("{who} {body}"),
            );
        }

        // `get` of a value that is not JSON.
        put(&http, &format!("{map}/bad"), "not json").await;
        let a = op(r#"{"op":"get"}"#).await;
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{who}");
        assert_eq!(a.content_type(), Some(TEXT_UTF8), "{who}");
        let text = a.text();
        assert!(
            text.starts_with(
                "submapOps:get: subMapScan failed: Failed to deserialize submap value: "
            ),
            "{who}: {text}"
        );
        assert_eq!(text.lines().count(), 1, "{who}: {text}");
        // The other operations do not look at values.
        assert_json(&op(r#"{"op":"keys"}"#).await, r#"["bad"]"#, who);
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn information_lists_activated_actors() {
    let (_app, sidecar) = start(&["T", "U"]).await;
    let http = Http::h2(&sidecar.url);
    for (actor_type, id) in [("T", "2"), ("T", "1"), ("U", "x<y")] {
        value(
            &http
                .post(
                    &format!("{}/call/echo", actor_url(actor_type, id)),
                    &[],
                    "[]",
                )
                .await,
        );
    }
    // State alone does not activate.
    put(&http, &format!("{}/state/k", actor_url("T", "3")), "1").await;

    let json_header = [("accept", JSON)];
    for component in ["actors", "Actors", "sidecar_actors"] {
        let path = format!("/kar/v1/system/information/{component}");
        let a = http.send(Method::GET, &path, &json_header, full("")).await;
        assert_json(
            &a,
            "{\n  \"T\": [\n    \"1\",\n    \"2\"\n  ],\n  \"U\": [\n    \"x\\u003cy\"\n  ]\n}",
            component,
        );
        let a = http.get(&path).await;
        assert_eq!(a.status, StatusCode::OK, "{component}");
        assert_eq!(a.content_type(), Some("text/plain"), "{component}");
        assert_eq!(
            a.text(),
            "T: [\n    1\n    2\n]\nU: [\n    x<y\n]\n",
            "{component}"
        );
    }
    sidecar.stop().await;
}
