//! The `/kar/v1` server driven by real HTTP/1.1 and h2c clients, over a real runtime
//! on the embedded store and a real component.

use super::common::*;
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use std::convert::Infallible;
use std::time::Duration;

const TEXT_UTF8: &str = "text/plain; charset=utf-8";

#[tokio::test]
async fn service_calls_relay_status_content_type_and_body() {
    let app = start_app(1).await;
    let sidecar = start_sidecar(SidecarOptions::new(app.port)).await;
    for http in Http::both(&sidecar.url) {
        let who = http.name;
        let a = http
            .post(
                "/kar/v1/service/svc/call/echo",
                &[("content-type", "text/plain")],
                "hello",
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{who}");
        assert_eq!(a.content_type(), Some("text/plain"), "{who}");
        assert_eq!(a.text(), "hello", "{who}");
        assert!(a.headers.get("x-app-extra").is_none(), "{who}");

        let json = r#"{"a":[1,2,{"b":"€"}]}"#;
        let a = http
            .post(
                "/kar/v1/service/svc/call/echo",
                &[("content-type", "application/json")],
                json,
            )
            .await;
        assert_eq!(a.content_type(), Some("application/json"), "{who}");
        assert_eq!(a.text(), json, "{who}");

        // Empty body and no Content-Type either way.
        let a = http.post("/kar/v1/service/svc/call/echo", &[], "").await;
        assert_eq!(a.status, StatusCode::OK, "{who}");
        assert_eq!(a.content_type(), None, "{who}");
        assert!(a.body.is_empty(), "{who}");

        // The app sent no Content-Type: none is invented.
        let a = http.get("/kar/v1/service/svc/call/noct").await;
        assert_eq!(
            (a.status, a.content_type()),
            (StatusCode::OK, None),
            "{who}"
        );
        assert_eq!(a.text(), "raw", "{who}");

        let a = http
            .send(
                Method::DELETE,
                "/kar/v1/service/svc/call/nocontent",
                &[],
                full(""),
            )
            .await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{who}");
        assert_eq!(a.content_type(), None, "{who}");
        assert!(a.body.is_empty(), "{who}");

        // Non-2xx replies are relayed, not errors.
        let a = http.get("/kar/v1/service/svc/call/teapot").await;
        assert_eq!(a.status.as_u16(), 418, "{who}");
        assert_eq!(a.content_type(), Some("text/plain"), "{who}");
        assert_eq!(a.text(), "short and stout", "{who}");

        // Bytes that are not UTF-8 pass unchanged.
        let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let a = http
            .post(
                "/kar/v1/service/svc/call/echo",
                &[("content-type", "application/octet-stream")],
                binary.clone(),
            )
            .await;
        assert_eq!(a.body, binary, "{who}");
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn service_calls_forward_method_path_query_and_headers() {
    let app = start_app(1).await;
    let sidecar = start_sidecar(SidecarOptions::new(app.port)).await;
    for http in Http::both(&sidecar.url) {
        let who = http.name;
        let a = http
            .send(
                Method::PUT,
                "/kar/v1/service/svc/call/inspect/a%2Fb/c%20d?x=1&y=%20z",
                &[
                    ("x-custom", "v1"),
                    ("pragma", "no-cache, async"),
                    ("content-type", "text/plain"),
                ],
                full("payload"),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{who}");
        let seen: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(seen["method"], "PUT", "{who}");
        assert_eq!(seen["path"], "/inspect/a%2Fb/c%20d", "{who}");
        assert_eq!(seen["query"], "x=1&y=%20z", "{who}");
        assert_eq!(seen["body"], "payload", "{who}");
        let headers: Vec<(String, String)> =
            serde_json::from_value(seen["headers"].clone()).unwrap();
        let get = |name: &str| {
            headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(get("x-custom"), ["v1"], "{who}");
        // `no-cache, async` is no tell; the header goes through as-is.
        assert_eq!(get("pragma"), ["no-cache, async"], "{who}");
        assert_eq!(get("content-type"), ["text/plain"], "{who}");
        assert_eq!(get("content-length"), ["7"], "{who}");
        // The Host the component sees is its own, not the sidecar's.
        assert_eq!(
            get("host"),
            [format!("127.0.0.1:{}", app.port).as_str()],
            "{who}"
        );

        // No query string, HEAD, and the empty path.
        let a = http
            .send(
                Method::HEAD,
                "/kar/v1/service/svc/call/inspect",
                &[],
                full(""),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{who}");
        assert!(a.body.is_empty(), "{who}");
        let a = http.get("/kar/v1/service/svc/call/").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{who}");
        assert_eq!(a.text(), "no such route", "{who}");
        let a = http.get("/kar/v1/service/svc/call/inspect").await;
        let seen: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(seen["query"], serde_json::Value::Null, "{who}");
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn tell_promise_and_await() {
    let mut app = start_app(1).await;
    let sidecar = start_sidecar(SidecarOptions::new(app.port)).await;
    for http in Http::both(&sidecar.url) {
        let who = http.name;
        let a = http
            .post(
                "/kar/v1/service/svc/call/record/t",
                &[("pragma", "Async")],
                "told",
            )
            .await;
        assert_eq!(a.status, StatusCode::ACCEPTED, "{who}");
        assert_eq!(a.content_type(), Some(TEXT_UTF8), "{who}");
        assert_eq!(a.text(), "OK", "{who}");
        let recorded = app.recorded.recv().await.unwrap();
        assert_eq!(
            (
                recorded.method.as_str(),
                recorded.path.as_str(),
                &recorded.body[..]
            ),
            ("POST", "/record/t", &b"told"[..]),
            "{who}"
        );

        let a = http
            .post(
                "/kar/v1/service/svc/call/echo",
                &[("pragma", "promise"), ("content-type", "application/json")],
                "[1]",
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
        assert_eq!(a.status, StatusCode::OK, "{who}");
        assert_eq!(a.content_type(), Some("application/json"), "{who}");
        assert_eq!(a.text(), "[1]", "{who}");

        // A promise can be awaited once (decision §9.6).
        let a = http.post("/kar/v1/await", &[], id.clone()).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{who}");
        assert_eq!(
            a.text(),
            format!("failed to await promise: unexpected request {id}\n"),
            "{who}"
        );
        assert_eq!(a.headers["x-content-type-options"], "nosniff", "{who}");

        let a = http.post("/kar/v1/await", &[], "req-unknown").await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{who}");

        // A 204 promise: await keeps whatever Content-Type it had (none here).
        let a = http
            .post(
                "/kar/v1/service/svc/call/nocontent",
                &[("pragma", "promise")],
                "",
            )
            .await;
        let a = http.post("/kar/v1/await", &[], a.text()).await;
        assert_eq!(a.status, StatusCode::NO_CONTENT, "{who}");
        assert_eq!(a.content_type(), None, "{who}");
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn router_errors() {
    let app = start_app(1).await;
    let sidecar = start_sidecar(SidecarOptions::new(app.port)).await;
    for http in Http::both(&sidecar.url) {
        let who = http.name;
        for path in [
            "/",
            "/kar/v1/nothing",
            "/kar/v1/system/health/",
            "/kar/v2/await",
            "/kar/v1/actor/T/1/call/",
        ] {
            let a = http.get(path).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{who} {path}");
            assert_eq!(a.content_type(), Some(TEXT_UTF8), "{who} {path}");
            assert_eq!(
                a.headers["x-content-type-options"], "nosniff",
                "{who} {path}"
            );
            assert!(a.text().starts_with("404 page not found"), "{who} {path}");
            assert!(
                a.text().ends_with('\n') && a.text().lines().count() == 1,
                "{who} {path}"
            );
        }
        // HEAD: no content, on h2c too, but the length it would have had.
        let a = http
            .send(Method::HEAD, "/kar/v1/nothing", &[], full(""))
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{who}");
        assert_eq!(a.headers["content-length"], "19", "{who}");
        assert!(a.body.is_empty(), "{who}");

        let a = http.post("/kar/v1/system/health", &[], "").await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{who}");
        assert_eq!(a.text(), "Method Not Allowed\n", "{who}");
        assert_eq!(a.headers["allow"], "GET, OPTIONS", "{who}");
        let a = http.get("/kar/v1/await").await;
        assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED, "{who}");
        assert_eq!(a.headers["allow"], "POST, OPTIONS", "{who}");
        let a = http
            .send(
                Method::OPTIONS,
                "/kar/v1/actor/T/1/reminders",
                &[],
                full(""),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{who}");
        assert_eq!(a.headers["allow"], "GET, DELETE, OPTIONS", "{who}");
        assert!(a.body.is_empty(), "{who}");

        // Parameters that are not UTF-8 once decoded.
        let a = http.get("/kar/v1/actor/T/%ff/state").await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{who}");

        // Event routes exist (an absent subscription is a 404 with an empty body).
        let a = http.get("/kar/v1/actor/T/1/events/e").await;
        assert_eq!(
            (a.status, a.body.len()),
            (StatusCode::NOT_FOUND, 0),
            "{who}"
        );

        // A huge header is refused, not a crash.
        let huge = "x".repeat(2 * 1024 * 1024);
        let answer = http
            .try_send(
                Method::GET,
                "/kar/v1/system/health",
                &[("x-huge", huge.as_str())],
                full(""),
            )
            .await;
        // hyper answers 431 on HTTP/1.1 and refuses the stream on h2: never a handler.
        if let Ok(answer) = answer {
            assert_eq!(
                answer.status,
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "{who}"
            );
        }
        assert_eq!(
            http.get("/kar/v1/system/health").await.status,
            StatusCode::OK,
            "{who}"
        );
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let app = start_app(1).await;
    let mut options = SidecarOptions::new(app.port);
    options.max_body_bytes = 1024;
    let sidecar = start_sidecar(options).await;
    for http in Http::both(&sidecar.url) {
        let who = http.name;
        let exact = vec![b'a'; 1024];
        let a = http
            .post("/kar/v1/service/svc/call/echo", &[], exact.clone())
            .await;
        assert_eq!(a.status, StatusCode::OK, "{who}");
        assert_eq!(a.body, exact, "{who}");

        // Declared length over the limit.
        let a = http
            .post("/kar/v1/service/svc/call/echo", &[], vec![b'a'; 1025])
            .await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{who}");
        assert_eq!(a.content_type(), Some("application/json"), "{who}");
        let error: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert!(
            error["error"]
                .as_str()
                .unwrap()
                .starts_with("request body too large: the limit is 1024 bytes"),
            "{who}: {error}"
        );

        // No declared length (chunked on HTTP/1.1): found while reading.
        let chunks = futures::stream::iter(0..3)
            .map(|_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'b'; 500]))));
        let body = BodyExt::boxed(StreamBody::new(chunks));
        let a = http.send(Method::POST, "/kar/v1/await", &[], body).await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{who}");
        assert_eq!(a.content_type(), Some("application/json"), "{who}");
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn large_bodies_pass_unchanged() {
    let app = start_app(1).await;
    let mut options = SidecarOptions::new(app.port);
    options.max_body_bytes = 32 * 1024 * 1024;
    let sidecar = start_sidecar(options).await;
    let body: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    for http in Http::both(&sidecar.url) {
        let a = http
            .post("/kar/v1/service/svc/call/echo", &[], body.clone())
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", http.name);
        assert!(a.body == body, "{}: body changed", http.name);
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn system_routes() {
    let app = start_app(1).await;
    let sidecar = start_sidecar(SidecarOptions::new(app.port)).await;
    let node = sidecar.runtime.node().to_string();
    for http in Http::both(&sidecar.url) {
        let who = http.name;
        let a = http.get("/kar/v1/system/health").await;
        assert_eq!(
            (a.status, a.content_type()),
            (StatusCode::OK, Some(TEXT_UTF8)),
            "{who}"
        );
        assert_eq!(a.text(), "OK", "{who}");

        let a = http.get("/kar/v1/system/information/id").await;
        assert_eq!(a.content_type(), Some("text/plain"), "{who}");
        assert_eq!(a.text(), format!("{node}\n"), "{who}");
        let json = [("accept", "application/json")];
        let a = http
            .send(
                Method::GET,
                "/kar/v1/system/information/id",
                &json,
                full(""),
            )
            .await;
        assert_eq!(a.content_type(), Some("application/json"), "{who}");
        assert_eq!(a.text(), format!(r#"{{"id":"{node}"}}"#), "{who}");
        // Only the exact string selects JSON.
        let a = http
            .send(
                Method::GET,
                "/kar/v1/system/information/id",
                &[("accept", "application/json, */*")],
                full(""),
            )
            .await;
        assert_eq!(a.content_type(), Some("text/plain"), "{who}");

        for component in ["sidecars", "Sidecars"] {
            let path = format!("/kar/v1/system/information/{component}");
            let a = http.send(Method::GET, &path, &json, full("")).await;
            let info: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
            assert_eq!(
                info[&node],
                serde_json::json!({"port": sidecar.port, "actors": [], "services": ["svc"]}),
                "{who}"
            );
            let a = http.get(&path).await;
            assert_eq!(a.content_type(), Some("text/plain"), "{who}");
            assert!(
                a.text().starts_with("\nSidecar\n : Actors\n : Services\n"),
                "{who}"
            );
            assert!(
                a.text()
                    .contains(&format!("\n{node}:{}\n : []\n : [svc]", sidecar.port)),
                "{who}"
            );
        }
        for component in ["actors", "Actors", "sidecar_actors"] {
            let path = format!("/kar/v1/system/information/{component}");
            let a = http.send(Method::GET, &path, &json, full("")).await;
            assert_eq!(
                (a.status, a.text().as_str()),
                (StatusCode::OK, "{}"),
                "{who}"
            );
        }
        let a = http.get("/kar/v1/system/information/bogus").await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{who}");
        assert_eq!(a.text(), "Invalid information query: bogus\n", "{who}");

        let a = http.get("/metrics").await;
        assert_eq!(a.status, StatusCode::OK, "{who}");
        assert!(a.content_type().unwrap().starts_with("text/plain"), "{who}");
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn shutdown_answers_ok_then_blocked_calls_get_503() {
    for (method, http_kind) in [(Method::POST, 1), (Method::GET, 2)] {
        let app = start_app(1).await;
        let mut sidecar = start_sidecar(SidecarOptions::new(app.port)).await;
        let http = if http_kind == 1 {
            Http::h1(&sidecar.url)
        } else {
            Http::h2(&sidecar.url)
        };
        // Nobody offers `nobody`: the call is parked and blocks.
        let blocked = {
            let http = http.clone();
            tokio::spawn(async move { http.post("/kar/v1/service/nobody/call/x", &[], "").await })
        };
        let promise = http
            .post(
                "/kar/v1/service/nobody/call/x",
                &[("pragma", "promise")],
                "",
            )
            .await;
        assert_eq!(promise.status, StatusCode::ACCEPTED);
        let awaiting = {
            let http = http.clone();
            let id = promise.text();
            tokio::spawn(async move { http.post("/kar/v1/await", &[], id).await })
        };
        let a = http
            .send(method.clone(), "/kar/v1/system/shutdown", &[], full(""))
            .await;
        assert_eq!(
            (a.status, a.text().as_str()),
            (StatusCode::OK, "OK"),
            "{method}"
        );
        assert_eq!(a.content_type(), Some(TEXT_UTF8));
        sidecar.runtime.shutdown_started().await;

        for task in [blocked, awaiting] {
            let a = task.await.unwrap();
            assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{method}");
            assert_eq!(a.text(), "Service Unavailable\n");
        }
        let a = http.post("/kar/v1/service/svc/call/echo", &[], "x").await;
        assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);

        let server = sidecar.server.take().unwrap();
        tokio::time::timeout(Duration::from_secs(30), server.shutdown())
            .await
            .expect("server drained");
        // No longer accepting.
        assert!(tokio::net::TcpStream::connect(("127.0.0.1", sidecar.port))
            .await
            .is_err());
        sidecar.stop().await;
    }
}

/// The JS SDK multiplexes every call of a component on one HTTP/2 connection: 1000
/// calls that can only finish together must all be open at once on one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_streams_on_one_connection() {
    const N: usize = 1000;
    let app = start_app(N).await;
    let mut options = SidecarOptions::new(app.port);
    options.h2c = true;
    let sidecar = start_sidecar(options).await;

    let stream = tokio::net::TcpStream::connect(("127.0.0.1", sidecar.port))
        .await
        .unwrap();
    let (sender, connection) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake::<_, Body>(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let calls = (0..N).map(|i| {
        let mut sender = sender.clone();
        let url = sidecar.url.clone();
        async move {
            let request = http::Request::post(format!("{url}/kar/v1/service/svc/call/barrier/{i}"))
                .body(full(format!("{i}")))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, body)
        }
    });
    let results = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(calls))
        .await
        .expect("all 1000 calls completed");
    for (status, body) in results {
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"released");
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn metrics_count_the_calls_to_the_component() {
    let app = start_app(1).await;
    let sidecar = start_sidecar(SidecarOptions::new(app.port)).await;
    let http = Http::h1(&sidecar.url);
    for _ in 0..3 {
        let a = http.post("/kar/v1/service/svc/call/echo", &[], "x").await;
        assert_eq!(a.status, StatusCode::OK);
    }
    let text = http.get("/metrics").await.text();
    let name = "kar_user_code_invocation_durations_histogram_seconds";
    assert!(text.contains(&format!("# TYPE {name} histogram")), "{text}");
    assert!(
        text.contains(&format!("{name}_count{{path=\"svc:/echo\"}} 3\n")),
        "{text}"
    );
    sidecar.stop().await;
}
