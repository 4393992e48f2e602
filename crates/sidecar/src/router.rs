//! The route table of spec §2.0, matched on the percent-decoded path.
//!
//! The raw path is split on `/` first and each segment is decoded on its own, so a
//! `%2F` inside an actor id or a state key stays part of that segment (decision §9.7).
//! Catch-all parameters (the service path, the actor method) are handed on still
//! percent-encoded as received, so nothing is lost when they are forwarded.

use http::Method;
use percent_encoding::percent_decode_str;
use std::borrow::Cow;

/// An actor reference from the path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ActorRef {
    pub actor_type: String,
    pub id: String,
}

impl From<ActorRef> for kar_protocol::ActorRef {
    fn from(actor: ActorRef) -> Self {
        kar_protocol::ActorRef::new(actor.actor_type, actor.id)
    }
}

/// The resource a request addresses; handlers branch on the method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/kar/v1/service/{service}/call/{path...}`; `path` starts with `/` and is still
    /// percent-encoded as received.
    Service {
        service: String,
        path: String,
    },
    Actor {
        actor: ActorRef,
        route: ActorRoute,
    },
    /// `/kar/v1/await`
    Await,
    /// `/kar/v1/event/{topic}` (create, delete)
    Topic {
        topic: String,
    },
    /// `/kar/v1/event/{topic}/publish`
    Publish {
        topic: String,
    },
    Health,
    Shutdown,
    Information {
        component: String,
    },
    DebugRegister,
    Metrics,
}

/// The routes under `/kar/v1/actor/{type}/{id}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ActorRoute {
    /// `/call/{method...}`; `method` is non-empty, without the leading `/`, still
    /// percent-encoded as received (it may contain `/`).
    Call { method: String },
    /// The actor itself (`DELETE`: remove the instance).
    Instance,
    /// `/state`
    State,
    /// `/state/{key}`
    StateKey { key: String },
    /// `/state/{key}/{subkey}`
    StateSubkey { key: String, subkey: String },
    /// `/reminders`
    Reminders,
    /// `/reminders/{id}`
    Reminder { id: String },
    /// `/events`
    Subscriptions,
    /// `/events/{id}`
    Subscription { id: String },
}

impl Route {
    /// A short name for logs and `501` answers.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Route::Service { .. } => "service call",
            Route::Actor { route, .. } => match route {
                ActorRoute::Call { .. } => "actor call",
                ActorRoute::Instance => "actor remove",
                ActorRoute::State => "actor state",
                ActorRoute::StateKey { .. } => "actor state entry",
                ActorRoute::StateSubkey { .. } => "actor submap entry",
                ActorRoute::Reminders => "actor reminders",
                ActorRoute::Reminder { .. } => "actor reminder",
                ActorRoute::Subscriptions => "actor subscriptions",
                ActorRoute::Subscription { .. } => "actor subscription",
            },
            Route::Await => "await",
            Route::Topic { .. } => "topic",
            Route::Publish { .. } => "publish",
            Route::Health => "health",
            Route::Shutdown => "shutdown",
            Route::Information { .. } => "information",
            Route::DebugRegister => "debug register",
            Route::Metrics => "metrics",
        }
    }
}

/// Why no handler takes the request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RouteError {
    /// `404` with this one-line reason.
    NotFound(String),
    /// Known path, wrong method: `405` with this `Allow` value.
    MethodNotAllowed { allow: String },
    /// `OPTIONS` on a path without an OPTIONS handler: `200` with this `Allow` value.
    Options { allow: String },
    /// `400` with this reason (a parameter that is not UTF-8 once decoded).
    BadRequest(String),
}

/// The methods a path accepts; `None` = any method.
type Allowed = Option<&'static [Method]>;

