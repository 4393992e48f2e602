//! kar-injector: a Kubernetes mutating admission webhook that injects `kar` into pods
//! annotated with `kar.ibm.com/app`, as upstream KAR's injector does (spec §5.9).
//!
//! # Map
//!
//! | module | what lives there |
//! | --- | --- |
//! | `annotations` | KAR's annotations, their defaults and the `kar run` flags they make |
//! | `config` | the injector's settings: sidecar image, runtime-config secret, paths |
//! | `mutate` | the injected pod: the `kar` container (or `kar run` around the component), env, probes, preStop, secret volume |
//! | `review` | one AdmissionReview in, one out: patch (JSON Patch of the pod), no change, or refusal |
//! | `server` | HTTPS (rustls) on `POST /mutate` and `GET /healthz` |
//!
//! The binary (`main.rs`) reads flags and serves. It is a program of its own so that
//! the Kubernetes types and TLS stay out of the `kar` binary.

pub mod annotations;
pub mod config;
pub mod mutate;
pub mod review;
pub mod server;

pub use config::InjectorConfig;
