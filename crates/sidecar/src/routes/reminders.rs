//! Reminders (spec §2.5). Not implemented yet.

use super::{not_implemented, Request};
use crate::reply::Response;
use crate::router::{ActorRef, ActorRoute};
use crate::server::Ctx;

/// `/kar/v1/actor/{type}/{id}/reminders[/{id}]`, every method.
pub(crate) async fn handle(
    _ctx: &Ctx,
    _actor: ActorRef,
    _route: ActorRoute,
    _request: Request,
) -> Response {
    not_implemented("reminders")
}
