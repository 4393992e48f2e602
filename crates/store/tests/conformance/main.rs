//! The store conformance suite: every scenario runs against both engines, the embedded
//! one on a temporary directory and the Redis one on a `redis-server` of its own.
//! Deaths are real: a member lives in a child process (this test binary re-executed)
//! that is killed with SIGKILL.

#[path = "../support/mod.rs"]
mod support;

use bytes::Bytes;
use kar_protocol::{
    ActorRef, ActorState, NodeId, Outcome, Reminder, RequestId, RequestKind, StateUpdate,
    Subscription, Target, UpdateCounts,
};
use kar_store::{
    Bridge, Claim, Delivery, EventRequestBuilder, Message, RecoveryPolicy, RequestBuilder, Resumed,
    Routing, Signal, StoreError,
};
use kar_store::{Killed, Paused, PendingStatus, RequestFilter, KILLED};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

mod actors;
mod attempts;
mod control;
mod events;
mod membership;
mod partitions;
mod recovery;
mod redis_basics;
mod reminders;
mod replication;
mod tls_acl;

use actors::*;
use attempts::*;
use control::*;
use events::*;
use membership::*;
use recovery::*;
use reminders::*;

macro_rules! conformance {
    ($($scenario:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(&super::Engine::embedded()).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(&super::Engine::redis()).await;
                }
            )*
        }
    };
}

conformance!(
    join_members_leave,
    execute_arrives_in_order_and_all_at_once,
    call_completion_reaches_the_caller,
    tell_completion_deletes_the_record,
    completion_for_a_departed_caller_is_dropped,
    departure_drops_uncollected_outcomes,
    park_expire_and_adopt,
    a_large_backlog_is_adopted_in_arrival_order,
    an_interrupted_adoption_is_resumed_by_a_live_member,
    members_changed_on_join_and_leave,
    signals_reach_the_inbox_in_order,
    signals_to_departed_members_are_dropped,
    leave_reroutes_queued_requests_in_order,
    leave_charges_only_what_the_member_read,
    leave_parks_requests_nobody_else_offers,
    killed_member_requests_are_rerouted,
    dropped_member_dies_and_is_fenced,
    removed_node_is_fenced,
    applications_are_isolated,
    purge_removes_one_application,
    drain_removes_pending_requests_and_keeps_the_rest,
    waiting_recv_wakes_on_enqueue_by_another_handle,
    cancelled_recv_loses_nothing,
    actor_placement_is_sticky_and_moves_on_departure,
    actor_moves_only_between_flows,
    tail_calls_complete_one_step_and_route_the_next,
    actor_state_entries_and_order,
    actor_state_update_and_removal,
    a_completion_commits_the_state_writes_of_its_reply,
    reminders_schedule_replace_get_cancel,
    reminders_fire_in_due_order_and_advance,
    reminders_pending_firings_are_counted_until_they_finish,
    reminders_periodic_skip_forward_after_downtime,
    reminders_fire_once_under_concurrent_firers,
    reminders_firings_park_without_a_host,
    reminders_are_isolated_between_applications,
    events_topics_create_delete_publish,
    events_subscriptions_subscribe_replace_get_cancel,
    events_delivered_in_order_one_at_a_time,
    events_delivered_once_under_concurrent_deliverers,
    events_topics_shared_subscriptions_isolated,
    events_trimmed_once_passed_and_past_retention,
    a_new_subscription_of_another_app_holds_trimming_back,
    events_bridge_appends_once_and_is_taken_over,
    recovery_redelivers_with_the_next_attempt,
    redelivered_request_waits_for_its_children,
    held_request_is_parked_when_released_without_a_host,
    completion_for_a_dead_caller_leaves_nothing,
    recovery_keeps_arrival_order,
    recovery_survives_a_crash_of_the_recoverer,
    completions_only_by_the_assignee,
    completions_in_a_batch_are_each_as_alone,
    recovery_pauses_a_step_at_max_attempts,
    paused_step_survives_deaths_and_joins_until_resumed,
    resume_of_unknown_or_unpaused_changes_nothing,
    max_attempts_zero_never_pauses,
    unstarted_requests_are_not_charged,
    resumed_request_waits_for_its_children,
    control_lists_pending_requests_by_pages_and_filters,
    control_kill_completes_with_the_killed_outcome,
    control_kill_releases_a_held_parent,
    control_pause_withdraws_until_resumed,
    control_request_with_children,
    control_bad_ids_change_nothing,
    trace_contexts_travel_with_requests_and_reminders,
);

/// The Redis engine over TLS (a CA made by the test; `support::make_certificates`):
/// scenarios that cover every kind of connection (shared, renewal, inbox,
/// recovery) and a member in a child process killed with SIGKILL.
macro_rules! conformance_tls {
    ($($scenario:ident),* $(,)?) => {
        mod redis_tls {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    super::$scenario(&super::Engine::redis_tls()).await;
                }
            )*
        }
    };
}

conformance_tls!(
    join_members_leave,
    call_completion_reaches_the_caller,
    waiting_recv_wakes_on_enqueue_by_another_handle,
    killed_member_requests_are_rerouted,
    dropped_member_dies_and_is_fenced,
    tail_calls_complete_one_step_and_route_the_next,
    actor_state_update_and_removal,
    reminders_fire_in_due_order_and_advance,
    events_delivered_in_order_one_at_a_time,
    recovery_survives_a_crash_of_the_recoverer,
);
