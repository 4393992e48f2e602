//! The actors façade: removal of an actor, and which instances are activated, here
//! and across the mesh (spec §2.2, §2.8).

use crate::{Runtime, RuntimeError};
use bytes::Bytes;
use kar_protocol::paths::actor_path;
use kar_protocol::{ActorRef, Invocation, Request, RequestKind, Target};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The method that makes an actor request the removal of the actor. Removal rides the
/// durable request path (it runs on the actor's host, under its lock, and must
/// survive that host's death), encoded as an invocation `DELETE <actor path>`: this
/// is the one place that knows the encoding of stored requests.
const REMOVAL_METHOD: &str = "DELETE";

/// Whether an actor request is the removal of its actor.
pub(crate) trait ActorRemoval {
    fn is_actor_removal(&self) -> bool;
}

impl ActorRemoval for Request {
    fn is_actor_removal(&self) -> bool {
        matches!(self.target, Target::Actor { .. }) && self.invocation.method == REMOVAL_METHOD
    }
}

impl Runtime {
    /// Queues the removal of `actor` (spec §2.2): its host deactivates it and drops
    /// its state and placement. Returns once the removal is durably queued.
    pub async fn remove_actor(self: &Arc<Self>, actor: ActorRef) -> Result<(), RuntimeError> {
        let invocation = Invocation {
            method: REMOVAL_METHOD.to_string(),
            path: actor_path(&actor.actor_type, &actor.id),
            query: None,
            headers: Vec::new(),
            body: Bytes::new(),
        };
        let target = Target::Actor {
            actor_type: actor.actor_type,
            id: actor.id,
        };
        self.request(target, invocation, RequestKind::Tell, None, None)
            .await
            .map(|_| ())
    }

    /// Actor instances activated in this runtime's component, sorted.
    pub fn activated_actors(&self) -> Vec<ActorRef> {
        self.executor.actors.activated()
    }

    /// This runtime's activated actors, by type.
    pub fn local_actors(&self) -> BTreeMap<String, Vec<String>> {
        let mut by_type: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for actor in self.activated_actors() {
            by_type.entry(actor.actor_type).or_default().push(actor.id);
        }
        by_type
    }

    /// Actor instances activated in the components of every member of the mesh,
    /// by type, ids sorted (spec §2.8 `actors`).
    pub async fn mesh_actors(
        self: &Arc<Self>,
    ) -> Result<BTreeMap<String, Vec<String>>, RuntimeError> {
        let mut merged: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for part in self.ask_members_for_actors().await? {
            for (actor_type, ids) in part {
                merged.entry(actor_type).or_default().extend(ids);
            }
        }
        for ids in merged.values_mut() {
            ids.sort();
        }
        Ok(merged)
    }

    /// Actor instances activated in the component of each member of the mesh, by
    /// member (its node id) then type, ids sorted: how actors spread over replicas.
    /// A member that did not answer is left out.
    pub async fn mesh_actors_by_member(
        self: &Arc<Self>,
    ) -> Result<BTreeMap<String, BTreeMap<String, Vec<String>>>, RuntimeError> {
        Ok(self
            .ask_members_for_actors_by_member()
            .await?
            .into_iter()
            .filter_map(|(node, listing)| Some((node.0, listing?)))
            .collect())
    }
}
