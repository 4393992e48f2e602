//! An operator's control of pending requests in the Redis engine: listing through the
//! `live` index (by arrival), one request with its `kids:` set, kill and pause (one
//! script each, unfenced: an operator is no member).

use super::reply::{unexpected, value_bytes, value_string};
use super::scripts::{KILL, LIST_REQUESTS, PAUSE, REQUEST_GET};
use super::RedisStore;
use crate::codec::{decode, encode};
use crate::codes::Status;
use crate::{
    ControlStore, Killed, Paused, PendingRequest, PendingStatus, RequestFilter, RequestPage,
    Signal, StoreError, KILLED,
};
use async_trait::async_trait;
use kar_protocol::{NodeId, Outcome, Request, RequestId};
use redis::Value;

fn number(what: &str, value: Value) -> Result<u64, StoreError> {
    let text = value_string(value)?;
    text.parse().map_err(|_| StoreError::Corrupt {
        key: what.to_string(),
        reason: format!("not a number: {text:?}"),
    })
}

fn status_code(status: PendingStatus) -> &'static str {
    match status {
        PendingStatus::Queued => Status::Queued.redis(),
        PendingStatus::Parked => Status::Parked.redis(),
        PendingStatus::Held => Status::Held.redis(),
        PendingStatus::Paused => Status::Paused.redis(),
    }
}

/// Decodes the six values per request of `pending_entry` (`lua/control.lua`).
fn entries(items: Vec<Value>) -> Result<Vec<PendingRequest>, StoreError> {
    let mut out = Vec::with_capacity(items.len() / 6);
    let mut items = items.into_iter();
    while let Some(seq) = items.next() {
        let mut field = || {
            items
                .next()
                .ok_or_else(|| unexpected("request entry", &Value::Nil))
        };
        let seq = number("seq", seq)?;
        let id = value_string(field()?)?;
        let status = value_bytes(field()?)?;
        let assignee = value_string(field()?)?;
        let attempt = number(&id, field()?)?;
        let record = value_bytes(field()?)?;
        let status = match Status::from_redis(&id, &status)? {
            Status::Queued => PendingStatus::Queued,
            Status::Parked => PendingStatus::Parked,
            Status::Held => PendingStatus::Held,
            Status::Paused => PendingStatus::Paused,
            Status::Done => continue,
        };
        let mut request: Request = decode(&id, &record)?;
        // The attempt lives beside the record (recovery counts it there).
        request.attempt = attempt as u32;
        out.push(PendingRequest {
            seq,
            request,
            status,
            assignee: (!assignee.is_empty()).then_some(NodeId(assignee)),
        });
    }
    Ok(out)
}

/// The outcome code and assignee of kill.lua / pause.lua.
fn code_and_assignee(
    what: &str,
    reply: Vec<Value>,
) -> Result<(String, Option<NodeId>), StoreError> {
    let mut reply = reply.into_iter();
    let code = value_string(reply.next().ok_or_else(|| unexpected(what, &Value::Nil))?)?;
    let assignee = match reply.next() {
        Some(value) => Some(value_string(value)?).filter(|node| !node.is_empty()),
        None => None,
    };
    Ok((code, assignee.map(NodeId)))
}

fn abandon(id: &RequestId) -> Vec<u8> {
    encode(&Signal::Abandon { id: id.clone() })
}

#[async_trait]
impl ControlStore for RedisStore {
    async fn list_requests(
        &self,
        filter: &RequestFilter,
        after: Option<u64>,
        limit: usize,
    ) -> Result<RequestPage, StoreError> {
        let mut invocation = self.unfenced(&LIST_REQUESTS);
        invocation
            .arg(after.unwrap_or(0))
            .arg(limit.max(1))
            .arg(filter.status.map_or("", status_code))
            .arg(filter.service.as_deref().unwrap_or(""))
            .arg(filter.actor_type.as_deref().unwrap_or(""))
            .arg(filter.actor_id.as_deref().unwrap_or(""));
        let mut reply: Vec<Value> = invocation.invoke_async(&mut self.conn.clone()).await?;
        if reply.is_empty() {
            return Err(unexpected("list_requests", &Value::Nil));
        }
        let next = value_string(reply.remove(0))?;
        let next = if next.is_empty() {
            None
        } else {
            Some(number("next", Value::BulkString(next.into_bytes()))?)
        };
        Ok(RequestPage {
            requests: entries(reply)?,
            next,
        })
    }

    async fn request_with_children(
        &self,
        id: &RequestId,
    ) -> Result<Option<(PendingRequest, Vec<PendingRequest>)>, StoreError> {
        let mut invocation = self.unfenced(&REQUEST_GET);
        invocation.arg(&id.0);
        let reply: Vec<Value> = invocation.invoke_async(&mut self.conn.clone()).await?;
        let mut found = entries(reply)?.into_iter();
        Ok(found.next().map(|request| (request, found.collect())))
    }

    async fn kill(&self, id: &RequestId) -> Result<Killed, StoreError> {
        let mut invocation = self.unfenced(&KILL);
        invocation
            .arg(&id.0)
            .arg(encode(&Outcome::Failed(KILLED.to_string())))
            .arg(abandon(id));
        let reply: Vec<Value> = invocation.invoke_async(&mut self.conn.clone()).await?;
        match code_and_assignee("kill", reply)? {
            (code, assignee) if code == "k" => Ok(Killed::Killed { assignee }),
            (code, _) if code == "u" => Ok(Killed::Unknown),
            (code, _) if code == "c" => Ok(Killed::AlreadyComplete),
            (code, _) => Err(unexpected("kill", &Value::SimpleString(code))),
        }
    }

    async fn pause(&self, id: &RequestId) -> Result<Paused, StoreError> {
        let mut invocation = self.unfenced(&PAUSE);
        invocation.arg(&id.0).arg(abandon(id));
        let reply: Vec<Value> = invocation.invoke_async(&mut self.conn.clone()).await?;
        match code_and_assignee("pause", reply)? {
            (code, assignee) if code == "x" => Ok(Paused::Paused { assignee }),
            (code, _) if code == "u" => Ok(Paused::Unknown),
            (code, _) if code == "c" => Ok(Paused::AlreadyComplete),
            (code, _) if code == "p" => Ok(Paused::AlreadyPaused),
            (code, _) => Err(unexpected("pause", &Value::SimpleString(code))),
        }
    }
}
