//! Service calls, tells, promises, raw requests and system routes of the SDK client,
//! against a real sidecar and a `kar_sdk::Server` component.

mod common;

use common::{Harness, SERVICE};
use kar_sdk::Error;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_requests() {
    let mut h = Harness::start(false).await;
    let client = h.client.clone();

    // call: JSON in, JSON out; text answers decode as strings; 204 as unit.
    let echoed: Value = client
        .call(SERVICE, "echoJson", json!({"a": [1, 2], "b": "x"}))
        .await
        .unwrap();
    assert_eq!(echoed, json!({"a": [1, 2], "b": "x"}));
    let greeting: String = client.call(SERVICE, "hello", "Gandalf").await.unwrap();
    assert_eq!(greeting, "Hello Gandalf");
    client.call::<()>(SERVICE, "empty", ()).await.unwrap();

    // Non-2xx answers are errors carrying status and body.
    match client.call::<Value>(SERVICE, "teapot", ()).await {
        Err(Error::Status { status: 418, body }) => assert_eq!(body, "short and stout"),
        other => panic!("expected 418, got {other:?}"),
    }
    let failed = client.call::<Value>(SERVICE, "fail", ()).await.unwrap_err();
    assert_eq!(failed.status(), Some(500));
    assert!(
        failed.to_string().contains("the handler failed"),
        "{failed}"
    );
    let missing = client
        .call::<Value>(SERVICE, "nowhere", ())
        .await
        .unwrap_err();
    assert_eq!(missing.status(), Some(404));

    // tell: returns once queued; the component sees it later.
    client
        .tell(SERVICE, "record", json!({"n": 1}))
        .await
        .unwrap();
    assert_eq!(h.next_event().await, r#"record {"n":1}"#);

    // async_call + await_result.
    let promise = client.async_call(SERVICE, "hello", "Sam").await.unwrap();
    assert!(promise.id().starts_with("req-"), "{}", promise.id());
    let greeting: String = promise.await_result().await.unwrap();
    assert_eq!(greeting, "Hello Sam");
    let promise = client.async_call(SERVICE, "teapot", ()).await.unwrap();
    assert_eq!(
        promise.await_result::<Value>().await.unwrap_err().status(),
        Some(418)
    );

    // invoke: raw method, headers, query and body; the answer as received.
    let r = client
        .invoke(
            "GET",
            SERVICE,
            "inspect?x=1&y=a%20b",
            &[("X-Test", "yes")],
            "",
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    let seen: Value = r.json_body().unwrap();
    assert_eq!(seen["method"], "GET");
    assert_eq!(seen["path"], "/inspect");
    assert_eq!(seen["query"], "x=1&y=a%20b");
    assert_eq!(seen["x-test"], "yes");
    let r = client
        .invoke(
            "PUT",
            SERVICE,
            "/inspect",
            &[("Content-Type", "text/plain")],
            "raw body",
        )
        .await
        .unwrap();
    assert_eq!((r.status, r.text_body().as_str()), (200, "put raw body"));
    let r = client
        .invoke("POST", SERVICE, "teapot", &[], "")
        .await
        .unwrap();
    assert_eq!((r.status, r.text_body().as_str()), (418, "short and stout"));
    let r = client
        .invoke("POST", SERVICE, "empty", &[], "")
        .await
        .unwrap();
    assert_eq!((r.status, r.content_type, r.body.len()), (204, None, 0));

    // A service handler calling an actor through its request's client.
    let answer: Value = client.call(SERVICE, "callActor", "s1").await.unwrap();
    assert_eq!(
        answer,
        json!({"value": ["from service"]})
            .get("value")
            .cloned()
            .unwrap()
    );

    // Many concurrent calls share the one HTTP/2 connection.
    let calls = (0..200).map(|i| {
        let client = client.clone();
        tokio::spawn(async move {
            client
                .call::<Value>(SERVICE, "echoJson", json!({"i": i}))
                .await
        })
    });
    for (i, call) in calls.enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), json!({"i": i}));
    }

    assert_eq!(client.health().await.unwrap(), "OK");
    let id = client.information("id").await.unwrap();
    assert!(id["id"].as_str().unwrap().starts_with("node-"), "{id}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_sidecar() {
    let h = Harness::start(true).await;
    h.client.shutdown().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), h.runtime.shutdown_started())
        .await
        .expect("the runtime starts shutting down");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_sidecar_is_a_transport_error() {
    // A port nothing listens on: bind one, then free it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = kar_sdk::Client::new(port);
    match client.health().await {
        Err(Error::Transport(_)) => {}
        other => panic!("expected a transport error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_one_connection() {
    use hyper::service::service_fn;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    // A stand-in for the sidecar's health route that counts connections: the client
    // must multiplex concurrent requests on one HTTP/2 connection.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let server = tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            counter.fetch_add(1, Ordering::SeqCst);
            let service = service_fn(|_request| async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok::<_, std::convert::Infallible>(hyper::Response::new(http_body_util::Full::new(
                    bytes::Bytes::from_static(b"OK"),
                )))
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    let client = kar_sdk::Client::new(port);
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.health().await })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), "OK");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    server.abort();
}
