//! Actor state (spec §2.4). Not implemented yet.

use super::{not_implemented, Request};
use crate::reply::Response;
use crate::router::{ActorRef, ActorRoute};
use crate::server::Ctx;

/// `/kar/v1/actor/{type}/{id}/state[/{key}[/{subkey}]]`, every method.
pub(crate) async fn handle(
    _ctx: &Ctx,
    _actor: ActorRef,
    _route: ActorRoute,
    request: Request,
) -> Response {
    let route = match request.method().as_str() {
        "GET" => "state get",
        "HEAD" => "state contains",
        "PUT" => "state set",
        "DELETE" => "state remove",
        _ => "state update",
    };
    not_implemented(route)
}
