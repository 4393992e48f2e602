//! Idempotency keys: `(application, target, key) → request`, kept for a retention
//! window, so that a request sent again with the same key is not run again.

use crate::{Routing, StoreError};
use async_trait::async_trait;
use kar_protocol::{Outcome, Request, RequestId, Target};
use std::time::Duration;

/// The request an idempotency key maps to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyedRequest {
    pub id: RequestId,
    /// Its recorded outcome, once it completed; `None` while it is pending.
    pub outcome: Option<Outcome>,
}

/// What [`IdempotencyStore::enqueue_keyed`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keyed {
    /// The key was free: the request was enqueued like [`crate::RequestStore::enqueue`]
    /// and the key now maps to it.
    New(Routing),
    /// The key maps to an earlier request: nothing was enqueued.
    Existing(KeyedRequest),
}

/// Idempotency keys, on top of the request transitions.
///
/// A key is live from the enqueue that maps it until `retention` after that enqueue
/// or, once its request completed, until `retention` after the completion (the
/// completion of a keyed request, [`crate::RequestStore::complete`], records its
/// outcome with the key in the same transition, whatever the kind and whether or not
/// its caller is still a member; `forget` does not drop it). A key whose request
/// ended without an outcome (its parked request expired, or it was drained or
/// purged) is free again.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// In one transition: if `key` is live for `request.target` and maps to a
    /// request that is pending or has a recorded outcome, returns that request;
    /// otherwise enqueues `request` (exactly as `enqueue`) and maps the key to it for
    /// `retention`.
    async fn enqueue_keyed(
        &self,
        request: &Request,
        key: &str,
        retention: Duration,
    ) -> Result<Keyed, StoreError>;

    /// The request `key` maps to for `target`, if the key is live (read only).
    async fn keyed(&self, target: &Target, key: &str) -> Result<Option<KeyedRequest>, StoreError>;

    /// Deletes the keys whose window ended and returns how many went. The embedded
    /// engine needs it (a sweep); the Redis keys expire by themselves (TTL), so there
    /// it deletes nothing.
    async fn sweep_keys(&self) -> Result<u64, StoreError>;
}
