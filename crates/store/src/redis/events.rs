//! Events in the Redis engine. Topics are global: their keys lie outside every
//! application's hash tag, under `kar:topic:{<tag>}:` (`<tag>` = the topic name
//! encoded like an application name), in a slot of their own (`lua/topics.lua`).
//! Subscriptions belong to the application (`lua/events.lua`, the usual prefix).
//!
//! A script may touch one slot only (Redis Cluster), so delivering reads the
//! subscription's position, then the next event from the topic's log, then runs one
//! script in the application's slot that compares the position (compare-and-set),
//! checks that the previous delivery finished, enqueues the request and advances the
//! position. The event read outside that script cannot change meanwhile (the log is
//! append-only), so each event is enqueued once per subscription.

use super::{encode_actor, hash_tag, target_actor, unexpected, value_bytes, value_string};
use super::{kind_code, RedisStore, SCRIPTS};
use crate::codec::encode;
use crate::{Delivery, EventRequestBuilder, Routing, StoreError};
use bytes::Bytes;
use kar_protocol::{ActorRef, NodeId, Subscription};
use redis::{ScriptInvocation, Value};

/// A subscription as read, with its position and whether a delivery is in flight.
struct Read {
    subscription: Subscription,
    position: String,
    busy: bool,
}

fn parse_record(value: Value) -> Result<Read, StoreError> {
    let Value::Array(fields) = value else {
        return Err(unexpected("subscription", &value));
    };
    let [t, i, s, path, topic, ct, group, oldest, pos, busy]: [Value; 10] = fields
        .try_into()
        .map_err(|fields| unexpected("subscription", &Value::Array(fields)))?;
    Ok(Read {
        subscription: Subscription {
            actor: ActorRef::new(value_string(t)?, value_string(i)?),
            id: value_string(s)?,
            path: value_string(path)?,
            topic: value_string(topic)?,
            content_type: value_string(ct)?,
            group: value_string(group)?,
            oldest: value_string(oldest)? == "1",
        },
        position: value_string(pos)?,
        busy: value_string(busy)? == "1",
    })
}

fn parse_records(value: Value) -> Result<Vec<Read>, StoreError> {
    match value {
        Value::Array(items) => items.into_iter().map(parse_record).collect(),
        Value::Nil => Ok(Vec::new()),
        other => Err(unexpected("subscriptions", &other)),
    }
}

fn sorted(reads: Vec<Read>) -> Vec<Subscription> {
    let mut all: Vec<Subscription> = reads.into_iter().map(|r| r.subscription).collect();
    all.sort_by(|a, b| (&a.actor, &a.id).cmp(&(&b.actor, &b.id)));
    all
}

