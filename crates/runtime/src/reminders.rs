//! Actor reminders (spec §2.5, §4.4, decision §9.10): how they are stored (a
//! [`Binding`](crate::Binding)), and the loop that fires the application's due
//! reminders.
//!
//! Every member with a component runs the loop: firing is one atomic, idempotent store
//! transition (enqueue the tell + advance the reminder), so members firing at the same
//! moment never deliver a firing twice, and the reminders of a dead member's actors
//! keep firing as long as any member lives.
//!
//! The loop sleeps until the earliest target time. It is woken when this member
//! schedules a reminder and when the membership changes (a member that left or died
//! no longer fires the reminders it scheduled); a reminder scheduled by another live
//! member is fired by that member. The [`SAFETY_RECHECK`] bounds every sleep all
//! the same.
//!
//! Firing is paced by execution (`-max_pending_firings`): a member fires only while
//! the application's firings enqueued and not finished are below the bound. Under
//! overload the excess thus stays in the reminders table, where a late periodic
//! reminder coalesces its missed periods ([`Reminder::next_target`]), instead of
//! piling up as requests (store rows, inboxes, the admission queue) that the mesh
//! would spend its time firing and holding rather than executing. Members count
//! and fire apart, so the application may briefly hold up to a bound per member.

use crate::bindings::{kind::Kind, Bindings};
use crate::clock::SAFETY_RECHECK;
use crate::outage::OutageLog;
use crate::telemetry::{self, Relation};
use crate::Runtime;
use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::Reminder;
use kar_store_api::{Firing, RequestBuilder, Store, StoreError};
use opentelemetry::KeyValue;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most firings made by one store transition: bounds the transaction (and, on Redis,
/// the script) while a backlog is worked through.
const FIRE_BATCH: usize = 256;

/// How soon a member held back by the pending firings counts them again: short next
/// to the time the executors take to work through a batch of them.
const HOLD_RECHECK: Duration = Duration::from_millis(10);

/// Since when firing is held back by the pending firings (`None`: it is not), so that
/// an episode is logged once, when it starts and when the due reminders caught up.
type Held = Mutex<Option<Instant>>;

#[async_trait]
impl Kind for Reminder {
    const KIND: &'static str = "reminder";
    async fn put(store: &dyn Store, reminder: &Self) -> Result<bool, StoreError> {
        store.reminder_schedule(reminder).await
    }
    fn wake(runtime: &Runtime) {
        runtime.wakes.reminders.notify_one();
    }
    fn set_trace(&mut self, trace: Option<kar_protocol::TraceContext>) {
        self.trace = trace;
    }
    fn cancelled(runtime: &Runtime, n: u64) {
        runtime.reminders_cancelled(n);
    }
}

impl Runtime {
    /// The application's reminders (spec §2.5).
    pub fn reminders(&self) -> Bindings<'_, Reminder> {
        self.bindings()
    }

    /// The tell of one firing: the actor's `path` with the reminder's data as body.
    fn firing_builder(&self) -> RequestBuilder {
        let tells = self.actor_tells();
        let app = self.config.app.clone();
        Arc::new(move |r: &Reminder| {
            let mut request = tells.tell("reminder", &r.actor, &r.path, Bytes::clone(&r.data));
            if telemetry::on() {
                // One trace per firing, linked to the call that scheduled the
                // reminder; the attempts of the firing's tell are its children.
                let span = telemetry::start(
                    || format!("reminder firing {}:{}", r.actor.actor_type, r.id),
                    telemetry::Kind::Producer,
                    Relation::LinkedTo(r.trace),
                    || {
                        let mut attributes = telemetry::request_attributes(&app, &request);
                        attributes.push(KeyValue::new("kar.reminder", r.id.clone()));
                        attributes.push(KeyValue::new("kar.reminder.target", r.target));
                        attributes
                    },
                );
                request.trace = span.context();
            }
            request
        })
    }

    /// Fires the application's due reminders until shutdown.
    pub(crate) async fn reminder_loop(self: Arc<Self>) {
        let build = self.firing_builder();
        let outage = Mutex::new(OutageLog::new("reminder loop"));
        let held = Held::default();
        let late = Mutex::new(LateLog::default());
        self.run_woken(&self.wakes.reminders, || {
            self.firing_pass(&build, &outage, &held, &late)
        })
        .await;
    }

    /// One pass: fires what is due and returns how long to sleep, or `None` to go
    /// on at once (a backlog).
    async fn firing_pass(
        self: &Arc<Self>,
        build: &RequestBuilder,
        outage: &Mutex<OutageLog>,
        held: &Held,
        late: &Mutex<LateLog>,
    ) -> Option<Duration> {
        let outage = || outage.lock().unwrap_or_else(|e| e.into_inner());
        let held = || held.lock().unwrap_or_else(|e| e.into_inner());
        let bound = self.config.max_pending_firings;
        let mut limit = FIRE_BATCH;
        if bound > 0 {
            let pending = match self.store.firings_pending(bound).await {
                Ok(pending) => pending,
                Err(e) => {
                    outage().failed(&format_args!("cannot count the pending firings: {e}"));
                    return Some(self.config.actor_reminder_interval);
                }
            };
            let room = bound.saturating_sub(pending);
            // Fire again only once a fair batch fits: a handful at a time would cost
            // a store transition each.
            if room < FIRE_BATCH.min(bound.div_ceil(2)) {
                // Nothing due: nothing is held back (the pending firings of a burst
                // drain meanwhile); look again when something is due.
                if let Ok(next) = self.store.next_due().await {
                    let now = self.clock().now_millis() as i64;
                    match next {
                        Some(due) if due > now => {
                            return Some(self.clock().until(due as u64).min(SAFETY_RECHECK))
                        }
                        None => return Some(SAFETY_RECHECK),
                        Some(_) => {}
                    }
                }
                let mut held = held();
                if held.is_none() {
                    *held = Some(Instant::now());
                    tracing::warn!(
                        "reminder firing held back: {pending} firings pending \
                         (-max_pending_firings {bound}); due reminders wait, late periodic \
                         ones coalesce"
                    );
                }
                return Some(HOLD_RECHECK);
            }
            limit = room.min(FIRE_BATCH);
        }
        let now = self.clock().now_millis();
        let fired = match self.store.fire_due(now as i64, limit, build).await {
            Ok(fired) => {
                outage().succeeded();
                fired
            }
            Err(e) => {
                // The reminders stay due: the next pass fires them.
                outage().failed(&format_args!("cannot fire due reminders: {e}"));
                return Some(self.config.actor_reminder_interval);
            }
        };
        let backlog = fired.len() == limit;
        for firing in fired {
            self.fired(firing, now as i64, late);
        }
        if backlog {
            return None;
        }
        if let Some(since) = held().take() {
            tracing::info!(
                "reminder firing caught up with the due reminders after {:.1} s held back \
                 by pending firings",
                since.elapsed().as_secs_f64()
            );
        }
        match self.store.next_due().await {
            Ok(Some(due)) => Some(self.clock().until(due.max(0) as u64).min(SAFETY_RECHECK)),
            Ok(None) => Some(SAFETY_RECHECK),
            Err(e) => {
                outage().failed(&format_args!("cannot read the next reminder time: {e}"));
                Some(self.config.actor_reminder_interval)
            }
        }
    }

    fn fired(self: &Arc<Self>, firing: Firing, now: i64, late_log: &Mutex<LateLog>) {
        let Firing {
            reminder,
            request,
            routing,
        } = firing;
        let late = now - reminder.target;
        if let Some(acceptable) = self.config.actor_reminder_acceptable_delay {
            if late > acceptable.as_millis() as i64 {
                let mut log = late_log.lock().unwrap_or_else(|e| e.into_inner());
                log.late(&reminder, late, Instant::now());
            }
        }
        tracing::debug!(request = %request.id, "reminder {} of {} {} fired", reminder.id, reminder.actor.actor_type, reminder.actor.id);
        self.watch_if_parked(&request, &routing);
    }
}

