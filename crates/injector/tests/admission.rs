//! The injector over real HTTPS: AdmissionReviews built from sample pods, the returned
//! JSON Patch applied with `json-patch` and the result parsed as a `k8s-openapi` Pod.

mod support;

use serde_json::{json, Value};
use support::{create_review, env_of, patched, pod, response, Certs, Injector};

fn injector(args: &[&str]) -> (Injector, Certs) {
    let certs = Certs::generate();
    let injector = Injector::start(&certs.cert(), &certs.key(), certs.ca(), args);
    (injector, certs)
}

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn sidecar_container_with_the_defaults() {
    let (injector, _certs) = injector(&["-sidecar_image", "registry.local/kar:1"]);
    let original = pod(json!({"kar.ibm.com/app": "greeter"}), None);
    let answer = injector.review(&create_review("uid-1", original.clone()));
    let response = response(&answer, "uid-1");
    assert_eq!(response["allowed"], true);
    let (injected, _) = patched(response, &original).expect("a patch");

    let meta = injected.metadata.annotations.as_ref().unwrap();
    assert_eq!(meta["kar.ibm.com/injected"], "sidecar");
    let spec = injected.spec.as_ref().unwrap();
    assert_eq!(spec.containers.len(), 2);
    let app = &spec.containers[0];
    assert_eq!(app.name, "app");
    assert_eq!(env_of(app, "GREETER_TAG").as_deref(), Some("js"));
    assert_eq!(env_of(app, "KAR_APP").as_deref(), Some("greeter"));
    assert_eq!(env_of(app, "KAR_APP_PORT").as_deref(), Some("8080"));
    assert_eq!(env_of(app, "KAR_RUNTIME_PORT").as_deref(), Some("3500"));
    assert!(app.liveness_probe.is_none() && app.lifecycle.is_none());

    let kar = &spec.containers[1];
    assert_eq!(kar.name, "kar");
    assert_eq!(kar.image.as_deref(), Some("registry.local/kar:1"));
    assert_eq!(kar.command, None, "the image's entrypoint is kar");
    assert_eq!(
        kar.args.as_deref(),
        Some(
            &strings(&[
                "run",
                "-app",
                "greeter",
                "-app_port",
                "8080",
                "-runtime_port",
                "3500",
                "-kubernetes_mode",
                "-config_dir",
                "/var/run/secrets/kar.ibm.com",
                "-sidecar_mode",
            ])[..]
        )
    );
    let port = &kar.ports.as_ref().unwrap()[0];
    assert_eq!(port.container_port, 3500);
    let probe = kar
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(probe.path.as_deref(), Some("/kar/v1/system/health"));
    assert_eq!(serde_json::to_value(&probe.port).unwrap(), json!(3500));
    let pre_stop = kar.lifecycle.as_ref().unwrap().pre_stop.as_ref().unwrap();
    let hook = pre_stop.http_get.as_ref().unwrap();
    assert_eq!(hook.path.as_deref(), Some("/kar/v1/system/shutdown"));
    assert_eq!(serde_json::to_value(&hook.port).unwrap(), json!(3500));
    let mount = &kar.volume_mounts.as_ref().unwrap()[0];
    assert_eq!(mount.mount_path, "/var/run/secrets/kar.ibm.com");
    assert_eq!(mount.read_only, Some(true));
    let volume = spec
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == mount.name)
        .expect("the mounted volume");
    let secret = volume.secret.as_ref().unwrap();
    assert_eq!(
        secret.secret_name.as_deref(),
        Some("kar.ibm.com.runtime-config")
    );
}

