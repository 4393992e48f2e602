//! Timing logic of the runtime on paused tokio time: reminder cadence, event
//! delivery wake-ups, idle actor collection and the actor busy timeout. The runtime
//! runs in process on the real embedded store, with an in-process component that
//! records *when* (tokio time) it is invoked.
//!
//! Paused tokio time auto-advances to the next timer whenever every task is idle,
//! and that includes waiting for the store, whose SQLite work runs on its own thread:
//! time would leap forward by whole timer periods during plain store I/O. So these
//! tests hold a [`ManualTime`] guard (a blocking task, which inhibits auto-advance)
//! and move time themselves in small steps, letting the store work in real time
//! between steps. Every bound below is then about the logic: a timer never fires
//! early, and fires within a few steps of its due time.

mod common;

use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::paths::actor_method_path;
use kar_protocol::{ActorRef, Invocation, Reminder, Reply, RequestKind, Subscription, Target};
use kar_runtime::{
    Accepted, AppClient, AppError, AppReply, Clock, Runtime, RuntimeConfig, RuntimeError,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How far time moves in one step.
const STEP: Duration = Duration::from_millis(10);
/// How late (tokio time) an outcome may be seen after its timer: the store
/// transitions that follow the timer take real time, during which the test keeps
/// stepping (a loaded machine needs more steps). Every interval below is longer, so
/// "within the slack" still tells the right tick or period from the next one.
const SLACK: Duration = Duration::from_millis(500);

/// Inhibits auto-advance while alive: tokio does not advance paused time while a
/// blocking task runs.
struct ManualTime {
    _stop: std::sync::mpsc::Sender<()>,
}

impl ManualTime {
    fn start() -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        // Returns when `stop` is dropped.
        drop(tokio::task::spawn_blocking(move || {
            let _ = stopped.recv();
        }));
        ManualTime { _stop: stop }
    }

    /// Lets the runtime work for a moment of real time; tokio time stands still.
    async fn settle(&self) {
        let _ = tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(2))).await;
    }

    /// Moves tokio time by `by`, one step at a time, until `done` holds (checked after
    /// each step); returns whether it did.
    async fn advance_until(&self, by: Duration, mut done: impl FnMut() -> bool) -> bool {
        let end = Instant::now() + by;
        while Instant::now() < end {
            if done() {
                return true;
            }
            tokio::time::advance(STEP.min(end - Instant::now())).await;
            self.settle().await;
        }
        done()
    }

    async fn advance(&self, by: Duration) {
        self.advance_until(by, || false).await;
    }

    /// Waits in real time (tokio time standing still) until `done` holds.
    async fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        for _ in 0..2_500 {
            if done() {
                return;
            }
            self.settle().await;
        }
        panic!("timed out waiting for {what}");
    }
}

/// A component hosting actor type `A` that records when it is invoked.
#[derive(Default)]
struct TimedApp {
    firings: Mutex<Vec<Instant>>,
    deliveries: Mutex<Vec<Instant>>,
    echoes: Mutex<Vec<Instant>>,
    deactivations: Mutex<Vec<Instant>>,
    /// `hold` waits for this.
    release: Notify,
    holding: Mutex<bool>,
}

fn instants(list: &Mutex<Vec<Instant>>) -> Vec<Instant> {
    list.lock().unwrap().clone()
}

#[async_trait]
impl AppClient for TimedApp {
    async fn invoke(&self, invocation: &Invocation) -> Result<AppReply, AppError> {
        self.answer(invocation).await.map(AppReply::from)
    }
}

impl TimedApp {
    async fn answer(&self, invocation: &Invocation) -> Result<Reply, AppError> {
        let now = Instant::now();
        let method = invocation.path.rsplit('/').next().unwrap_or("");
        let ok = || Reply::new(200, Some("application/kar+json"), "{\"value\":1}");
        match invocation.method.as_str() {
            "GET" => Ok(Reply::new(201, Some("text/plain"), "created")),
            "DELETE" => {
                self.deactivations.lock().unwrap().push(now);
                Ok(Reply::new(200, Some("text/plain"), "deleted"))
            }
            "POST" if method == "remind" => {
                self.firings.lock().unwrap().push(now);
                Ok(ok())
            }
            "POST" if method == "on" => {
                self.deliveries.lock().unwrap().push(now);
                Ok(ok())
            }
            "POST" if method == "echo" => {
                self.echoes.lock().unwrap().push(now);
                Ok(ok())
            }
            "POST" if method == "hold" => {
                let released = self.release.notified();
                *self.holding.lock().unwrap() = true;
                released.await;
                Ok(ok())
            }
            _ => Ok(Reply::text(404, "no route")),
        }
    }
}

