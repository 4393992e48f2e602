//! Reminder routes of the `/kar/v1` server (spec §2.5): exact shapes and statuses,
//! and firings reaching the component, over a real runtime on the embedded store and
//! a real HTTP component.

use super::common::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const JSON: &str = "application/json";
const TEXT_UTF8: &str = "text/plain; charset=utf-8";

async fn put(http: &Http, path: &str, body: &str) -> Answer {
    http.send(Method::PUT, path, &[], full(body.to_string()))
        .await
}

async fn delete(http: &Http, path: &str) -> Answer {
    http.send(Method::DELETE, path, &[], full("")).await
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
async fn reminder_routes_shapes_and_firings() {
    let app = start_app(1).await;
    let mut app = app;
    let sidecar = start_sidecar(SidecarOptions::with_actors(app.port, &["T"])).await;
    let http = Http::h2(&sidecar.url);
    let base = "/kar/v1/actor/T/a/reminders";

    // Nothing yet.
    assert_eq!(json_body(&http.get(base).await), json!([]));
    let a = http.get(&format!("{base}/r1")).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert_eq!(a.content_type(), Some(""));
    assert!(a.body.is_empty());
    assert_eq!(
        json_body(&http.get(&format!("{base}/r1?nilOnAbsent=true")).await),
        Value::Null
    );
    let a = delete(&http, &format!("{base}/r1")).await;
    assert_eq!((a.status, a.body.len()), (StatusCode::NOT_FOUND, 0));
    let a = delete(&http, &format!("{base}/r1?nilOnAbsent=true")).await;
    assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "0"));

    // Bad bodies: 400, text/plain, the reason without a trailing newline.
    for (body, reason) in [
        (
            r#"{"path":"/echo","period":"soon"}"#,
            r#"time: invalid duration "soon""#,
        ),
        ("{", ""),
        (
            r#"{"path":"/echo","targetTime":"yesterday"}"#,
            "parsing time \"yesterday\"",
        ),
    ] {
        let a = put(&http, &format!("{base}/bad"), body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(a.content_type(), Some("text/plain"));
        assert!(
            a.text().starts_with(reason) && !a.text().ends_with('\n'),
            "{}",
            a.text()
        );
    }

    // A far-away one-shot: new → 204 text/plain without body; again → 200 OK.
    let later = r#"{"path":"/echo","targetTime":"2999-01-02T03:04:05.5+01:00","data":["x"]}"#;
    let a = put(&http, &format!("{base}/later"), later).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    assert_eq!(a.content_type(), Some("text/plain"));
    assert!(a.body.is_empty());
    let a = put(&http, &format!("{base}/later"), later).await;
    assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "OK"));
    assert_eq!(a.content_type(), Some("text/plain"));
    let expected = json!({
        "Actor": {"Type": "T", "ID": "a"},
        "id": "later",
        "path": "/echo",
        "targetTime": "2999-01-02T03:04:05.5+01:00",
        "encodedData": "[\"x\"]",
    });
    let a = http.get(&format!("{base}/later")).await;
    assert_eq!(
        a.text(),
        r#"{"Actor":{"Type":"T","ID":"a"},"id":"later","path":"/echo","targetTime":"2999-01-02T03:04:05.5+01:00","encodedData":"[\"x\"]"}"#
    );
    assert_eq!(json_body(&a), expected);

    // A one-shot due now (no targetTime) fires once, with its data as body.
    let a = put(
        &http,
        &format!("{base}/now"),
        r#"{"path":"/echo/once","data":[1,"a"]}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let event = next_method(&mut app).await;
    assert_eq!(event.name.as_deref(), Some("echo/once"));
    assert_eq!(event.body.as_ref(), br#"[1,"a"]"#);
    assert!(event.session.as_deref().unwrap().starts_with("flow-"));
    assert_eq!(
        json_body(&http.get(&format!("{base}/now?nilOnAbsent=true")).await),
        Value::Null
    );

    // A periodic one (period 200ms) fires repeatedly; its period shows in ns.
    let a = put(
        &http,
        &format!("{base}/tick"),
        r#"{"path":"/echo/tick","period":"200ms"}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::NO_CONTENT);
    let started = Instant::now();
    for _ in 0..3 {
        let event = next_method(&mut app).await;
        assert_eq!(event.name.as_deref(), Some("echo/tick"));
        assert!(event.body.is_empty());
    }
    // The first fires at once (no targetTime: the zero time); the next targets lie on
    // the zero time's 200 ms grid, so three firings take more than one period.
    assert!(
        started.elapsed() >= Duration::from_millis(190),
        "{:?}",
        started.elapsed()
    );
    let tick = json_body(&http.get(&format!("{base}/tick")).await);
    assert_eq!(tick["period"], json!(200_000_000));
    assert!(tick.get("encodedData").is_none());
    // After the first periodic advance the target time is shown in UTC.
    assert!(
        tick["targetTime"].as_str().unwrap().ends_with('Z'),
        "{tick}"
    );

    let all = json_body(&http.get(base).await);
    let ids: Vec<_> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, vec![json!("later"), json!("tick")]);

    // Cancel one, then all.
    let a = delete(&http, &format!("{base}/tick")).await;
    assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "1"));
    assert_eq!(a.content_type(), Some(TEXT_UTF8));
    put(&http, &format!("{base}/other"), later).await;
    let a = delete(&http, base).await;
    assert_eq!((a.status, a.text().as_str()), (StatusCode::OK, "2"));
    assert_eq!(json_body(&http.get(base).await), json!([]));
    // No more firings once cancelled (a firing in flight may still land).
    let _ = app.take_events();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let late: Vec<_> = app
        .take_events()
        .into_iter()
        .filter(|e| e.method == "POST")
        .collect();
    assert!(late.len() <= 1, "{late:?}");
    sidecar.stop().await;
}
