//! Reminders in the Redis engine: a hash per reminder, a set of ids per actor, and
//! one zset of the application's reminders by target time (`lua/bindings.lua`;
//! reading and cancelling are shared with subscriptions: `bindings.rs`).
//!
//! Firing reads the due reminders (claiming them for a moment, so that the members
//! firing at the same time read different ones), builds their requests here (the
//! request record is postcard, which Lua cannot write), then runs one script that, for
//! each firing, checks that the reminder is unchanged (its generation and target
//! time: a compare-and-set) and in the same step enqueues the request and advances
//! the reminder. A member that read the same reminders concurrently (its claim ended)
//! finds them changed and skips them, so each due firing is enqueued once.

use super::bindings::{fields, head_args, records, Binding};
use super::requests::{request_args, routing};
use super::scripts::{
    REMINDERS_DUE, REMINDERS_FIRE, REMINDERS_NEXT_DUE, REMINDERS_PENDING, REMINDER_SCHEDULE,
};
use super::{encode_actor, value_bytes, value_string, RedisStore};
use crate::{Firing, ReminderStore, RequestBuilder, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::{ActorRef, Reminder, TraceContext};
use redis::Value;

/// How long the reminders a firing pass read stay out of the other members' passes
/// (`reminders_due.lua`): far longer than reading and firing a batch takes, and the
/// longest a firing waits when the member that read it dies before firing it.
const CLAIM: std::time::Duration = std::time::Duration::from_secs(1);

/// A reminder as read, with the generation that `fire` compares.
pub(super) struct Read {
    reminder: Reminder,
    gen: String,
}

fn number<T: std::str::FromStr>(field: &str, value: Value) -> Result<T, StoreError> {
    let text = value_string(value)?;
    text.parse().map_err(|_| StoreError::Corrupt {
        key: format!("reminder field {field}"),
        reason: format!("not a number: {text:?}"),
    })
}

impl Binding for Reminder {
    const KIND: &'static str = "reminder";
    type Read = Read;

    fn parse(record: Value) -> Result<Read, StoreError> {
        let [t, i, r, path, due, text, period, data, gen, trace] = fields("reminder", record)?;
        let text = value_string(text)?;
        Ok(Read {
            reminder: Reminder {
                actor: ActorRef::new(value_string(t)?, value_string(i)?),
                id: value_string(r)?,
                path: value_string(path)?,
                target: number("due", due)?,
                target_text: (!text.is_empty()).then_some(text),
                period: number("period", period)?,
                data: Bytes::from(value_bytes(data)?),
                // Absent (scheduled untraced, or by an earlier kar): none.
                trace: match trace {
                    Value::Nil => None,
                    trace => TraceContext::parse(&value_string(trace)?),
                },
            },
            gen: value_string(gen)?,
        })
    }
}

impl From<Read> for Reminder {
    fn from(read: Read) -> Reminder {
        read.reminder
    }
}

#[async_trait]
impl ReminderStore for RedisStore {
    async fn reminder_schedule(&self, r: &Reminder) -> Result<bool, StoreError> {
        let mut invocation = self.by_handle(&REMINDER_SCHEDULE)?;
        head_args(&mut invocation, r);
        invocation
            .arg(r.target.to_string())
            .arg(r.target_text.as_deref().unwrap_or(""))
            .arg(r.period.to_string())
            .arg(r.data.as_ref())
            .arg(r.trace.map(|t| t.to_string()).unwrap_or_default());
        let replaced: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(replaced == 1)
    }

    async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        match self
            .unfenced(&REMINDERS_NEXT_DUE)
            .invoke_async(&mut self.conn.clone())
            .await?
        {
            Value::Nil => Ok(None),
            due => Ok(Some(number("due", due)?)),
        }
    }

    async fn fire_due(
        &self,
        now: i64,
        limit: usize,
        build: &RequestBuilder,
    ) -> Result<Vec<Firing>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut invocation = self.by_handle(&REMINDERS_DUE)?;
        invocation
            .arg(now.to_string())
            .arg(limit)
            .arg(CLAIM.as_millis().to_string());
        // In due order, claimed.
        let due = records::<Reminder>(invocation.invoke_async(&mut self.conn.clone()).await?)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.by_handle(&REMINDERS_FIRE)?;
        invocation.arg(due.len());
        let mut planned = Vec::with_capacity(due.len());
        for Read { reminder, gen } in due {
            let request = build(&reminder);
            let next = reminder
                .next_target(now)
                .map(|t| t.to_string())
                .unwrap_or_default();
            invocation
                .arg(encode_actor(&reminder.actor.actor_type, &reminder.actor.id))
                .arg(&reminder.id)
                .arg(gen)
                .arg(reminder.target.to_string())
                .arg(next);
            request_args(&mut invocation, &request);
            planned.push((reminder, request));
        }
        let outcomes: Vec<String> = invocation.invoke_async(&mut self.conn.clone()).await?;
        let mut firings = Vec::with_capacity(planned.len());
        for ((reminder, request), outcome) in planned.into_iter().zip(outcomes) {
            if outcome == "s" {
                continue;
            }
            firings.push(Firing {
                reminder,
                request,
                routing: routing("reminders_fire", &outcome)?,
            });
        }
        Ok(firings)
    }

    async fn firings_pending(&self, bound: usize) -> Result<usize, StoreError> {
        let mut invocation = self.unfenced(&REMINDERS_PENDING);
        invocation.arg(bound);
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }
}
