//! The runtime → component client against a real in-process component.

use super::common::*;
use bytes::Bytes;
use kar_protocol::Invocation;
use kar_runtime::{AppClient, AppError};
use kar_sidecar::{AppClientConfig, HttpAppClient};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

fn invocation(method: &str, path: &str, body: &str) -> Invocation {
    Invocation {
        method: method.into(),
        path: path.into(),
        query: None,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: Bytes::from(body.to_string()),
    }
}

fn client(port: u16, h2c: bool, limit: Option<Duration>) -> HttpAppClient {
    HttpAppClient::new(AppClientConfig {
        app_port: port,
        h2c,
        request_retry_limit: limit,
    })
}

/// The next connection to `listener`, once the head of its first request has arrived
/// (for the hand-written components below).
async fn accept_request(listener: &TcpListener) -> tokio::net::TcpStream {
    use tokio::io::AsyncReadExt;
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = socket.read(&mut buf).await.unwrap();
        assert!(read > 0, "the request ended early");
        head.extend_from_slice(&buf[..read]);
    }
    socket
}

/// A port nothing listens on (bound, then released).
async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn http1_and_h2c_replies() {
    let app = start_app(1).await;
    for h2c in [false, true] {
        let client = client(app.port, h2c, None);
        let reply = client
            .invoke(&invocation("POST", "/echo", "hi"))
            .await
            .unwrap()
            .reply;
        assert_eq!(
            (reply.status, reply.content_type.as_deref()),
            (200, Some("text/plain"))
        );
        assert_eq!(&reply.body[..], b"hi");
        let reply = client
            .invoke(&invocation("GET", "/noct", ""))
            .await
            .unwrap()
            .reply;
        assert_eq!((reply.status, reply.content_type), (200, None));
        let reply = client
            .invoke(&invocation("DELETE", "/nocontent", ""))
            .await
            .unwrap()
            .reply;
        assert_eq!(reply.status, 204);
        let mut with_query = invocation("GET", "/inspect/a%20b", "");
        with_query.query = Some("q=%2F".into());
        let reply = client.invoke(&with_query).await.unwrap().reply;
        let seen: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        assert_eq!(
            (seen["path"].as_str(), seen["query"].as_str()),
            (Some("/inspect/a%20b"), Some("q=%2F"))
        );
    }
}

#[tokio::test]
async fn reaches_a_component_that_starts_late() {
    let port = free_port().await;
    let client = Arc::new(client(port, false, None));
    let call = {
        let client = client.clone();
        tokio::spawn(async move { client.invoke(&invocation("POST", "/echo", "late")).await })
    };
    // The component starts a while after its sidecar (this delay is the point of the test).
    tokio::time::sleep(Duration::from_millis(700)).await;
    let started = Instant::now();
    let _app = start_app_on(TcpListener::bind(("127.0.0.1", port)).await.unwrap(), 1);
    let reply = call.await.unwrap().unwrap().reply;
    assert_eq!(&reply.body[..], b"late");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "reached after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn gives_up_after_the_retry_window() {
    let port = free_port().await;
    let client = client(port, false, Some(Duration::from_millis(500)));
    let started = Instant::now();
    let Err(AppError::Unreachable(reason)) = client.invoke(&invocation("POST", "/echo", "x")).await
    else {
        panic!("expected an error");
    };
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        reason.starts_with(&format!("Post \"http://127.0.0.1:{port}/echo\": ")),
        "{reason}"
    );
    assert!(
        reason.to_lowercase().contains("connection refused"),
        "{reason}"
    );
}