const ANY: Allowed = None;
const GET: Allowed = Some(&[Method::GET]);
const POST: Allowed = Some(&[Method::POST]);
const DELETE: Allowed = Some(&[Method::DELETE]);
const GET_DELETE: Allowed = Some(&[Method::GET, Method::DELETE]);
const GET_POST: Allowed = Some(&[Method::GET, Method::POST]);
const GET_POST_DELETE: Allowed = Some(&[Method::GET, Method::POST, Method::DELETE]);
const GET_PUT_DELETE: Allowed = Some(&[Method::GET, Method::PUT, Method::DELETE]);
const GET_PUT_DELETE_HEAD: Allowed =
    Some(&[Method::GET, Method::PUT, Method::DELETE, Method::HEAD]);
const GET_PUT_DELETE_HEAD_POST: Allowed = Some(&[
    Method::GET,
    Method::PUT,
    Method::DELETE,
    Method::HEAD,
    Method::POST,
]);
const GET_POST_PUT: Allowed = Some(&[Method::GET, Method::POST, Method::PUT]);
const PUT_DELETE: Allowed = Some(&[Method::PUT, Method::DELETE]);

pub(crate) const PAGE_NOT_FOUND: &str = "404 page not found";

/// Finds the route for `method` and the raw (percent-encoded) `path`.
pub(crate) fn route(method: &Method, path: &str) -> Result<Route, RouteError> {
    let path = Path::parse(path)?;
    let (allowed, route) = path.lookup()?;
    if let Some(allowed) = allowed {
        if !allowed.contains(method) {
            let mut allow: Vec<&str> = allowed.iter().map(Method::as_str).collect();
            allow.push("OPTIONS");
            let allow = allow.join(", ");
            return Err(if method == Method::OPTIONS {
                RouteError::Options { allow }
            } else {
                RouteError::MethodNotAllowed { allow }
            });
        }
    }
    Ok(route)
}

struct Segment<'a> {
    /// Byte offset of the segment in the raw path.
    start: usize,
    /// Percent-decoded text; a segment that does not decode to UTF-8 holds U+FFFD
    /// here (it can then match no literal) and is rejected if used as a parameter.
    text: Cow<'a, str>,
    utf8: bool,
}

struct Path<'a> {
    raw: &'a str,
    segments: Vec<Segment<'a>>,
}

impl<'a> Path<'a> {
    fn parse(raw: &'a str) -> Result<Path<'a>, RouteError> {
        let Some(rest) = raw.strip_prefix('/') else {
            return Err(RouteError::NotFound(PAGE_NOT_FOUND.to_string()));
        };
        let mut segments = Vec::new();
        let mut start = 1;
        for piece in rest.split('/') {
            let (text, utf8) = match percent_decode_str(piece).decode_utf8() {
                Ok(text) => (text, true),
                Err(_) => (Cow::Borrowed("\u{fffd}"), false),
            };
            segments.push(Segment { start, text, utf8 });
            start += piece.len() + 1;
        }
        Ok(Path { raw, segments })
    }

    /// The decoded segment at `index`, which must be a non-empty UTF-8 string.
    fn param(&self, index: usize, what: &str) -> Result<String, RouteError> {
        let segment = &self.segments[index];
        if !segment.utf8 {
            return Err(RouteError::BadRequest(format!(
                "invalid {what} in path: not UTF-8 once percent-decoded"
            )));
        }
        if segment.text.is_empty() {
            return Err(RouteError::NotFound(format!(
                "{PAGE_NOT_FOUND}: empty {what}"
            )));
        }
        Ok(segment.text.to_string())
    }

    /// The raw rest of the path from segment `index` on (empty if there is none).
    fn rest(&self, index: usize) -> &'a str {
        self.segments
            .get(index)
            .map_or("", |segment| &self.raw[segment.start..])
    }

    fn actor(&self) -> Result<ActorRef, RouteError> {
        Ok(ActorRef {
            actor_type: self.param(3, "actor type")?,
            id: self.param(4, "actor id")?,
        })
    }