/// A runtime hosting actor type `A` in a [`TimedApp`], on its own store, without idle
/// collection unless `tweak` turns it on.
struct Fixture {
    _dir: tempfile::TempDir,
    app: Arc<TimedApp>,
    runtime: Arc<Runtime>,
}

async fn fixture(tweak: impl FnOnce(&mut RuntimeConfig)) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let app = Arc::new(TimedApp::default());
    let runtime = common::start_runtime(dir.path(), "timing-test", &["A"], app.clone(), |c| {
        c.actor_collector_interval = None;
        tweak(c)
    })
    .await;
    Fixture {
        _dir: dir,
        app,
        runtime,
    }
}

async fn call(runtime: Arc<Runtime>, id: &str, method: &str) -> Result<Reply, RuntimeError> {
    let invocation = Invocation {
        method: "POST".into(),
        path: actor_method_path("A", id, method),
        query: None,
        headers: vec![("Content-Type".into(), "application/kar+json".into())],
        body: Bytes::from_static(b"[]"),
    };
    let target = Target::Actor {
        actor_type: "A".into(),
        id: id.into(),
    };
    match runtime
        .request(target, invocation, RequestKind::Call, None, None)
        .await?
    {
        Accepted::Reply(reply) => Ok(reply),
        Accepted::Queued(id) => panic!("call answered as queued {id}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_periodic_reminder_fires_once_per_period_on_its_targets() {
    let time = ManualTime::start();
    // The wall time the runtime sees follows tokio time.
    let clock = Clock::tokio_time_from(kar_protocol::now_millis());
    let Fixture { app, runtime, _dir } = fixture(|c| c.clock = clock.clone()).await;
    let period = Duration::from_secs(2);
    let scheduled = Instant::now();
    // Off the 1 s grid of the loop's safety re-check: a loop that polled instead of
    // sleeping until the target would fire 750 ms late.
    let first = clock.now_millis() as i64 + 1_250;
    let reminder = Reminder {
        actor: ActorRef::new("A", "r"),
        id: "tick".into(),
        path: "/remind".into(),
        target: first,
        target_text: None,
        period: period.as_nanos() as i64,
        data: Bytes::from_static(b"[]"),
        trace: None,
    };
    runtime.reminders().put(&reminder).await.unwrap();
    // Targets at +1.25 s, +3.25 s, +5.25 s, +7.25 s: four firings before +9.25 s.
    time.advance(Duration::from_millis(8_500)).await;
    let firings = instants(&app.firings);
    assert_eq!(firings.len(), 4, "firings at {firings:?}");
    for (k, fired) in firings.iter().enumerate() {
        let target = scheduled + Duration::from_millis(1_250) + period * k as u32;
        assert!(*fired >= target, "firing {k} came early");
        assert!(
            *fired < target + SLACK,
            "firing {k} came {:?} late",
            *fired - target
        );
    }
    runtime.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn events_go_out_when_published_not_at_a_poll() {
    let time = ManualTime::start();
    let Fixture { app, runtime, _dir } = fixture(|_| {}).await;
    let subscription = Subscription {
        actor: ActorRef::new("A", "s"),
        id: "news".into(),
        path: "/on".into(),
        topic: "news".into(),
        content_type: String::new(),
        group: String::new(),
        oldest: false,
    };
    runtime.subscriptions().put(&subscription).await.unwrap();
    // Off the 1 s grid of the loop's safety re-check.
    time.advance(Duration::from_millis(250)).await;
    let published = Instant::now();
    for n in 1..=3 {
        runtime
            .events()
            .publish("news", Bytes::from(n.to_string()))
            .await
            .unwrap();
    }
    // One at a time: each delivery's end wakes the loop for the next event.
    let all = time
        .advance_until(SLACK, || instants(&app.deliveries).len() == 3)
        .await;
    let deliveries = instants(&app.deliveries);
    assert!(all, "delivered at {deliveries:?} after {published:?}");
    for delivered in deliveries {
        assert!(delivered >= published && delivered < published + SLACK);
    }
    runtime.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_idle_actor_is_deactivated_after_the_collector_interval_not_before() {
    let time = ManualTime::start();
    let interval = Duration::from_secs(10);
    let Fixture { app, runtime, _dir } =
        fixture(|c| c.actor_collector_interval = Some(interval)).await;
    // Used at 3 s into the first collector period.
    time.advance(Duration::from_secs(3)).await;
    let used = tokio::spawn(call(runtime.clone(), "idle", "echo"));
    time.wait_for("the call", || used.is_finished()).await;
    used.await.unwrap().unwrap();
    let last_use = instants(&app.echoes)[0];
    // The collector ticks every 10 s: at 10 s the instance has been idle for 7 s
    // only, at 20 s for 17 s. Nothing happens up to just before 20 s...
    time.advance(Duration::from_secs(17) - 2 * STEP).await;
    assert!(
        instants(&app.deactivations).is_empty(),
        "deactivated before a whole interval of idleness"
    );
    assert_eq!(runtime.activated_actors(), vec![ActorRef::new("A", "idle")]);
    // ...and it goes at the tick that finds it idle for a whole interval.
    let gone = time
        .advance_until(SLACK, || !instants(&app.deactivations).is_empty())
        .await;
    assert!(gone, "idle instance not deactivated");
    let deactivated = instants(&app.deactivations)[0];
    assert!(deactivated >= last_use + interval);
    assert!(deactivated < last_use + Duration::from_secs(17) + SLACK);
    assert!(runtime.activated_actors().is_empty());
    runtime.shutdown().await;
}

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

type Waiting = JoinHandle<(Result<Reply, RuntimeError>, Instant)>;

/// Instance `A/busy` held by one flow (`hold`, until `app.release`) while a request
/// of another flow (`echo`) waits in its queue, since `queued_at`.
struct BusyInstance {
    fixture: Fixture,
    holder: JoinHandle<Result<Reply, RuntimeError>>,
    waiter: Waiting,
    queued_at: Instant,
}

async fn busy_instance(time: &ManualTime) -> BusyInstance {
    let fixture = fixture(|c| c.actor_busy_timeout = Some(BUSY_TIMEOUT)).await;
    let (app, runtime) = (&fixture.app, &fixture.runtime);
    let holder = tokio::spawn(call(runtime.clone(), "busy", "hold"));
    time.wait_for("the holder", || *app.holding.lock().unwrap())
        .await;
    let queued_at = Instant::now();
    let waiter = tokio::spawn({
        let runtime = runtime.clone();
        async move {
            let result = call(runtime, "busy", "echo").await;
            (result, Instant::now())
        }
    });
    // Tokio time stands still while the request reaches the instance queue.
    for _ in 0..100 {
        time.settle().await;
    }
    BusyInstance {
        fixture,
        holder,
        waiter,
        queued_at,
    }
}

#[tokio::test(start_paused = true)]
async fn a_request_waiting_longer_than_the_busy_timeout_fails() {
    let time = ManualTime::start();
    let busy = busy_instance(&time).await;
    let waiter = busy.waiter;
    assert!(
        !time
            .advance_until(BUSY_TIMEOUT - STEP, || waiter.is_finished())
            .await,
        "the waiting request ended before the busy timeout"
    );
    let failed = time.advance_until(SLACK, || waiter.is_finished()).await;
    assert!(failed, "the waiting request outlived the busy timeout");
    let (result, ended) = waiter.await.unwrap();
    match result {
        Err(RuntimeError::Failed(reason)) => assert!(
            reason.contains("Possible deadlock: timed out waiting in instance queue"),
            "{reason}"
        ),
        other => panic!("expected a busy timeout, got {other:?}"),
    }
    assert!(ended >= busy.queued_at + BUSY_TIMEOUT);
    assert!(
        instants(&busy.fixture.app.echoes).is_empty(),
        "the waiting request ran"
    );
    // The holder is unaffected.
    busy.fixture.app.release.notify_one();
    let holder = busy.holder;
    time.wait_for("the holder", || holder.is_finished()).await;
    assert_eq!(holder.await.unwrap().unwrap().status, 200);
    busy.fixture.runtime.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_request_released_within_the_busy_timeout_runs() {
    let time = ManualTime::start();
    let busy = busy_instance(&time).await;
    time.advance(BUSY_TIMEOUT - Duration::from_secs(1)).await;
    busy.fixture.app.release.notify_one();
    let (holder, waiter) = (busy.holder, busy.waiter);
    time.wait_for("both calls", || {
        holder.is_finished() && waiter.is_finished()
    })
    .await;
    assert_eq!(holder.await.unwrap().unwrap().status, 200);
    assert_eq!(waiter.await.unwrap().0.unwrap().status, 200);
    busy.fixture.runtime.shutdown().await;
}
