use super::*;

pub(crate) async fn join_members_leave(engine: &Engine) {
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

pub(crate) async fn execute_arrives_in_order_and_all_at_once(engine: &Engine) {
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

pub(crate) async fn call_completion_reaches_the_caller(engine: &Engine) {
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

pub(crate) async fn tell_completion_deletes_the_record(engine: &Engine) {
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

pub(crate) async fn completion_for_a_departed_caller_is_dropped(engine: &Engine) {
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

pub(crate) async fn departure_drops_uncollected_outcomes(engine: &Engine) {
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

pub(crate) async fn park_expire_and_adopt(engine: &Engine) {
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

/// A backlog larger than one adoption batch (both engines adopt 500 per script or
/// transaction, so that the store keeps serving the others meanwhile: Redis its
/// renewals, SQLite the other processes' writes) arrives whole and in order, and a
/// request made while it is being adopted comes after it, not before.
pub(crate) async fn a_large_backlog_is_adopted_in_arrival_order(engine: &Engine) {
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

/// An adoption cut short (its member took one batch, then died) is resumed by a live
/// member offering the name: every parked request reaches it once, in arrival order
/// (those the dead adopter had taken come again by its recovery, with the next
/// attempt), and a request made meanwhile comes after the backlog.
pub(crate) async fn an_interrupted_adoption_is_resumed_by_a_live_member(engine: &Engine) {
    const N: usize = 1_200;
    const BATCH: usize = 500;
    let store = engine.open("app").await;
    let backlog: Vec<_> = (0..N)
        .map(|_| request(RequestKind::Tell, "resumed", "node-c"))
        .collect();
    for r in &backlog {
        assert_eq!(store.enqueue(r).await.unwrap(), Routing::Parked);
    }
    // The adopter's adoption ends after one batch, as though it had died there; the
    // heir stands for a live member offering the name that adopts nothing by itself
    // (its join adopts nothing): only the resumption can bring it the rest.
    kar_store::end_join_adoption_after("node-cut-adopter", 1);
    kar_store::end_join_adoption_after("node-idle-heir", 0);
    let adopter_store = engine.open("app").await;
    let mut adopter = adopter_store
        .join(&member("node-cut-adopter", "resumed", &[]))
        .await
        .unwrap();
    // The only member offering the name: the first batch is all its own.
    let mut first = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while first.len() < BATCH {
            for message in adopter.recv().await.expect("recv") {
                if let Message::Execute(r) = message {
                    first.push(r.id);
                }
            }
        }
    })
    .await
    .expect("the first batch never came");
    let ids: Vec<_> = backlog.iter().map(|r| r.id.clone()).collect();
    assert_eq!(first[..BATCH], ids[..BATCH]);
    let mut heir = store
        .join(&member("node-idle-heir", "resumed", &[]))
        .await
        .unwrap();
    let late = request(RequestKind::Tell, "resumed", "node-c");
    store.enqueue(&late).await.unwrap();
    drop(adopter);

    let got = recv_requests(&mut heir, N + 1).await;
    let expected: Vec<_> = ids.iter().chain([&late.id]).cloned().collect();
    let arrival = |id: &RequestId| expected.iter().position(|e| e == id).expect("known id");
    // None lost, none twice.
    let mut received: Vec<_> = got.iter().map(|r| arrival(&r.id)).collect();
    received.sort_unstable();
    assert_eq!(received, (0..=N).collect::<Vec<_>>());
    // In arrival order: first deliveries, and re-deliveries of the dead adopter's.
    for attempt in [0, 1] {
        let order: Vec<_> = got
            .iter()
            .filter(|r| r.attempt == attempt)
            .map(|r| arrival(&r.id))
            .collect();
        assert!(order.is_sorted(), "attempt {attempt}: {order:?}");
    }
    assert!(got
        .iter()
        .filter(|r| arrival(&r.id) < BATCH)
        .all(|r| r.attempt == 1));
    wait_removed(engine, "app", "node-cut-adopter").await;
    // Delivered once: nothing follows but a marker, routed at once.
    let marker = request(RequestKind::Tell, "resumed", "node-c");
    assert_eq!(
        store.enqueue(&marker).await.unwrap(),
        Routing::Assigned(NodeId("node-idle-heir".into()))
    );
    let (got, _) = recv_n(&mut heir, 1).await;
    assert_eq!(executed(&got), vec![marker.id]);
}

pub(crate) async fn members_changed_on_join_and_leave(engine: &Engine) {
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
pub(crate) async fn signals_reach_the_inbox_in_order(engine: &Engine) {
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
pub(crate) async fn signals_to_departed_members_are_dropped(engine: &Engine) {
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
pub(crate) async fn queue_on(
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

pub(crate) fn trace(n: u8) -> Option<kar_protocol::TraceContext> {
    kar_protocol::TraceContext::parse(&format!(
        "00-4bf92f3577b34da6a3ce929d0e0e47{n:02x}-00f067aa0ba902{n:02x}-01"
    ))
}

/// The trace context of a request (its record) reaches the executor, follows a tail
/// call and a re-routing; a reminder keeps the one of its schedule call through its
/// firings.
pub(crate) async fn trace_contexts_travel_with_requests_and_reminders(engine: &Engine) {
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

pub(crate) async fn leave_reroutes_queued_requests_in_order(engine: &Engine) {
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
/// and did not report unstarted at the next attempt (Redis: the leave passes the id of
/// the last inbox entry the member read; embedded: the leave runs after the member's
/// read rows are gone).
pub(crate) async fn leave_charges_only_what_the_member_read(engine: &Engine) {
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
    assert_eq!(attempts, vec![(read[0].clone(), 1), (unread[0].clone(), 0)]);
}

pub(crate) async fn leave_parks_requests_nobody_else_offers(engine: &Engine) {
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
pub(crate) struct ChildMember {
    child: Child,
    stdout: Option<std::io::Lines<BufReader<std::process::ChildStdout>>>,
}

/// How a [`ChildMember`] behaves.
#[derive(Clone, Copy, Default)]
pub(crate) struct ChildOptions<'a> {
    /// Actor types it offers besides its service.
    pub(crate) actors: &'a [&'a str],
    /// Armed with `KAR_FAULT_CRASH_IN_RECOVERY=1`.
    pub(crate) crash_in_recovery: bool,
    /// Runs [`zombie_transitions`] when told to.
    pub(crate) zombie: bool,
}

impl ChildMember {
    pub(crate) fn spawn(engine: &Engine, app: &str, node: &str, service: &str) -> ChildMember {
        Self::spawn_with(engine, app, node, service, ChildOptions::default())
    }

    pub(crate) fn spawn_with(
        engine: &Engine,
        app: &str,
        node: &str,
        service: &str,
        options: ChildOptions,
    ) -> ChildMember {
        let exe = std::env::current_exe().expect("test binary");
        let mut command = Command::new(exe);
        command
            .args([
                "membership::child_member",
                "--exact",
                "--ignored",
                "--nocapture",
            ])
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

    pub(crate) fn kill(&mut self) {
        // SIGKILL: no cleanup of any kind runs in the child.
        self.child.kill().expect("kill child");
        self.child.wait().expect("reap child");
    }

    /// Sends SIGSTOP (`stop`) or SIGCONT.
    pub(crate) fn signal(&self, stop: bool) {
        let status = Command::new("kill")
            .arg(if stop { "-STOP" } else { "-CONT" })
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (bounded) for the child to exit by itself; returns whether it did.
    pub(crate) fn exited_within(&mut self, patience: Duration) -> bool {
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
    pub(crate) fn resume_zombie(&mut self, line: &str) -> Vec<String> {
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

pub(crate) const CHILD_ENV: &str = "KAR_STORE_TEST_CHILD_MEMBER";
pub(crate) const CHILD_JOINED: &str = "KAR-CHILD-MEMBER-JOINED";
pub(crate) const CHILD_DONE: &str = "KAR-CHILD-MEMBER-DONE";

/// Not a test: the body of [`ChildMember`] (does nothing when run directly).
#[tokio::test]
#[ignore]
pub(crate) async fn child_member() {
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

pub(crate) async fn killed_member_requests_are_rerouted(engine: &Engine) {
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

pub(crate) async fn dropped_member_dies_and_is_fenced(engine: &Engine) {
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

pub(crate) async fn removed_node_is_fenced(engine: &Engine) {
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

pub(crate) async fn applications_are_isolated(engine: &Engine) {
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

pub(crate) async fn purge_removes_one_application(engine: &Engine) {
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
pub(crate) async fn drain_removes_pending_requests_and_keeps_the_rest(engine: &Engine) {
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

pub(crate) async fn waiting_recv_wakes_on_enqueue_by_another_handle(engine: &Engine) {
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

pub(crate) async fn cancelled_recv_loses_nothing(engine: &Engine) {
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
