//! Event routes of the `/kar/v1` server (spec §2.6, §2.7): exact shapes and statuses,
//! and events reaching the component in order, over a real runtime on the embedded
//! store and a real HTTP component.

use super::common::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};

const JSON: &str = "application/json";
const TEXT_UTF8: &str = "text/plain; charset=utf-8";

async fn send(http: &Http, method: Method, path: &str, body: &str) -> Answer {
    http.send(method, path, &[], full(body.to_string())).await
}

fn json_body(a: &Answer) -> Value {
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.content_type(), Some(JSON));
    serde_json::from_slice(&a.body).unwrap()
}

/// Waits for the next method invocation (activations are skipped).
async fn next_method(app: &mut TestApp) -> ActorEvent {
    loop {
        let event = app.next_event().await;
        if event.method == "POST" {
            return event;
        }
    }
}

#[tokio::test]
async fn topic_and_publish_routes() {
    let app = start_app(1).await;
    let sidecar = start_sidecar(SidecarOptions::with_actors(app.port, &["T"])).await;
    let http = Http::h2(&sidecar.url);
    // Created: 201, Location, no body, no Content-Type.
    let a = send(&http, Method::PUT, "/kar/v1/event/my%20topic", "").await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.content_type(), None);
    assert!(a.body.is_empty());
    assert_eq!(
        a.headers.get("location").unwrap(),
        "/kar/v1/event/my%20topic"
    );
    // Again (with a topic detail): 200 Already existed.
    let a = send(
        &http,
        Method::PUT,
        "/kar/v1/event/my%20topic",
        r#"{"numPartitions":1}"#,
    )
    .await;
    assert_eq!(
        (a.status, a.text().as_str()),
        (StatusCode::OK, "Already existed")
    );
    assert_eq!(a.content_type(), Some(TEXT_UTF8));
    // A malformed detail: 500.
    let a = send(&http, Method::PUT, "/kar/v1/event/other", "{").await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    // Publish: 200 OK, also to a topic that does not exist yet.
    for topic in ["my%20topic", "auto"] {
        let a = send(
            &http,
            Method::POST,
            &format!("/kar/v1/event/{topic}/publish"),
            "x",
        )
        .await;
        assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "OK"));
    }
    let a = send(&http, Method::PUT, "/kar/v1/event/auto", "").await;
    assert_eq!(a.status, StatusCode::OK);
    // Delete: 200 OK, whether it existed or not.
    for _ in 0..2 {
        let a = send(&http, Method::DELETE, "/kar/v1/event/auto", "").await;
        assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "OK"));
    }
    sidecar.stop().await;
}

#[tokio::test]
async fn subscription_routes_shapes_and_deliveries() {
    let mut app = start_app(1).await;
    let sidecar = start_sidecar(SidecarOptions::with_actors(app.port, &["T"])).await;
    let http = Http::h2(&sidecar.url);
    let base = "/kar/v1/actor/T/a/events";

    assert_eq!(json_body(&http.get(base).await), json!([]));
    let a = http.get(&format!("{base}/s1")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.content_type(), Some(""));
    assert!(a.body.is_empty());
    assert_eq!(
        json_body(&http.get(&format!("{base}/s1?nilOnAbsent=true")).await),
        Value::Null
    );
    let a = send(&http, Method::DELETE, &format!("{base}/s1"), "").await;
    assert_eq!((a.status, a.body.len()), (StatusCode::NOT_FOUND, 0));
    let a = send(
        &http,
        Method::DELETE,
        &format!("{base}/s1?nilOnAbsent=true"),
        "",
    )
    .await;
    assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "0"));

    // Non-string members: 400 with the reason.
    let a = send(
        &http,
        Method::PUT,
        &format!("{base}/s1"),
        r#"{"path":"/echo","topic":"t","offsetOldest":true}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.text().contains("cannot unmarshal bool"), "{}", a.text());

    // An event published before subscribing at the newest offset is not delivered.
    send(&http, Method::POST, "/kar/v1/event/t/publish", r#"{"n":0}"#).await;
    let body = r#"{"path":"/echo/ev","topic":"t"}"#;
    let a = send(&http, Method::PUT, &format!("{base}/s1"), body).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(a.content_type(), Some("text/plain"));
    assert!(a.body.is_empty());
    let a = send(&http, Method::PUT, &format!("{base}/s1"), body).await;
    assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "OK"));
    let a = http.get(&format!("{base}/s1")).await;
    assert_eq!(
        a.text(),
        r#"{"actor":{"Type":"T","ID":"a"},"id":"s1","path":"/echo/ev","topic":"t","group":"","oldestoffset":false}"#
    );
    // A text subscriber from the oldest event.
    let a = send(
        &http,
        Method::PUT,
        &format!("{base}/s2"),
        r#"{"path":"/echo/text","topic":"t","contentType":"text/plain","group":"g","offsetOldest":"true"}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let all = json_body(&http.get(base).await);
    assert_eq!(all[1]["contenttype"], json!("text/plain"));
    assert_eq!(all[1]["oldestoffset"], json!(true));
    assert_eq!(all[1]["group"], json!("g"));

    for n in 1..=3 {
        let a = send(
            &http,
            Method::POST,
            "/kar/v1/event/t/publish",
            &format!(r#"{{"n":{n}}}"#),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
    }
    // Each subscription in topic order, each event in a fresh flow.
    let mut json_events = Vec::new();
    let mut text_events = Vec::new();
    while json_events.len() < 3 || text_events.len() < 4 {
        let event = next_method(&mut app).await;
        assert!(event.session.as_deref().unwrap().starts_with("flow-"));
        match event.name.as_deref() {
            Some("echo/ev") => json_events.push(String::from_utf8_lossy(&event.body).into_owned()),
            Some("echo/text") => {
                text_events.push(String::from_utf8_lossy(&event.body).into_owned())
            }
            other => panic!("unexpected method {other:?}"),
        }
    }
    assert_eq!(
        json_events,
        [r#"[{"n":1}]"#, r#"[{"n":2}]"#, r#"[{"n":3}]"#]
    );
    assert_eq!(
        text_events,
        (0..=3)
            .map(|n| format!(r#"["{{\"n\":{n}}}"]"#))
            .collect::<Vec<_>>()
    );

    let a = send(&http, Method::DELETE, &format!("{base}/s1"), "").await;
    assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "1"));
    send(&http, Method::PUT, &format!("{base}/s3"), body).await;
    let a = send(&http, Method::DELETE, base, "").await;
    assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "2"));
    assert_eq!(json_body(&http.get(base).await), json!([]));
    sidecar.stop().await;
}
