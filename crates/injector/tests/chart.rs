//! The Helm charts under deploy/helm, linted and rendered offline by
//! scripts/check-charts.py (helm-python-sdk), every manifest parsed as its
//! `k8s-openapi` type; then the injector served with the certificate the chart made,
//! trusted through the webhook's caBundle, injecting the example chart's pods.

mod support;

use base64::Engine as _;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kar_injector::annotations::KarAnnotations;
use kar_tests::repo_root;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::process::Command;
use support::{create_review, https, patched, response};

/// The rendered charts: `"<chart>/<values>"` to objects (kind, object).
fn render() -> BTreeMap<String, Vec<Value>> {
    let python = repo_root().join(".venv").join("bin").join("python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup-test-deps.sh",
        python.display()
    );
    let out = Command::new(python)
        .arg(repo_root().join("scripts").join("check-charts.py"))
        .output()
        .expect("run scripts/check-charts.py");
    assert!(
        out.status.success(),
        "the charts do not lint or render:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rendered: BTreeMap<String, Vec<Value>> = serde_json::from_slice(&out.stdout).unwrap();
    rendered
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().map(|o| o["object"].clone()).collect()))
        .collect()
}

/// Parses `object` as `T` and checks nothing was lost: a misspelt or misplaced field
/// (which the typed parse ignores) makes the round trip differ.
fn typed<T: DeserializeOwned + Serialize>(object: &Value) -> T {
    let parsed: T = serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("not a valid {}: {e}\n{object:#}", object["kind"]));
    let back = serde_json::to_value(&parsed).unwrap();
    assert_eq!(
        &back, object,
        "fields the schema does not know in {}",
        object["kind"]
    );
    parsed
}

/// Every object of a rendering parsed by kind; returns them for further checks.
#[derive(Default)]
struct Objects {
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    secrets: Vec<Secret>,
    webhooks: Vec<MutatingWebhookConfiguration>,
    jobs: Vec<Job>,
    role_bindings: Vec<RoleBinding>,
    service_accounts: Vec<ServiceAccount>,
    cert_manager: Vec<Value>,
}

