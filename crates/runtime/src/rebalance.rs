//! Elastic meshes (issue 16): actors spread over the replicas that join, and a
//! replica that leaves on purpose hands its actors over between two flows.
//!
//! **Fair share.** Fairness counts the *activated* instances of one actor type on each
//! member offering that type (not load: every instance counts one). With `N` instances
//! over `R` members the fair share is `F = ⌈N/R⌉`; a member moves instances away once it
//! holds more than `F + slack` (`slack = max(1, F/10)`), and then down to `F`, each to
//! the member holding the fewest. Once no member moves, every member holds at most
//! `F + slack`, hence at least `N − (R−1)(F + slack)`. Each member decides about its own
//! excess only (from a fresh listing of every member each pass), so two members never
//! move the same actor; new actors are still placed on a random member offering their
//! type, which the slack absorbs.
//!
//! **A move** ([`Runtime::move_off`]) takes the instance here like a flow would, only
//! if no flow holds it (so never in the middle of a request, nor while a session
//! re-enters it), deactivates it in the component (its `deactivate` runs), and then
//! moves its placement in the store ([`kar_store_api::ActorStore::move_actor`]), which
//! refuses if a request of it was queued here meanwhile (it then activates here again
//! at that request). Its next request activates it on its new member: the state stays
//! in the store, nothing is copied. Moves are paced by `-actor_rebalance_rate`.
//!
//! **Convergence.** A member checks every [`CHECK_INTERVAL`] and at once when the
//! membership changes; moving `E` excess instances then takes about `E / rate`
//! seconds (plus the next request of each moved actor to activate it elsewhere).

