//! Events in the Redis engine. Topics are global: their keys lie outside every
//! application's hash tag, under `kar:topic:{<tag>}:` (`<tag>` = the topic name
//! encoded like an application name), in a slot of their own (`lua/topic_*.lua`).
//! Subscriptions belong to the application (`lua/bindings.lua`, the usual prefix;
//! reading and cancelling are shared with reminders: `bindings.rs`).
//!
//! A script may touch one slot only (Redis Cluster), so delivering reads the
//! subscription's position, then the next event from the topic's log, then runs one
//! script in the application's slot that compares the position (compare-and-set),
//! checks that the previous delivery finished, enqueues the request and advances the
//! position. The event read outside that script cannot change meanwhile (the log is
//! append-only), so each event is enqueued once per subscription.

use super::bindings::{fields, head_args, records, Binding};
use super::requests::{request_args, routing};
use super::scripts::{TopicScript, DELIVER_EVENT, SUBSCRIBE};
use super::scripts::{BINDINGS_ALL, BRIDGE_APPEND, BRIDGE_CLAIM, TOPIC_TRIM};
use super::scripts::{TOPIC_CREATE, TOPIC_DELETE, TOPIC_NEXT, TOPIC_PUBLISH, TOPIC_READER};
use super::{encode_actor, unexpected, value_bytes, value_string, RedisStore};
use crate::{Bridge, Claim, Delivery, EventRequestBuilder, EventStore, StoreError};
use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::{ActorRef, Subscription};
use redis::Value;
use std::time::Duration;

/// A subscription as read, with its position and whether a delivery is in flight.
pub(super) struct Read {
    subscription: Subscription,
    position: String,
    busy: bool,
}

impl Binding for Subscription {
    const KIND: &'static str = "subscription";
    type Read = Read;

    fn parse(record: Value) -> Result<Read, StoreError> {
        let [t, i, s, path, topic, ct, group, oldest, pos, busy] = fields("subscription", record)?;
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
}

impl From<Read> for Subscription {
    fn from(read: Read) -> Subscription {
        read.subscription
    }
}

/// The reply of `topic_next`: the offset and the event, or `None` (up to date).
fn next_event(reply: Value) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
    let pair = match reply {
        Value::Nil => return Ok(None),
        Value::Array(pair) if pair.len() == 2 => pair,
        other => return Err(unexpected("event", &other)),
    };
    let mut pair = pair.into_iter();
    let offset = match pair.next() {
        Some(Value::Int(n)) => u64::try_from(n).unwrap_or(0),
        other => return Err(unexpected("event offset", &other.unwrap_or(Value::Nil))),
    };
    let event = value_bytes(pair.next().unwrap_or(Value::Nil))?;
    Ok(Some((offset, event)))
}

impl RedisStore {
    /// Runs `script` on `topic`: whether it reports a change (1).
    async fn topic_changed(&self, script: &TopicScript, topic: &str) -> Result<bool, StoreError> {
        let changed: i64 = script
            .invocation(topic)
            .invoke_async(&mut self.conn.clone())
            .await?;
        Ok(changed == 1)
    }

    /// Every subscription with its lag (`AdminStore::subscription_lags`): the
    /// subscriptions in one read of the application's slot, then per topic its
    /// `last` and `floor` (every offset in `(floor, last]` is present, so the lag is
    /// `last - max(position, floor)`; a deleted topic has none).
    pub(super) async fn read_subscription_lags(
        &self,
    ) -> Result<Vec<crate::SubscriptionLag>, StoreError> {
        let mut all = self.unfenced(&BINDINGS_ALL);
        all.arg(<Subscription as Binding>::KIND);
        let reads = records::<Subscription>(all.invoke_async(&mut self.conn.clone()).await?)?;
        let mut tops: std::collections::HashMap<String, Option<(u64, u64)>> =
            std::collections::HashMap::new();
        for read in &reads {
            let topic = &read.subscription.topic;
            if tops.contains_key(topic) {
                continue;
            }
            let [meta, ..] = super::topic_keys(topic);
            let (last, floor, live): (Option<u64>, Option<u64>, Option<String>) =
                redis::cmd("HMGET")
                    .arg(&meta)
                    .arg("last")
                    .arg("floor")
                    .arg("live")
                    .query_async(&mut self.conn.clone())
                    .await?;
            let top =
                (live.as_deref() == Some("1")).then(|| (last.unwrap_or(0), floor.unwrap_or(0)));
            tops.insert(topic.clone(), top);
        }
        let mut lags: Vec<crate::SubscriptionLag> = reads
            .into_iter()
            .map(|read| {
                let position = read.position.parse::<u64>().unwrap_or(0);
                let lag = match tops.get(&read.subscription.topic) {
                    Some(Some((last, floor))) => last.saturating_sub(position.max(*floor)),
                    _ => 0,
                };
                crate::SubscriptionLag {
                    subscription: read.subscription,
                    position,
                    lag,
                    in_flight: read.busy,
                }
            })
            .collect();
        lags.sort_by(|a, b| {
            kar_protocol::Binding::sort_key(&a.subscription)
                .cmp(&kar_protocol::Binding::sort_key(&b.subscription))
        });
        Ok(lags)
    }
}