#[test]
fn every_annotation_and_injector_setting() {
    let (injector, _certs) = injector(&[
        "-secret_name",
        "my-store",
        "-config_dir",
        "/etc/kar",
        "-image_pull_policy",
        "Always",
    ]);
    let original = pod(
        json!({
            "kar.ibm.com/app": "shop",
            "kar.ibm.com/service": "cart",
            "kar.ibm.com/actors": "Cart,Order",
            "kar.ibm.com/appPort": "9090",
            "kar.ibm.com/runtimePort": "3600",
            "kar.ibm.com/verbose": "info",
            "kar.ibm.com/extraArgs": "-h2c,-max_attempts=5",
            "kar.ibm.com/sidecarContainer": "true",
            "unrelated": "kept"
        }),
        None,
    );
    let answer = injector.review(&create_review("uid-2", original.clone()));
    let (injected, _) = patched(response(&answer, "uid-2"), &original).expect("a patch");
    assert_eq!(
        injected.metadata.annotations.as_ref().unwrap()["unrelated"],
        "kept"
    );
    let spec = injected.spec.unwrap();
    let kar = &spec.containers[1];
    assert_eq!(kar.image_pull_policy.as_deref(), Some("Always"));
    assert_eq!(
        kar.args.as_deref(),
        Some(
            &strings(&[
                "run",
                "-app",
                "shop",
                "-service",
                "cart",
                "-actors",
                "Cart,Order",
                "-app_port",
                "9090",
                "-runtime_port",
                "3600",
                "-kubernetes_mode",
                "-config_dir",
                "/etc/kar",
                "-sidecar_mode",
                "-v",
                "info",
                "-h2c",
                "-max_attempts=5",
            ])[..]
        )
    );
    let app = &spec.containers[0];
    assert_eq!(env_of(app, "KAR_APP_PORT").as_deref(), Some("9090"));
    assert_eq!(env_of(app, "KAR_RUNTIME_PORT").as_deref(), Some("3600"));
    let probe = kar
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(serde_json::to_value(&probe.port).unwrap(), json!(3600));
    let volume = &spec.volumes.as_ref().unwrap()[0];
    assert_eq!(
        volume.secret.as_ref().unwrap().secret_name.as_deref(),
        Some("my-store")
    );
    assert_eq!(
        kar.volume_mounts.as_ref().unwrap()[0].mount_path,
        "/etc/kar"
    );
}

#[test]
fn single_container_runs_the_component_under_kar_run() {
    let (injector, _certs) = injector(&["-kar_command", "/opt/kar/bin/kar"]);
    let annotations = json!({
        "kar.ibm.com/app": "greeter",
        "kar.ibm.com/service": "greeter",
        "kar.ibm.com/sidecarContainer": "false"
    });
    // With a command: the command is wrapped.
    let original = pod(annotations.clone(), Some(strings(&["node", "server.js"])));
    let mut original = original;
    original["spec"]["containers"][0]["args"] = json!(["--port", "8080"]);
    let answer = injector.review(&create_review("uid-3", original.clone()));
    let (injected, _) = patched(response(&answer, "uid-3"), &original).expect("a patch");
    assert_eq!(
        injected.metadata.annotations.as_ref().unwrap()["kar.ibm.com/injected"],
        "container"
    );
    let spec = injected.spec.unwrap();
    assert_eq!(spec.containers.len(), 1, "no sidecar container");
    let app = &spec.containers[0];
    assert_eq!(
        app.command.as_deref(),
        Some(
            &strings(&[
                "/opt/kar/bin/kar",
                "run",
                "-app",
                "greeter",
                "-service",
                "greeter",
                "-app_port",
                "8080",
                "-runtime_port",
                "3500",
                "-kubernetes_mode",
                "-config_dir",
                "/var/run/secrets/kar.ibm.com",
                "--",
                "node",
                "server.js",
                "--port",
                "8080",
            ])[..]
        )
    );
    assert_eq!(app.args, None);
    assert_eq!(env_of(app, "KAR_SIDECAR_IN_CONTAINER"), None);
    assert_eq!(env_of(app, "KAR_APP").as_deref(), Some("greeter"));
    let probe = app
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(probe.path.as_deref(), Some("/kar/v1/system/health"));
    assert!(app.lifecycle.as_ref().unwrap().pre_stop.is_some());
    assert_eq!(
        app.volume_mounts.as_ref().unwrap()[0].mount_path,
        "/var/run/secrets/kar.ibm.com"
    );

    // Without one, the image's entrypoint is told, as upstream's runner images expect.
    let original = pod(annotations, None);
    let answer = injector.review(&create_review("uid-4", original.clone()));
    let (injected, _) = patched(response(&answer, "uid-4"), &original).expect("a patch");
    let app = &injected.spec.unwrap().containers[0];
    assert_eq!(app.command, None);
    assert_eq!(
        env_of(app, "KAR_SIDECAR_IN_CONTAINER").as_deref(),
        Some("true")
    );
    assert_eq!(
        env_of(app, "KAR_EXTRA_ARGS").as_deref(),
        Some("-service greeter -app_port 8080 -runtime_port 3500 -kubernetes_mode -config_dir /var/run/secrets/kar.ibm.com")
    );
}