    fn lookup(&self) -> Result<(Allowed, Route), RouteError> {
        let texts: Vec<&str> = self.segments.iter().map(|s| s.text.as_ref()).collect();
        let not_found = || Err(RouteError::NotFound(PAGE_NOT_FOUND.to_string()));
        let ["kar", "v1", tail @ ..] = texts.as_slice() else {
            return match texts.as_slice() {
                ["metrics"] => Ok((GET, Route::Metrics)),
                _ => not_found(),
            };
        };
        match tail {
            ["service", _, "call", ..] => {
                let service = self.param(3, "service name")?;
                // `/call` without a slash is what httprouter would redirect to `/call/`.
                let path = format!("/{}", self.rest(5));
                Ok((ANY, Route::Service { service, path }))
            }
            ["actor", _, _, actor_tail @ ..] => {
                let actor = self.actor()?;
                let (allowed, route) = match actor_tail {
                    [] => (DELETE, ActorRoute::Instance),
                    ["call", ..] => {
                        let method = self.rest(6);
                        if method.is_empty() {
                            return Err(RouteError::NotFound(format!(
                                "{PAGE_NOT_FOUND}: missing actor method"
                            )));
                        }
                        let method = method.to_string();
                        (POST, ActorRoute::Call { method })
                    }
                    ["state"] => (GET_POST_DELETE, ActorRoute::State),
                    ["state", _] => (
                        GET_PUT_DELETE_HEAD_POST,
                        ActorRoute::StateKey {
                            key: self.param(6, "state key")?,
                        },
                    ),
                    ["state", _, _] => (
                        GET_PUT_DELETE_HEAD,
                        ActorRoute::StateSubkey {
                            key: self.param(6, "state key")?,
                            subkey: self.param(7, "submap key")?,
                        },
                    ),
                    ["reminders"] => (GET_DELETE, ActorRoute::Reminders),
                    ["reminders", _] => (
                        GET_PUT_DELETE,
                        ActorRoute::Reminder {
                            id: self.param(6, "reminder id")?,
                        },
                    ),
                    ["events"] => (GET_DELETE, ActorRoute::Subscriptions),
                    ["events", _] => (
                        GET_PUT_DELETE,
                        ActorRoute::Subscription {
                            id: self.param(6, "subscription id")?,
                        },
                    ),
                    _ => return not_found(),
                };
                Ok((allowed, Route::Actor { actor, route }))
            }
            ["await"] => Ok((POST, Route::Await)),
            ["event", _] => Ok((
                PUT_DELETE,
                Route::Topic {
                    topic: self.param(3, "topic")?,
                },
            )),
            ["event", _, "publish"] => Ok((
                POST,
                Route::Publish {
                    topic: self.param(3, "topic")?,
                },
            )),
            ["system", "health"] => Ok((GET, Route::Health)),
            // Decision §9.9: GET too (the Kubernetes preStop hook uses GET).
            ["system", "shutdown"] => Ok((GET_POST, Route::Shutdown)),
            ["system", "information", _] => Ok((
                GET,
                Route::Information {
                    component: self.param(4, "information component")?,
                },
            )),
            ["debug", "register"] => Ok((GET_POST_PUT, Route::DebugRegister)),
            _ => not_found(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(method: Method, path: &str) -> Route {
        match route(&method, path) {
            Ok(route) => route,
            Err(e) => panic!("{method} {path}: {e:?}"),
        }
    }

    fn actor(t: &str, i: &str, route: ActorRoute) -> Route {
        Route::Actor {
            actor: ActorRef {
                actor_type: t.into(),
                id: i.into(),
            },
            route,
        }
    }

    #[test]
    fn service_paths_stay_encoded() {
        assert_eq!(
            ok(Method::PATCH, "/kar/v1/service/my%20svc/call/a%2Fb/c%3F"),
            Route::Service {
                service: "my svc".into(),
                path: "/a%2Fb/c%3F".into()
            }
        );
        assert_eq!(
            ok(Method::GET, "/kar/v1/service/s/call/"),
            Route::Service {
                service: "s".into(),
                path: "/".into()
            }
        );
        assert_eq!(
            ok(Method::GET, "/kar/v1/service/s/call"),
            Route::Service {
                service: "s".into(),
                path: "/".into()
            }
        );
        // Undecodable bytes in the forwarded path are fine: it is forwarded raw.
        assert_eq!(
            ok(Method::GET, "/kar/v1/service/s/call/%ff"),
            Route::Service {
                service: "s".into(),
                path: "/%ff".into()
            }
        );
    }

    #[test]
    fn actor_routes_decode_each_segment() {
        assert_eq!(
            ok(Method::POST, "/kar/v1/actor/T/a%2Fb/call/m/x%20y"),
            actor(
                "T",
                "a/b",
                ActorRoute::Call {
                    method: "m/x%20y".into()
                }
            )
        );
        assert_eq!(
            ok(Method::DELETE, "/kar/v1/actor/T/1"),
            actor("T", "1", ActorRoute::Instance)
        );
        assert_eq!(
            ok(Method::HEAD, "/kar/v1/actor/T/1/state/k%20/%E2%82%AC"),
            actor(
                "T",
                "1",
                ActorRoute::StateSubkey {
                    key: "k ".into(),
                    subkey: "€".into()
                }
            )
        );
        assert_eq!(
            ok(Method::PUT, "/kar/v1/actor/T/1/reminders/r"),
            actor("T", "1", ActorRoute::Reminder { id: "r".into() })
        );
        assert_eq!(
            ok(Method::GET, "/kar/v1/%61ctor/T/1/events"),
            actor("T", "1", ActorRoute::Subscriptions)
        );
    }

    #[test]
    fn system_routes() {
        assert_eq!(ok(Method::GET, "/kar/v1/system/health"), Route::Health);
        assert_eq!(ok(Method::GET, "/kar/v1/system/shutdown"), Route::Shutdown);
        assert_eq!(ok(Method::POST, "/kar/v1/system/shutdown"), Route::Shutdown);
        assert_eq!(
            ok(Method::GET, "/kar/v1/system/information/id"),
            Route::Information {
                component: "id".into()
            }
        );
        assert_eq!(ok(Method::GET, "/metrics"), Route::Metrics);
        assert_eq!(ok(Method::POST, "/kar/v1/await"), Route::Await);
        assert_eq!(
            ok(Method::POST, "/kar/v1/event/t/publish"),
            Route::Publish { topic: "t".into() }
        );
    }

    #[test]
    fn wrong_method_lists_allowed_ones() {
        assert_eq!(
            route(&Method::PUT, "/kar/v1/system/health"),
            Err(RouteError::MethodNotAllowed {
                allow: "GET, OPTIONS".into()
            })
        );
        assert_eq!(
            route(&Method::OPTIONS, "/kar/v1/actor/T/1/state"),
            Err(RouteError::Options {
                allow: "GET, POST, DELETE, OPTIONS".into()
            })
        );
        assert!(route(&Method::GET, "/kar/v1/actor/T/1/call/m").is_err());
    }

    #[test]
    fn unknown_and_odd_paths() {
        for path in [
            "",
            "*",
            "/",
            "/kar",
            "/kar/v1",
            "/kar/v1/",
            "/kar/v1/system/health/",
            "/kar/v1/actor/T/1/state/a/b/c",
            "/kar/v1/actor/T/1/call",
            "/kar/v1/actor/T/1/call/",
            "/kar/v1/actor//1/state",
            "/kar/v1/service//call/x",
            "/kar/v2/system/health",
            "//kar/v1/system/health",
            "/kar/v1/system/%ff",
        ] {
            assert!(
                matches!(route(&Method::GET, path), Err(RouteError::NotFound(_))),
                "{path}"
            );
        }
        assert!(matches!(
            route(&Method::GET, "/kar/v1/actor/T/%ff%fe/state"),
            Err(RouteError::BadRequest(_))
        ));
    }
}