use crate::{Runtime, RuntimeError};
use futures::StreamExt;
use kar_protocol::{ActorRef, FlowId, Member, NodeId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How often a member compares its share of each type with the others'.
const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// A pass moves at most this many seconds' worth of moves, then lists again.
const MOVES_PER_PASS_SECS: usize = 10;

/// How long a moved actor counts for its new member before it is activated there (its
/// next request may be late or never come).
const MOVED_MEMORY: Duration = Duration::from_secs(30);

/// Deactivations a graceful leave runs at once.
const LEAVE_DEACTIVATIONS: usize = 16;

/// The most instances one member should move off in one pass, towards whom (one entry
/// per move, in order), from the activated instance counts of the members offering
/// the type. Empty when `me` holds no more than its fair share plus the slack, or
/// when a member's count is unknown (it did not answer).
pub(crate) fn plan_moves(me: &NodeId, counts: &BTreeMap<NodeId, Option<usize>>) -> Vec<NodeId> {
    let Some(mut counts) = counts
        .iter()
        .map(|(node, count)| count.map(|c| (node.clone(), c)))
        .collect::<Option<BTreeMap<NodeId, usize>>>()
    else {
        return Vec::new();
    };
    let Some(&mine) = counts.get(me) else {
        return Vec::new();
    };
    let total: usize = counts.values().sum();
    let fair = total.div_ceil(counts.len());
    if mine <= fair + slack(fair) {
        return Vec::new();
    }
    counts.remove(me);
    let mut targets = Vec::new();
    for _ in fair..mine {
        let Some((least, count)) = counts.iter_mut().min_by_key(|(_, count)| **count) else {
            break;
        };
        if *count >= fair {
            break;
        }
        *count += 1;
        targets.push(least.clone());
    }
    targets
}

/// How far above its fair share a member may be before it moves actors away.
pub(crate) fn slack(fair: usize) -> usize {
    (fair / 10).max(1)
}

impl Runtime {
    /// Moves the excess of this member's activated instances of each type it offers
    /// to the members holding fewer, at `-actor_rebalance_rate` moves per second,
    /// until shutdown.
    pub(crate) async fn rebalance_loop(self: Arc<Self>) {
        let rate = self.config.actor_rebalance_rate;
        if rate == 0 || self.config.actors.is_empty() {
            return;
        }
        let pause = Duration::from_secs(1) / rate;
        // A pass moves no more than this, then looks again.
        let per_pass = (rate as usize * MOVES_PER_PASS_SECS).max(1);
        let mut moving = InFlight::default();
        let mut again = false;
        loop {
            if !again {
                tokio::select! {
                    _ = tokio::time::sleep(CHECK_INTERVAL) => {}
                    _ = self.wakes.rebalance.notified() => {}
                    _ = self.shutdown_started() => return,
                }
            }
            again = match self.rebalance_pass(pause, per_pass, &mut moving).await {
                Ok(pass) => pass == Pass::Interrupted,
                Err(e) => {
                    tracing::debug!("rebalancing skipped a pass: {e}");
                    false
                }
            };
        }
    }

    async fn rebalance_pass(
        self: &Arc<Self>,
        pause: Duration,
        per_pass: usize,
        moving: &mut InFlight,
    ) -> Result<Pass, RuntimeError> {
        let members = self.members().await?;
        let listings: BTreeMap<NodeId, Option<_>> = self
            .ask_members_for_actors_by_member()
            .await?
            .into_iter()
            .collect();
        moving.forget_arrived(&listings);
        for actor_type in &self.config.actors {
            let mut counts = type_counts(actor_type, &members, &listings);
            moving.count_towards(actor_type, &mut counts);
            let mut targets = plan_moves(&self.node, &counts);
            if targets.is_empty() {
                continue;
            }
            targets.truncate(per_pass);
            let mut candidates = self
                .executor
                .actors
                .idle_instances(Duration::ZERO)
                .into_iter()
                .filter(|a| a.actor_type == *actor_type);
            let (planned, mut moved) = (targets.len(), 0);
            let mut pass = Pass::Done;
            // Paced from the start of each move: a slow move is not followed by a
            // full pause.
            let mut pace = tokio::time::interval(pause);
            pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            pace.tick().await; // the first tick is now
            for target in targets {
                // The next idle instance that moves (a busy or re-used one is skipped).
                loop {
                    if self.is_shutting_down() {
                        return Ok(Pass::Done);
                    }
                    let Some(actor) = candidates.next() else {
                        break;
                    };
                    if self.move_off(&actor, Some(&target)).await? {
                        moving.moved(actor, target.clone());
                        moved += 1;
                        break;
                    }
                }
                tokio::select! {
                    _ = pace.tick() => {}
                    // The membership changed: plan again if a host of the type
                    // joined or left (clients and CLI commands come and go).
                    _ = self.wakes.rebalance.notified() => {
                        if self.hosts_of(actor_type).await? != hosts_of(actor_type, &members) {
                            pass = Pass::Interrupted;
                            break;
                        }
                    }
                    _ = self.shutdown_started() => return Ok(Pass::Done),
                }
            }
            let mine = counts.get(&self.node).copied().flatten().unwrap_or(0);
            tracing::info!(
                actor_type,
                holding = mine,
                planned,
                moved,
                "rebalanced: moved actors to members holding fewer"
            );
            if pass == Pass::Interrupted {
                return Ok(pass);
            }
        }
        Ok(Pass::Done)
    }

    /// The live members offering `actor_type`.
    async fn hosts_of(&self, actor_type: &str) -> Result<Vec<NodeId>, RuntimeError> {
        Ok(hosts_of(actor_type, &self.members().await?))
    }

    /// Moves `actor` off this member between two of its flows: takes it if no flow
    /// holds it, deactivates it, and moves its placement to `to` (or drops it). Returns
    /// whether it moved; `false` if it was busy, not activated, or a request of it was
    /// queued here meanwhile (then it stays placed here).
    pub(crate) async fn move_off(
        &self,
        actor: &ActorRef,
        to: Option<&NodeId>,
    ) -> Result<bool, RuntimeError> {
        let actors = &self.executor.actors;
        let flow = FlowId(format!(
            "flow-move-{}",
            FlowId::generate().0.trim_start_matches("flow-")
        ));
        if !actors.try_acquire_idle(actor, &flow) {
            return Ok(false);
        }
        // Released however this ends: a request waiting for it then activates it here.
        let _hold = actors.hold(actor.clone(), flow);
        if !actors.is_activated(actor) {
            return Ok(false);
        }
        self.deactivate(actor).await;
        let moved = self.store.move_actor(&self.node, actor, to).await?;
        if !moved {
            tracing::debug!(actor_type = %actor.actor_type, id = %actor.id, "not moved: a request of it arrived here meanwhile");
        }
        Ok(moved)
    }

    /// The graceful leave's hand-over of the actors: deactivates every activated
    /// instance no flow holds (their placements go with the leave that follows, so
    /// their next requests activate them on other members), several at once, until
    /// `deadline`. Returns how many were deactivated.
    pub(crate) async fn deactivate_for_leave(&self, deadline: tokio::time::Instant) -> usize {
        let actors = &self.executor.actors;
        let instances = actors.idle_instances(Duration::ZERO);
        let deactivate_all = futures::stream::iter(instances)
            .map(|actor| async move {
                let flow = FlowId(format!(
                    "flow-leave-{}",
                    FlowId::generate().0.trim_start_matches("flow-")
                ));
                if !actors.try_acquire_idle(&actor, &flow) {
                    return 0;
                }
                let _hold = actors.hold(actor.clone(), flow);
                if !actors.is_activated(&actor) {
                    return 0;
                }
                self.deactivate(&actor).await;
                1
            })
            .buffer_unordered(LEAVE_DEACTIVATIONS)
            .fold(0, |sum, one| async move { sum + one });
        match tokio::time::timeout_at(deadline, deactivate_all).await {
            Ok(count) => count,
            Err(_) => {
                tracing::warn!("the grace period ended before every actor was deactivated");
                0
            }
        }
    }
}

/// The members of `members` offering `actor_type`.
fn hosts_of(actor_type: &str, members: &[Member]) -> Vec<NodeId> {
    members
        .iter()
        .filter(|m| m.actors.iter().any(|t| t == actor_type))
        .map(|m| m.node.clone())
        .collect()
}

/// How a rebalancing pass ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Done,
    /// The membership changed during the pass: plan again at once.
    Interrupted,
}

