//! What the injector's tests share: certificates made with `openssl`, the
//! `kar-injector` process, an HTTPS client, and applying the returned JSON Patch.

#![allow(dead_code)]

use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::core::v1::Pod;
use kar_tests::Process;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

pub const STARTED: Duration = Duration::from_secs(30);

/// A CA and a server certificate it signed, for `localhost` and `127.0.0.1`, like the
/// chart's (`genCA` + `genSignedCert`).
pub struct Certs {
    pub dir: tempfile::TempDir,
}

impl Certs {
    pub fn generate() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(d)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=kar-injector-test-ca",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "tls.key",
            "-out",
            "tls.csr",
            "-subj",
            "/CN=kar-injector",
        ]);
        std::fs::write(
            d.join("ext.cnf"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "tls.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "tls.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]);
        Certs { dir }
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }
    pub fn key(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }
    pub fn ca(&self) -> Vec<u8> {
        std::fs::read(self.dir.path().join("ca.crt")).unwrap()
    }
}

/// A running `kar-injector`.
pub struct Injector {
    pub process: Process,
    pub port: u16,
    pub ca: Vec<u8>,
}

impl Injector {
    pub fn start(cert: &Path, key: &Path, ca: Vec<u8>, args: &[&str]) -> Injector {
        let port = kar_tests::free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_kar-injector"));
        command
            .arg("-port")
            .arg(port.to_string())
            .arg("-tls_cert")
            .arg(cert)
            .arg("-tls_key")
            .arg(key)
            .args(args);
        let process = Process::spawn("kar-injector", command);
        process.expect_output("listening on port", STARTED);
        Injector { process, port, ca }
    }

    /// Sends `body` over HTTPS (the server name `localhost`, trusting only the CA).
    pub fn send(&self, method: &str, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
        https(self.port, "localhost", &self.ca, method, path, body)
    }

    /// POSTs an AdmissionReview and returns the review answered (status must be 200).
    pub fn review(&self, review: &Value) -> Value {
        let (status, body) = self.send("POST", "/mutate", serde_json::to_vec(review).unwrap());
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
}

/// One HTTPS request (HTTP/1.1) to 127.0.0.1:`port`, verifying the server as
/// `server_name` against the PEM `ca`.
pub fn https(
    port: u16,
    server_name: &str,
    ca: &[u8],
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server_name = ServerName::try_from(server_name.to_string()).unwrap();
    runtime.block_on(async move {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca) {
            roots.add(cert.unwrap()).unwrap();
        }
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let tls = connector
            .connect(server_name, tcp)
            .await
            .expect("TLS handshake");
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(connection);
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from(body)))
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, body)
    })
}

/// An AdmissionReview (v1) asking to create `pod`.
pub fn create_review(uid: &str, pod: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": pod,
            "oldObject": null,
            "dryRun": false
        }
    })
}

/// A pod with one container running `command`, annotated with `annotations`.
pub fn pod(annotations: Value, command: Option<Vec<String>>) -> Value {
    let mut container = json!({
        "name": "app",
        "image": "example/greeter:1",
        "env": [{"name": "GREETER_TAG", "value": "js"}]
    });
    if let Some(command) = command {
        container["command"] = json!(command);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": "greeter-", "namespace": "default", "annotations": annotations},
        "spec": {"containers": [container]}
    })
}

/// The response of an answered review; checks its uid.
pub fn response<'a>(answer: &'a Value, uid: &str) -> &'a Value {
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{answer}");
    assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
    let response = &answer["response"];
    assert_eq!(response["uid"], uid, "{answer}");
    response
}

/// Applies the response's patch (base64 JSON Patch) to `pod` and parses the result as
/// a `Pod`; `None` when the response has no patch.
pub fn patched(response: &Value, pod: &Value) -> Option<(Pod, Value)> {
    let patch = response
        .get("patch")?
        .as_str()
        .expect("the patch is base64 text");
    assert_eq!(response["patchType"], "JSONPatch");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(patch)
        .unwrap();
    let patch: json_patch::Patch = serde_json::from_slice(&patch).unwrap();
    let mut doc = pod.clone();
    json_patch::patch(&mut doc, &patch).expect("the patch applies to the pod");
    let parsed: Pod = serde_json::from_value(doc.clone()).expect("the result is a Pod");
    Some((parsed, doc))
}

pub fn env_of(container: &k8s_openapi::api::core::v1::Container, name: &str) -> Option<String> {
    container
        .env
        .as_ref()?
        .iter()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}
