//! Event subscriptions, topics and publishing (spec §2.6, §2.7). Not implemented yet.

use super::{not_implemented, Request};
use crate::reply::Response;
use crate::router::{ActorRef, ActorRoute};
use crate::server::Ctx;

/// `/kar/v1/actor/{type}/{id}/events[/{id}]`, every method.
pub(crate) async fn subscriptions(
    _ctx: &Ctx,
    _actor: ActorRef,
    _route: ActorRoute,
    _request: Request,
) -> Response {
    not_implemented("event subscriptions")
}

/// `PUT|DELETE /kar/v1/event/{topic}`
pub(crate) async fn topic(_ctx: &Ctx, _topic: String, _request: Request) -> Response {
    not_implemented("topics")
}

/// `POST /kar/v1/event/{topic}/publish`
pub(crate) async fn publish(_ctx: &Ctx, _topic: String, _request: Request) -> Response {
    not_implemented("publish")
}