#[test]
fn pods_without_the_annotation_or_already_injected_are_left_alone() {
    let (injector, _certs) = injector(&[]);
    let plain = pod(json!({"other": "x"}), None);
    let answer = injector.review(&create_review("uid-5", plain.clone()));
    let r = response(&answer, "uid-5");
    assert_eq!(r["allowed"], true);
    assert!(r.get("patch").is_none(), "{r}");

    let plain = pod(Value::Null, None);
    let answer = injector.review(&create_review("uid-6", plain));
    assert!(response(&answer, "uid-6").get("patch").is_none());

    // The injected pod submitted again (a re-invocation) gets no second sidecar.
    let original = pod(json!({"kar.ibm.com/app": "greeter"}), None);
    let answer = injector.review(&create_review("uid-7", original.clone()));
    let (_, injected) = patched(response(&answer, "uid-7"), &original).unwrap();
    let answer = injector.review(&create_review("uid-8", injected.clone()));
    assert!(response(&answer, "uid-8").get("patch").is_none());
    // A pod that already has a container named kar, without the marker.
    let mut by_hand = injected;
    by_hand["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("kar.ibm.com/injected");
    let answer = injector.review(&create_review("uid-9", by_hand));
    assert!(response(&answer, "uid-9").get("patch").is_none());

    // Only creations are changed.
    let mut update = create_review("uid-10", original.clone());
    update["request"]["operation"] = json!("UPDATE");
    update["request"]["oldObject"] = original;
    let answer = injector.review(&update);
    let r = response(&answer, "uid-10");
    assert_eq!(r["allowed"], true);
    assert!(r.get("patch").is_none());
}

#[test]
fn bad_annotations_are_refused_with_the_reason() {
    let (injector, _certs) = injector(&[]);
    for (annotations, reason) in [
        (
            json!({"kar.ibm.com/app": ""}),
            "annotation kar.ibm.com/app is empty",
        ),
        (
            json!({"kar.ibm.com/app": "a", "kar.ibm.com/appPort": "http"}),
            "annotation kar.ibm.com/appPort must be a port number (1-65535), not \"http\"",
        ),
        (
            json!({"kar.ibm.com/app": "a", "kar.ibm.com/runtimePort": "99999"}),
            "annotation kar.ibm.com/runtimePort must be a port number",
        ),
        (
            json!({"kar.ibm.com/app": "a", "kar.ibm.com/sidecarContainer": "maybe"}),
            "annotation kar.ibm.com/sidecarContainer must be true or false",
        ),
        (
            json!({"kar.ibm.com/app": "a", "kar.ibm.com/runtimePort": "8080"}),
            "must differ",
        ),
    ] {
        let answer = injector.review(&create_review("uid-bad", pod(annotations, None)));
        let r = response(&answer, "uid-bad");
        assert_eq!(r["allowed"], false, "{r}");
        assert!(r.get("patch").is_none());
        let message = r["status"]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{message}");
    }
    // An object that is not a valid pod.
    let mut broken = pod(json!({"kar.ibm.com/app": "a"}), None);
    broken["spec"]["containers"] = json!("not a list");
    let answer = injector.review(&create_review("uid-broken", broken));
    let r = response(&answer, "uid-broken");
    assert_eq!(r["allowed"], false);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("not a valid Pod"),
        "{r}"
    );
}

#[test]
fn malformed_requests_get_400_and_other_routes_404_or_405() {
    let (injector, _certs) = injector(&[]);
    for body in [
        &b"not json"[..],
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
        br#"{"request": 5}"#,
    ] {
        let (status, reply) = injector.send("POST", "/mutate", body.to_vec());
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&reply));
        let error: Value = serde_json::from_slice(&reply).unwrap();
        assert!(
            error["error"].as_str().unwrap().contains("AdmissionReview"),
            "{error}"
        );
    }
    assert_eq!(injector.send("GET", "/mutate", vec![]).0, 405);
    assert_eq!(injector.send("GET", "/nothing", vec![]).0, 404);
    let (status, body) = injector.send("GET", "/healthz", vec![]);
    assert_eq!((status, &body[..]), (200, &b"ok"[..]));
}