/// The actors this member moved that are not activated on their new member yet: they
/// count for it, else the next pass would see them nowhere, take the shares as
/// smaller than they are and move too many.
#[derive(Default)]
struct InFlight {
    moved: std::collections::HashMap<ActorRef, (NodeId, tokio::time::Instant)>,
}

impl InFlight {
    fn moved(&mut self, actor: ActorRef, to: NodeId) {
        self.moved.insert(actor, (to, tokio::time::Instant::now()));
    }

    /// Forgets the moved actors now activated somewhere, or moved long ago.
    fn forget_arrived(&mut self, listings: &BTreeMap<NodeId, Option<crate::mesh::ActorListing>>) {
        self.moved.retain(|actor, (_, at)| {
            let arrived = listings.values().flatten().any(|listing| {
                listing
                    .get(&actor.actor_type)
                    .is_some_and(|ids| ids.binary_search(&actor.id).is_ok())
            });
            !arrived && at.elapsed() < MOVED_MEMORY
        });
    }

    /// Adds the moved instances of `actor_type` to their new members' counts.
    fn count_towards(&self, actor_type: &str, counts: &mut BTreeMap<NodeId, Option<usize>>) {
        for (actor, (to, _)) in &self.moved {
            if actor.actor_type == actor_type {
                if let Some(Some(count)) = counts.get_mut(to) {
                    *count += 1;
                }
            }
        }
    }
}

/// The activated instance count of `actor_type` on each member offering it (`None`:
/// the member did not answer).
fn type_counts(
    actor_type: &str,
    members: &[Member],
    listings: &BTreeMap<NodeId, Option<crate::mesh::ActorListing>>,
) -> BTreeMap<NodeId, Option<usize>> {
    members
        .iter()
        .filter(|m| m.actors.iter().any(|t| t == actor_type))
        .map(|m| {
            let count = listings
                .get(&m.node)
                .cloned()
                .flatten()
                .map(|listing| listing.get(actor_type).map_or(0, Vec::len));
            (m.node.clone(), count)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(list: &[(&str, Option<usize>)]) -> BTreeMap<NodeId, Option<usize>> {
        list.iter()
            .map(|(n, c)| (NodeId((*n).into()), *c))
            .collect()
    }

    fn node(name: &str) -> NodeId {
        NodeId(name.into())
    }

    /// Two members join a member holding 1,000: it moves 666, alternating between them,
    /// down to the fair share.
    #[test]
    fn a_member_above_its_share_moves_down_to_it() {
        let plan = plan_moves(
            &node("a"),
            &counts(&[("a", Some(1000)), ("b", Some(0)), ("c", Some(0))]),
        );
        assert_eq!(plan.len(), 1000 - 334);
        let to_b = plan.iter().filter(|n| **n == node("b")).count();
        assert_eq!((to_b, plan.len() - to_b), (333, 333));
    }

    #[test]
    fn within_the_slack_nothing_moves() {
        // fair 334, slack 33: 367 stays.
        let plan = plan_moves(
            &node("a"),
            &counts(&[("a", Some(367)), ("b", Some(300)), ("c", Some(333))]),
        );
        assert!(plan.is_empty());
        let plan = plan_moves(&node("a"), &counts(&[("a", Some(2)), ("b", Some(0))]));
        assert!(plan.is_empty(), "fair 1, slack 1");
    }

    #[test]
    fn an_unknown_count_or_a_lone_member_moves_nothing() {
        let plan = plan_moves(&node("a"), &counts(&[("a", Some(100)), ("b", None)]));
        assert!(plan.is_empty());
        assert!(plan_moves(&node("a"), &counts(&[("a", Some(100))])).is_empty());
    }
}
