//! Control traffic between members, in one place: waking the other members' event
//! loops after a publish, and asking every member for its activated actors.
//!
//! Both ride the durable request path today: a request addressed to a member's node
//! id (a routing name only that member offers) with a system path, answered by the
//! member itself ([`Runtime::answer_system_query`]). Neither needs durability: a lost
//! wake-up is covered by the event loop's safety re-check, and a listing is only
//! useful to a caller still waiting. They move to the store's non-durable control
//! channel (`Store::signal`) at the two places marked below.
//!
//! Actor removal stays a durable request (see `actors.rs`): it must run exactly on
//! the actor's host, under its lock, even if that host dies first.

use crate::{Accepted, Runtime, RuntimeError};
use bytes::Bytes;
use kar_protocol::{Invocation, Outcome, Reply, RequestKind, Target};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The query a member answers itself with its activated actors.
const SIDECAR_ACTORS_QUERY: &str = "/kar/v1/system/information/sidecar_actors";

/// The query that wakes a member's event delivery loop.
const EVENTS_WAKE_QUERY: &str = "/kar/v1/system/events/wake";

/// How long a mesh-wide query waits for one member.
const MESH_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// Activated actors of one member, by type.
pub(crate) type ActorListing = BTreeMap<String, Vec<String>>;

fn system_query(method: &str, path: &str) -> Invocation {
    Invocation {
        method: method.to_string(),
        path: path.to_string(),
        query: None,
        headers: Vec::new(),
        body: Bytes::new(),
    }
}

impl Runtime {
    /// Wakes the event loops of the other members that host actors (this one wakes
    /// its own directly), so that no subscriber waits for the safety re-check.
    pub(crate) async fn wake_other_members(self: Arc<Self>) {
        let members = match self.members().await {
            Ok(members) => members,
            Err(e) => {
                tracing::debug!("cannot wake the other members after a publish: {e}");
                return;
            }
        };
        for member in members {
            if member.node == self.node || member.actors.is_empty() {
                continue;
            }
            // TODO(signal): self.store.signal(&member.node, &Signal::EventsPublished)
            let target = Target::Service {
                name: member.node.0.clone(),
            };
            let invocation = system_query("POST", EVENTS_WAKE_QUERY);
            if let Err(e) = self
                .request(target, invocation, RequestKind::Tell, None, None)
                .await
            {
                tracing::debug!("cannot wake member {}: {e}", member.node);
            }
        }
    }

    /// The activated actors of every live member (this one included). A member that
    /// does not answer within [`MESH_QUERY_TIMEOUT`] is left out.
    pub(crate) async fn ask_members_for_actors(
        self: &Arc<Self>,
    ) -> Result<Vec<ActorListing>, RuntimeError> {
        let members = self.members().await?;
        // TODO(signal): send Signal::ListActors { from, query } to each member and
        // collect the Signal::ActorsListed answers (same timeout).
        let queries = members.iter().map(|member| {
            let target = Target::Service {
                name: member.node.0.clone(),
            };
            let invocation = system_query("GET", SIDECAR_ACTORS_QUERY);
            // A member that died a moment ago may still be listed: do not wait for
            // it longer than a live one needs.
            tokio::time::timeout(
                MESH_QUERY_TIMEOUT,
                self.request(target, invocation, RequestKind::Call, None, None),
            )
        });
        let mut listings = Vec::new();
        for answer in futures::future::join_all(queries).await {
            let Ok(answer) = answer else {
                tracing::warn!(
                    "a member did not answer the actor listing in {MESH_QUERY_TIMEOUT:?}"
                );
                continue;
            };
            let Accepted::Reply(reply) = answer? else {
                continue;
            };
            let listing = serde_json::from_slice(&reply.body)
                .map_err(|e| RuntimeError::Failed(format!("malformed actor listing: {e}")))?;
            listings.push(listing);
        }
        Ok(listings)
    }

    /// Answers a request addressed to this member itself (its node id is a routing
    /// name).
    pub(crate) fn answer_system_query(&self, invocation: &Invocation) -> Outcome {
        match invocation.path.as_str() {
            SIDECAR_ACTORS_QUERY => {
                let body = serde_json::to_vec(&self.local_actors()).unwrap_or_default();
                Outcome::Reply(Reply::new(200, Some("application/json"), body))
            }
            EVENTS_WAKE_QUERY => {
                self.wakes.events.notify_one();
                Outcome::Reply(Reply::new(204, None, Bytes::new()))
            }
            path => Outcome::Reply(Reply::text(404, format!("unknown system query {path}"))),
        }
    }
}
