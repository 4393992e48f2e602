//! The store conformance suite: every scenario runs against both engines, the embedded
//! one on a temporary directory and the Redis one on a `redis-server` of its own.
//! Deaths are real: a member lives in a child process (this test binary re-executed)
//! that is killed with SIGKILL.

mod support;

use bytes::Bytes;
use kar_protocol::{
    ActorRef, NodeId, Outcome, Reminder, RequestId, RequestKind, StateUpdate, Subscription, Target,
    UpdateCounts,
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
    reminders_schedule_replace_get_cancel,
    reminders_fire_in_due_order_and_advance,
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

async fn join_members_leave(engine: &Engine) {
    let store = engine.open("app").await;
    assert!(store.members().await.unwrap().is_empty());
    let a = member("node-a", "svc-a", &[]);
    let b = member("node-b", "svc-b", &["Actor1", "Actor2"]);
    let _inbox_b = store.join(&b).await.unwrap();
    let _inbox_a = store.join(&a).await.unwrap();
    assert_eq!(store.members().await.unwrap(), vec![a.clone(), b.clone()]);
    // Another handle sees the same mesh.
    let other = engine.open("app").await;
    assert_eq!(other.members().await.unwrap(), vec![a.clone(), b.clone()]);
    store.leave(&a.node).await.unwrap();
    assert_eq!(store.members().await.unwrap(), vec![b.clone()]);
    // Leaving twice is harmless.
    store.leave(&a.node).await.unwrap();
    other.leave(&b.node).await.unwrap();
    assert!(store.members().await.unwrap().is_empty());
}

async fn execute_arrives_in_order_and_all_at_once(engine: &Engine) {
    let store = engine.open("app").await;
    let mut inbox = store.join(&member("node-x", "svc", &[])).await.unwrap();
    let requests: Vec<_> = (0..5)
        .map(|_| request(RequestKind::Tell, "svc", "node-caller"))
        .collect();
    for r in &requests {
        let routing = store.enqueue(r).await.unwrap();
        assert_eq!(routing, Routing::Assigned(NodeId("node-x".into())));
    }
    // Everything available is taken by one recv.
    let batch = tokio::time::timeout(PATIENCE, inbox.recv())
        .await
        .unwrap()
        .unwrap();
    let expected: Vec<_> = requests
        .iter()
        .map(|r| Message::Execute(Box::new(r.clone())))
        .collect();
    assert_eq!(batch, expected);
}

async fn call_completion_reaches_the_caller(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut executor = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let _ = recv_members_changed(&mut caller).await;
    for kind in [RequestKind::Call, RequestKind::Promise] {
        let r = request(kind, "svc", "node-c");
        store.enqueue(&r).await.unwrap();
        let (got, _) = recv_n(&mut executor, 1).await;
        assert_eq!(got, vec![Message::Execute(Box::new(r.clone()))]);
        let outcome = reply("pong");
        let executor_node = NodeId("node-e".into());
        assert!(store
            .complete(&executor_node, &r.id, &outcome)
            .await
            .unwrap());
        let (got, _) = recv_n(&mut caller, 1).await;
        assert_eq!(
            got,
            vec![Message::Completed {
                id: r.id.clone(),
                kind,
                outcome: outcome.clone(),
            }]
        );
        // A second completion changes nothing.
        let again = Outcome::Failed("again".into());
        assert!(!store.complete(&executor_node, &r.id, &again).await.unwrap());
        // The outcome is kept until the caller forgets it.
        assert!(engine.request_exists("app", &r.id));
        store.forget(std::slice::from_ref(&r.id)).await.unwrap();
        // Engines may delete forgotten records with their next transition.
        store.expire_parked(&RequestId::generate()).await.unwrap();
        assert!(!engine.request_exists("app", &r.id));
        assert!(!store.complete(&executor_node, &r.id, &again).await.unwrap());
    }
    // Unknown requests are not completed either.
    assert!(!store
        .complete(
            &NodeId("node-e".into()),
            &RequestId::generate(),
            &reply("x")
        )
        .await
        .unwrap());
}

async fn tell_completion_deletes_the_record(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut executor = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let tell = request(RequestKind::Tell, "svc", "node-c");
    store.enqueue(&tell).await.unwrap();
    recv_n(&mut executor, 1).await;
    let node_e = NodeId("node-e".into());
    assert!(store
        .complete(&node_e, &tell.id, &reply("ok"))
        .await
        .unwrap());
    assert!(!engine.request_exists("app", &tell.id));
    assert!(!store
        .complete(&node_e, &tell.id, &reply("ok"))
        .await
        .unwrap());
    // Nothing reached the caller: the next message it gets is a marker sent after.
    let marker = request(RequestKind::Tell, "caller", "node-e");
    store.enqueue(&marker).await.unwrap();
    let (got, _) = recv_n(&mut caller, 1).await;
    assert_eq!(executed(&got), vec![marker.id]);
}

async fn completion_for_a_departed_caller_is_dropped(engine: &Engine) {
    let store = engine.open("app").await;
    let _caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut executor = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let call = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&call).await.unwrap();
    recv_n(&mut executor, 1).await;
    store.leave(&NodeId("node-c".into())).await.unwrap();
    let node_e = NodeId("node-e".into());
    assert!(store
        .complete(&node_e, &call.id, &reply("late"))
        .await
        .unwrap());
    assert!(!engine.request_exists("app", &call.id));
}

async fn departure_drops_uncollected_outcomes(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut executor = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let call = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&call).await.unwrap();
    recv_n(&mut executor, 1).await;
    let node_e = NodeId("node-e".into());
    assert!(store
        .complete(&node_e, &call.id, &reply("r"))
        .await
        .unwrap());
    recv_n(&mut caller, 1).await;
    assert!(engine.request_exists("app", &call.id));
    store.leave(&NodeId("node-c".into())).await.unwrap();
    assert!(!engine.request_exists("app", &call.id));
}

async fn park_expire_and_adopt(engine: &Engine) {
    let store = engine.open("app").await;
    let lost = request(RequestKind::Call, "nobody", "node-c");
    assert_eq!(store.enqueue(&lost).await.unwrap(), Routing::Parked);
    assert!(store.expire_parked(&lost.id).await.unwrap());
    assert!(!engine.request_exists("app", &lost.id));
    assert!(!store.expire_parked(&lost.id).await.unwrap());

    let parked: Vec<_> = (0..3)
        .map(|_| request(RequestKind::Tell, "late", "node-c"))
        .collect();
    let actor_parked = request(RequestKind::Tell, "LateActor", "node-c");
    for r in parked.iter().chain([&actor_parked]) {
        assert_eq!(store.enqueue(r).await.unwrap(), Routing::Parked);
    }
    // Another handle joins the member: it adopts every parked request of its names.
    let other = engine.open("app").await;
    let mut inbox = other
        .join(&member("node-l", "late", &["LateActor"]))
        .await
        .unwrap();
    let (got, _) = recv_n(&mut inbox, 4).await;
    let expected: Vec<_> = parked
        .iter()
        .chain([&actor_parked])
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(executed(&got), expected);
    // Adopted: no longer parked, still there, and it completes normally.
    assert!(!store.expire_parked(&parked[0].id).await.unwrap());
    assert!(engine.request_exists("app", &parked[0].id));
    assert!(store
        .complete(&NodeId("node-l".into()), &parked[0].id, &reply("ok"))
        .await
        .unwrap());
}

/// A backlog larger than one adoption batch (Redis adopts 500 per script, so that
/// Redis keeps serving renewals meanwhile) arrives whole and in order, and a request
/// made while it is being adopted comes after it, not before.
async fn a_large_backlog_is_adopted_in_arrival_order(engine: &Engine) {
    let store = engine.open("app").await;
    let backlog: Vec<_> = (0..1_200)
        .map(|_| request(RequestKind::Tell, "backlog", "node-c"))
        .collect();
    for r in &backlog {
        assert_eq!(store.enqueue(r).await.unwrap(), Routing::Parked);
    }
    let other = engine.open("app").await;
    let mut inbox = other.join(&member("node-l", "backlog", &[])).await.unwrap();
    let late = request(RequestKind::Tell, "backlog", "node-c");
    store.enqueue(&late).await.unwrap();
    let (got, _) = recv_n(&mut inbox, backlog.len() + 1).await;
    let expected: Vec<_> = backlog
        .iter()
        .chain([&late])
        .map(|r| r.id.clone())
        .collect();
    assert_eq!(executed(&got), expected);
}

async fn members_changed_on_join_and_leave(engine: &Engine) {
    let store = engine.open("app").await;
    let mut a = store.join(&member("node-a", "a", &[])).await.unwrap();
    let other = engine.open("app").await;
    let _b = other.join(&member("node-b", "b", &[])).await.unwrap();
    assert!(recv_members_changed(&mut a).await.is_empty());
    other.leave(&NodeId("node-b".into())).await.unwrap();
    assert!(recv_members_changed(&mut a).await.is_empty());
}

/// Signals travel through the inbox, in order with the other messages, and wake a
/// waiting member (the signal is sent through another handle).
async fn signals_reach_the_inbox_in_order(engine: &Engine) {
    let store = engine.open("app").await;
    let mut inbox = store.join(&member("node-a", "svc", &[])).await.unwrap();
    let other = engine.open("app").await;
    let node = NodeId("node-a".into());
    let first = request(RequestKind::Tell, "svc", "node-c");
    let second = request(RequestKind::Tell, "svc", "node-c");
    let query = Signal::ListActors {
        from: NodeId("node-b".into()),
        query: 7,
    };
    other.enqueue(&first).await.unwrap();
    other.signal(&node, &Signal::EventsPublished).await.unwrap();
    other.enqueue(&second).await.unwrap();
    other.signal(&node, &query).await.unwrap();
    let (got, _) = recv_n(&mut inbox, 4).await;
    assert_eq!(
        got,
        vec![
            Message::Execute(Box::new(first)),
            Message::Signal(Signal::EventsPublished),
            Message::Execute(Box::new(second)),
            Message::Signal(query),
        ]
    );
    // A waiting recv is woken by a signal alone.
    let waiting = tokio::spawn(async move { recv_n(&mut inbox, 1).await.0 });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let answer = Signal::ActorsListed {
        query: 7,
        actors: [("T".to_string(), vec!["i".to_string()])].into(),
    };
    other.signal(&node, &answer).await.unwrap();
    let got = tokio::time::timeout(PATIENCE, waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, vec![Message::Signal(answer)]);
}

/// A signal to a member that left (or never joined) is dropped without error: it
/// is not waiting for the member when a node of that name joins again.
async fn signals_to_departed_members_are_dropped(engine: &Engine) {
    let store = engine.open("app").await;
    let b = member("node-b", "svc-b", &[]);
    drop(store.join(&b).await.unwrap());
    store.leave(&b.node).await.unwrap();
    store
        .signal(&b.node, &Signal::EventsPublished)
        .await
        .unwrap();
    let never = NodeId("node-never".into());
    store
        .signal(&never, &Signal::EventsPublished)
        .await
        .unwrap();
    let mut inbox = store.join(&b).await.unwrap();
    let marker = request(RequestKind::Tell, "svc-b", "node-c");
    store.enqueue(&marker).await.unwrap();
    let (got, _) = recv_n(&mut inbox, 1).await;
    assert_eq!(got, vec![Message::Execute(Box::new(marker))]);
}

/// Enqueues `n` tells to `name` while only `node` offers it.
async fn queue_on(
    store: &dyn kar_store::Store,
    name: &str,
    node: &str,
    n: usize,
) -> Vec<RequestId> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let r = request(RequestKind::Tell, name, "node-caller");
        assert_eq!(
            store.enqueue(&r).await.unwrap(),
            Routing::Assigned(NodeId(node.into()))
        );
        ids.push(r.id);
    }
    ids
}

fn trace(n: u8) -> Option<kar_protocol::TraceContext> {
    kar_protocol::TraceContext::parse(&format!(
        "00-4bf92f3577b34da6a3ce929d0e0e47{n:02x}-00f067aa0ba902{n:02x}-01"
    ))
}

/// The trace context of a request (its record) reaches the executor, follows a tail
/// call and a re-routing; a reminder keeps the one of its schedule call through its
/// firings.
async fn trace_contexts_travel_with_requests_and_reminders(engine: &Engine) {
    let store = engine.open("app").await;
    let mut first = store.join(&member("node-1", "s1", &["T"])).await.unwrap();
    let node_1 = NodeId("node-1".into());
    let mut r = request(RequestKind::Call, "s1", "node-c");
    r.trace = trace(1);
    store.enqueue(&r).await.unwrap();
    let (got, _) = recv_n(&mut first, 1).await;
    assert_eq!(got, vec![Message::Execute(Box::new(r.clone()))]);
    let mut next = r.clone();
    next.step = 1;
    next.trace = trace(2);
    store.tail_call(&node_1, &next, false).await.unwrap();
    let (got, _) = recv_n(&mut first, 1).await;
    assert_eq!(got, vec![Message::Execute(Box::new(next.clone()))]);
    // Re-routed when its assignee leaves: still step 1's context.
    let mut second = store.join(&member("node-2", "s1", &[])).await.unwrap();
    store.leave(&node_1).await.unwrap();
    let (got, _) = recv_n(&mut second, 1).await;
    let [Message::Execute(moved)] = got.as_slice() else {
        panic!("{got:?}");
    };
    assert_eq!((moved.id.clone(), moved.trace), (r.id.clone(), trace(2)));

    let a = ActorRef::new("T", "a");
    let mut traced = reminder(("T", "a"), "r1", 1_000, SECOND);
    traced.trace = trace(3);
    store.reminder_schedule(&traced).await.unwrap();
    store
        .reminder_schedule(&reminder(("T", "a"), "r2", 1_000, 0))
        .await
        .unwrap();
    assert_eq!(
        store.reminders().get(&a, "r1").await.unwrap(),
        Some(traced.clone())
    );
    assert_eq!(
        store
            .reminders()
            .get(&a, "r2")
            .await
            .unwrap()
            .unwrap()
            .trace,
        None
    );
    let fired = store.fire_due(1_000, 10, &tell_builder()).await.unwrap();
    let traces: Vec<_> = fired
        .iter()
        .map(|f| (f.reminder.id.as_str(), f.reminder.trace))
        .collect();
    assert_eq!(traces, vec![("r1", trace(3)), ("r2", None)]);
    // Advanced, and still linked to its schedule call.
    let advanced = store.reminders().get(&a, "r1").await.unwrap().unwrap();
    assert_eq!((advanced.target, advanced.trace), (2_000, trace(3)));
}

async fn leave_reroutes_queued_requests_in_order(engine: &Engine) {
    let store = engine.open("app").await;
    let _old = store.join(&member("node-old", "svc", &[])).await.unwrap();
    let ids = queue_on(&*store, "svc", "node-old", 4).await;
    let mut new = store.join(&member("node-new", "svc", &[])).await.unwrap();
    store.leave(&NodeId("node-old".into())).await.unwrap();
    let (got, _) = recv_n(&mut new, 4).await;
    assert_eq!(executed(&got), ids);
}

/// A member that leaves is charged an attempt only for what it may have started:
/// a request routed to it that it never read from its inbox (say, routed after it
/// listed what it had not started) is re-delivered at the same attempt, one it read
/// and did not report unstarted at the next attempt. The Redis engine still charges
/// both (its inbox stream keeps no read mark a leave can consult).
async fn leave_charges_only_what_the_member_read(engine: &Engine) {
    let store = engine.open("app").await;
    let mut old = store.join(&member("node-old", "svc", &[])).await.unwrap();
    let read = queue_on(&*store, "svc", "node-old", 1).await;
    let (got, _) = recv_n(&mut old, 1).await;
    assert_eq!(executed(&got), read);
    let unread = queue_on(&*store, "svc", "node-old", 1).await;
    let mut new = store.join(&member("node-new", "svc", &[])).await.unwrap();
    store.leave(&NodeId("node-old".into())).await.unwrap();
    let got = recv_requests(&mut new, 2).await;
    let attempts: Vec<_> = got.iter().map(|r| (r.id.clone(), r.attempt)).collect();
    let unread_attempt = if matches!(engine, Engine::Redis(_)) {
        1
    } else {
        0
    };
    assert_eq!(
        attempts,
        vec![(read[0].clone(), 1), (unread[0].clone(), unread_attempt)]
    );
}

async fn leave_parks_requests_nobody_else_offers(engine: &Engine) {
    let store = engine.open("app").await;
    let _solo = store.join(&member("node-solo", "solo", &[])).await.unwrap();
    let ids = queue_on(&*store, "solo", "node-solo", 3).await;
    store.leave(&NodeId("node-solo".into())).await.unwrap();
    for id in &ids {
        assert!(engine.request_exists("app", id));
    }
    let mut heir = store.join(&member("node-heir", "solo", &[])).await.unwrap();
    let (got, _) = recv_n(&mut heir, 3).await;
    assert_eq!(executed(&got), ids);
}

/// Runs a member in a child process: this test binary re-executed on the ignored
/// test `child_member`, which joins and then waits to be killed (or, as a zombie, for
/// a line on its stdin: see [`zombie_transitions`]).
struct ChildMember {
    child: Child,
    stdout: Option<std::io::Lines<BufReader<std::process::ChildStdout>>>,
}

/// How a [`ChildMember`] behaves.
#[derive(Clone, Copy, Default)]
struct ChildOptions<'a> {
    /// Actor types it offers besides its service.
    actors: &'a [&'a str],
    /// Armed with `KAR_FAULT_CRASH_IN_RECOVERY=1`.
    crash_in_recovery: bool,
    /// Runs [`zombie_transitions`] when told to.
    zombie: bool,
}

impl ChildMember {
    fn spawn(engine: &Engine, app: &str, node: &str, service: &str) -> ChildMember {
        Self::spawn_with(engine, app, node, service, ChildOptions::default())
    }

