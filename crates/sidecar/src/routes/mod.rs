//! Request handlers, one module per route family of spec §2, and the admin API
//! (`admin.rs`, outside the spec's routes).

mod actor;
mod admin;
mod admin_views;
mod await_;
mod bindings;
mod events;
mod idempotency;
mod reminders;
mod service;
mod state;
mod system;

use crate::reply::{self, Response};
use crate::router::{self, ActorRoute, Route, RouteError};
use crate::server::Ctx;
use bytes::Bytes;
use http::header::{HeaderValue, CONTENT_LENGTH, PRAGMA};
use http::{HeaderMap, Method, StatusCode};
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use kar_protocol::{Reminder, RequestKind, Subscription};

pub(crate) type Request = http::Request<Incoming>;

pub(crate) async fn dispatch(
    ctx: &Ctx,
    peer: Option<std::net::SocketAddr>,
    request: Request,
) -> Response {
    if request.uri().path().starts_with(admin::PREFIX) {
        return admin::handle(ctx, peer, request).await;
    }
    if ctx.dashboard {
        let mut response = crate::dashboard::page(&request);
        if request.method() == Method::HEAD {
            strip_content(&mut response);
        }
        return response;
    }
    let head = request.method() == Method::HEAD;
    let mut response = handle(ctx, request).await;
    if head {
        strip_content(&mut response);
    }
    response
}

/// A response to `HEAD` has no content (RFC 9110 §9.3.2). hyper leaves it out on
/// HTTP/1.1 but would send it as DATA frames on HTTP/2, which clients reject as a
/// protocol error. Like Go, the header still announces the length it would have had.
pub(crate) fn strip_content(response: &mut Response) {
    let length = response.body().size_hint().exact().unwrap_or(0);
    if length == 0 {
        return;
    }
    if !response.headers().contains_key(CONTENT_LENGTH) {
        response
            .headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    *response.body_mut() = Full::new(Bytes::new());
}

async fn handle(ctx: &Ctx, request: Request) -> Response {
    let route = match router::route(request.method(), request.uri().path()) {
        Ok(route) => route,
        Err(RouteError::NotFound(reason)) => return reply::error(StatusCode::NOT_FOUND, reason),
        Err(RouteError::BadRequest(reason)) => {
            return reply::error(StatusCode::BAD_REQUEST, reason)
        }
        Err(RouteError::MethodNotAllowed { allow }) => return reply::method_not_allowed(&allow),
        Err(RouteError::Options { allow }) => return reply::options(&allow),
    };
    tracing::trace!(method = %request.method(), path = request.uri().path(), route = route.name(), "request");
    match route {
        Route::Service { service, path } => service::call(ctx, service, path, request).await,
        Route::Await => await_::await_promise(ctx, request).await,
        Route::Health => system::health(),
        Route::Shutdown => system::shutdown(ctx),
        Route::Information { component } => system::information(ctx, &component, &request).await,
        Route::Metrics => system::metrics(ctx).await,
        Route::DebugRegister => reply::error(
            StatusCode::NOT_IMPLEMENTED,
            "the kar-debugger protocol is not supported",
        ),
        Route::Actor { actor, route } => match route {
            ActorRoute::Call { method } => actor::call(ctx, actor, method, request).await,
            ActorRoute::Instance => actor::remove(ctx, actor, request).await,
            ActorRoute::State | ActorRoute::StateKey { .. } | ActorRoute::StateSubkey { .. } => {
                state::handle(ctx, actor, route, request).await
            }
            ActorRoute::Reminders => {
                bindings::handle::<Reminder>(ctx, actor.into(), None, request).await
            }
            ActorRoute::Reminder { id } => {
                bindings::handle::<Reminder>(ctx, actor.into(), Some(id), request).await
            }
            ActorRoute::Subscriptions => {
                bindings::handle::<Subscription>(ctx, actor.into(), None, request).await
            }
            ActorRoute::Subscription { id } => {
                bindings::handle::<Subscription>(ctx, actor.into(), Some(id), request).await
            }
        },
        Route::Topic { topic } => events::topic(ctx, topic, request).await,
        Route::Publish { topic } => events::publish(ctx, topic, request).await,
    }
}

/// The kind of request a `Pragma` header asks for (spec §2.1): every value of every
/// `Pragma` header is compared case-insensitively with the whole strings `async` and
/// `promise`; the first match wins (`Pragma: no-cache, async` does not match).
pub(crate) fn pragma_kind(headers: &HeaderMap) -> RequestKind {
    for value in headers.get_all(PRAGMA) {
        let value = value.as_bytes();
        if value.eq_ignore_ascii_case(b"async") {
            return RequestKind::Tell;
        }
        if value.eq_ignore_ascii_case(b"promise") {
            return RequestKind::Promise;
        }
    }
    RequestKind::Call
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn pragma_matching() {
        let kind = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(PRAGMA, HeaderValue::from_static(v));
            }
            pragma_kind(&headers)
        };
        assert_eq!(kind(&[]), RequestKind::Call);
        assert_eq!(kind(&["async"]), RequestKind::Tell);
        assert_eq!(kind(&["ASYNC"]), RequestKind::Tell);
        assert_eq!(kind(&["Promise"]), RequestKind::Promise);
        assert_eq!(kind(&["no-cache, async"]), RequestKind::Call);
        assert_eq!(
            kind(&["no-cache", "promise", "async"]),
            RequestKind::Promise
        );
        assert_eq!(kind(&["asyncx"]), RequestKind::Call);
    }
}
