//! Actor reminders (spec §2.5, §4.4, decision §9.10): scheduling through the store,
//! and the loop that fires the application's due reminders.
//!
//! Every member with a component runs the loop: firing is one atomic, idempotent store
//! transition (enqueue the tell + advance the reminder), so members firing at the same
//! moment never deliver a firing twice, and the reminders of a dead member's actors
//! keep firing as long as any member lives.

use crate::{Runtime, RuntimeError};
use bytes::Bytes;
use kar_protocol::{now_millis, ActorRef, Reminder};
use kar_store_api::{Firing, RequestBuilder, Routing};
use std::sync::Arc;
use std::time::Duration;

/// Most firings made by one store transition: bounds the transaction (and, on Redis,
/// the script) while a backlog is worked through.
const FIRE_BATCH: usize = 256;

impl Runtime {
    /// Schedules (or replaces) a reminder; returns whether one was replaced. Wakes
    /// this member's reminder loop, which may sleep past the new target otherwise.
    pub async fn schedule_reminder(&self, reminder: &Reminder) -> Result<bool, RuntimeError> {
        let replaced = self.store().reminder_schedule(reminder).await?;
        self.wake_reminders();
        Ok(replaced)
    }

    /// One reminder of an actor.
    pub async fn reminder(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<Option<Reminder>, RuntimeError> {
        Ok(self.store().reminder_get(actor, id).await?)
    }

    /// Every reminder of an actor, by id.
    pub async fn reminders(&self, actor: &ActorRef) -> Result<Vec<Reminder>, RuntimeError> {
        Ok(self.store().reminders_of(actor).await?)
    }

    /// Cancels one reminder; returns whether it existed.
    pub async fn cancel_reminder(&self, actor: &ActorRef, id: &str) -> Result<bool, RuntimeError> {
        Ok(self.store().reminder_cancel(actor, id).await?)
    }

    /// Cancels every reminder of an actor; returns how many there were.
    pub async fn cancel_reminders(&self, actor: &ActorRef) -> Result<u64, RuntimeError> {
        Ok(self.store().reminders_cancel_all(actor).await?)
    }

    /// The tell of one firing: the actor's `path` with the reminder's data as body,
    /// in a fresh flow, with the usual start deadline.
    fn firing_builder(&self) -> RequestBuilder {
        let caller = self.node().clone();
        let timeout = self.config().missing_component_timeout;
        Arc::new(move |reminder: &Reminder| {
            Runtime::actor_tell(
                &caller,
                timeout,
                &reminder.actor,
                &reminder.path,
                Bytes::clone(&reminder.data),
            )
        })
    }

    /// Fires the application's due reminders until shutdown. Sleeps until the
    /// earliest target or one interval, whichever comes first (other members may
    /// schedule earlier reminders), or until this member schedules one.
    pub(crate) async fn reminder_loop(self: Arc<Self>) {
        let interval = self.config().actor_reminder_interval;
        let build = self.firing_builder();
        loop {
            if self.is_shutting_down() {
                return;
            }
            let now = now_millis() as i64;
            let mut sleep = interval;
            match self.store().fire_due(now, FIRE_BATCH, &build).await {
                Ok(fired) => {
                    let backlog = fired.len() == FIRE_BATCH;
                    for firing in fired {
                        self.fired(firing, now);
                    }
                    if backlog {
                        continue;
                    }
                    match self.store().next_due().await {
                        Ok(Some(due)) => {
                            let wait = (due - now_millis() as i64).max(0) as u64;
                            sleep = sleep.min(Duration::from_millis(wait));
                        }
                        Ok(None) => {}
                        Err(e) => tracing::warn!("cannot read the next reminder time: {e}"),
                    }
                }
                // The reminders stay due: the next tick fires them.
                Err(e) => tracing::error!("cannot fire due reminders: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.reminders_woken() => {}
                _ = self.shutdown_started() => return,
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
        if let Some(acceptable) = self.config().actor_reminder_acceptable_delay {
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
        if routing == Routing::Parked {
            tracing::info!(request = %request.id, "no member offers actor type {}: reminder firing parked", reminder.actor.actor_type);
            if let Some(deadline) = request.deadline {
                tokio::spawn(self.clone().expire_when_due(request, deadline));
            }
        }
    }
}
