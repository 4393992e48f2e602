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
use std::time::Duration;

/// Most firings made by one store transition: bounds the transaction (and, on Redis,
/// the script) while a backlog is worked through.
const FIRE_BATCH: usize = 256;

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
        self.run_woken(&self.wakes.reminders, || self.firing_pass(&build, &outage))
            .await;
    }

    /// One pass: fires what is due and returns how long to sleep, or `None` to go
    /// on at once (a backlog).
    async fn firing_pass(
        self: &Arc<Self>,
        build: &RequestBuilder,
        outage: &Mutex<OutageLog>,
    ) -> Option<Duration> {
        let outage = || outage.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.clock().now_millis();
        let fired = match self.store.fire_due(now as i64, FIRE_BATCH, build).await {
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
        let backlog = fired.len() == FIRE_BATCH;
        for firing in fired {
            self.fired(firing, now as i64);
        }
        if backlog {
            return None;
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

    fn fired(self: &Arc<Self>, firing: Firing, now: i64) {
        let Firing {
            reminder,
            request,
            routing,
        } = firing;
        let late = now - reminder.target;
        if let Some(acceptable) = self.config.actor_reminder_acceptable_delay {
            if late > acceptable.as_millis() as i64 {
                tracing::warn!(
                    "reminder {} of {} {} fired {late} ms after its target time {}",
                    reminder.id,
                    reminder.actor.actor_type,
                    reminder.actor.id,
                    reminder.target_time()
                );
            }
        }
        tracing::debug!(request = %request.id, "reminder {} of {} {} fired", reminder.id, reminder.actor.actor_type, reminder.actor.id);
        self.watch_if_parked(&request, &routing);
    }
}
