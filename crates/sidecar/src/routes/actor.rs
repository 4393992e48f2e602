//! Actor invocation and removal (spec §2.2). Not implemented yet.

use super::{not_implemented, Request};
use crate::reply::Response;
use crate::router::ActorRef;
use crate::server::Ctx;

/// `POST /kar/v1/actor/{type}/{id}/call/{method...}`; `method` is still
/// percent-encoded as received.
pub(crate) async fn call(
    _ctx: &Ctx,
    _actor: ActorRef,
    _method: String,
    _request: Request,
) -> Response {
    not_implemented("actor call")
}

/// `DELETE /kar/v1/actor/{type}/{id}`
pub(crate) async fn remove(_ctx: &Ctx, _actor: ActorRef, _request: Request) -> Response {
    not_implemented("actor remove")
}