fn parse_all(objects: &[Value]) -> Objects {
    let mut parsed = Objects::default();
    for object in objects {
        match object["kind"].as_str().unwrap() {
            "Deployment" => parsed.deployments.push(typed(object)),
            "Service" => parsed.services.push(typed(object)),
            "Secret" => parsed.secrets.push(typed(object)),
            "MutatingWebhookConfiguration" => parsed.webhooks.push(typed(object)),
            "Job" => parsed.jobs.push(typed(object)),
            "Role" => drop(typed::<Role>(object)),
            "RoleBinding" => parsed.role_bindings.push(typed(object)),
            "ServiceAccount" => parsed.service_accounts.push(typed(object)),
            "Issuer" | "Certificate" => {
                assert_eq!(object["apiVersion"], "cert-manager.io/v1");
                parsed.cert_manager.push(object.clone());
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    parsed
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[test]
fn the_charts_lint_render_and_fit_together() {
    let rendered = render();
    let names: Vec<&str> = rendered.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "kar-greeter/default",
            "kar-greeter/single-container-values",
            "kar-injector/cert-manager-values",
            "kar-injector/default",
            "kar-injector/redis-tls-values"
        ]
    );
    for objects in rendered.values() {
        parse_all(objects);
    }

    // The injector chart with its defaults: the pieces refer to each other.
    let injector = parse_all(&rendered["kar-injector/default"]);
    let deployment = &injector.deployments[0];
    let pod = deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let container = &pod.containers[0];
    let args = container.args.clone().unwrap();
    assert!(
        args.contains(&"-secret_name=kar.ibm.com.runtime-config".to_string()),
        "{args:?}"
    );
    let service = &injector.services[0];
    let service_name = service.metadata.name.clone().unwrap();
    let webhook = &injector.webhooks[0].webhooks.as_ref().unwrap()[0];
    let target = webhook.client_config.service.as_ref().unwrap();
    assert_eq!(target.name, service_name);
    assert_eq!(target.namespace, "kar-system");
    assert_eq!(target.path.as_deref(), Some("/mutate"));
    assert_eq!(webhook.admission_review_versions, ["v1"]);
    assert_eq!(webhook.side_effects, "None");
    let rules = webhook.rules.as_ref().unwrap();
    assert_eq!(
        rules[0].resources.as_deref(),
        Some(&["pods".to_string()][..])
    );
    assert_eq!(
        pod.service_account_name.as_deref(),
        injector.service_accounts[0].metadata.name.as_deref()
    );
    assert_eq!(
        injector.role_bindings[0].subjects.as_ref().unwrap()[0].name,
        pod.service_account_name.clone().unwrap()
    );
    let tls_name = pod.volumes.as_ref().unwrap()[0]
        .secret
        .as_ref()
        .unwrap()
        .secret_name
        .clone()
        .unwrap();
    let tls = injector
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some(tls_name.as_str()))
        .expect("the TLS secret");
    let data = tls.data.as_ref().unwrap();
    let ca_bundle = webhook.client_config.ca_bundle.as_ref().unwrap();
    assert_eq!(
        ca_bundle.0, data["ca.crt"].0,
        "the webhook trusts the CA that signed the cert"
    );
    let runtime_config = injector
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("kar.ibm.com.runtime-config"))
        .unwrap();
    let config = runtime_config.string_data.as_ref().unwrap();
    assert_eq!(config["redis_host"], "redis");
    assert_eq!(config["redis_port"], "6379");
    assert_eq!(config["redis_enable_tls"], "false");

    // The injector serves with the chart's certificate; a client that trusts only
    // the caBundle accepts it under the service's DNS name, as the API server would.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), &data["tls.crt"].0).unwrap();
    std::fs::write(dir.path().join("tls.key"), &data["tls.key"].0).unwrap();
    let started = support::Injector::start(
        &dir.path().join("tls.crt"),
        &dir.path().join("tls.key"),
        ca_bundle.0.clone(),
        &[],
    );
    let dns = format!("{service_name}.kar-system.svc");
    let (status, body) = https(started.port, &dns, &ca_bundle.0, "GET", "/healthz", vec![]);
    assert_eq!((status, &body[..]), (200, &b"ok"[..]));

    // The example chart's pods, sent as the API server would, come back injected.
    let greeter = parse_all(&rendered["kar-greeter/default"]);
    let templates = greeter
        .deployments
        .iter()
        .map(|d| d.spec.as_ref().unwrap().template.clone())
        .chain(
            greeter
                .jobs
                .iter()
                .map(|j| j.spec.as_ref().unwrap().template.clone()),
        );
    for (i, template) in templates.enumerate() {
        let annotations = template
            .metadata
            .as_ref()
            .unwrap()
            .annotations
            .clone()
            .unwrap();
        let kar = KarAnnotations::parse(&annotations)
            .unwrap()
            .expect("annotated");
        assert_eq!(kar.app, "greeter");
        let mut pod = json!({"apiVersion": "v1", "kind": "Pod"});
        pod["metadata"] = serde_json::to_value(template.metadata.as_ref().unwrap()).unwrap();
        pod["spec"] = serde_json::to_value(template.spec.as_ref().unwrap()).unwrap();
        let uid = format!("greeter-{i}");
        let (status, body) = https(
            started.port,
            &dns,
            &ca_bundle.0,
            "POST",
            "/mutate",
            serde_json::to_vec(&create_review(&uid, pod.clone())).unwrap(),
        );
        assert_eq!(status, 200);
        let answer: Value = serde_json::from_slice(&body).unwrap();
        let (injected, _) = patched(response(&answer, &uid), &pod).expect("a patch");
        let containers = injected.spec.unwrap().containers;
        if kar.sidecar_container {
            assert_eq!(containers.len(), 2);
            assert_eq!(containers[1].name, "kar");
        } else {
            assert_eq!(containers.len(), 1);
            assert_eq!(containers[0].command.as_ref().unwrap()[..2], ["kar", "run"]);
        }
    }

    // External Redis over TLS, a token, two namespaces.
    let tls_values = parse_all(&rendered["kar-injector/redis-tls-values"]);
    let configs: Vec<&Secret> = tls_values
        .secrets
        .iter()
        .filter(|s| s.metadata.name.as_deref() == Some("kar.ibm.com.runtime-config"))
        .collect();
    let namespaces: Vec<_> = configs
        .iter()
        .map(|s| s.metadata.namespace.clone().unwrap())
        .collect();
    assert_eq!(namespaces, ["shop", "staging"]);
    let config = configs[0].string_data.as_ref().unwrap();
    assert_eq!(config["redis_host"], "redis.example.internal");
    assert_eq!(config["redis_port"], "6380");
    assert_eq!(config["redis_user"], "kar");
    assert_eq!(config["redis_password"], "s3cret");
    assert_eq!(config["redis_enable_tls"], "true");
    assert_eq!(config["api_token"], "token-for-tests");
    let ca = String::from_utf8(b64(&config["redis_ca"])).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");
    let args = tls_values.deployments[0]
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap()
        .containers[0]
        .args
        .clone()
        .unwrap();
    assert!(args.contains(&"-sidecar_image=registry.example/kar:0.1.0".to_string()));

    // cert-manager instead of a Helm-made certificate.
    let cm = parse_all(&rendered["kar-injector/cert-manager-values"]);
    let kinds: Vec<&str> = cm
        .cert_manager
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Issuer", "Certificate"]);
    let webhook = &cm.webhooks[0];
    let annotations = webhook.metadata.annotations.as_ref().unwrap();
    assert_eq!(
        annotations["cert-manager.io/inject-ca-from"],
        "kar-system/kar-kar-injector"
    );
    assert!(webhook.webhooks.as_ref().unwrap()[0]
        .client_config
        .ca_bundle
        .is_none());
    assert_eq!(cm.cert_manager[1]["spec"]["secretName"], json!(tls_name));
}