    fn spawn_with(
        engine: &Engine,
        app: &str,
        node: &str,
        service: &str,
        options: ChildOptions,
    ) -> ChildMember {
        let exe = std::env::current_exe().expect("test binary");
        let mut command = Command::new(exe);
        command
            .args(["child_member", "--exact", "--ignored", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(
                CHILD_ENV,
                format!(
                    "{app}\n{node}\n{service}\n{}\n{}\n{}",
                    engine.config_line(),
                    options.actors.join(","),
                    if options.zombie { "zombie" } else { "idle" }
                ),
            )
            .env_remove("KAR_FAULT_CRASH_IN_RECOVERY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if options.crash_in_recovery {
            command.env("KAR_FAULT_CRASH_IN_RECOVERY", "1");
        }
        let mut child = command.spawn().expect("spawn child member");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let joined = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains(CHILD_JOINED));
        assert!(joined, "the child member did not join");
        ChildMember {
            child,
            stdout: Some(lines),
        }
    }

    fn kill(&mut self) {
        // SIGKILL: no cleanup of any kind runs in the child.
        self.child.kill().expect("kill child");
        self.child.wait().expect("reap child");
    }

    /// Sends SIGSTOP (`stop`) or SIGCONT.
    fn signal(&self, stop: bool) {
        let status = Command::new("kill")
            .arg(if stop { "-STOP" } else { "-CONT" })
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (bounded) for the child to exit by itself; returns whether it did.
    fn exited_within(&mut self, patience: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < patience {
            if self.child.try_wait().expect("try_wait").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Tells a zombie to go on, and returns the lines it printed until it finished.
    fn resume_zombie(&mut self, line: &str) -> Vec<String> {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to the child");
        stdin.flush().expect("flush");
        let lines = self.stdout.as_mut().expect("stdout");
        lines
            .map_while(Result::ok)
            .take_while(|line| line != CHILD_DONE)
            .collect()
    }
}

impl Drop for ChildMember {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-CONT")
            .arg(self.child.id().to_string())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CHILD_ENV: &str = "KAR_STORE_TEST_CHILD_MEMBER";
const CHILD_JOINED: &str = "KAR-CHILD-MEMBER-JOINED";
const CHILD_DONE: &str = "KAR-CHILD-MEMBER-DONE";

/// Not a test: the body of [`ChildMember`] (does nothing when run directly).
#[tokio::test]
#[ignore]
async fn child_member() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let lines: Vec<&str> = spec.lines().collect();
    let [app, node, service, config, actors, mode] = lines[..] else {
        panic!("bad child spec {spec:?}");
    };
    let actors: Vec<&str> = actors.split(',').filter(|a| !a.is_empty()).collect();
    let store = kar_store::open(&Engine::config_from_line(config), app)
        .await
        .unwrap();
    let _inbox = store.join(&member(node, service, &actors)).await.unwrap();
    if mode == "zombie" {
        zombie_prepare(&*store, node).await;
    }
    println!("{CHILD_JOINED}");
    if mode == "zombie" {
        let line = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).map(|_| line)
        })
        .await
        .unwrap()
        .unwrap();
        for result in zombie_transitions(&*store, node, line.trim()).await {
            println!("{result}");
        }
        println!("{CHILD_DONE}");
    }
    std::future::pending::<()>().await;
}

async fn killed_member_requests_are_rerouted(engine: &Engine) {
    let mut child = ChildMember::spawn(engine, "app", "node-doomed", "svc");
    let store = engine.open("app").await;
    let ids = queue_on(&*store, "svc", "node-doomed", 3).await;
    let mut live = store.join(&member("node-live", "svc", &[])).await.unwrap();
    let killed = Instant::now();
    child.kill();
    let (got, _) = recv_n(&mut live, 3).await;
    assert_eq!(executed(&got), ids);
    let members = store.members().await.unwrap();
    assert_eq!(members, vec![member("node-live", "svc", &[])]);
    if engine.is_redis() {
        // Detected through the lease: after it, and not much later.
        assert!(
            killed.elapsed() < engine.lease() * 4,
            "{:?}",
            killed.elapsed()
        );
    }
    // The dead member can commit nothing.
    let err = store
        .complete(&NodeId("node-doomed".into()), &ids[0], &reply("zombie"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
}

async fn dropped_member_dies_and_is_fenced(engine: &Engine) {
    // The member whose inbox is dropped stops holding its liveness (lock or lease).
    let store = engine.open("app").await;
    let other = engine.open("app").await;
    let doomed = other
        .join(&member("node-doomed", "svc", &[]))
        .await
        .unwrap();
    let ids = queue_on(&*store, "svc", "node-doomed", 2).await;
    let mut live = store.join(&member("node-live", "svc", &[])).await.unwrap();
    drop(doomed);
    let (got, _) = recv_n(&mut live, 2).await;
    assert_eq!(executed(&got), ids);
    let err = other
        .complete(&NodeId("node-doomed".into()), &ids[0], &reply("zombie"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
    // The live member completes them.
    assert!(store
        .complete(&NodeId("node-live".into()), &ids[0], &reply("ok"))
        .await
        .unwrap());
}

async fn removed_node_is_fenced(engine: &Engine) {
    let store = engine.open("app").await;
    let mut inbox = store.join(&member("node-x", "svc", &[])).await.unwrap();
    let r = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    recv_n(&mut inbox, 1).await;
    store.leave(&NodeId("node-x".into())).await.unwrap();
    let err = store
        .complete(&NodeId("node-x".into()), &r.id, &reply("late"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
    let err = store
        .complete(&NodeId("node-never".into()), &r.id, &reply("late"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
    // The request was parked (nobody else offers svc), not completed.
    assert!(store.expire_parked(&r.id).await.unwrap());
}

async fn applications_are_isolated(engine: &Engine) {
    // Names that would break naive key schemes: braces, globs, separators.
    let apps = ["a", "a}", "{a", "a*", "a:b", "", "%7D"];
    let mut inboxes = Vec::new();
    for (i, app) in apps.iter().enumerate() {
        let store = engine.open(app).await;
        let node = format!("node-{i}");
        inboxes.push(store.join(&member(&node, "svc", &[])).await.unwrap());
        assert_eq!(store.members().await.unwrap().len(), 1, "app {app:?}");
    }
    for (i, app) in apps.iter().enumerate() {
        let store = engine.open(app).await;
        let members = store.members().await.unwrap();
        assert_eq!(members, vec![member(&format!("node-{i}"), "svc", &[])]);
        let r = request(RequestKind::Tell, "svc", "node-c");
        assert_eq!(
            store.enqueue(&r).await.unwrap(),
            Routing::Assigned(NodeId(format!("node-{i}")))
        );
        // Members of other apps cannot complete it: they are not members here.
        let foreign = (i + 1) % apps.len();
        let err = store
            .complete(&NodeId(format!("node-{foreign}")), &r.id, &reply("x"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
        let parked = request(RequestKind::Tell, "elsewhere", "node-c");
        assert_eq!(store.enqueue(&parked).await.unwrap(), Routing::Parked);
    }
    for inbox in &mut inboxes {
        let (got, _) = recv_n(inbox, 1).await;
        assert!(matches!(got[0], Message::Execute(_)));
    }
}

async fn purge_removes_one_application(engine: &Engine) {
    let doomed = engine.open("x*").await;
    let kept = engine.open("xy").await;
    let _d = doomed.join(&member("node-d", "svc", &[])).await.unwrap();
    let _k = kept.join(&member("node-k", "svc", &[])).await.unwrap();
    let rd = request(RequestKind::Call, "nobody", "node-d");
    let rk = request(RequestKind::Call, "nobody", "node-k");
    doomed.enqueue(&rd).await.unwrap();
    kept.enqueue(&rk).await.unwrap();
    assert!(doomed.purge().await.unwrap() > 0);
    assert!(doomed.members().await.unwrap().is_empty());
    // (The handle's own member was purged: its writes are fenced on Redis.)
    let doomed = engine.open("x*").await;
    assert!(!doomed.expire_parked(&rd.id).await.unwrap());
    assert_eq!(kept.members().await.unwrap().len(), 1);
    assert!(kept.expire_parked(&rk.id).await.unwrap());
    assert_eq!(doomed.purge().await.unwrap(), 0);
}

/// `kar drain`: queued, parked, held and paused requests go with their inbox entries;
/// state, reminders, subscriptions, members and uncollected outcomes stay.
async fn drain_removes_pending_requests_and_keeps_the_rest(engine: &Engine) {
    // Cap 1 pauses at the first charged death; the held request is made through an
    // uncapped handle (with a cap, pausing comes before holding).
    let store = engine.open_with("app", cap(1)).await;
    let uncapped = engine.open("app").await;
    let mut caller = uncapped
        .join(&member("node-c", "caller", &[]))
        .await
        .unwrap();
    let mut q = store.join(&member("node-q", "svcq", &[])).await.unwrap();
    let mut kids = store.join(&member("node-k", "kids", &[])).await.unwrap();
    let _ = recv_members_changed(&mut caller).await;
    // Done, outcome not collected yet: it stays.
    let done = request(RequestKind::Call, "svcq", "node-c");
    store.enqueue(&done).await.unwrap();
    recv_n(&mut q, 1).await;
    let node_q = NodeId("node-q".into());
    assert!(store
        .complete(&node_q, &done.id, &reply("d"))
        .await
        .unwrap());
    // Queued on node-q, not received yet.
    let queued = request(RequestKind::Tell, "svcq", "node-c");
    store.enqueue(&queued).await.unwrap();
    // Parked: nobody offers the name.
    let parked = request(RequestKind::Call, "nobody", "node-c");
    assert_eq!(store.enqueue(&parked).await.unwrap(), Routing::Parked);
    // Paused: its executor died once (cap 1).
    let mut p1 = store.join(&member("node-p1", "svcp", &[])).await.unwrap();
    let mut p2 = store.join(&member("node-p2", "svcp", &[])).await.unwrap();
    let paused = request(RequestKind::Call, "svcp", "node-c");
    let assigned = match store.enqueue(&paused).await.unwrap() {
        Routing::Assigned(node) => node,
        other => panic!("not assigned: {other:?}"),
    };
    let mut heir_p = if assigned.0 == "node-p1" {
        recv_n(&mut p1, 1).await;
        p2
    } else {
        recv_n(&mut p2, 1).await;
        p1
    };
    store.leave(&assigned).await.unwrap();
    only_marker_arrives(&*store, &mut heir_p, "svcp").await;
    assert!(engine.request_exists("app", &paused.id));
    // Held: its executor went while a call it made runs (that call is pending too).
    let mut h1 = store.join(&member("node-h1", "svch", &[])).await.unwrap();
    let held = request(RequestKind::Tell, "svch", "node-c");
    assert_eq!(
        store.enqueue(&held).await.unwrap(),
        Routing::Assigned(NodeId("node-h1".into()))
    );
    recv_n(&mut h1, 1).await;
    let mut child = request(RequestKind::Call, "kids", "node-h1");
    child.parent = Some(held.id.clone());
    store.enqueue(&child).await.unwrap();
    assert_eq!(
        executed(&recv_n(&mut kids, 1).await.0),
        vec![child.id.clone()]
    );
    let mut heir_h = uncapped
        .join(&member("node-h2", "svch", &[]))
        .await
        .unwrap();
    uncapped.leave(&NodeId("node-h1".into())).await.unwrap();
    // Kept: state, a reminder, a subscription.
    let actor = ActorRef::new("T", "a");
    store.state_set(&actor, "k", None, b("v")).await.unwrap();
    let rem = reminder(("T", "a"), "r1", i64::MAX / 2, 0);
    store.reminder_schedule(&rem).await.unwrap();
    let sub = subscription(("T", "a"), "s1", "drain-topic", true);
    store.subscribe(&sub).await.unwrap();
    let members = store.members().await.unwrap();

    // The five, and the marker that proved the paused one was not re-delivered.
    assert_eq!(store.drain().await.unwrap(), 6);
    for id in [&queued.id, &parked.id, &paused.id, &held.id, &child.id] {
        assert!(!engine.request_exists("app", id), "{id:?} was drained");
    }
    assert!(engine.request_exists("app", &done.id));
    // The inboxes no longer yield them: only markers arrive.
    only_marker_arrives(&*store, &mut q, "svcq").await;
    only_marker_arrives(&*store, &mut heir_p, "svcp").await;
    only_marker_arrives(&*store, &mut heir_h, "svch").await;
    let node_k = NodeId("node-k".into());
    assert!(!store
        .complete(&node_k, &child.id, &reply("c"))
        .await
        .unwrap());
    assert!(!store.expire_parked(&parked.id).await.unwrap());
    // The rest stays.
    assert_eq!(store.members().await.unwrap(), members);
    assert_eq!(
        store.state_get(&actor, "k", None).await.unwrap(),
        Some(b("v"))
    );
    assert_eq!(
        store.reminders().get(&actor, "r1").await.unwrap(),
        Some(rem)
    );
    assert_eq!(
        store.subscriptions().get(&actor, "s1").await.unwrap(),
        Some(sub)
    );
    // The three markers since are still queued (received, never completed).
    assert_eq!(store.drain().await.unwrap(), 3);
    assert_eq!(store.drain().await.unwrap(), 0);
}

async fn waiting_recv_wakes_on_enqueue_by_another_handle(engine: &Engine) {
    let store = engine.open("app").await;
    let mut inbox = store.join(&member("node-w", "svc", &[])).await.unwrap();
    let waiter = tokio::spawn(async move {
        let started = Instant::now();
        let messages = inbox.recv().await.unwrap();
        (messages, started.elapsed())
    });
    // Let the receiver block first (the wake-up is what is tested).
    tokio::time::sleep(Duration::from_millis(100)).await;
    let other = engine.open("app").await;
    let r = request(RequestKind::Tell, "svc", "node-c");
    other.enqueue(&r).await.unwrap();
    let (messages, _) = tokio::time::timeout(PATIENCE, waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(messages, vec![Message::Execute(Box::new(r))]);
}

async fn cancelled_recv_loses_nothing(engine: &Engine) {
    let store = engine.open("app").await;
    let mut inbox = store.join(&member("node-r", "svc", &[])).await.unwrap();
    // A recv cancelled while waiting.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), inbox.recv())
            .await
            .is_err()
    );
    let mut expected = Vec::new();
    let mut got = Vec::new();
    for round in 0..20u64 {
        let r = request(RequestKind::Tell, "svc", "node-c");
        store.enqueue(&r).await.unwrap();
        expected.push(r.id);
        // Cancel at various points of the read.
        let limit = Duration::from_micros(round * 150);
        if let Ok(messages) = tokio::time::timeout(limit, inbox.recv()).await {
            got.extend(executed(&messages.unwrap()));
        }
    }
    let missing = expected.len() - got.len();
    if missing > 0 {
        let (rest, _) = recv_n(&mut inbox, missing).await;
        got.extend(executed(&rest));
    }
    assert_eq!(got, expected);
}

fn actor_request(
    kind: RequestKind,
    actor_type: &str,
    id: &str,
    caller: &str,
) -> kar_protocol::Request {
    let mut r = request(kind, actor_type, caller);
    r.target = Target::Actor {
        actor_type: actor_type.into(),
        id: id.into(),
    };
    r
}

async fn actor_placement_is_sticky_and_moves_on_departure(engine: &Engine) {
    let store = engine.open("app").await;
    let mut a = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let mut b = store.join(&member("node-b", "sb", &["T"])).await.unwrap();
    let mut ids = Vec::new();
    let mut placed = None;
    for _ in 0..10 {
        let r = actor_request(RequestKind::Tell, "T", "x", "node-c");
        let Routing::Assigned(node) = store.enqueue(&r).await.unwrap() else {
            panic!("parked");
        };
        // Every request of one actor goes to the same member.
        assert_eq!(*placed.get_or_insert(node.clone()), node);
        ids.push(r.id);
    }
    let placed = placed.unwrap();
    assert_eq!(
        store.placements().await.unwrap(),
        vec![(ActorRef::new("T", "x"), placed.clone())]
    );
    let (gone, heir, heir_inbox) = if placed.0 == "node-a" {
        (a, "node-b", &mut b)
    } else {
        (b, "node-a", &mut a)
    };
    store.leave(&placed).await.unwrap();
    drop(gone);
    let (got, _) = recv_n(heir_inbox, 10).await;
    assert_eq!(executed(&got), ids);
    assert_eq!(
        store.placements().await.unwrap(),
        vec![(ActorRef::new("T", "x"), NodeId(heir.into()))]
    );
    // Removing the actor forgets its placement.
    store.remove_actor(&ActorRef::new("T", "x")).await.unwrap();
    assert!(store.placements().await.unwrap().is_empty());
}

/// `move_actor`: refused while a request of the actor is queued on its host, then
/// moves it to a live member offering its type (or drops the placement), and only
/// its host may move it.
async fn actor_moves_only_between_flows(engine: &Engine) {
    let store = engine.open("app").await;
    let _a = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let _b = store.join(&member("node-b", "sb", &["T"])).await.unwrap();
    let _c = store.join(&member("node-c", "sc", &[])).await.unwrap();
    let actor = ActorRef::new("T", "x");
    let first = actor_request(RequestKind::Tell, "T", "x", "node-c");
    let Routing::Assigned(host) = store.enqueue(&first).await.unwrap() else {
        panic!("parked");
    };
    let other = NodeId(
        if host.0 == "node-a" {
            "node-b"
        } else {
            "node-a"
        }
        .into(),
    );
    // A request of it is queued on its host: it stays.
    assert!(!store.move_actor(&host, &actor, Some(&other)).await.unwrap());
    assert_eq!(
        store.placements().await.unwrap(),
        vec![(actor.clone(), host.clone())]
    );
    assert!(store
        .complete(&host, &first.id, &reply("done"))
        .await
        .unwrap());
    // Between two flows it moves, and the next request goes to its new host.
    assert!(store.move_actor(&host, &actor, Some(&other)).await.unwrap());
    assert_eq!(
        store.placements().await.unwrap(),
        vec![(actor.clone(), other.clone())]
    );
    let next = actor_request(RequestKind::Tell, "T", "x", "node-c");
    assert_eq!(
        store.enqueue(&next).await.unwrap(),
        Routing::Assigned(other.clone())
    );
    // Only its host moves it.
    assert!(!store.move_actor(&host, &actor, None).await.unwrap());
    assert!(store
        .complete(&other, &next.id, &reply("done"))
        .await
        .unwrap());
    // To a member that does not offer the type: the placement is dropped.
    let not_offering = NodeId("node-c".into());
    assert!(store
        .move_actor(&other, &actor, Some(&not_offering))
        .await
        .unwrap());
    assert!(store.placements().await.unwrap().is_empty());
    // A member that is gone is fenced.
    let gone = store
        .move_actor(&NodeId("node-gone".into()), &actor, None)
        .await;
    assert!(matches!(gone, Err(StoreError::Fenced(_))), "{gone:?}");
}

async fn tail_calls_complete_one_step_and_route_the_next(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut first = store.join(&member("node-1", "s1", &[])).await.unwrap();
    let mut second = store.join(&member("node-2", "s2", &[])).await.unwrap();
    let _ = recv_members_changed(&mut caller).await;
    let node_1 = NodeId("node-1".into());
    let node_2 = NodeId("node-2".into());

    let r = request(RequestKind::Call, "s1", "node-c");
    store.enqueue(&r).await.unwrap();
    recv_n(&mut first, 1).await;
    // Step 1 goes to another service.
    let mut next = request(RequestKind::Call, "s2", "node-c");
    next.id = r.id.clone();
    next.step = 1;
    // Only the assignee may take the step.
    let err = store.tail_call(&node_2, &next, false).await.unwrap_err();
    assert!(matches!(err, StoreError::NotAssigned(_)), "{err:?}");
    assert_eq!(
        store.tail_call(&node_1, &next, false).await.unwrap(),
        Routing::Assigned(node_2.clone())
    );
    let (got, _) = recv_n(&mut second, 1).await;
    assert_eq!(got, vec![Message::Execute(Box::new(next.clone()))]);
    // Step 0 is over: its executor can no longer complete or continue it.
    let err = store.tail_call(&node_1, &next, false).await.unwrap_err();
    assert!(matches!(err, StoreError::NotAssigned(_)), "{err:?}");

    // A local continuation stays on its node and is put in no inbox.
    let mut local = next.clone();
    local.step = 2;
    assert_eq!(
        store.tail_call(&node_2, &local, true).await.unwrap(),
        Routing::Assigned(node_2.clone())
    );
    assert!(store.complete(&node_2, &r.id, &reply("end")).await.unwrap());
    let (got, _) = recv_n(&mut caller, 1).await;
    assert_eq!(
        got,
        vec![Message::Completed {
            id: r.id.clone(),
            kind: RequestKind::Call,
            outcome: reply("end"),
        }]
    );
    let marker = request(RequestKind::Tell, "s2", "node-c");
    store.enqueue(&marker).await.unwrap();
    let (got, _) = recv_n(&mut second, 1).await;
    assert_eq!(executed(&got), vec![marker.id]);

    // A continuation nobody serves is parked.
    let t = request(RequestKind::Tell, "s1", "node-c");
    store.enqueue(&t).await.unwrap();
    recv_n(&mut first, 1).await;
    let mut lost = request(RequestKind::Tell, "nobody", "node-c");
    lost.id = t.id.clone();
    lost.step = 1;
    assert_eq!(
        store.tail_call(&node_1, &lost, false).await.unwrap(),
        Routing::Parked
    );
    assert!(store.expire_parked(&t.id).await.unwrap());

    // A removed node is fenced.
    let u = request(RequestKind::Tell, "s1", "node-c");
    store.enqueue(&u).await.unwrap();
    recv_n(&mut first, 1).await;
    store.leave(&node_1).await.unwrap();
    let mut after = u.clone();
    after.step = 1;
    let err = store.tail_call(&node_1, &after, false).await.unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn actor_state_entries_and_order(engine: &Engine) {
    let store = engine.open("app").await;
    let actor = ActorRef::new("T", "1");
    let neighbour = ActorRef::new("T", "12");
    assert_eq!(store.state_get(&actor, "k", None).await.unwrap(), None);
    assert!(store.state_set(&actor, "k", None, b("1")).await.unwrap());
    assert!(!store.state_set(&actor, "k", None, b("2")).await.unwrap());
    assert_eq!(
        store.state_get(&actor, "k", None).await.unwrap(),
        Some(b("2"))
    );
    // Flat entries and submap entries never collide, whatever the names.
    assert!(store
        .state_set(&actor, "k", Some("k"), b("s"))
        .await
        .unwrap());
    assert!(store.state_set(&actor, "k_k", None, b("f")).await.unwrap());
    assert_eq!(
        store.state_get(&actor, "k", None).await.unwrap(),
        Some(b("2"))
    );
    assert_eq!(
        store.state_get(&actor, "k", Some("k")).await.unwrap(),
        Some(b("s"))
    );
    assert_eq!(store.state_get(&neighbour, "k", None).await.unwrap(), None);
    // Submap entries keep insertion order; replacing keeps the place.
    for sub in ["z", "a", "m"] {
        assert!(store
            .state_set(&actor, "map", Some(sub), b(sub))
            .await
            .unwrap());
    }
    assert!(!store
        .state_set(&actor, "map", Some("z"), b("Z"))
        .await
        .unwrap());
    let entries = store.submap_entries(&actor, "map").await.unwrap();
    assert_eq!(
        entries,
        vec![
            ("z".into(), b("Z")),
            ("a".into(), b("a")),
            ("m".into(), b("m"))
        ]
    );
    assert!(store.state_remove(&actor, "map", Some("a")).await.unwrap());
    assert!(!store.state_remove(&actor, "map", Some("a")).await.unwrap());
    assert!(store
        .state_set(&actor, "map", Some("a"), b("again"))
        .await
        .unwrap());
    let all = store.state_get_all(&actor).await.unwrap();
    assert_eq!(all.flat, vec![("k".into(), b("2")), ("k_k".into(), b("f"))]);
    assert_eq!(
        all.submaps,
        vec![
            ("k".into(), vec![("k".into(), b("s"))]),
            (
                "map".into(),
                vec![
                    ("z".into(), b("Z")),
                    ("m".into(), b("m")),
                    ("a".into(), b("again"))
                ]
            ),
        ]
    );
    assert!(store.state_get_all(&neighbour).await.unwrap().is_empty());
    assert_eq!(store.submap_clear(&actor, "map").await.unwrap(), 3);
    assert!(store
        .submap_entries(&actor, "map")
        .await
        .unwrap()
        .is_empty());
    assert!(store.state_remove(&actor, "k", None).await.unwrap());
    assert!(!store.state_remove(&actor, "k", None).await.unwrap());
    let all = store.state_get_all(&actor).await.unwrap();
    assert_eq!(all.flat, vec![("k_k".into(), b("f"))]);
    assert_eq!(all.submaps.len(), 1);
    // Another application sees none of it.
    let other = engine.open("other").await;
    assert!(other.state_get_all(&actor).await.unwrap().is_empty());
}

async fn actor_state_update_and_removal(engine: &Engine) {
    let store = engine.open("app").await;
    let actor = ActorRef::new("Account", "a/1 ?");
    store.state_set(&actor, "old", None, b("1")).await.unwrap();
    store.state_set(&actor, "keep", None, b("1")).await.unwrap();
    store
        .state_set(&actor, "m", Some("x"), b("1"))
        .await
        .unwrap();
    let update = StateUpdate {
        removals: vec!["old".into(), "missing".into()],
        submap_removals: vec![("m".into(), vec!["x".into(), "y".into()])],
        updates: vec![("keep".into(), b("2")), ("new".into(), b("3"))],
        submap_updates: vec![("m".into(), vec![("y".into(), b("4")), ("x".into(), b("5"))])],
    };
    assert_eq!(
        store.state_update(&actor, &update).await.unwrap(),
        UpdateCounts {
            removed: 2,
            added: 3
        }
    );
    let all = store.state_get_all(&actor).await.unwrap();
    assert_eq!(
        all.flat,
        vec![("keep".into(), b("2")), ("new".into(), b("3"))]
    );
    assert_eq!(
        all.submaps,
        vec![("m".into(), vec![("y".into(), b("4")), ("x".into(), b("5"))])]
    );
    assert_eq!(store.state_remove_all(&actor).await.unwrap(), 4);
    assert!(store.state_get_all(&actor).await.unwrap().is_empty());
    store.state_set(&actor, "k", None, b("1")).await.unwrap();
    store.remove_actor(&actor).await.unwrap();
    assert!(store.state_get_all(&actor).await.unwrap().is_empty());
    // Purge removes state too.
    store.state_set(&actor, "k", None, b("1")).await.unwrap();
    assert!(store.purge().await.unwrap() > 0);
    assert!(store.state_get_all(&actor).await.unwrap().is_empty());
}

#[tokio::test]
async fn redis_open_fails_fast_when_unreachable() {
    let port = {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let result = kar_store::open(&kar_store::StoreConfig::Redis(redis_config(port)), "app").await;
    let err = result.err().expect("no Redis there");
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains(&port.to_string()), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn redis_default_lease_and_description() {
    let server = RedisServer::start();
    let config = kar_store::RedisConfig {
        lease: Duration::ZERO,
        ..server.config()
    };
    let store = kar_store::open(&kar_store::StoreConfig::Redis(config), "app")
        .await
        .unwrap();
    assert_eq!(
        store.describe(),
        format!("redis://127.0.0.1:{}", server.port)
    );
    let _inbox = store.join(&member("node-1", "svc", &[])).await.unwrap();
    // The lease (expiry on the server clock) lies 3 s ahead.
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{}", server.port)).unwrap();
    let mut conn = client.get_connection().unwrap();
    let expiry: f64 = ::redis::cmd("ZSCORE")
        .arg("kar:{app}:leases")
        .arg("node-1")
        .query(&mut conn)
        .unwrap();
    let (secs, micros): (u64, u64) = ::redis::cmd("TIME").query(&mut conn).unwrap();
    let ahead = expiry - (secs * 1000 + micros / 1000) as f64;
    assert!((2500.0..=3000.0).contains(&ahead), "{ahead}");
}

#[tokio::test]
async fn redis_member_fences_itself_when_redis_is_unreachable() {
    let server = RedisServer::start();
    let store = kar_store::open(
        &kar_store::StoreConfig::Redis(redis_config(server.port)),
        "app",
    )
    .await
    .unwrap();
    let node = NodeId("node-cut".into());
    let mut inbox = store.join(&member("node-cut", "svc", &[])).await.unwrap();
    drop(server);
    // Redis is dead once the drop returns: no renewal sent after this instant lands.
    let cut = Instant::now();
    // What the guarantee needs: one lease after the last renewal that could have
    // reached Redis (so at `cut + lease` at the latest), the others may declare this
    // member dead and recover its requests; from then on it must commit nothing,
    // which it decides from its own clock, without asking Redis. So the check is
    // made at that instant or later (a loaded machine only makes it later), and a
    // transition must then be refused as fenced (asking the dead Redis would fail
    // as unavailable instead). How soon the inbox *reports* the fencing is liveness,
    // not safety: it depends on when the renewal task gets scheduled, which a loaded
    // 2-core machine delays past any tight margin (the former bound was
    // lease + 300 ms), so it is only bounded by the suite's patience.
    tokio::time::sleep_until((cut + TEST_LEASE).into()).await;
    let err = store
        .complete(&node, &RequestId::generate(), &reply("late"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
    tokio::time::timeout(PATIENCE, async {
        loop {
            match inbox.recv().await {
                Err(StoreError::Fenced(fenced)) => {
                    assert_eq!(fenced, node.0);
                    return;
                }
                // The runtime backs off on errors; so does this loop.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                Ok(messages) => panic!("unexpected {messages:?}"),
            }
        }
    })
    .await
    .expect("the member did not fence itself");
}

// ----- reminders -----

fn reminder(actor: (&str, &str), id: &str, target: i64, period: i64) -> Reminder {
    Reminder {
        actor: ActorRef::new(actor.0, actor.1),
        id: id.into(),
        path: format!("/{id}"),
        target,
        target_text: Some(format!("text of {target}")),
        period,
        data: Bytes::from(format!("[\"{id}\"]")),
        trace: None,
    }
}

/// The firing request the runtime would make: a tell to the actor's `path`.
fn tell_builder() -> RequestBuilder {
    Arc::new(|r: &Reminder| {
        let mut request = actor_request(
            RequestKind::Tell,
            &r.actor.actor_type,
            &r.actor.id,
            "node-f",
        );
        request.invocation.path = r.path.clone();
        request.invocation.body = r.data.clone();
        request
    })
}

const SECOND: i64 = 1_000_000_000;

async fn reminders_schedule_replace_get_cancel(engine: &Engine) {
    let store = engine.open("app").await;
    let a = ActorRef::new("T", "a");
    // Ids with separators and braces do not collide with other actors' reminders.
    let odd = ActorRef::new("T:1", "{x}_y");
    assert_eq!(store.reminders().get(&a, "r1").await.unwrap(), None);
    assert!(store.reminders().list(&a).await.unwrap().is_empty());
    let r1 = reminder(("T", "a"), "r1", 5_000, 0);
    assert!(!store.reminder_schedule(&r1).await.unwrap());
    assert_eq!(
        store.reminders().get(&a, "r1").await.unwrap(),
        Some(r1.clone())
    );
    // Replacing: same key, new content.
    let mut r1b = reminder(("T", "a"), "r1", 7_000, 3 * SECOND);
    r1b.target_text = None;
    r1b.data = Bytes::new();
    assert!(store.reminder_schedule(&r1b).await.unwrap());
    assert_eq!(
        store.reminders().get(&a, "r1").await.unwrap(),
        Some(r1b.clone())
    );
    let r0 = reminder(("T", "a"), "r0", 9_000, 0);
    store.reminder_schedule(&r0).await.unwrap();
    let r_odd = reminder(("T:1", "{x}_y"), "r1", 1_000, 0);
    store.reminder_schedule(&r_odd).await.unwrap();
    // Another handle sees the same reminders; all of an actor come by id.
    let other = engine.open("app").await;
    assert_eq!(
        other.reminders().list(&a).await.unwrap(),
        vec![r0.clone(), r1b.clone()]
    );
    assert_eq!(
        other.reminders().list(&odd).await.unwrap(),
        vec![r_odd.clone()]
    );
    // All of the application, by actor type, actor id and id.
    assert_eq!(
        other.reminders().list_all().await.unwrap(),
        vec![r0.clone(), r1b.clone(), r_odd.clone()]
    );
    assert_eq!(store.next_due().await.unwrap(), Some(1_000));
    assert!(store.reminders().cancel(&odd, "r1").await.unwrap());
    assert!(!store.reminders().cancel(&odd, "r1").await.unwrap());
    assert_eq!(store.next_due().await.unwrap(), Some(7_000));
    assert_eq!(store.reminders().cancel_all(&a).await.unwrap(), 2);
    assert_eq!(store.reminders().cancel_all(&a).await.unwrap(), 0);
    assert!(store.reminders().list(&a).await.unwrap().is_empty());
    assert_eq!(store.next_due().await.unwrap(), None);
    // Purge takes reminders too.
    store.reminder_schedule(&r0).await.unwrap();
    store.purge().await.unwrap();
    assert!(store.reminders().list(&a).await.unwrap().is_empty());
    assert_eq!(store.next_due().await.unwrap(), None);
}

async fn reminders_fire_in_due_order_and_advance(engine: &Engine) {
    let store = engine.open("app").await;
    let mut inbox = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let build = tell_builder();
    for (id, target) in [("c", 3_000), ("a", 1_000), ("b", 2_000), ("later", 60_000)] {
        store
            .reminder_schedule(&reminder(("T", id), id, target, 0))
            .await
            .unwrap();
    }
    assert_eq!(store.next_due().await.unwrap(), Some(1_000));
    // Nothing due yet.
    assert!(store.fire_due(999, 10, &build).await.unwrap().is_empty());
    // Due at exactly the target time; at most `limit` per call, earliest first.
    let fired = store.fire_due(5_000, 2, &build).await.unwrap();
    let ids: Vec<_> = fired.iter().map(|f| f.reminder.id.as_str()).collect();
    assert_eq!(ids, ["a", "b"]);
    let fired_rest = store.fire_due(5_000, 10, &build).await.unwrap();
    assert_eq!(fired_rest.len(), 1);
    assert_eq!(fired_rest[0].reminder.id, "c");
    assert!(store.fire_due(5_000, 10, &build).await.unwrap().is_empty());
    let node_a = NodeId("node-a".into());
    for f in fired.iter().chain(&fired_rest) {
        assert_eq!(f.routing, Routing::Assigned(node_a.clone()));
        assert_eq!(f.request.invocation.path, f.reminder.path);
        assert_eq!(f.request.invocation.body, f.reminder.data);
    }
    // The requests arrive in due order, as enqueued; one-shots are gone.
    let (got, _) = recv_n(&mut inbox, 3).await;
    let expected: Vec<_> = fired
        .iter()
        .chain(&fired_rest)
        .map(|f| f.request.id.clone())
        .collect();
    assert_eq!(executed(&got), expected);
    for id in ["a", "b", "c"] {
        assert_eq!(
            store
                .reminders()
                .get(&ActorRef::new("T", id), id)
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(store.next_due().await.unwrap(), Some(60_000));
}

/// Redis: a firing pass claims the reminders it read for a moment (`reminders_due`),
/// so the passes of the other members skip them meanwhile; a pass that fails between
/// reading and firing only delays the firing until its claim ends (1 s), for the
/// reminder's own target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_reminders_claimed_by_a_failed_pass_fire_once_the_claim_ends() {
    use futures::FutureExt;
    let engine = Engine::redis();
    let store = engine.open("app").await;
    let mut host = store.join(&member("node-h", "svc", &["A"])).await.unwrap();
    store
        .reminder_schedule(&reminder(("A", "1"), "r", 1_000, 0))
        .await
        .unwrap();
    let failing: RequestBuilder = Arc::new(|_: &Reminder| panic!("the pass fails after reading"));
    let failed = std::panic::AssertUnwindSafe(store.fire_due(1_000, 10, &failing))
        .catch_unwind()
        .await;
    assert!(failed.is_err());
    assert!(store
        .fire_due(1_500, 10, &tell_builder())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.next_due().await.unwrap(), Some(2_000));
    let fired = store.fire_due(2_000, 10, &tell_builder()).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].reminder.target, 1_000);
    assert_eq!(
        executed(&recv_n(&mut host, 1).await.0),
        vec![fired[0].request.id.clone()]
    );
    assert_eq!(store.next_due().await.unwrap(), None);
}

async fn reminders_periodic_skip_forward_after_downtime(engine: &Engine) {
    let store = engine.open("app").await;
    let _inbox = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let build = tell_builder();
    let actor = ActorRef::new("T", "p");
    let r = reminder(("T", "p"), "tick", 1_000, SECOND);
    store.reminder_schedule(&r).await.unwrap();
    // On time: the next target is the previous one plus the period (no drift).
    let fired = store.fire_due(1_250, 10, &build).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].reminder, r);
    let now = store
        .reminders()
        .get(&actor, "tick")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.target, 2_000);
    // The original text is echoed only until the first advance.
    assert_eq!(now.target_text, None);
    assert_eq!((now.path.as_str(), now.period), (r.path.as_str(), r.period));
    assert_eq!(now.data, r.data);
    assert!(store.fire_due(1_999, 10, &build).await.unwrap().is_empty());
    // Down for 8.5 periods: one firing, then the first target after now.
    let fired = store.fire_due(10_500, 10, &build).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].reminder.target, 2_000);
    assert!(store.fire_due(10_999, 10, &build).await.unwrap().is_empty());
    assert_eq!(store.next_due().await.unwrap(), Some(11_000));
    assert_eq!(store.fire_due(11_000, 10, &build).await.unwrap().len(), 1);
    assert_eq!(
        store
            .reminders()
            .get(&actor, "tick")
            .await
            .unwrap()
            .unwrap()
            .target,
        12_000
    );
}

async fn reminders_fire_once_under_concurrent_firers(engine: &Engine) {
    let setup = engine.open("app").await;
    let mut inbox = setup.join(&member("node-a", "sa", &["T"])).await.unwrap();
    const ONE_SHOTS: usize = 60;
    for n in 0..ONE_SHOTS {
        let id = format!("r{n}");
        setup
            .reminder_schedule(&reminder(
                ("T", &format!("x{}", n % 7)),
                &id,
                1_000 + n as i64,
                0,
            ))
            .await
            .unwrap();
    }
    setup
        .reminder_schedule(&reminder(("T", "p"), "periodic", 1_000, 10 * SECOND))
        .await
        .unwrap();
    // Two members (separate handles, as separate processes) fire concurrently, in
    // small batches, until nothing is due.
    let mut firers = Vec::new();
    for _ in 0..2 {
        let store = engine.open("app").await;
        firers.push(tokio::spawn(async move {
            let build = tell_builder();
            let mut fired = Vec::new();
            loop {
                let batch = store.fire_due(5_000, 4, &build).await.unwrap();
                if batch.is_empty() {
                    return fired;
                }
                fired.extend(batch.into_iter().map(|f| f.reminder.id));
            }
        }));
    }
    let mut all = Vec::new();
    for firer in firers {
        all.extend(firer.await.unwrap());
    }
    all.sort();
    let mut unique = all.clone();
    unique.dedup();
    assert_eq!(all, unique, "a firing was made twice");
    assert_eq!(all.len(), ONE_SHOTS + 1);
    let (got, _) = recv_n(&mut inbox, ONE_SHOTS + 1).await;
    let mut ids = executed(&got);
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), ONE_SHOTS + 1);
    assert_eq!(setup.next_due().await.unwrap(), Some(11_000));
}

async fn reminders_firings_park_without_a_host(engine: &Engine) {
    let store = engine.open("app").await;
    let build = tell_builder();
    store
        .reminder_schedule(&reminder(("Absent", "1"), "r", 1_000, 0))
        .await
        .unwrap();
    let fired = store.fire_due(2_000, 10, &build).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].routing, Routing::Parked);
    // The reminder has fired (the firing waits, parked, for a host).
    assert_eq!(store.next_due().await.unwrap(), None);
    let mut inbox = store
        .join(&member("node-h", "sh", &["Absent"]))
        .await
        .unwrap();
    let (got, _) = recv_n(&mut inbox, 1).await;
    assert_eq!(executed(&got), vec![fired[0].request.id.clone()]);
}

async fn reminders_are_isolated_between_applications(engine: &Engine) {
    let a = engine.open("app-a").await;
    let b = engine.open("app-b").await;
    let build = tell_builder();
    let actor = ActorRef::new("T", "1");
    a.reminder_schedule(&reminder(("T", "1"), "r", 1_000, 0))
        .await
        .unwrap();
    assert!(b.reminders().list(&actor).await.unwrap().is_empty());
    assert!(b.reminders().list_all().await.unwrap().is_empty());
    assert_eq!(b.reminders().get(&actor, "r").await.unwrap(), None);
    assert_eq!(b.next_due().await.unwrap(), None);
    assert!(b.fire_due(5_000, 10, &build).await.unwrap().is_empty());
    assert!(!b.reminders().cancel(&actor, "r").await.unwrap());
    assert_eq!(b.reminders().cancel_all(&actor).await.unwrap(), 0);
    b.purge().await.unwrap();
    assert_eq!(a.next_due().await.unwrap(), Some(1_000));
    assert_eq!(a.fire_due(5_000, 10, &build).await.unwrap().len(), 1);
}

// ----- events -----

fn subscription(actor: (&str, &str), id: &str, topic: &str, oldest: bool) -> Subscription {
    Subscription {
        actor: ActorRef::new(actor.0, actor.1),
        id: id.into(),
        path: format!("/on/{id}"),
        topic: topic.into(),
        content_type: String::new(),
        group: String::new(),
        oldest,
    }
}

/// The delivery request the runtime would make: a tell to the subscriber's `path`
/// with body `[<event>]`.
fn event_builder() -> EventRequestBuilder {
    Arc::new(|s: &Subscription, event: &[u8]| {
        let mut request = actor_request(
            RequestKind::Tell,
            &s.actor.actor_type,
            &s.actor.id,
            "node-d",
        );
        request.invocation.path = s.path.clone();
        request.invocation.body = s.event_body(event);
        request
    })
}

/// Delivers one event, expecting one; returns (offset, request id, body).
async fn deliver_one(
    store: &Arc<dyn kar_store::Store>,
    actor: &ActorRef,
    id: &str,
) -> (u64, RequestId, Bytes) {
    match store
        .deliver_event(actor, id, &event_builder())
        .await
        .unwrap()
    {
        Delivery::Delivered {
            offset, request, ..
        } => (offset, request.id, request.invocation.body),
        other => panic!("expected a delivery, got {other:?}"),
    }
}

async fn events_topics_create_delete_publish(engine: &Engine) {
    let store = engine.open("app").await;
    // Topic names with braces and separators are fine.
    for topic in ["t", "{odd}:topic_"] {
        assert!(store.topic_create(topic).await.unwrap());
        assert!(!store.topic_create(topic).await.unwrap());
        for n in 1..=3 {
            assert_eq!(
                store
                    .publish(topic, Bytes::from(format!("e{n}")))
                    .await
                    .unwrap(),
                n
            );
        }
        assert!(store.topic_delete(topic).await.unwrap());
        assert!(!store.topic_delete(topic).await.unwrap());
        // Publishing creates a missing topic; offsets keep growing after a deletion.
        assert_eq!(store.publish(topic, b("e4")).await.unwrap(), 4);
        assert!(!store.topic_create(topic).await.unwrap());
    }
    // A subscriber from the oldest event sees only what survived the deletion.
    let _inbox = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let actor = ActorRef::new("T", "1");
    store
        .subscribe(&subscription(("T", "1"), "s", "t", true))
        .await
        .unwrap();
    let (offset, _, body) = deliver_one(&store, &actor, "s").await;
    assert_eq!((offset, body), (4, b("[e4]")));
    // Publishing to a never-created topic creates it.
    assert_eq!(store.publish("fresh", b("x")).await.unwrap(), 1);
    assert!(!store.topic_create("fresh").await.unwrap());
}

async fn events_subscriptions_subscribe_replace_get_cancel(engine: &Engine) {
    let store = engine.open("app").await;
    let a = ActorRef::new("T", "a");
    let odd = ActorRef::new("T:1", "{x}_y");
    assert_eq!(store.subscriptions().get(&a, "s1").await.unwrap(), None);
    assert!(store.subscriptions().list(&a).await.unwrap().is_empty());
    let s1 = subscription(("T", "a"), "s1", "t1", false);
    assert!(!store.subscribe(&s1).await.unwrap());
    assert_eq!(
        store.subscriptions().get(&a, "s1").await.unwrap(),
        Some(s1.clone())
    );
    let mut s1b = subscription(("T", "a"), "s1", "t2", true);
    s1b.content_type = "text/plain".into();
    s1b.group = "g".into();
    assert!(store.subscribe(&s1b).await.unwrap());
    assert_eq!(
        store.subscriptions().get(&a, "s1").await.unwrap(),
        Some(s1b.clone())
    );
    let s0 = subscription(("T", "a"), "s0", "t1", false);
    store.subscribe(&s0).await.unwrap();
    let s_odd = subscription(("T:1", "{x}_y"), "s1", "t1", false);
    store.subscribe(&s_odd).await.unwrap();
    let other = engine.open("app").await;
    assert_eq!(
        other.subscriptions().list(&a).await.unwrap(),
        vec![s0.clone(), s1b.clone()]
    );
    assert_eq!(
        other.subscriptions().list(&odd).await.unwrap(),
        vec![s_odd.clone()]
    );
    assert_eq!(
        other.subscriptions().list_all().await.unwrap(),
        vec![s0.clone(), s1b.clone(), s_odd.clone()]
    );
    assert!(store.subscriptions().cancel(&odd, "s1").await.unwrap());
    assert!(!store.subscriptions().cancel(&odd, "s1").await.unwrap());
    assert_eq!(store.subscriptions().cancel_all(&a).await.unwrap(), 2);
    assert_eq!(store.subscriptions().cancel_all(&a).await.unwrap(), 0);
    assert!(store.subscriptions().list_all().await.unwrap().is_empty());
    assert_eq!(
        store
            .deliver_event(&a, "s1", &event_builder())
            .await
            .unwrap(),
        Delivery::Gone
    );
    // Purge takes subscriptions too.
    store.subscribe(&s0).await.unwrap();
    store.purge().await.unwrap();
    assert!(store.subscriptions().list_all().await.unwrap().is_empty());
}

async fn events_delivered_in_order_one_at_a_time(engine: &Engine) {
    let store = engine.open("app").await;
    let mut inbox = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let node_a = NodeId("node-a".into());
    let build = event_builder();
    store.publish("t", b(r#"{"n":1}"#)).await.unwrap();
    let newest = ActorRef::new("T", "newest");
    let oldest = ActorRef::new("T", "oldest");
    let mut text = subscription(("T", "text"), "s", "t", true);
    text.content_type = "text/plain".into();
    store
        .subscribe(&subscription(("T", "newest"), "s", "t", false))
        .await
        .unwrap();
    store
        .subscribe(&subscription(("T", "oldest"), "s", "t", true))
        .await
        .unwrap();
    store.subscribe(&text).await.unwrap();
    assert_eq!(
        store.deliver_event(&newest, "s", &build).await.unwrap(),
        Delivery::UpToDate
    );
    store.publish("t", b(r#"{"n":2}"#)).await.unwrap();
    store.publish("t", b(r#"{"n":3}"#)).await.unwrap();

    // The newest subscriber starts after event 1; one delivery at a time.
    let delivered = store.deliver_event(&newest, "s", &build).await.unwrap();
    let Delivery::Delivered {
        offset,
        request,
        routing,
    } = delivered
    else {
        panic!("expected a delivery, got {delivered:?}");
    };
    assert_eq!(offset, 2);
    assert_eq!(routing, Routing::Assigned(node_a.clone()));
    assert_eq!(request.invocation.body, b(r#"[{"n":2}]"#));
    assert_eq!(request.invocation.path, "/on/s");
    assert_eq!(request.kind, RequestKind::Tell);
    let (got, _) = recv_n(&mut inbox, 1).await;
    assert_eq!(executed(&got), vec![request.id.clone()]);
    assert_eq!(
        store.deliver_event(&newest, "s", &build).await.unwrap(),
        Delivery::InFlight
    );
    // Once the tell finished, the next one goes.
    assert!(store
        .complete(&node_a, &request.id, &reply("ok"))
        .await
        .unwrap());
    let (offset, id, body) = deliver_one(&store, &newest, "s").await;
    assert_eq!((offset, body), (3, b(r#"[{"n":3}]"#)));
    store.complete(&node_a, &id, &reply("ok")).await.unwrap();
    assert_eq!(
        store.deliver_event(&newest, "s", &build).await.unwrap(),
        Delivery::UpToDate
    );

    // The oldest subscriber gets all three, in order; the text one JSON-string-encoded.
    for n in 1..=3u64 {
        let (offset, id, body) = deliver_one(&store, &oldest, "s").await;
        assert_eq!((offset, body), (n, Bytes::from(format!("[{{\"n\":{n}}}]"))));
        store.complete(&node_a, &id, &reply("ok")).await.unwrap();
        let (offset, id, body) = deliver_one(&store, &text.actor, "s").await;
        assert_eq!(
            (offset, body),
            (n, Bytes::from(format!("[\"{{\\\"n\\\":{n}}}\"]")))
        );
        store.complete(&node_a, &id, &reply("ok")).await.unwrap();
    }
    // Replacing on the same topic and group keeps the position.
    store
        .subscribe(&subscription(("T", "oldest"), "s", "t", true))
        .await
        .unwrap();
    assert_eq!(
        store.deliver_event(&oldest, "s", &build).await.unwrap(),
        Delivery::UpToDate
    );
    // On another consumer group it starts over (from the oldest event here).
    let mut regrouped = subscription(("T", "oldest"), "s", "t", true);
    regrouped.group = "g2".into();
    store.subscribe(&regrouped).await.unwrap();
    let (offset, id, _) = deliver_one(&store, &oldest, "s").await;
    assert_eq!(offset, 1);
    store.complete(&node_a, &id, &reply("ok")).await.unwrap();
}

async fn events_delivered_once_under_concurrent_deliverers(engine: &Engine) {
    let setup = engine.open("app").await;
    let _inbox = setup.join(&member("node-a", "sa", &["T"])).await.unwrap();
    const EVENTS: u64 = 30;
    for n in 1..=EVENTS {
        setup
            .publish("t", Bytes::from(format!("{n}")))
            .await
            .unwrap();
    }
    for id in ["s1", "s2"] {
        setup
            .subscribe(&subscription(("T", "x"), id, "t", true))
            .await
            .unwrap();
    }
    // Two members (separate handles) deliver concurrently, each finishing the tells
    // it enqueued, until both subscriptions are up to date.
    let mut deliverers = Vec::new();
    for _ in 0..2 {
        let store = engine.open("app").await;
        deliverers.push(tokio::spawn(async move {
            let build = event_builder();
            let actor = ActorRef::new("T", "x");
            let node_a = NodeId("node-a".into());
            let mut delivered = Vec::new();
            let mut done = [false, false];
            while done != [true, true] {
                for (k, id) in ["s1", "s2"].into_iter().enumerate() {
                    match store.deliver_event(&actor, id, &build).await.unwrap() {
                        Delivery::Delivered {
                            offset, request, ..
                        } => {
                            delivered.push((id, offset, request.invocation.body));
                            store
                                .complete(&node_a, &request.id, &reply("ok"))
                                .await
                                .unwrap();
                        }
                        Delivery::UpToDate => done[k] = true,
                        Delivery::InFlight => tokio::task::yield_now().await,
                        Delivery::Gone => panic!("subscription gone"),
                    }
                }
            }
            delivered
        }));
    }
    let mut all = Vec::new();
    for deliverer in deliverers {
        all.extend(deliverer.await.unwrap());
    }
    all.sort();
    for id in ["s1", "s2"] {
        let got: Vec<_> = all
            .iter()
            .filter(|(s, _, _)| *s == id)
            .map(|(_, offset, body)| (*offset, body.clone()))
            .collect();
        let expected: Vec<_> = (1..=EVENTS)
            .map(|n| (n, Bytes::from(format!("[{n}]"))))
            .collect();
        assert_eq!(got, expected, "each event once per subscription");
    }
}

async fn events_topics_shared_subscriptions_isolated(engine: &Engine) {
    let a = engine.open("app-a").await;
    let b_store = engine.open("app-b").await;
    let _inbox = b_store.join(&member("node-b", "sb", &["T"])).await.unwrap();
    let actor = ActorRef::new("T", "1");
    // A topic created by one application exists for the other.
    assert!(a.topic_create("shared").await.unwrap());
    assert!(!b_store.topic_create("shared").await.unwrap());
    a.subscribe(&subscription(("T", "1"), "s", "shared", true))
        .await
        .unwrap();
    b_store
        .subscribe(&subscription(("T", "1"), "s", "shared", true))
        .await
        .unwrap();
    a.publish("shared", b("from-a")).await.unwrap();
    // Application b delivers its own subscription only.
    let (offset, id, body) = deliver_one(&b_store, &actor, "s").await;
    assert_eq!((offset, body), (1, b("[from-a]")));
    b_store
        .complete(&NodeId("node-b".into()), &id, &reply("ok"))
        .await
        .unwrap();
    assert_eq!(b_store.subscriptions().list_all().await.unwrap().len(), 1);
    // Purging b keeps a's subscription and the shared topic.
    b_store.purge().await.unwrap();
    assert!(b_store.subscriptions().list_all().await.unwrap().is_empty());
    assert_eq!(a.subscriptions().list(&actor).await.unwrap().len(), 1);
    assert!(!a.topic_create("shared").await.unwrap());
    // a's subscription is still at the start: nobody delivered it (no member of a).
    // (b_store's own member was purged: its writes are fenced; another handle's are not.)
    let b_again = engine.open("app-b").await;
    assert!(!b_again.subscriptions().cancel(&actor, "s").await.unwrap());
    assert_eq!(a.subscriptions().cancel_all(&actor).await.unwrap(), 1);
}

/// Topics are global: a subscription of another application keeps its events from
/// being trimmed from the moment it is written, before that application ever ran a
/// trim pass of its own.
async fn a_new_subscription_of_another_app_holds_trimming_back(engine: &Engine) {
    let store = engine.open("app").await;
    let other = engine.open("other").await;
    let _inbox = other.join(&member("node-o", "so", &["T"])).await.unwrap();
    let node_o = NodeId("node-o".into());
    for n in 1..=3 {
        store
            .publish("shared", Bytes::from(format!("{n}")))
            .await
            .unwrap();
    }
    other
        .subscribe(&subscription(("T", "r"), "s", "shared", true))
        .await
        .unwrap();
    // `app` reads nothing of the topic, yet trims nothing: `other` has not read it.
    assert_eq!(store.trim("shared", Duration::ZERO, 100).await.unwrap(), 0);
    let reader = ActorRef::new("T", "r");
    for n in 1..=2 {
        let (offset, id, _) = deliver_one(&other, &reader, "s").await;
        assert_eq!(offset, n);
        other.complete(&node_o, &id, &reply("ok")).await.unwrap();
    }
    // Once `other` passed two of them (and said so with a trim pass), they go.
    assert_eq!(other.trim("shared", Duration::ZERO, 100).await.unwrap(), 2);
    assert_eq!(store.trim("shared", Duration::ZERO, 100).await.unwrap(), 0);
    let (offset, id, _) = deliver_one(&other, &reader, "s").await;
    assert_eq!(offset, 3);
    other.complete(&node_o, &id, &reply("ok")).await.unwrap();
}

async fn events_trimmed_once_passed_and_past_retention(engine: &Engine) {
    let store = engine.open("app").await;
    let _inbox = store.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let node_a = NodeId("node-a".into());
    let reader = ActorRef::new("T", "r");
    store
        .subscribe(&subscription(("T", "r"), "s", "kept", true))
        .await
        .unwrap();
    for n in 1..=3 {
        store
            .publish("kept", Bytes::from(format!("{n}")))
            .await
            .unwrap();
    }
    const HOUR: Duration = Duration::from_secs(3600);
    // Nothing passed yet: nothing goes, whatever the retention.
    assert_eq!(store.trim("kept", Duration::ZERO, 100).await.unwrap(), 0);
    for n in 1..=2 {
        let (offset, id, _) = deliver_one(&store, &reader, "s").await;
        assert_eq!(offset, n);
        store.complete(&node_a, &id, &reply("ok")).await.unwrap();
    }
    // Passed, but within the retention: kept.
    assert_eq!(store.trim("kept", HOUR, 100).await.unwrap(), 0);
    // Passed and past it: the two delivered events go, the third stays.
    assert_eq!(store.trim("kept", Duration::ZERO, 100).await.unwrap(), 2);
    assert_eq!(store.trim("kept", Duration::ZERO, 100).await.unwrap(), 0);
    // Offsets go on; a subscription from the oldest starts after the trimmed ones.
    assert_eq!(store.publish("kept", b("4")).await.unwrap(), 4);
    let late = ActorRef::new("T", "late");
    store
        .subscribe(&subscription(("T", "late"), "s", "kept", true))
        .await
        .unwrap();
    let (offset, id, body) = deliver_one(&store, &late, "s").await;
    assert_eq!((offset, body), (3, b("[3]")));
    store.complete(&node_a, &id, &reply("ok")).await.unwrap();
    let (offset, id, _) = deliver_one(&store, &reader, "s").await;
    assert_eq!(offset, 3);
    store.complete(&node_a, &id, &reply("ok")).await.unwrap();
    // A topic nobody subscribes to is trimmed on age alone, `max` at a time.
    for n in 1..=5 {
        store
            .publish("lonely", Bytes::from(format!("{n}")))
            .await
            .unwrap();
    }
    assert_eq!(store.trim("lonely", Duration::ZERO, 2).await.unwrap(), 2);
    assert_eq!(store.trim("lonely", Duration::ZERO, 10).await.unwrap(), 3);
    assert_eq!(store.trim("lonely", Duration::ZERO, 10).await.unwrap(), 0);
    assert_eq!(store.publish("lonely", b("6")).await.unwrap(), 6);
}

async fn events_bridge_appends_once_and_is_taken_over(engine: &Engine) {
    let a = engine.open("app").await;
    let b_store = engine.open("app").await;
    let _inbox_a = a.join(&member("node-a", "sa", &["T"])).await.unwrap();
    let _inbox_b = b_store.join(&member("node-b", "sb", &["T"])).await.unwrap();
    let bridge = Bridge {
        topic: "k".into(),
        source: "kafka:k".into(),
        partition: 0,
    };
    // A lease long enough for the first part; the takeover waits for its end.
    let lease = Duration::from_secs(2);
    assert_eq!(
        a.bridge_claim(&bridge, "node-a", lease).await.unwrap(),
        Claim::Mine(None)
    );
    assert_eq!(
        b_store
            .bridge_claim(&bridge, "node-b", lease)
            .await
            .unwrap(),
        Claim::Owned("node-a".into())
    );
    let append = |store: &Arc<dyn kar_store::Store>, node: &str, from, next, events: &[&str]| {
        let (store, bridge, node) = (store.clone(), bridge.clone(), node.to_string());
        let events: Vec<Bytes> = events.iter().map(|e| b(e)).collect();
        async move {
            store
                .bridge_append(&bridge, &node, lease, from, next, events)
                .await
                .unwrap()
        }
    };
    assert!(append(&a, "node-a", None, 2, &["e0", "e1"]).await);
    // The same batch again (a retry after a lost reply, say): refused.
    assert!(!append(&a, "node-a", None, 2, &["e0", "e1"]).await);
    // A non-owner cannot append.
    assert!(!append(&b_store, "node-b", Some(2), 3, &["x"]).await);
    assert!(append(&a, "node-a", Some(2), 3, &["e2"]).await);
    assert_eq!(
        a.bridge_claim(&bridge, "node-a", lease).await.unwrap(),
        Claim::Mine(Some(3))
    );
    // node-a goes away: node-b takes over where it stopped (at once on the embedded
    // store, once the bridge lease ran out on Redis).
    a.leave(&NodeId("node-a".into())).await.unwrap();
    let start = Instant::now();
    loop {
        match b_store
            .bridge_claim(&bridge, "node-b", lease)
            .await
            .unwrap()
        {
            Claim::Mine(next) => {
                assert_eq!(next, Some(3));
                break;
            }
            Claim::Owned(owner) => assert_eq!(owner, "node-a"),
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the bridge was never taken over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The former owner, waking up late, appends nothing.
    let late = engine.open("app").await;
    assert!(!append(&late, "node-a", Some(3), 4, &["stale"]).await);
    assert!(append(&b_store, "node-b", Some(3), 4, &["e3"]).await);
    // Each record once, in order.
    b_store
        .subscribe(&subscription(("T", "r"), "s", "k", true))
        .await
        .unwrap();
    let reader = ActorRef::new("T", "r");
    for (n, event) in ["e0", "e1", "e2", "e3"].into_iter().enumerate() {
        let (offset, id, body) = deliver_one(&b_store, &reader, "s").await;
        assert_eq!(
            (offset, body),
            (n as u64 + 1, Bytes::from(format!("[{event}]")))
        );
        b_store
            .complete(&NodeId("node-b".into()), &id, &reply("ok"))
            .await
            .unwrap();
    }
    assert_eq!(
        b_store
            .deliver_event(&reader, "s", &event_builder())
            .await
            .unwrap(),
        Delivery::UpToDate
    );
}

// ----- recovery (guarantees 2–5) -----

/// Waits (bounded) until member `node` of `app` is fully removed (recovered).
async fn wait_removed(engine: &Engine, app: &str, node: &str) {
    let start = Instant::now();
    loop {
        let left = engine.leftovers(app, node);
        if left.is_empty() {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{node} was never removed: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The single `Execute` of `messages`.
fn only_execute(messages: Vec<Message>) -> kar_protocol::Request {
    match <[Message; 1]>::try_from(messages) {
        Ok([Message::Execute(request)]) => *request,
        Ok([other]) => panic!("expected Execute, got {other:?}"),
        Err(messages) => panic!("expected one message, got {messages:?}"),
    }
}

async fn recovery_redelivers_with_the_next_attempt(engine: &Engine) {
    let store = engine.open("app").await;
    let mut first = store.join(&member("node-1", "svc", &[])).await.unwrap();
    let r = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    let (got, _) = recv_n(&mut first, 1).await;
    assert_eq!(only_execute(got).attempt, 0);
    // Each recovery of the step's executor re-delivers it with the next attempt.
    let mut expected = r.clone();
    let mut previous = NodeId("node-1".into());
    for (attempt, node) in [(1, "node-2"), (2, "node-3")] {
        let mut next = store.join(&member(node, "svc", &[])).await.unwrap();
        store.leave(&previous).await.unwrap();
        let (got, _) = recv_n(&mut next, 1).await;
        expected.attempt = attempt;
        assert_eq!(only_execute(got), expected);
        previous = NodeId(node.into());
    }
    // A dead member (killed, not left) is recovered the same way.
    let mut doomed = ChildMember::spawn(engine, "app", "node-doomed", "svc2");
    let t = request(RequestKind::Tell, "svc2", "node-c");
    assert_eq!(
        store.enqueue(&t).await.unwrap(),
        Routing::Assigned(NodeId("node-doomed".into()))
    );
    let mut heir = store.join(&member("node-heir", "svc2", &[])).await.unwrap();
    doomed.kill();
    let (got, _) = recv_n(&mut heir, 1).await;
    let mut expected = t.clone();
    expected.attempt = 1;
    assert_eq!(only_execute(got), expected);
    // Tail calls start the next step at the attempt the continuation carries.
    let mut next = t.clone();
    next.step = 1;
    next.attempt = 0;
    next.target = Target::Service {
        name: "svc2".into(),
    };
    let heir_node = NodeId("node-heir".into());
    store.tail_call(&heir_node, &next, false).await.unwrap();
    let (got, _) = recv_n(&mut heir, 1).await;
    assert_eq!(only_execute(got), next);
}

async fn redelivered_request_waits_for_its_children(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut kids = store.join(&member("node-k", "kids", &[])).await.unwrap();
    let _ = recv_members_changed(&mut caller).await;
    let mut host = store.join(&member("node-1", "s1", &["A"])).await.unwrap();
    // R runs on node-1 and makes a call, a tell and a promise that nobody serves yet.
    let r = actor_request(RequestKind::Call, "A", "1", "node-c");
    store.enqueue(&r).await.unwrap();
    let (got, _) = recv_n(&mut host, 1).await;
    assert_eq!(executed(&got), vec![r.id.clone()]);
    let child = |kind: RequestKind, service: &str| {
        let mut c = request(kind, service, "node-1");
        c.parent = Some(r.id.clone());
        c
    };
    let call = child(RequestKind::Call, "kids");
    let tell = child(RequestKind::Tell, "kids");
    let promise = child(RequestKind::Promise, "nobody");
    store.enqueue(&call).await.unwrap();
    store.enqueue(&tell).await.unwrap();
    assert_eq!(store.enqueue(&promise).await.unwrap(), Routing::Parked);
    let (got, _) = recv_n(&mut kids, 2).await;
    assert_eq!(executed(&got), vec![call.id.clone(), tell.id.clone()]);

    // node-1 goes: R is held (its children run), not re-delivered to node-2.
    let mut heir = store.join(&member("node-2", "s2", &["A"])).await.unwrap();
    store.leave(&NodeId("node-1".into())).await.unwrap();
    // Markers prove that nothing reached node-2 before them (inboxes are ordered).
    let marker = |id: &str| actor_request(RequestKind::Tell, "A", id, "node-c");
    let m1 = marker("marker-1");
    store.enqueue(&m1).await.unwrap();
    let (got, _) = recv_n(&mut heir, 1).await;
    assert_eq!(executed(&got), vec![m1.id]);

    // A tell does not hold R; the call's completion is recorded (its caller is gone:
    // nothing goes to a dead inbox, nothing stays behind) but the promise still runs.
    let node_k = NodeId("node-k".into());
    assert!(store
        .complete(&node_k, &tell.id, &reply("t"))
        .await
        .unwrap());
    assert!(store
        .complete(&node_k, &call.id, &reply("c"))
        .await
        .unwrap());
    assert!(!store
        .complete(&node_k, &call.id, &reply("c"))
        .await
        .unwrap());
    assert!(!engine.request_exists("app", &call.id));
    let m2 = marker("marker-2");
    store.enqueue(&m2).await.unwrap();
    let (got, _) = recv_n(&mut heir, 1).await;
    assert_eq!(executed(&got), vec![m2.id]);

    // The last child ends (its start deadline passed while parked): R is routed, to
    // A's new placement, at its next attempt.
    assert!(store.expire_parked(&promise.id).await.unwrap());
    let (got, _) = recv_n(&mut heir, 1).await;
    let mut expected = r.clone();
    expected.attempt = 1;
    assert_eq!(only_execute(got), expected);
    let node_2 = NodeId("node-2".into());
    assert!(store.complete(&node_2, &r.id, &reply("r")).await.unwrap());
    let (got, _) = recv_n(&mut caller, 1).await;
    assert_eq!(
        got,
        vec![Message::Completed {
            id: r.id.clone(),
            kind: RequestKind::Call,
            outcome: reply("r"),
        }]
    );
    assert!(engine.leftovers("app", "node-1").is_empty());
}

async fn held_request_is_parked_when_released_without_a_host(engine: &Engine) {
    let store = engine.open("app").await;
    let _kids = store.join(&member("node-k", "kids", &[])).await.unwrap();
    let mut solo = store.join(&member("node-1", "solo", &[])).await.unwrap();
    let r = request(RequestKind::Tell, "solo", "node-c");
    store.enqueue(&r).await.unwrap();
    let (got, _) = recv_n(&mut solo, 1).await;
    assert_eq!(executed(&got), vec![r.id.clone()]);
    let mut call = request(RequestKind::Call, "kids", "node-1");
    call.parent = Some(r.id.clone());
    store.enqueue(&call).await.unwrap();
    store.leave(&NodeId("node-1".into())).await.unwrap();
    // Held: neither parked nor queued.
    assert!(!store.expire_parked(&r.id).await.unwrap());
    assert!(engine.request_exists("app", &r.id));
    let node_k = NodeId("node-k".into());
    assert!(store
        .complete(&node_k, &call.id, &reply("c"))
        .await
        .unwrap());
    // Released with nobody to run it: parked, and adopted by the next host.
    let mut heir = store.join(&member("node-2", "solo", &[])).await.unwrap();
    let (got, _) = recv_n(&mut heir, 1).await;
    let mut expected = r.clone();
    expected.attempt = 1;
    assert_eq!(only_execute(got), expected);
}

async fn completion_for_a_dead_caller_leaves_nothing(engine: &Engine) {
    let store = engine.open("app").await;
    let mut executor = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let mut doomed = ChildMember::spawn(engine, "app", "node-doomed", "caller");
    // Completed while the caller lives, then the caller dies with the outcome
    // uncollected; and a call completed after its caller died.
    let before = request(RequestKind::Call, "svc", "node-doomed");
    let after = request(RequestKind::Promise, "svc", "node-doomed");
    store.enqueue(&before).await.unwrap();
    store.enqueue(&after).await.unwrap();
    recv_n(&mut executor, 2).await;
    let node_e = NodeId("node-e".into());
    assert!(store
        .complete(&node_e, &before.id, &reply("b"))
        .await
        .unwrap());
    assert!(engine.request_exists("app", &before.id));
    doomed.kill();
    wait_removed(engine, "app", "node-doomed").await;
    assert!(store
        .complete(&node_e, &after.id, &reply("a"))
        .await
        .unwrap());
    // Never run again, nothing kept for the dead caller.
    assert!(!store
        .complete(&node_e, &after.id, &reply("a"))
        .await
        .unwrap());
    assert!(!engine.request_exists("app", &before.id));
    assert!(!engine.request_exists("app", &after.id));
    assert_eq!(engine.leftovers("app", "node-doomed"), Vec::<String>::new());
}

/// Enqueues `n` tells, round robin over `actors` actors of type `T` (hosted by the
/// only member offering `T`).
async fn queue_actor_tells(
    store: &dyn kar_store::Store,
    actors: usize,
    n: usize,
) -> Vec<kar_protocol::Request> {
    let mut out = Vec::new();
    for i in 0..n {
        let r = actor_request(
            RequestKind::Tell,
            "T",
            &format!("a{}", i % actors),
            "node-c",
        );
        assert!(matches!(
            store.enqueue(&r).await.unwrap(),
            Routing::Assigned(_)
        ));
        out.push(r);
    }
    out
}

/// Receives the `Execute` messages of `n` requests.
async fn recv_requests(
    inbox: &mut Box<dyn kar_store::Inbox>,
    n: usize,
) -> Vec<kar_protocol::Request> {
    let (got, _) = recv_n(inbox, n).await;
    got.into_iter()
        .map(|m| match m {
            Message::Execute(r) => *r,
            other => panic!("expected Execute, got {other:?}"),
        })
        .collect()
}

async fn recovery_keeps_arrival_order(engine: &Engine) {
    // More requests than one recovery step handles on Redis (256).
    const N: usize = 700;
    let store = engine.open("app").await;
    let mut doomed = ChildMember::spawn_with(
        engine,
        "app",
        "node-doomed",
        "svc",
        ChildOptions {
            actors: &["T"],
            ..ChildOptions::default()
        },
    );
    let sent = queue_actor_tells(&*store, 3, N).await;
    let mut heir = store
        .join(&member("node-heir", "sh", &["T"]))
        .await
        .unwrap();
    let killed = Instant::now();
    doomed.kill();
    let got = recv_requests(&mut heir, N).await;
    let recovered = killed.elapsed();
    let expected: Vec<_> = sent
        .into_iter()
        .map(|mut r| {
            r.attempt = 1;
            r
        })
        .collect();
    assert_eq!(got, expected);
    wait_removed(engine, "app", "node-doomed").await;
    assert!(engine.leftovers("app", "node-doomed").is_empty());
    println!("recovery of {N} queued requests: {recovered:?} from the kill to the last delivery");
}

async fn recovery_survives_a_crash_of_the_recoverer(engine: &Engine) {
    const N: usize = 600;
    let store = engine.open("app").await;
    let mut doomed = ChildMember::spawn(engine, "app", "node-doomed", "svc");
    // Joins after node-doomed, so that it watches it (embedded); it serves another
    // name, so that the re-routing it does before crashing parks the requests.
    let mut crasher = ChildMember::spawn_with(
        engine,
        "app",
        "node-crasher",
        "other",
        ChildOptions {
            crash_in_recovery: true,
            ..ChildOptions::default()
        },
    );
    let mut sent = Vec::new();
    for _ in 0..N {
        let r = request(RequestKind::Tell, "svc", "node-c");
        assert_eq!(
            store.enqueue(&r).await.unwrap(),
            Routing::Assigned(NodeId("node-doomed".into()))
        );
        sent.push(r);
    }
    doomed.kill();
    assert!(
        crasher.exited_within(PATIENCE),
        "the recoverer did not crash in the recovery"
    );
    // This member joins only now (it watches both dead members, or recovers them at
    // its renewals once the crashed recoverer's lock has expired).
    let mut heir = store.join(&member("node-heir", "svc", &[])).await.unwrap();
    let got = recv_requests(&mut heir, N).await;
    let expected: Vec<_> = sent
        .into_iter()
        .map(|mut r| {
            r.attempt = 1;
            r
        })
        .collect();
    assert_eq!(got, expected);
    wait_removed(engine, "app", "node-doomed").await;
    wait_removed(engine, "app", "node-crasher").await;
    // Delivered once: nothing follows but a marker.
    let marker = request(RequestKind::Tell, "svc", "node-c");
    store.enqueue(&marker).await.unwrap();
    let (got, _) = recv_n(&mut heir, 1).await;
    assert_eq!(executed(&got), vec![marker.id]);
    assert!(engine.leftovers("app", "node-doomed").is_empty());
    assert!(engine.leftovers("app", "node-crasher").is_empty());
}

async fn completions_only_by_the_assignee(engine: &Engine) {
    let store = engine.open("app").await;
    let mut one = store.join(&member("node-1", "svc", &[])).await.unwrap();
    let _two = store.join(&member("node-2", "other", &[])).await.unwrap();
    let r = request(RequestKind::Tell, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    recv_n(&mut one, 1).await;
    // A live member that does not run the request cannot complete it.
    let node_2 = NodeId("node-2".into());
    assert!(!store.complete(&node_2, &r.id, &reply("no")).await.unwrap());
    assert!(engine.request_exists("app", &r.id));
    assert!(store
        .complete(&NodeId("node-1".into()), &r.id, &reply("ok"))
        .await
        .unwrap());
}

/// A batch of completions (`complete_all`: the group commit of tells) records each as
/// `complete` alone would: in one batch, the requests still queued on the executor
/// are done (a call's outcome reaches its caller), while a request an operator killed
/// meanwhile, one completed already, one queued on another member and an unknown id
/// change nothing. A batch by a member that left is refused whole, and what it held
/// goes on elsewhere.
async fn completions_in_a_batch_are_each_as_alone(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut e = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let mut other = store.join(&member("node-o", "svc2", &[])).await.unwrap();
    let _ = recv_members_changed(&mut caller).await;
    let node_e = NodeId("node-e".into());
    let tell = request(RequestKind::Tell, "svc", "node-c");
    let call = request(RequestKind::Call, "svc", "node-c");
    let killed = request(RequestKind::Tell, "svc", "node-c");
    let done = request(RequestKind::Tell, "svc", "node-c");
    for r in [&tell, &call, &killed, &done] {
        store.enqueue(r).await.unwrap();
    }
    recv_n(&mut e, 4).await;
    let elsewhere = request(RequestKind::Tell, "svc2", "node-c");
    store.enqueue(&elsewhere).await.unwrap();
    recv_n(&mut other, 1).await;
    assert!(matches!(
        store.kill(&killed.id).await.unwrap(),
        Killed::Killed { .. }
    ));
    assert!(store
        .complete(&node_e, &done.id, &reply("once"))
        .await
        .unwrap());
    let batch = [
        (tell.id.clone(), reply("t")),
        (killed.id.clone(), reply("k")),
        (call.id.clone(), reply("c")),
        (done.id.clone(), reply("again")),
        (elsewhere.id.clone(), reply("not mine")),
        (RequestId::generate(), reply("unknown")),
    ];
    assert_eq!(
        store.complete_all(&node_e, &batch).await.unwrap(),
        [true, false, true, false, false, false]
    );
    assert!(!engine.request_exists("app", &tell.id));
    assert!(engine.request_exists("app", &elsewhere.id));
    let (got, _) = recv_n(&mut caller, 1).await;
    assert_eq!(
        got,
        vec![Message::Completed {
            id: call.id.clone(),
            kind: RequestKind::Call,
            outcome: reply("c"),
        }]
    );
    // A member that left: its batch changes nothing, its requests go to the heir.
    let late = request(RequestKind::Tell, "svc2", "node-c");
    store.enqueue(&late).await.unwrap();
    recv_n(&mut other, 1).await;
    let mut heir = store.join(&member("node-h", "svc2", &[])).await.unwrap();
    let node_o = NodeId("node-o".into());
    store.leave(&node_o).await.unwrap();
    let refused = store
        .complete_all(
            &node_o,
            &[
                (elsewhere.id.clone(), reply("late")),
                (late.id.clone(), reply("late")),
            ],
        )
        .await;
    assert!(matches!(refused, Err(StoreError::Fenced(_))), "{refused:?}");
    let mut moved = executed(&recv_n(&mut heir, 2).await.0);
    moved.sort();
    let mut expected = vec![elsewhere.id.clone(), late.id.clone()];
    expected.sort();
    assert_eq!(moved, expected);
    let node_h = NodeId("node-h".into());
    let batch = [
        (elsewhere.id.clone(), reply("h")),
        (late.id.clone(), reply("h")),
    ];
    assert_eq!(
        store.complete_all(&node_h, &batch).await.unwrap(),
        [true, true]
    );
    assert!(!engine.request_exists("app", &late.id));
}

/// Run by a zombie before it is stopped: a due reminder and an undelivered event.
async fn zombie_prepare(store: &dyn kar_store::Store, _node: &str) {
    store
        .reminder_schedule(&reminder(("Z", "1"), "r", 1_000, 0))
        .await
        .unwrap();
    store
        .subscribe(&subscription(("Z", "1"), "s", "zombie-topic", true))
        .await
        .unwrap();
    store
        .publish("zombie-topic", Bytes::from_static(b"e"))
        .await
        .unwrap();
}

const ZOMBIE_ENQUEUED: &str = "req-zombie-enqueued";

/// Run by a zombie after it resumed: every transition a member makes, each reported
/// as `<name>: fenced` or `<name>: <what happened>`.
async fn zombie_transitions(store: &dyn kar_store::Store, node: &str, id: &str) -> Vec<String> {
    let me = NodeId(node.into());
    let id = RequestId(id.into());
    let actor = ActorRef::new("Z", "1");
    let mut own = request(RequestKind::Call, "svc", node);
    own.id = RequestId(ZOMBIE_ENQUEUED.into());
    let mut next = request(RequestKind::Call, "svc", node);
    next.id = id.clone();
    next.step = 1;
    fn report<T: std::fmt::Debug>(name: &str, result: Result<T, StoreError>) -> String {
        match result {
            Err(StoreError::Fenced(_)) => format!("{name}: fenced"),
            other => format!("{name}: {other:?}"),
        }
    }
    vec![
        report("enqueue", store.enqueue(&own).await),
        report("complete", store.complete(&me, &id, &reply("zombie")).await),
        report(
            "complete_all",
            store
                .complete_all(&me, &[(id.clone(), reply("zombie"))])
                .await,
        ),
        report("tail_call", store.tail_call(&me, &next, false).await),
        report(
            "state_set",
            store
                .state_set(&actor, "k", None, Bytes::from_static(b"v"))
                .await,
        ),
        report("fire_due", store.fire_due(2_000, 10, &tell_builder()).await),
        report(
            "deliver_event",
            store.deliver_event(&actor, "s", &event_builder()).await,
        ),
        report("remove_actor", store.remove_actor(&actor).await),
        report("forget", store.forget(std::slice::from_ref(&id)).await),
        report("expire_parked", store.expire_parked(&id).await),
    ]
}

/// A member stopped past its lease (SIGSTOP) commits nothing when it resumes: its
/// requests were recovered elsewhere meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_member_stopped_past_its_lease_is_fenced() {
    let engine = Engine::redis();
    let mut zombie = ChildMember::spawn_with(
        &engine,
        "app",
        "node-zombie",
        "svc",
        ChildOptions {
            actors: &["Z"],
            zombie: true,
            ..ChildOptions::default()
        },
    );
    let store = engine.open("app").await;
    let r = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    let mut live = store
        .join(&member("node-live", "svc", &["Z"]))
        .await
        .unwrap();
    zombie.signal(true);
    // Recovered once its lease expired: R is re-delivered here.
    let got = recv_requests(&mut live, 1).await;
    assert_eq!((got[0].id.clone(), got[0].attempt), (r.id.clone(), 1));
    wait_removed(&engine, "app", "node-zombie").await;
    zombie.signal(false);
    let results = zombie.resume_zombie(r.id.as_str());
    assert_eq!(results.len(), 10, "{results:?}");
    for result in &results {
        assert!(result.ends_with(": fenced"), "{results:?}");
    }
    // Nothing it tried was committed.
    assert!(!engine.request_exists("app", &RequestId(ZOMBIE_ENQUEUED.into())));
    let actor = ActorRef::new("Z", "1");
    assert_eq!(store.state_get(&actor, "k", None).await.unwrap(), None);
    assert_eq!(
        store
            .reminders()
            .get(&actor, "r")
            .await
            .unwrap()
            .unwrap()
            .target,
        1_000
    );
    let (offset, _, _) = deliver_one(&store, &actor, "s").await;
    assert_eq!(offset, 1);
    // R is still the live member's to complete.
    assert!(store
        .complete(&NodeId("node-live".into()), &r.id, &reply("ok"))
        .await
        .unwrap());
}

/// A database made by the previous version (no `parent` column) is migrated on open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_database_of_the_previous_version_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let old = request(RequestKind::Tell, "late", "node-c");
    {
        let conn = rusqlite::Connection::open(dir.path().join("kar.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE requests (
                seq INTEGER PRIMARY KEY, app TEXT NOT NULL, id TEXT NOT NULL,
                name TEXT NOT NULL, actor_type TEXT, actor_id TEXT, status TEXT NOT NULL,
                kind INTEGER NOT NULL, assignee TEXT, caller TEXT NOT NULL,
                record BLOB NOT NULL, outcome BLOB, UNIQUE (app, id))",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO requests (app, id, name, status, kind, caller, record)
             VALUES ('app', ?1, 'late', 'parked', 1, 'node-c', ?2)",
            rusqlite::params![old.id.as_str(), postcard::to_stdvec(&old).unwrap()],
        )
        .unwrap();
    }
    let engine = Engine::Embedded(dir);
    let store = engine.open("app").await;
    // Opening twice is harmless (the migration is idempotent).
    let store2 = engine.open("app").await;
    let mut inbox = store.join(&member("node-l", "late", &[])).await.unwrap();
    let (got, _) = recv_n(&mut inbox, 1).await;
    assert_eq!(executed(&got), vec![old.id.clone()]);
    // Parent links work on the migrated table.
    let mut child = request(RequestKind::Call, "late", "node-l");
    child.parent = Some(old.id.clone());
    store2.enqueue(&child).await.unwrap();
    recv_n(&mut inbox, 1).await;
}

/// A database made by a newer kar (a schema version this build does not know) is
/// refused with a configuration error, and left as it was.
#[tokio::test]
async fn embedded_database_of_a_newer_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kar.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 9999)
        .unwrap();
    let config = kar_store::StoreConfig::Embedded {
        dir: dir.path().to_path_buf(),
        sync: Default::default(),
    };
    let err = match kar_store::open(&config, "app").await {
        Ok(_) => panic!("a database of a newer version was opened"),
        Err(e) => e,
    };
    assert!(
        matches!(&err, StoreError::Config(m) if m.contains("9999")),
        "{err}"
    );
    let version: u32 = rusqlite::Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap();
    assert_eq!(version, 9999);
}

// ----- attempt cap: paused requests and resume (issue 9) -----

fn cap(max_attempts: u32) -> RecoveryPolicy {
    RecoveryPolicy { max_attempts }
}

/// Re-delivers request `r`, queued on `previous` (whose inbox is given, already
/// drained of it), through `rounds` recoveries by `store` (leave after a successor
/// joined); returns the last successor's node and inbox, and the attempts seen.
async fn kill_executors(
    store: &dyn kar_store::Store,
    service: &str,
    mut previous: String,
    rounds: u32,
) -> (String, Box<dyn kar_store::Inbox>, Vec<u32>) {
    let mut attempts = Vec::new();
    let mut last = None;
    for round in 1..=rounds {
        let node = format!("{previous}-{round}");
        let mut next = store.join(&member(&node, service, &[])).await.unwrap();
        store.leave(&NodeId(previous.clone())).await.unwrap();
        if round < rounds {
            let (got, _) = recv_n(&mut next, 1).await;
            attempts.push(only_execute(got).attempt);
        }
        previous = node.clone();
        last = Some((node, next));
    }
    let (node, inbox) = last.expect("at least one round");
    (node, inbox, attempts)
}

/// The next request executed by `inbox` once `marker` was enqueued behind whatever
/// else may have been routed to it: `marker` itself proves nothing else was.
async fn only_marker_arrives(
    store: &dyn kar_store::Store,
    inbox: &mut Box<dyn kar_store::Inbox>,
    service: &str,
) {
    let marker = request(RequestKind::Tell, service, "node-c");
    store.enqueue(&marker).await.unwrap();
    let (got, _) = recv_n(inbox, 1).await;
    assert_eq!(
        only_execute(got).id,
        marker.id,
        "only the marker is delivered"
    );
}

async fn recovery_pauses_a_step_at_max_attempts(engine: &Engine) {
    let store = engine.open_with("app", cap(3)).await;
    let _caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut first = store.join(&member("node-1", "svc", &[])).await.unwrap();
    let r = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    assert_eq!(only_execute(recv_n(&mut first, 1).await.0).attempt, 0);
    // Its executor dies 3 times: attempts 1 and 2 are delivered, the third death
    // pauses it (it would have started attempt 3).
    let (last, mut inbox, attempts) = kill_executors(&*store, "svc", "node-1".into(), 3).await;
    assert_eq!(attempts, [1, 2]);
    only_marker_arrives(&*store, &mut inbox, "svc").await;
    // Paused: not completable by anyone, not an expirable parked request.
    let last = NodeId(last);
    assert!(!store.complete(&last, &r.id, &reply("no")).await.unwrap());
    assert!(!store.expire_parked(&r.id).await.unwrap());
    assert!(engine.request_exists("app", &r.id));
    // A dead member (killed, not left) is paused the same way: cap 1 pauses at once.
    // (Another application: no member of `store`, whose cap is 3, may recover it.)
    let capped = engine.open_with("app2", cap(1)).await;
    let mut doomed = ChildMember::spawn(engine, "app2", "node-doomed", "svc2");
    let t = request(RequestKind::Tell, "svc2", "node-c");
    assert_eq!(
        capped.enqueue(&t).await.unwrap(),
        Routing::Assigned(NodeId("node-doomed".into()))
    );
    let mut heir = capped
        .join(&member("node-heir", "svc2", &[]))
        .await
        .unwrap();
    doomed.kill();
    wait_removed(engine, "app2", "node-doomed").await;
    only_marker_arrives(&*capped, &mut heir, "svc2").await;
    assert_eq!(
        capped.resume(&t.id).await.unwrap(),
        Resumed::Routed(Routing::Assigned(NodeId("node-heir".into())))
    );
    let mut expected = t.clone();
    expected.attempt = 0;
    assert_eq!(only_execute(recv_n(&mut heir, 1).await.0), expected);
}

async fn paused_step_survives_deaths_and_joins_until_resumed(engine: &Engine) {
    let store = engine.open_with("app", cap(2)).await;
    // The caller joins through a handle without a cap: only the recoveries done by
    // `store` (of the members that leave through it) are capped.
    let uncapped = engine.open("app").await;
    let mut caller = uncapped
        .join(&member("node-c", "caller", &[]))
        .await
        .unwrap();
    let mut first = store.join(&member("node-1", "svc", &[])).await.unwrap();
    let r = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    recv_n(&mut first, 1).await;
    let (last, mut inbox, attempts) = kill_executors(&*store, "svc", "node-1".into(), 2).await;
    assert_eq!(attempts, [1]);
    only_marker_arrives(&*store, &mut inbox, "svc").await;
    // Another recovery (of the member that holds the marker) does not re-route it,
    // nor does the member that joins meanwhile adopt it, nor does a recoverer without
    // a cap.
    let mut heir = uncapped
        .join(&member("node-heir", "svc", &[]))
        .await
        .unwrap();
    uncapped.leave(&NodeId(last)).await.unwrap();
    let (got, _) = recv_n(&mut heir, 1).await;
    assert_ne!(
        only_execute(got).id,
        r.id,
        "the marker is re-delivered, not r"
    );
    only_marker_arrives(&*uncapped, &mut heir, "svc").await;
    // With nobody offering the target, resume parks it; a joining member adopts it
    // (attempt 0) and completes it: the caller gets the reply.
    uncapped.leave(&NodeId("node-heir".into())).await.unwrap();
    assert_eq!(
        uncapped.resume(&r.id).await.unwrap(),
        Resumed::Routed(Routing::Parked)
    );
    assert_eq!(
        uncapped.resume(&r.id).await.unwrap(),
        Resumed::NotPaused,
        "resumed once"
    );
    let mut fixed = uncapped
        .join(&member("node-fixed", "svc", &[]))
        .await
        .unwrap();
    // r and the two markers parked by the heir's departure, in arrival order.
    let (got, _) = recv_n(&mut fixed, 3).await;
    let Some(Message::Execute(first)) = got.into_iter().next() else {
        panic!("expected Execute");
    };
    let mut expected = r.clone();
    expected.attempt = 0;
    assert_eq!(*first, expected);
    let fixed_node = NodeId("node-fixed".into());
    assert!(store
        .complete(&fixed_node, &r.id, &reply("ok"))
        .await
        .unwrap());
    let (got, _) = recv_n(&mut caller, 1).await;
    assert_eq!(
        got,
        vec![Message::Completed {
            id: r.id.clone(),
            kind: RequestKind::Call,
            outcome: reply("ok"),
        }]
    );
}

async fn resume_of_unknown_or_unpaused_changes_nothing(engine: &Engine) {
    let store = engine.open_with("app", cap(3)).await;
    let mut inbox = store.join(&member("node-1", "svc", &[])).await.unwrap();
    assert_eq!(
        store.resume(&RequestId("r-unknown".into())).await.unwrap(),
        Resumed::Unknown
    );
    // Queued: resume changes nothing; it is delivered once and completes normally.
    let r = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    assert_eq!(store.resume(&r.id).await.unwrap(), Resumed::NotPaused);
    assert_eq!(only_execute(recv_n(&mut inbox, 1).await.0), r);
    only_marker_arrives(&*store, &mut inbox, "svc").await;
    // Parked: resume changes nothing either (it stays parked until expired).
    let p = request(RequestKind::Tell, "nobody", "node-c");
    assert_eq!(store.enqueue(&p).await.unwrap(), Routing::Parked);
    assert_eq!(store.resume(&p.id).await.unwrap(), Resumed::NotPaused);
    assert!(store.expire_parked(&p.id).await.unwrap());
    assert_eq!(store.resume(&p.id).await.unwrap(), Resumed::Unknown);
}

async fn max_attempts_zero_never_pauses(engine: &Engine) {
    let store = engine.open_with("app", cap(0)).await;
    let mut first = store.join(&member("node-1", "svc", &[])).await.unwrap();
    let r = request(RequestKind::Tell, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    recv_n(&mut first, 1).await;
    let (_, mut inbox, attempts) = kill_executors(&*store, "svc", "node-1".into(), 6).await;
    assert_eq!(attempts, [1, 2, 3, 4, 5]);
    let (got, _) = recv_n(&mut inbox, 1).await;
    assert_eq!(only_execute(got).attempt, 6);
}

async fn unstarted_requests_are_not_charged(engine: &Engine) {
    // Cap 1: any charged re-delivery pauses.
    let store = engine.open_with("app", cap(1)).await;
    let mut first = store.join(&member("node-1", "svc", &[])).await.unwrap();
    let started = request(RequestKind::Tell, "svc", "node-c");
    let unstarted = request(RequestKind::Tell, "svc", "node-c");
    store.enqueue(&started).await.unwrap();
    store.enqueue(&unstarted).await.unwrap();
    recv_n(&mut first, 2).await;
    let mut next = store.join(&member("node-2", "svc", &[])).await.unwrap();
    store
        .leave_releasing(
            &NodeId("node-1".into()),
            std::slice::from_ref(&unstarted.id),
        )
        .await
        .unwrap();
    // The one node-1 never started keeps its attempt; the other is paused.
    assert_eq!(only_execute(recv_n(&mut next, 1).await.0), unstarted);
    only_marker_arrives(&*store, &mut next, "svc").await;
    assert!(engine.request_exists("app", &started.id));
    assert!(matches!(
        store.resume(&started.id).await.unwrap(),
        Resumed::Routed(Routing::Assigned(_))
    ));
}

async fn resumed_request_waits_for_its_children(engine: &Engine) {
    let store = engine.open_with("app", cap(1)).await;
    let mut kids = store.join(&member("node-k", "kids", &[])).await.unwrap();
    let mut first = store.join(&member("node-1", "svc", &[])).await.unwrap();
    // R runs on node-1 and makes a call that is still running when node-1 goes.
    let r = request(RequestKind::Tell, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    recv_n(&mut first, 1).await;
    let mut call = request(RequestKind::Call, "kids", "node-1");
    call.parent = Some(r.id.clone());
    store.enqueue(&call).await.unwrap();
    assert_eq!(
        executed(&recv_n(&mut kids, 1).await.0),
        vec![call.id.clone()]
    );
    // Cap 1: the recovery pauses R (pausing comes before holding).
    let mut heir = store.join(&member("node-2", "svc", &[])).await.unwrap();
    store.leave(&NodeId("node-1".into())).await.unwrap();
    assert_eq!(store.resume(&r.id).await.unwrap(), Resumed::Held);
    // Resumed while the child runs: held until it completes, then routed (attempt 0).
    only_marker_arrives(&*store, &mut heir, "svc").await;
    let node_k = NodeId("node-k".into());
    assert!(store
        .complete(&node_k, &call.id, &reply("c"))
        .await
        .unwrap());
    let mut expected = r.clone();
    expected.attempt = 0;
    assert_eq!(only_execute(recv_n(&mut heir, 1).await.0), expected);
}

/// Every page of a listing, in order (pages of `limit`).
async fn list_all(
    store: &dyn kar_store::Store,
    filter: &RequestFilter,
    limit: usize,
) -> Vec<kar_store::PendingRequest> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_requests(filter, after, limit).await.unwrap();
        assert!(page.requests.len() <= limit);
        out.extend(page.requests);
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

fn ids(requests: &[kar_store::PendingRequest]) -> Vec<RequestId> {
    requests.iter().map(|r| r.request.id.clone()).collect()
}

async fn control_lists_pending_requests_by_pages_and_filters(engine: &Engine) {
    let store = engine.open("app").await;
    let other_app = engine.open("other").await;
    let mut e = store.join(&member("node-e", "svc", &["T"])).await.unwrap();
    let mut all = Vec::new();
    let mut services = Vec::new();
    let mut actors_a = Vec::new();
    let mut parked = Vec::new();
    for i in 0..12 {
        let r = match i % 3 {
            0 => request(RequestKind::Call, "svc", "node-c"),
            1 => actor_request(
                RequestKind::Tell,
                "T",
                if i < 6 { "a" } else { "b" },
                "node-c",
            ),
            _ => request(RequestKind::Tell, "nobody", "node-c"),
        };
        store.enqueue(&r).await.unwrap();
        match i % 3 {
            0 => services.push(r.id.clone()),
            1 if i < 6 => actors_a.push(r.id.clone()),
            1 => {}
            _ => parked.push(r.id.clone()),
        }
        all.push(r.id.clone());
    }
    other_app
        .enqueue(&request(RequestKind::Tell, "svc", "node-c"))
        .await
        .unwrap();
    let listed = list_all(&*store, &RequestFilter::default(), 5).await;
    assert_eq!(ids(&listed), all, "every page in arrival order");
    assert!(listed.windows(2).all(|w| w[0].seq < w[1].seq));
    let queued = listed.iter().find(|r| r.request.id == services[0]).unwrap();
    assert_eq!(queued.status, PendingStatus::Queued);
    assert_eq!(queued.assignee, Some(NodeId("node-e".into())));
    assert_eq!(queued.request.attempt, 0);
    let filter = |f: RequestFilter| f;
    let by_status = RequestFilter {
        status: Some(PendingStatus::Parked),
        ..Default::default()
    };
    let got = list_all(&*store, &filter(by_status), 2).await;
    assert_eq!(ids(&got), parked);
    assert!(got
        .iter()
        .all(|r| r.status == PendingStatus::Parked && r.assignee.is_none()));
    let by_service = RequestFilter {
        service: Some("svc".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list_all(&*store, &by_service, 100).await), services);
    let by_actor = RequestFilter {
        actor_type: Some("T".into()),
        actor_id: Some("a".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list_all(&*store, &by_actor, 1).await), actors_a);
    let by_id_only = RequestFilter {
        actor_id: Some("a".into()),
        ..Default::default()
    };
    assert_eq!(ids(&list_all(&*store, &by_id_only, 100).await), actors_a);
    // A completed request is no longer listed.
    recv_n(&mut e, 8).await;
    let node_e = NodeId("node-e".into());
    assert!(store
        .complete(&node_e, &services[0], &reply("x"))
        .await
        .unwrap());
    let listed = list_all(&*store, &RequestFilter::default(), 100).await;
    assert_eq!(ids(&listed), all[1..].to_vec());
}

async fn control_kill_completes_with_the_killed_outcome(engine: &Engine) {
    let store = engine.open("app").await;
    let mut caller = store.join(&member("node-c", "caller", &[])).await.unwrap();
    let mut e = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let _ = recv_members_changed(&mut caller).await;
    let node_e = NodeId("node-e".into());
    // Queued and received (running, as far as the store knows).
    let call = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&call).await.unwrap();
    assert_eq!(executed(&recv_n(&mut e, 1).await.0), vec![call.id.clone()]);
    assert_eq!(
        store.kill(&call.id).await.unwrap(),
        Killed::Killed {
            assignee: Some(node_e.clone())
        }
    );
    let (got, _) = recv_n(&mut caller, 1).await;
    assert_eq!(
        got,
        vec![Message::Completed {
            id: call.id.clone(),
            kind: RequestKind::Call,
            outcome: Outcome::Failed(KILLED.into()),
        }]
    );
    let (got, _) = recv_n(&mut e, 1).await;
    assert_eq!(
        got,
        vec![Message::Signal(Signal::Abandon {
            id: call.id.clone()
        })]
    );
    // The abandoned attempt's late outcome changes nothing.
    assert!(!store
        .complete(&node_e, &call.id, &reply("late"))
        .await
        .unwrap());
    assert_eq!(store.kill(&call.id).await.unwrap(), Killed::AlreadyComplete);
    assert!(store
        .list_requests(&RequestFilter::default(), None, 10)
        .await
        .unwrap()
        .requests
        .is_empty());
    // Queued, not received yet: its Execute never comes (or is abandoned right after).
    let tell = request(RequestKind::Tell, "svc", "node-c");
    store.enqueue(&tell).await.unwrap();
    assert!(matches!(
        store.kill(&tell.id).await.unwrap(),
        Killed::Killed { .. }
    ));
    assert!(!engine.request_exists("app", &tell.id));
    let abandon = Message::Signal(Signal::Abandon {
        id: tell.id.clone(),
    });
    let mut got = Vec::new();
    while !got.contains(&abandon) {
        let batch = tokio::time::timeout(PATIENCE, e.recv()).await;
        got.extend(batch.expect("abandon in time").unwrap());
    }
    got.retain(|m| *m != abandon);
    if !got.is_empty() {
        // Redis: the unread Execute stays in the stream, before the signal.
        assert_eq!(executed(&got), vec![tell.id.clone()]);
    }
    // Parked: gone, nothing to expire.
    let parked = request(RequestKind::Call, "nobody", "node-c");
    store.enqueue(&parked).await.unwrap();
    assert_eq!(
        store.kill(&parked.id).await.unwrap(),
        Killed::Killed { assignee: None }
    );
    assert!(!store.expire_parked(&parked.id).await.unwrap());
    let (got, _) = recv_n(&mut caller, 1).await;
    assert!(matches!(&got[0], Message::Completed { id, .. } if *id == parked.id));
}

async fn control_kill_releases_a_held_parent(engine: &Engine) {
    let store = engine.open("app").await;
    let mut h1 = store.join(&member("node-h1", "svch", &[])).await.unwrap();
    let mut kids = store.join(&member("node-k", "kids", &[])).await.unwrap();
    let held = request(RequestKind::Tell, "svch", "node-c");
    store.enqueue(&held).await.unwrap();
    recv_n(&mut h1, 1).await;
    let mut child = request(RequestKind::Call, "kids", "node-h1");
    child.parent = Some(held.id.clone());
    store.enqueue(&child).await.unwrap();
    recv_n(&mut kids, 1).await;
    let mut heir = store.join(&member("node-h2", "svch", &[])).await.unwrap();
    store.leave(&NodeId("node-h1".into())).await.unwrap();
    let (parent, children) = store
        .request_with_children(&held.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parent.status, PendingStatus::Held);
    assert_eq!(ids(&children), vec![child.id.clone()]);
    assert!(matches!(
        store.kill(&child.id).await.unwrap(),
        Killed::Killed { .. }
    ));
    // The parent goes on at once.
    let got = recv_n(&mut heir, 1).await.0;
    assert_eq!(executed(&got), vec![held.id.clone()]);
}

async fn control_pause_withdraws_until_resumed(engine: &Engine) {
    let store = engine.open("app").await;
    let mut e = store.join(&member("node-e", "svc", &[])).await.unwrap();
    let node_e = NodeId("node-e".into());
    let call = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&call).await.unwrap();
    recv_n(&mut e, 1).await;
    assert_eq!(
        store.pause(&call.id).await.unwrap(),
        Paused::Paused {
            assignee: Some(node_e.clone())
        }
    );
    assert_eq!(
        recv_n(&mut e, 1).await.0,
        vec![Message::Signal(Signal::Abandon {
            id: call.id.clone()
        })]
    );
    assert!(!store
        .complete(&node_e, &call.id, &reply("late"))
        .await
        .unwrap());
    assert_eq!(store.pause(&call.id).await.unwrap(), Paused::AlreadyPaused);
    let listed = store
        .list_requests(&RequestFilter::default(), None, 10)
        .await
        .unwrap()
        .requests;
    assert_eq!(ids(&listed), vec![call.id.clone()]);
    assert_eq!(listed[0].status, PendingStatus::Paused);
    assert_eq!(listed[0].assignee, None);
    // A parked one is paused too, and no join adopts it.
    let parked = request(RequestKind::Tell, "later", "node-c");
    store.enqueue(&parked).await.unwrap();
    assert_eq!(
        store.pause(&parked.id).await.unwrap(),
        Paused::Paused { assignee: None }
    );
    let mut later = store.join(&member("node-l", "later", &[])).await.unwrap();
    // Resume brings both back.
    assert_eq!(
        store.resume(&call.id).await.unwrap(),
        Resumed::Routed(Routing::Assigned(node_e.clone()))
    );
    assert_eq!(executed(&recv_n(&mut e, 1).await.0), vec![call.id.clone()]);
    assert!(matches!(
        store.resume(&parked.id).await.unwrap(),
        Resumed::Routed(Routing::Assigned(_))
    ));
    assert_eq!(
        executed(&recv_n(&mut later, 1).await.0),
        vec![parked.id.clone()]
    );
    assert!(store
        .complete(&node_e, &call.id, &reply("ok"))
        .await
        .unwrap());
    // Its caller is no member: the record went with the completion.
    assert_eq!(store.pause(&call.id).await.unwrap(), Paused::Unknown);
}

async fn control_request_with_children(engine: &Engine) {
    let store = engine.open("app").await;
    let mut p = store.join(&member("node-p", "parent", &[])).await.unwrap();
    let parent = request(RequestKind::Call, "parent", "node-c");
    store.enqueue(&parent).await.unwrap();
    recv_n(&mut p, 1).await;
    let mut call = request(RequestKind::Call, "nobody", "node-p");
    call.parent = Some(parent.id.clone());
    let mut promise = request(RequestKind::Promise, "nobody", "node-p");
    promise.parent = Some(parent.id.clone());
    for r in [&call, &promise] {
        store.enqueue(r).await.unwrap();
    }
    let (got, children) = store
        .request_with_children(&parent.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.request.id, parent.id);
    assert_eq!(got.status, PendingStatus::Queued);
    assert_eq!(ids(&children), vec![call.id.clone(), promise.id.clone()]);
    let (child, none) = store
        .request_with_children(&call.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(child.request.parent, Some(parent.id.clone()));
    assert_eq!(child.status, PendingStatus::Parked);
    assert!(none.is_empty());
    assert!(store.expire_parked(&call.id).await.unwrap());
    let (_, children) = store
        .request_with_children(&parent.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ids(&children), vec![promise.id.clone()]);
}

async fn control_bad_ids_change_nothing(engine: &Engine) {
    let store = engine.open("app").await;
    let other = engine.open("other").await;
    let r = request(RequestKind::Call, "nobody", "node-c");
    other.enqueue(&r).await.unwrap();
    // An id of another application is unknown here.
    assert_eq!(store.kill(&r.id).await.unwrap(), Killed::Unknown);
    assert_eq!(store.pause(&r.id).await.unwrap(), Paused::Unknown);
    assert_eq!(store.request_with_children(&r.id).await.unwrap(), None);
    let unknown = RequestId::generate();
    assert_eq!(store.kill(&unknown).await.unwrap(), Killed::Unknown);
    assert_eq!(store.pause(&unknown).await.unwrap(), Paused::Unknown);
    let (still, _) = other.request_with_children(&r.id).await.unwrap().unwrap();
    assert_eq!(still.status, PendingStatus::Parked);
}

// ----- TLS and ACL (Redis) -----

/// A CA other than the server's: opening fails at once with a configuration error
/// that names TLS and the setting to check; skipping verification connects.
#[tokio::test]
async fn redis_tls_with_a_wrong_ca_is_refused_clearly() {
    let server = RedisServer::start_tls();
    let other = tempfile::tempdir().unwrap();
    make_certificates(other.path(), "other-");
    let wrong = kar_store::RedisConfig {
        ca_cert: Some(std::fs::read(other.path().join("other-ca.crt")).unwrap()),
        ..server.config()
    };
    let err = kar_store::open(&kar_store::StoreConfig::Redis(wrong.clone()), "app")
        .await
        .err()
        .expect("a wrong CA must be refused");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("TLS") && text.contains("REDIS_CA"), "{text}");
    // The system's roots do not know the test's CA either.
    let system = kar_store::RedisConfig {
        ca_cert: None,
        ..server.config()
    };
    let err = kar_store::open(&kar_store::StoreConfig::Redis(system), "app")
        .await
        .err()
        .expect("an unknown CA must be refused");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    // Without verification the same connection works.
    let insecure = kar_store::RedisConfig {
        tls_skip_verify: true,
        ..wrong
    };
    let store = kar_store::open(&kar_store::StoreConfig::Redis(insecure), "app")
        .await
        .unwrap();
    assert!(store.describe().starts_with("rediss://"));
    let _inbox = store.join(&member("node-1", "svc", &[])).await.unwrap();
    assert_eq!(store.members().await.unwrap().len(), 1);
}

/// Plain connections to a TLS-only port, and TLS to a plain port, fail at once
/// (no hang) with a message that points at the TLS setting.
#[tokio::test]
async fn redis_tls_mismatch_fails_fast() {
    let server = RedisServer::start_tls();
    let tls_port = server.tls.as_ref().unwrap().port;
    let plain_to_tls = redis_config(tls_port);
    let started = Instant::now();
    let err = kar_store::open(&kar_store::StoreConfig::Redis(plain_to_tls), "app")
        .await
        .err()
        .expect("plain text to a TLS port must fail");
    assert!(err.to_string().contains("-redis_enable_tls"), "{err}");
    let tls_to_plain = kar_store::RedisConfig {
        port: server.port,
        ..server.config()
    };
    let err = kar_store::open(&kar_store::StoreConfig::Redis(tls_to_plain), "app")
        .await
        .err()
        .expect("TLS to a plain port must fail");
    assert!(err.to_string().contains("TLS"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

/// Runs `ACL SETUSER <args>` on the server's plain port.
fn acl_setuser(server: &RedisServer, args: &[&str]) {
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{}", server.port)).unwrap();
    let mut conn = client.get_connection().unwrap();
    let mut cmd = ::redis::cmd("ACL");
    cmd.arg("SETUSER");
    for arg in args {
        cmd.arg(*arg);
    }
    cmd.query::<()>(&mut conn).unwrap();
}

/// The README's ACL line, parsed into `ACL SETUSER` arguments (so the test proves
/// the line users copy).
fn readme_acl_line(user: &str, password: &str) -> Vec<String> {
    let readme = include_str!("../../../README.md");
    let line = readme
        .lines()
        .find(|l| l.trim_start().starts_with("ACL SETUSER kar "))
        .expect("the README gives the ACL line of kar's Redis user");
    let mut args: Vec<String> = line
        .split_whitespace()
        .skip(2)
        .map(str::to_string)
        .collect();
    args[0] = user.to_string();
    for arg in &mut args {
        if arg.starts_with('>') {
            *arg = format!(">{password}");
        }
    }
    args
}

/// A user with the README's ACL line runs the mesh; one without the permissions kar
/// needs is told which, at open (no hang, no failure in the middle of a transition);
/// a wrong password is refused at open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_acl_user_limited_to_what_kar_needs() {
    let server = RedisServer::start_tls();
    let args = readme_acl_line("kar", "s3cret");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    acl_setuser(&server, &args);
    let config = |user: &str, password: &str| kar_store::RedisConfig {
        user: Some(user.into()),
        password: Some(password.into()),
        ..server.config()
    };
    let store = kar_store::open(
        &kar_store::StoreConfig::Redis(config("kar", "s3cret")),
        "app",
    )
    .await
    .unwrap();
    let mut inbox = store.join(&member("node-a", "svc", &["A"])).await.unwrap();
    let r = request(RequestKind::Call, "svc", "node-a");
    store.enqueue(&r).await.unwrap();
    let (got, _) = recv_n(&mut inbox, 1).await;
    assert_eq!(executed(&got), vec![r.id.clone()]);
    store
        .state_set(&ActorRef::new("A", "1"), "k", None, Bytes::from("1"))
        .await
        .unwrap();
    assert!(store.topic_create("t").await.unwrap());
    assert_eq!(store.publish("t", Bytes::from("e")).await.unwrap(), 1);
    assert!(store
        .complete(&NodeId("node-a".into()), &r.id, &reply("ok"))
        .await
        .unwrap());

    let started = Instant::now();
    // Read-only on kar's keys: every writing command is missing.
    acl_setuser(
        &server,
        &[
            "reader",
            "on",
            ">pw",
            "~kar:*",
            "-@all",
            "+@read",
            "+ping",
            "+evalsha",
            "+script|load",
        ],
    );
    let err = kar_store::open(
        &kar_store::StoreConfig::Redis(config("reader", "pw")),
        "app",
    )
    .await
    .err()
    .expect("a read-only user cannot run kar");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("reader") && text.contains("HSET") && text.contains("XADD"),
        "{text}"
    );
    assert!(!text.contains("HGET,"), "{text}");
    // No scripts at all.
    acl_setuser(
        &server,
        &["noscript", "on", ">pw", "~kar:*", "+@all", "-evalsha"],
    );
    let err = kar_store::open(
        &kar_store::StoreConfig::Redis(config("noscript", "pw")),
        "app",
    )
    .await
    .err()
    .expect("a user without EVALSHA cannot run kar");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert!(err.to_string().to_lowercase().contains("evalsha"), "{err}");
    // Keys outside kar's.
    acl_setuser(&server, &["elsewhere", "on", ">pw", "~other:*", "+@all"]);
    let err = kar_store::open(
        &kar_store::StoreConfig::Redis(config("elsewhere", "pw")),
        "app",
    )
    .await
    .err()
    .expect("a user without kar's keys cannot run kar");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    // A wrong password.
    let err = kar_store::open(&kar_store::StoreConfig::Redis(config("kar", "nope")), "app")
        .await
        .err()
        .expect("a wrong password is refused");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

// ----- partitions (Redis): the fencing margin, renewals through short cuts -----

/// A member cut off from Redis (packets dropped both ways) fences itself before any
/// other member can recover its requests: the re-delivery to the live member comes
/// after the cut member's inbox reported `Fenced`, at least twice the margin later.
/// When the cut heals, the stale member commits nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cut_member_is_fenced_before_its_requests_are_recovered() {
    let server = RedisServer::start();
    let proxy = CuttableProxy::start(server.port).await;
    let cut_store = kar_store::open(
        &kar_store::StoreConfig::Redis(redis_config(proxy.port)),
        "app",
    )
    .await
    .unwrap();
    let store = kar_store::open(
        &kar_store::StoreConfig::Redis(redis_config(server.port)),
        "app",
    )
    .await
    .unwrap();
    let mut cut_inbox = cut_store
        .join(&member("node-cut", "svc", &[]))
        .await
        .unwrap();
    let r = request(RequestKind::Call, "svc", "node-c");
    store.enqueue(&r).await.unwrap();
    let (got, _) = recv_n(&mut cut_inbox, 1).await;
    assert_eq!(executed(&got), vec![r.id.clone()]);
    let mut live = store.join(&member("node-live", "svc", &[])).await.unwrap();

    proxy.set_cut(true);
    let fenced = tokio::spawn(async move {
        loop {
            match cut_inbox.recv().await {
                Err(StoreError::Fenced(_)) => return Instant::now(),
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                Ok(_) => {}
            }
        }
    });
    let (redelivered, _) = recv_n(&mut live, 1).await;
    let retried = Instant::now();
    assert_eq!(executed(&redelivered), vec![r.id.clone()]);
    let fenced_at = tokio::time::timeout(PATIENCE, fenced)
        .await
        .expect("the cut member never fenced itself")
        .unwrap();
    assert!(
        fenced_at < retried,
        "the request was re-delivered {:?} before the cut member fenced itself",
        fenced_at - retried
    );
    eprintln!(
        "fence → re-delivery: {:?} (margin {:?} each side)",
        retried - fenced_at,
        TEST_LEASE / 4
    );

    proxy.set_cut(false);
    let err = cut_store
        .complete(&NodeId("node-cut".into()), &r.id, &reply("stale"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
    assert!(store
        .complete(&NodeId("node-live".into()), &r.id, &reply("ok"))
        .await
        .unwrap());
}

/// A cut shorter than the lease less its margin fences nobody: the renewal gets
/// through on a fresh connection once the cut heals (TCP would retry the old one
/// only after its back-off), and nobody recovers the member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_partition_shorter_than_the_lease_fences_nobody() {
    let lease = Duration::from_secs(3);
    let server = RedisServer::start();
    let proxy = CuttableProxy::start(server.port).await;
    let config = |port| kar_store::RedisConfig {
        lease,
        ..redis_config(port)
    };
    let cut_store = kar_store::open(&kar_store::StoreConfig::Redis(config(proxy.port)), "app")
        .await
        .unwrap();
    let store = kar_store::open(&kar_store::StoreConfig::Redis(config(server.port)), "app")
        .await
        .unwrap();
    let node = NodeId("node-cut".into());
    let cut_inbox = cut_store
        .join(&member("node-cut", "svc", &[]))
        .await
        .unwrap();
    let _live = store.join(&member("node-live", "svc", &[])).await.unwrap();
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{}", server.port)).unwrap();
    let mut conn = client.get_connection().unwrap();
    let expiry = |conn: &mut ::redis::Connection| -> f64 {
        ::redis::cmd("ZSCORE")
            .arg("kar:{app}:leases")
            .arg("node-cut")
            .query(conn)
            .unwrap()
    };
    // Cut right after a renewal (the worst phase: the next one is due in the cut).
    let first = expiry(&mut conn);
    poll_until(|| expiry(&mut conn) > first).await;
    proxy.set_cut(true);
    let cut_expiry = expiry(&mut conn);
    // 1.2 s: the renewal due after 1 s falls in the cut, and the retries after the
    // heal have 1.3 s left before the fence (lease - margin), room for a loaded CI
    // machine (a 1.5 s cut fenced the member once there).
    tokio::time::sleep(lease * 2 / 5).await;
    proxy.set_cut(false);
    // A renewal sent after the heal reaches Redis.
    poll_until(|| expiry(&mut conn) > cut_expiry).await;
    // Not fenced: it commits, and it is still a member.
    cut_store
        .state_set(&ActorRef::new("A", "1"), "k", None, Bytes::from("1"))
        .await
        .unwrap();
    assert!(store
        .members()
        .await
        .unwrap()
        .iter()
        .any(|m| m.node == node));
    // The inbox (whose drop would end the membership) lived through the test.
    drop(cut_inbox);
}

// ----- replication (Redis): the WAIT setting over a failover -----

/// The number of requests of `app` stored on `server`.
fn stored_requests(server: &RedisServer, app: &str) -> usize {
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg(format!("kar:{{{app}}}:req:*"))
        .query(&mut server.connection())
        .unwrap();
    keys.len()
}

/// A primary and its replica; the replica is promoted after the primary is killed.
/// With `wait_replicas` 1, a transition is acknowledged only once the replica has it:
/// while the replica lags (its link cut) nothing is acknowledged, and everything that was is on
/// the promoted replica. Without it, transitions acknowledged while the replica lagged
/// are lost by the failover: the test reports how many (the trade-off, not hidden).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_replication_wait_keeps_acknowledged_transitions_over_a_failover() {
    let primary = RedisServer::start();
    let replica = RedisServer::start();
    // The replication link goes through a proxy the test can cut (a replica that
    // lags: what the primary sent is not on the replica).
    let link = CuttableProxy::start(primary.port).await;
    let _: () = ::redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(link.port)
        .query(&mut replica.connection())
        .unwrap();
    let linked = |server: &RedisServer| {
        let info: String = ::redis::cmd("INFO")
            .arg("replication")
            .query(&mut server.connection())
            .unwrap();
        info.contains("master_link_status:up")
    };
    poll_until(|| linked(&replica)).await;
    let open = |replicas: u32| {
        let config = kar_store::RedisConfig {
            wait_replicas: replicas,
            wait_timeout: Duration::from_millis(300),
            ..redis_config(primary.port)
        };
        async move {
            kar_store::open(&kar_store::StoreConfig::Redis(config), "app")
                .await
                .unwrap()
        }
    };
    let waiting = open(1).await;
    let enqueue = |store: Arc<dyn kar_store::Store>, service: &'static str| async move {
        store
            .enqueue(&request(RequestKind::Tell, service, "node-c"))
            .await
    };

    // With the wait: nothing is acknowledged while the replica lags...
    link.set_cut(true);
    let err = enqueue(waiting.clone(), "sync").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("replicas acknowledged"), "{err}");
    link.set_cut(false);
    // ... and what is acknowledged is on the replica.
    let mut acknowledged = 0;
    for _ in 0..20 {
        enqueue(waiting.clone(), "sync").await.unwrap();
        acknowledged += 1;
    }

    // Without it: acknowledged while the replica lags, then the primary dies.
    let asynchronous = open(0).await;
    link.set_cut(true);
    for _ in 0..20 {
        enqueue(asynchronous.clone(), "async").await.unwrap();
    }
    primary.signal("KILL");
    // What the link held is gone with the primary.
    drop(link);
    let _: () = ::redis::cmd("REPLICAOF")
        .arg("NO")
        .arg("ONE")
        .query(&mut replica.connection())
        .unwrap();
    let parked = |service: &str| {
        let keys: Vec<String> = ::redis::cmd("ZRANGE")
            .arg(format!("kar:{{app}}:parked:{service}"))
            .arg(0)
            .arg(-1)
            .query(&mut replica.connection())
            .unwrap();
        keys.len()
    };
    let (kept_sync, kept_async) = (parked("sync"), parked("async"));
    eprintln!(
        "failover: with the wait, {kept_sync} of {acknowledged} acknowledged transitions kept \
         (+ the one refused: applied on the primary only, or not); without it, {kept_async} of \
         20 kept ({} lost)",
        20 - kept_async
    );
    assert!(kept_sync >= acknowledged, "{kept_sync} < {acknowledged}");
    assert!(stored_requests(&replica, "app") >= kept_sync + kept_async);
}

/// A Redis Sentinel of the test's own (`redis-server --sentinel`) watching `primary`
/// under the name `mymaster`, killed on drop.
struct Sentinel {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Sentinel {
    fn start(primary: u16) -> Sentinel {
        let dir = tempfile::tempdir().unwrap();
        let port = {
            let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
            listener.local_addr().unwrap().port()
        };
        let conf = dir.path().join("sentinel.conf");
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\n\
                 sentinel monitor mymaster 127.0.0.1 {primary} 2\n\
                 sentinel down-after-milliseconds mymaster 1000\n\
                 sentinel failover-timeout mymaster 5000\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let mut child = Command::new("redis-server")
            .arg(&conf)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server --sentinel");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        assert!(
            lines
                .by_ref()
                .map_while(Result::ok)
                .any(|l| l.contains("+monitor master mymaster")),
            "the Sentinel did not start"
        );
        std::thread::spawn(move || for _ in lines {});
        Sentinel {
            child,
            port,
            _dir: dir,
        }
    }

    /// How many replicas and other Sentinels it knows of `mymaster`.
    fn known(&self) -> (usize, usize) {
        let mut conn = ::redis::Client::open(format!("redis://127.0.0.1:{}", self.port))
            .unwrap()
            .get_connection()
            .unwrap();
        let count = |what: &str, conn: &mut ::redis::Connection| {
            ::redis::cmd("SENTINEL")
                .arg(what)
                .arg("mymaster")
                .query::<Vec<::redis::Value>>(conn)
                .map(|v| v.len())
                .unwrap_or(0)
        };
        (count("replicas", &mut conn), count("sentinels", &mut conn))
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Enqueues tells until `target` were acknowledged (their ids in `acknowledged`),
/// counting the refusals (store unavailable: a failover in progress).
async fn enqueue_until(
    store: &Arc<dyn kar_store::Store>,
    target: usize,
    acknowledged: &mut Vec<RequestId>,
    failures: &mut usize,
) {
    let deadline = Instant::now() + PATIENCE * 2;
    while acknowledged.len() < target {
        assert!(Instant::now() < deadline, "the load never resumed");
        let r = request(RequestKind::Tell, "svc", "node-c");
        match store.enqueue(&r).await {
            Ok(_) => acknowledged.push(r.id),
            Err(_) => {
                *failures += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// A primary, two replicas and three Sentinels; kar connects through the Sentinels
/// with the replication wait on (1 replica). Under a steady load of enqueues the
/// primary is killed: Sentinel promotes a replica, kar's connections follow it, the
/// load resumes, and every enqueue kar acknowledged (before, during and after the
/// failover) is on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_sentinel_failover_under_load_loses_nothing_acknowledged() {
    let primary = RedisServer::start();
    let replicas = [RedisServer::start(), RedisServer::start()];
    for replica in &replicas {
        let _: () = ::redis::cmd("REPLICAOF")
            .arg("127.0.0.1")
            .arg(primary.port)
            .query(&mut replica.connection())
            .unwrap();
    }
    let linked = |server: &RedisServer| {
        let info: String = ::redis::cmd("INFO")
            .arg("replication")
            .query(&mut server.connection())
            .unwrap();
        info.contains("master_link_status:up")
    };
    poll_until(|| replicas.iter().all(linked)).await;
    let sentinels: Vec<Sentinel> = (0..3).map(|_| Sentinel::start(primary.port)).collect();
    poll_until(|| sentinels.iter().all(|s| s.known() == (2, 2))).await;
    let config = kar_store::RedisConfig {
        sentinels: sentinels
            .iter()
            .map(|s| ("127.0.0.1".to_string(), s.port))
            .collect(),
        sentinel_master: "mymaster".into(),
        wait_replicas: 1,
        wait_timeout: Duration::from_secs(1),
        // The member outlives the failover (a few seconds).
        lease: Duration::from_secs(20),
        ..redis_config(0)
    };
    let store = kar_store::open(&kar_store::StoreConfig::Redis(config), "app")
        .await
        .unwrap();
    assert!(
        store.describe().contains("mymaster"),
        "{}",
        store.describe()
    );
    let _inbox = store.join(&member("node-a", "other", &[])).await.unwrap();
    let mut acknowledged = Vec::new();
    let mut failures = 0;
    enqueue_until(&store, 30, &mut acknowledged, &mut failures).await;
    primary.signal("KILL");
    let killed = Instant::now();
    enqueue_until(&store, 60, &mut acknowledged, &mut failures).await;
    eprintln!(
        "failover under load: load resumed {:?} after the kill; {failures} enqueues refused meanwhile",
        killed.elapsed()
    );
    // The new primary is the replica the Sentinels name now.
    let promoted = replicas
        .iter()
        .find(|r| {
            let info: String = ::redis::cmd("INFO")
                .arg("replication")
                .query(&mut r.connection())
                .unwrap();
            info.contains("role:master")
        })
        .expect("a replica was promoted");
    let mut conn = promoted.connection();
    for id in &acknowledged {
        let exists: i64 = ::redis::cmd("EXISTS")
            .arg(format!("kar:{{app}}:req:{id}"))
            .query(&mut conn)
            .unwrap();
        assert_eq!(exists, 1, "acknowledged {id} was lost by the failover");
    }
}