/// The lateness warnings of one reminder loop (`-actor_reminder_acceptable_delay`):
/// the first late firing is logged at once; later ones within [`LATE_SUMMARY_EVERY`]
/// are counted and logged as one summary. Under overload every firing is late, and a
/// line per firing would bury the log.
#[derive(Default)]
struct LateLog {
    /// When the last line was logged, and the late firings counted since.
    logged: Option<Instant>,
    since_logged: u64,
    worst_ms: i64,
}

/// How often late firings are summarised while they go on.
const LATE_SUMMARY_EVERY: Duration = Duration::from_secs(10);

impl LateLog {
    /// Counts a firing `late_ms` after its target; returns whether it logged.
    fn late(&mut self, reminder: &Reminder, late_ms: i64, now: Instant) -> bool {
        self.since_logged += 1;
        self.worst_ms = self.worst_ms.max(late_ms);
        let since = self.logged.map(|at| now.duration_since(at));
        if since.is_some_and(|since| since < LATE_SUMMARY_EVERY) {
            return false;
        }
        // Alone since the last line (or the first ever): its own line.
        if self.since_logged == 1 {
            tracing::warn!(
                "reminder {} of {} {} fired {late_ms} ms after its target time {}",
                reminder.id,
                reminder.actor.actor_type,
                reminder.actor.id,
                reminder.target_time()
            );
        } else {
            tracing::warn!(
                "{} reminder firings were late in the last {:.0} s (the latest: reminder {} \
                 of {} {}, {late_ms} ms after its target; the worst {} ms)",
                self.since_logged,
                since.unwrap_or_default().as_secs_f64(),
                reminder.id,
                reminder.actor.actor_type,
                reminder.actor.id,
                self.worst_ms
            );
        }
        self.logged = Some(now);
        self.since_logged = 0;
        self.worst_ms = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kar_protocol::ActorRef;

    fn reminder() -> Reminder {
        Reminder {
            actor: ActorRef::new("T", "a"),
            id: "r".into(),
            path: "/tick".into(),
            target: 0,
            target_text: None,
            period: 0,
            data: Bytes::new(),
            trace: None,
        }
    }

    /// A stream of late firings logs the first, then one summary per interval.
    #[test]
    fn late_firings_are_summarised() {
        let mut log = LateLog::default();
        let start = Instant::now();
        assert!(log.late(&reminder(), 4000, start));
        for i in 1..1000 {
            let at = start + Duration::from_millis(i);
            assert!(!log.late(&reminder(), 5000, at), "firing {i} logged");
        }
        assert!(log.late(&reminder(), 6000, start + LATE_SUMMARY_EVERY));
        assert_eq!(log.since_logged, 0);
        // A quiet spell, then a single late firing: logged on its own, at once.
        assert!(log.late(&reminder(), 4000, start + 3 * LATE_SUMMARY_EVERY));
    }
}
