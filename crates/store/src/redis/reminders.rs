//! Reminders in the Redis engine (`lua/reminders.lua`): a hash per reminder, a set of
//! ids per actor, and one zset of the application's reminders by target time.
//!
//! Firing reads the due reminders, builds their requests here (the request record is
//! postcard, which Lua cannot write), then runs one script that, for each firing,
//! checks that the reminder is unchanged (its generation and target time: a
//! compare-and-set) and in the same step enqueues the request and advances the
//! reminder. A member that read the same reminders concurrently finds them changed
//! and skips them, so each due firing is enqueued once.

use super::{encode_actor, target_actor, unexpected, value_bytes, value_string, RedisStore};
use super::{kind_code, SCRIPTS};
use crate::codec::encode;
use crate::{Firing, RequestBuilder, Routing, StoreError};
use bytes::Bytes;
use kar_protocol::{ActorRef, NodeId, Reminder};
use redis::{ScriptInvocation, Value};

/// A reminder as read, with the generation that `fire` compares.
struct Read {
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

fn parse_record(value: Value) -> Result<Read, StoreError> {
    let Value::Array(fields) = value else {
        return Err(unexpected("reminder", &value));
    };
    let [t, i, r, path, due, text, period, data, gen]: [Value; 9] = fields
        .try_into()
        .map_err(|fields| unexpected("reminder", &Value::Array(fields)))?;
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
        },
        gen: value_string(gen)?,
    })
}

fn parse_records(value: Value) -> Result<Vec<Read>, StoreError> {
    match value {
        Value::Array(items) => items.into_iter().map(parse_record).collect(),
        Value::Nil => Ok(Vec::new()),
        other => Err(unexpected("reminders", &other)),
    }
}

impl RedisStore {
    fn reminders_op(&self, op: &str) -> Result<ScriptInvocation<'static>, StoreError> {
        self.op_invocation(
            &SCRIPTS.reminders,
            op,
            &["get", "all", "list", "next_due", "due"],
        )
    }

    async fn reminders_call(&self, invocation: ScriptInvocation<'_>) -> Result<Value, StoreError> {
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    pub(super) async fn reminder_schedule_impl(&self, r: &Reminder) -> Result<bool, StoreError> {
        let mut invocation = self.reminders_op("schedule")?;
        invocation
            .arg(encode_actor(&r.actor.actor_type, &r.actor.id))
            .arg(&r.id)
            .arg(&r.actor.actor_type)
            .arg(&r.actor.id)
            .arg(&r.path)
            .arg(r.target.to_string())
            .arg(r.target_text.as_deref().unwrap_or(""))
            .arg(r.period.to_string())
            .arg(r.data.as_ref());
        let replaced: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(replaced == 1)
    }

    pub(super) async fn reminder_get_impl(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<Option<Reminder>, StoreError> {
        let mut invocation = self.reminders_op("get")?;
        invocation
            .arg(encode_actor(&actor.actor_type, &actor.id))
            .arg(id);
        match self.reminders_call(invocation).await? {
            Value::Nil => Ok(None),
            record => Ok(Some(parse_record(record)?.reminder)),
        }
    }

    pub(super) async fn reminders_of_impl(
        &self,
        actor: &ActorRef,
    ) -> Result<Vec<Reminder>, StoreError> {
        let mut invocation = self.reminders_op("all")?;
        invocation.arg(encode_actor(&actor.actor_type, &actor.id));
        let mut all: Vec<Reminder> = parse_records(self.reminders_call(invocation).await?)?
            .into_iter()
            .map(|read| read.reminder)
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    pub(super) async fn reminders_impl(&self) -> Result<Vec<Reminder>, StoreError> {
        let mut all: Vec<Reminder> =
            parse_records(self.reminders_call(self.reminders_op("list")?).await?)?
                .into_iter()
                .map(|read| read.reminder)
                .collect();
        all.sort_by(|a, b| {
            (&a.actor.actor_type, &a.actor.id, &a.id).cmp(&(
                &b.actor.actor_type,
                &b.actor.id,
                &b.id,
            ))
        });
        Ok(all)
    }

    pub(super) async fn reminder_cancel_impl(
        &self,
        actor: &ActorRef,
        id: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut invocation =
            self.reminders_op(if id.is_some() { "cancel" } else { "cancel_all" })?;
        invocation.arg(encode_actor(&actor.actor_type, &actor.id));
        if let Some(id) = id {
            invocation.arg(id);
        }
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    pub(super) async fn next_due_impl(&self) -> Result<Option<i64>, StoreError> {
        match self.reminders_call(self.reminders_op("next_due")?).await? {
            Value::Nil => Ok(None),
            due => Ok(Some(number("due", due)?)),
        }
    }

    pub(super) async fn fire_due_impl(
        &self,
        now: i64,
        limit: usize,
        build: &RequestBuilder,
    ) -> Result<Vec<Firing>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut invocation = self.reminders_op("due")?;
        invocation.arg(now.to_string()).arg(limit);
        let due = parse_records(self.reminders_call(invocation).await?)?;
        if due.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = self.reminders_op("fire")?;
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
                .arg(next)
                .arg(&request.id.0)
                .arg(request.target.routing_name())
                .arg(kind_code(request.kind))
                .arg(&request.caller.0)
                .arg(encode(&request))
                .arg(target_actor(&request.target));
            planned.push((reminder, request));
        }
        let outcomes: Vec<String> = invocation.invoke_async(&mut self.conn.clone()).await?;
        let mut firings = Vec::with_capacity(planned.len());
        for ((reminder, request), outcome) in planned.into_iter().zip(outcomes) {
            let routing = match outcome.as_str() {
                "p" => Routing::Parked,
                "s" => continue,
                assigned => match assigned.strip_prefix("a:") {
                    Some(node) => Routing::Assigned(NodeId(node.to_string())),
                    None => {
                        return Err(StoreError::Corrupt {
                            key: "reminders fire".into(),
                            reason: format!("unexpected outcome {assigned:?}"),
                        })
                    }
                },
            };
            firings.push(Firing {
                reminder,
                request,
                routing,
            });
        }
        Ok(firings)
    }
}
