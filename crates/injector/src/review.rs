//! One AdmissionReview in, one AdmissionReview out: the pod's annotations decide
//! whether it is patched, left alone or refused.

use crate::annotations::KarAnnotations;
use crate::config::InjectorConfig;
use crate::mutate;
use k8s_openapi::api::core::v1::Pod;
use kube_core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube_core::DynamicObject;
use thiserror::Error;

/// A body that is no AdmissionReview request: answered `400` (the API server sends
/// none of these; anything else that reaches the port may).
#[derive(Debug, Error)]
pub enum ReviewError {
    #[error("the body is not an AdmissionReview: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("the AdmissionReview has no request")]
    NoRequest,
}

/// What the injector did, for its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not a pod creation, no `kar.ibm.com/app`, or already injected.
    Unchanged,
    Patched,
    Denied(String),
}

/// Answers the AdmissionReview in `body` (JSON) with an AdmissionReview (JSON).
pub fn answer(body: &[u8], config: &InjectorConfig) -> Result<(Vec<u8>, Outcome), ReviewError> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body)?;
    let request: AdmissionRequest<DynamicObject> =
        review.try_into().map_err(|_| ReviewError::NoRequest)?;
    let (response, outcome) = decide(&request, config);
    Ok((encode(response.into_review())?, outcome))
}

fn decide(
    request: &AdmissionRequest<DynamicObject>,
    config: &InjectorConfig,
) -> (AdmissionResponse, Outcome) {
    let response = AdmissionResponse::from(request);
    let deny = |reason: String| {
        (
            AdmissionResponse::from(request).deny(&reason),
            Outcome::Denied(reason),
        )
    };
    if request.operation != Operation::Create || request.kind.kind != "Pod" {
        return (response, Outcome::Unchanged);
    }
    let Some(object) = &request.object else {
        return (response, Outcome::Unchanged);
    };
    let before = match serde_json::to_value(object) {
        Ok(value) => value,
        Err(e) => return deny(format!("cannot read the pod: {e}")),
    };
    let pod: Pod = match serde_json::from_value(before.clone()) {
        Ok(pod) => pod,
        Err(e) => return deny(format!("the object is not a valid Pod: {e}")),
    };
    let annotations = pod.metadata.annotations.clone().unwrap_or_default();
    let kar = match KarAnnotations::parse(&annotations) {
        Ok(Some(kar)) => kar,
        Ok(None) => return (response, Outcome::Unchanged),
        Err(e) => return deny(e.to_string()),
    };
    if mutate::already_injected(&pod, config) {
        return (response, Outcome::Unchanged);
    }
    let injected = mutate::inject(&pod, &kar, config);
    // The patch is the difference between the pod as received and as injected; the
    // typed round trip above only drops what the schema does not know, which the
    // patch then leaves untouched.
    let typed_before = match serde_json::to_value(&pod) {
        Ok(value) => value,
        Err(e) => return deny(format!("cannot read the pod: {e}")),
    };
    let after = match serde_json::to_value(&injected) {
        Ok(value) => value,
        Err(e) => return deny(format!("cannot write the pod: {e}")),
    };
    let patch = json_patch::diff(&typed_before, &after);
    match response.with_patch(patch) {
        Ok(response) => (response, Outcome::Patched),
        Err(e) => deny(format!("cannot write the patch: {e}")),
    }
}

/// The review as JSON, with the patch as base64 text: `patch` is a Go `[]byte`,
/// which the API documents (and Go encodes) as a base64 string, while kube-core
/// serializes it as an array of numbers.
fn encode(review: AdmissionReview<DynamicObject>) -> Result<Vec<u8>, serde_json::Error> {
    use base64::Engine as _;
    let mut value = serde_json::to_value(&review)?;
    if let Some(patch) = value.pointer_mut("/response/patch") {
        let bytes: Vec<u8> = serde_json::from_value(patch.take())?;
        *patch = base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into();
    }
    serde_json::to_vec(&value)
}
