//! The runtime port's own checks on a real `kar run`: the API token for peers other
//! than 127.0.0.1 (a remote peer is played from 127.0.0.2), the warning of
//! `-kubernetes_mode` without a token, and the request body limit.

use kar_tests::{free_port, http1, http1_head_only, node, store_test, unique_app, Component};
use std::net::Ipv4Addr;
use std::time::Duration;

const READY: Duration = Duration::from_secs(60);
const TOKEN: &str = "tok-3f9a1c";
const WRONG: &str = "tok-wrong-77";
const COMPONENT: Ipv4Addr = Ipv4Addr::LOCALHOST;
const REMOTE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const WHOAMI: &str = "/kar/v1/service/greeter/call/whoami";

store_test!(fn the_token_is_required_from_remote_peers_only(store) {
    let app = unique_app("token");
    let port = free_port();
    let sidecar = Component::new(store, &app)
        .service("greeter")
        .runtime_port(port)
        .arg("-kubernetes_mode")
        .arg("-max_body_bytes=1000")
        .env("KAR_API_TOKEN", TOKEN)
        .command(node("service.js", &[]))
        .spawn();
    sidecar.expect_output("KAR_RUNTIME_PORT=", READY);

    // The component (127.0.0.1) uses no token, like the published SDKs.
    let a = http1(COMPONENT, port, "GET", WHOAMI, &[], b"").unwrap();
    assert_eq!((a.status, a.text().as_str()), (200, "js"));

    // A remote peer without the token, with another scheme, with a wrong token.
    let bearer_wrong = format!("Bearer {WRONG}");
    for (headers, reason) in [
        (vec![], "missing API token"),
        (vec![("Authorization", "Basic dG9rOg==")], "not a Bearer token"),
        (vec![("Authorization", bearer_wrong.as_str())], "wrong API token"),
    ] {
        let a = http1(REMOTE, port, "GET", WHOAMI, &headers, b"").unwrap();
        assert_eq!(a.status, 401, "{reason}: {}", a.text());
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(a.header("www-authenticate"), Some("Bearer"));
        let error = a.json()["error"].as_str().unwrap().to_string();
        assert!(error.contains(reason), "{error}");
    }
    // Every route is guarded, shutdown included; health is not (Kubernetes probes).
    let a = http1(REMOTE, port, "POST", "/kar/v1/system/shutdown", &[], b"").unwrap();
    assert_eq!(a.status, 401);
    let a = http1(REMOTE, port, "GET", "/kar/v1/system/health", &[], b"").unwrap();
    assert_eq!(a.status, 200);

    // With the token.
    let bearer = format!("Bearer {TOKEN}");
    let auth = [("Authorization", bearer.as_str())];
    let a = http1(REMOTE, port, "GET", WHOAMI, &auth, b"").unwrap();
    assert_eq!((a.status, a.text().as_str()), (200, "js"));

    // The body limit, for the component and for authorized peers alike.
    let path = "/kar/v1/service/greeter/call/echo";
    let a = http1(COMPONENT, port, "POST", path, &[], &[b'x'; 1000]).unwrap();
    assert_eq!((a.status, a.body.len()), (200, 1000));
    let a = http1(REMOTE, port, "POST", path, &auth, &[b'x'; 1001]).unwrap();
    assert_eq!(a.status, 413);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let error = a.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("the limit is 1000 bytes"), "{error}");

    // Refusals are logged with the peer and the reason, never with a token.
    sidecar.expect_output(&format!("refused GET {WHOAMI} from 127.0.0.2: wrong API token"), READY);
    let output = sidecar.output();
    assert!(!output.contains(TOKEN) && !output.contains(WRONG), "{output}");
    assert!(!output.contains("without an API token"), "{output}");
});

store_test!(fn kubernetes_mode_without_a_token_warns_and_the_default_limit_applies(store) {
    let app = unique_app("notoken");
    let port = free_port();
    let sidecar = Component::new(store, &app)
        .runtime_port(port)
        .arg("-kubernetes_mode")
        .spawn();
    sidecar.expect_output(
        "-kubernetes_mode without an API token: anyone who can reach port",
        READY,
    );
    sidecar.expect_output("KAR_RUNTIME_PORT=", READY);
    // No token configured: remote peers are served.
    let a = http1(REMOTE, port, "GET", "/kar/v1/system/information/id", &[], b"").unwrap();
    assert_eq!(a.status, 200, "{}", a.text());

    // The default limit is 16 MiB: a declared length one byte over it is refused
    // before any of the body is sent.
    let head = format!(
        "PUT /kar/v1/actor/A/a/state/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        16 * 1024 * 1024 + 1
    );
    let a = http1_head_only(COMPONENT, port, &head).unwrap();
    assert_eq!(a.status, 413, "{}", a.text());
    let error = a.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("the limit is 16777216 bytes"), "{error}");
});