#[async_trait]
impl EventStore for RedisStore {
    async fn topic_create(&self, topic: &str) -> Result<bool, StoreError> {
        self.topic_changed(&TOPIC_CREATE, topic).await
    }

    async fn topic_delete(&self, topic: &str) -> Result<bool, StoreError> {
        self.topic_changed(&TOPIC_DELETE, topic).await
    }

    async fn publish(&self, topic: &str, event: Bytes) -> Result<u64, StoreError> {
        let mut invocation = TOPIC_PUBLISH.invocation(topic);
        invocation.arg(event.as_ref());
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    async fn subscribe(&self, s: &Subscription) -> Result<bool, StoreError> {
        // The start (the newest offset, or 0 from the oldest) is read before the
        // subscription is written (another slot): an event published in between is
        // delivered, which is what "newest" allows. The same script lowers this
        // application's reader mark on the topic to the start, so that trimming by
        // other applications keeps what this subscription will read.
        let mut reader = TOPIC_READER.invocation(&s.topic);
        reader
            .arg(&self.keys.app)
            .arg(if s.oldest { "1" } else { "0" });
        let start: u64 = reader.invoke_async(&mut self.conn.clone()).await?;
        let mut invocation = self.by_handle(&SUBSCRIBE)?;
        head_args(&mut invocation, s);
        invocation
            .arg(&s.topic)
            .arg(&s.content_type)
            .arg(&s.group)
            .arg(if s.oldest { "1" } else { "0" })
            .arg(start.to_string());
        let replaced: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(replaced == 1)
    }

    async fn deliver_event(
        &self,
        actor: &ActorRef,
        id: &str,
        build: &EventRequestBuilder,
    ) -> Result<Delivery, StoreError> {
        let Some(read) = self.binding_read::<Subscription>(actor, id).await? else {
            return Ok(Delivery::Gone);
        };
        if read.busy {
            return Ok(Delivery::InFlight);
        }
        let mut next = TOPIC_NEXT.invocation(&read.subscription.topic);
        next.arg(&read.position);
        let Some((offset, event)) = next_event(next.invoke_async(&mut self.conn.clone()).await?)?
        else {
            return Ok(Delivery::UpToDate);
        };
        let request = build(&read.subscription, &event);
        let mut invocation = self.by_handle(&DELIVER_EVENT)?;
        invocation
            .arg(encode_actor(&actor.actor_type, &actor.id))
            .arg(id)
            .arg(&read.position)
            .arg(offset.to_string());
        request_args(&mut invocation, &request);
        let outcome = value_string(invocation.invoke_async(&mut self.conn.clone()).await?)?;
        let routing = match outcome.as_str() {
            "g" => return Ok(Delivery::Gone),
            "b" | "s" => return Ok(Delivery::InFlight),
            other => routing("deliver_event", other)?,
        };
        Ok(Delivery::Delivered {
            offset,
            request: Box::new(request),
            routing,
        })
    }

    async fn trim(&self, topic: &str, retention: Duration, max: u64) -> Result<u64, StoreError> {
        // The application's lowest position on the topic, recorded in the topic's slot
        // by the trim script (the subscriptions live in the application's slot).
        let mut all = self.unfenced(&BINDINGS_ALL);
        all.arg(<Subscription as Binding>::KIND);
        let lowest = records::<Subscription>(all.invoke_async(&mut self.conn.clone()).await?)?
            .into_iter()
            .filter(|read| read.subscription.topic == topic)
            .filter_map(|read| read.position.parse::<u64>().ok())
            .min();
        let mut invocation = TOPIC_TRIM.invocation(topic);
        invocation
            .arg(&self.keys.app)
            .arg(lowest.map(|p| p.to_string()).unwrap_or_default())
            .arg(millis(retention))
            .arg(max);
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    async fn bridge_claim(
        &self,
        bridge: &Bridge,
        node: &str,
        lease: Duration,
    ) -> Result<Claim, StoreError> {
        let mut invocation = BRIDGE_CLAIM.invocation(&bridge.topic);
        invocation
            .arg(&bridge.source)
            .arg(bridge.partition)
            .arg(node)
            .arg(millis(lease));
        let reply: Value = invocation.invoke_async(&mut self.conn.clone()).await?;
        let Value::Array(items) = reply else {
            return Err(unexpected("bridge claim", &reply));
        };
        match items.as_slice() {
            [Value::Int(1)] => Ok(Claim::Mine(None)),
            [Value::Int(1), Value::Int(next)] => Ok(Claim::Mine(Some(*next))),
            [Value::Int(0), owner] => Ok(Claim::Owned(value_string(owner.clone())?)),
            _ => Err(unexpected("bridge claim", &Value::Array(items))),
        }
    }

    async fn bridge_append(
        &self,
        bridge: &Bridge,
        node: &str,
        lease: Duration,
        from: Option<i64>,
        next: i64,
        events: Vec<Bytes>,
    ) -> Result<bool, StoreError> {
        let mut invocation = BRIDGE_APPEND.invocation(&bridge.topic);
        invocation
            .arg(&bridge.source)
            .arg(bridge.partition)
            .arg(node)
            .arg(millis(lease))
            .arg(from.map(|f| f.to_string()).unwrap_or_default())
            .arg(next);
        for event in &events {
            invocation.arg(event.as_ref());
        }
        let done: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(done == 1)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