impl RedisStore {
    /// An invocation of the topics script on `topic`'s keys.
    fn topic_op(&self, topic: &str, op: &str) -> ScriptInvocation<'static> {
        let prefix = format!("kar:topic:{{{}}}:", hash_tag(topic));
        let mut invocation = SCRIPTS.topics.prepare_invoke();
        invocation
            .key(format!("{prefix}meta"))
            .key(format!("{prefix}log"))
            .arg(op);
        invocation
    }

    fn events_op(&self, op: &str) -> Result<ScriptInvocation<'static>, StoreError> {
        self.op_invocation(&SCRIPTS.events, op, &["get", "all", "list"])
    }

    async fn call(&self, invocation: ScriptInvocation<'_>) -> Result<Value, StoreError> {
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    pub(super) async fn topic_create_impl(&self, topic: &str) -> Result<bool, StoreError> {
        let created: i64 = self
            .topic_op(topic, "create")
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(created == 1)
    }

    pub(super) async fn topic_delete_impl(&self, topic: &str) -> Result<bool, StoreError> {
        let existed: i64 = self
            .topic_op(topic, "delete")
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(existed == 1)
    }

    pub(super) async fn publish_impl(&self, topic: &str, event: Bytes) -> Result<u64, StoreError> {
        let mut invocation = self.topic_op(topic, "publish");
        invocation.arg(event.as_ref());
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    pub(super) async fn subscribe_impl(&self, s: &Subscription) -> Result<bool, StoreError> {
        // The newest offset is read before the subscription is written (another slot):
        // an event published in between is delivered, which is what "newest" allows.
        let start: u64 = if s.oldest {
            0
        } else {
            self.topic_op(&s.topic, "last")
                .invoke_async(&mut self.conn.clone())
                .await?
        };
        let mut invocation = self.events_op("subscribe")?;
        invocation
            .arg(encode_actor(&s.actor.actor_type, &s.actor.id))
            .arg(&s.id)
            .arg(&s.actor.actor_type)
            .arg(&s.actor.id)
            .arg(&s.path)
            .arg(&s.topic)
            .arg(&s.content_type)
            .arg(&s.group)
            .arg(if s.oldest { "1" } else { "0" })
            .arg(start.to_string());
        let replaced: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(replaced == 1)
    }

    async fn read_one(&self, actor: &ActorRef, id: &str) -> Result<Option<Read>, StoreError> {
        let mut invocation = self.events_op("get")?;
        invocation
            .arg(encode_actor(&actor.actor_type, &actor.id))
            .arg(id);
        match self.call(invocation).await? {
            Value::Nil => Ok(None),
            record => Ok(Some(parse_record(record)?)),
        }
    }

    pub(super) async fn subscription_get_impl(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        Ok(self.read_one(actor, id).await?.map(|r| r.subscription))
    }

    pub(super) async fn subscriptions_of_impl(
        &self,
        actor: &ActorRef,
    ) -> Result<Vec<Subscription>, StoreError> {
        let mut invocation = self.events_op("all")?;
        invocation.arg(encode_actor(&actor.actor_type, &actor.id));
        Ok(sorted(parse_records(self.call(invocation).await?)?))
    }

    pub(super) async fn subscriptions_impl(&self) -> Result<Vec<Subscription>, StoreError> {
        Ok(sorted(parse_records(
            self.call(self.events_op("list")?).await?,
        )?))
    }

    pub(super) async fn subscription_cancel_impl(
        &self,
        actor: &ActorRef,
        id: Option<&str>,
    ) -> Result<u64, StoreError> {
        let mut invocation = self.events_op(if id.is_some() { "cancel" } else { "cancel_all" })?;
        invocation.arg(encode_actor(&actor.actor_type, &actor.id));
        if let Some(id) = id {
            invocation.arg(id);
        }
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    pub(super) async fn deliver_event_impl(
        &self,
        actor: &ActorRef,
        id: &str,
        build: &EventRequestBuilder,
    ) -> Result<Delivery, StoreError> {
        let Some(read) = self.read_one(actor, id).await? else {
            return Ok(Delivery::Gone);
        };
        if read.busy {
            return Ok(Delivery::InFlight);
        }
        let mut next = self.topic_op(&read.subscription.topic, "next");
        next.arg(&read.position);
        let (offset, event) = match self.call(next).await? {
            Value::Nil => return Ok(Delivery::UpToDate),
            Value::Array(pair) if pair.len() == 2 => {
                let mut pair = pair.into_iter();
                let offset = match pair.next() {
                    Some(Value::Int(n)) => u64::try_from(n).unwrap_or(0),
                    other => return Err(unexpected("event offset", &other.unwrap_or(Value::Nil))),
                };
                let event = value_bytes(pair.next().unwrap_or(Value::Nil))?;
                (offset, event)
            }
            other => return Err(unexpected("event", &other)),
        };
        let request = build(&read.subscription, &event);
        let mut invocation = self.events_op("deliver")?;
        invocation
            .arg(encode_actor(&actor.actor_type, &actor.id))
            .arg(id)
            .arg(&read.position)
            .arg(offset.to_string())
            .arg(&request.id.0)
            .arg(request.target.routing_name())
            .arg(kind_code(request.kind))
            .arg(&request.caller.0)
            .arg(encode(&request))
            .arg(target_actor(&request.target));
        let outcome = value_string(self.call(invocation).await?)?;
        let routing = match outcome.as_str() {
            "g" => return Ok(Delivery::Gone),
            "b" | "s" => return Ok(Delivery::InFlight),
            "p" => Routing::Parked,
            assigned => match assigned.strip_prefix("a:") {
                Some(node) => Routing::Assigned(NodeId(node.to_string())),
                None => {
                    return Err(StoreError::Corrupt {
                        key: "events deliver".into(),
                        reason: format!("unexpected outcome {assigned:?}"),
                    })
                }
            },
        };
        Ok(Delivery::Delivered {
            offset,
            request: Box::new(request),
            routing,
        })
    }
}