#[tokio::test]
async fn stop_retrying_ends_the_retries() {
    let port = free_port().await;
    let client = Arc::new(client(port, false, None));
    let call = {
        let client = client.clone();
        tokio::spawn(async move { client.invoke(&invocation("POST", "/echo", "x")).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    client.stop_retrying();
    let result = tokio::time::timeout(Duration::from_secs(5), call)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(result, Err(AppError::Unreachable(_))));
}

#[tokio::test]
async fn a_timeout_is_a_408_reply() {
    let app = start_app(1).await;
    let client = client(app.port, false, Some(Duration::from_millis(300)));
    let reply = client
        .invoke(&invocation("POST", "/hang", ""))
        .await
        .unwrap()
        .reply;
    assert_eq!(
        (reply.status, reply.content_type.as_deref()),
        (408, Some("text/plain"))
    );
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    assert_eq!(
        text,
        format!("Post \"http://127.0.0.1:{}/hang\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)", app.port)
    );
    // Other requests still work with the timeout in place.
    let reply = client
        .invoke(&invocation("POST", "/echo", "ok"))
        .await
        .unwrap()
        .reply;
    assert_eq!(reply.status, 200);
}

/// A keep-alive connection the component closed while it sat idle in the pool is not
/// used: the next request goes to a new connection at once (no retry window here, so
/// only the pool can save it). The component answers each connection once, numbered,
/// then closes it without announcing it (`Connection: close` would be honoured).
#[tokio::test]
async fn an_idle_connection_the_component_closed_is_not_reused() {
    use tokio::io::AsyncWriteExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (closed_tx, mut closed) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        for n in 1u32.. {
            let mut socket = accept_request(&listener).await;
            let body = n.to_string();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
            drop(socket);
            closed_tx.send(n).unwrap();
        }
    });
    let client = client(port, false, Some(Duration::ZERO));
    for n in 1..=3u32 {
        let reply = client
            .invoke(&invocation("GET", "/once", ""))
            .await
            .unwrap()
            .reply;
        assert_eq!(
            (reply.status, &reply.body[..]),
            (200, n.to_string().as_bytes())
        );
        assert_eq!(closed.recv().await, Some(n));
    }
}

/// An actor method's state writes handed over with its reply
/// (`kar_protocol::deferred_state`): split from the body, the reply's own status
/// restored from `kar-reply-status`; a length the body cannot hold is a 500, not a
/// silently shortened reply.
#[tokio::test]
async fn state_writes_handed_over_with_a_reply_are_split_off() {
    use tokio::io::AsyncWriteExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let update = r#"{"updates":{"n":1}}"#;
    let answers = [
        format!("kar-state-update-length: {}\r\n", update.len()),
        format!(
            "kar-state-update-length: {}\r\nkar-reply-status: 204\r\n",
            update.len()
        ),
        "kar-state-update-length: 999\r\n".to_string(),
    ];
    tokio::spawn(async move {
        for (n, headers) in answers.iter().enumerate() {
            let mut socket = accept_request(&listener).await;
            let body = if n == 1 {
                update.to_string()
            } else {
                format!(r#"{update}{{"value":1}}"#)
            };
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/kar+json\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            socket.write_all(response.as_bytes()).await.unwrap();
        }
    });
    let client = client(port, false, Some(Duration::ZERO));
    let method = invocation("POST", "/kar/impl/v1/actor/T/1/m", "[]");
    let call = || client.invoke(&method);
    let answer = call().await.unwrap();
    assert_eq!(answer.state_update.as_deref(), Some(update.as_bytes()));
    assert_eq!(
        (answer.reply.status, &answer.reply.body[..]),
        (200, &br#"{"value":1}"#[..])
    );
    let answer = call().await.unwrap();
    assert_eq!(answer.state_update.as_deref(), Some(update.as_bytes()));
    assert_eq!((answer.reply.status, answer.reply.body.len()), (204, 0));
    let answer = call().await.unwrap();
    assert_eq!(answer.state_update, None);
    assert_eq!(answer.reply.status, 500);
    assert!(
        String::from_utf8_lossy(&answer.reply.body).contains("exceeds the body"),
        "{:?}",
        answer.reply.body
    );
}
