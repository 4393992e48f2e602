//! Reading an inbox stream: blocking `XREAD` on a connection of the inbox's own,
//! trimming what was handed out at the next read (so a cancelled read loses nothing).

use super::connect::Connector;
use super::lease::{lock, LocalMembers};
use crate::codec::decode;
use crate::codes::kind_from_text;
use crate::{Inbox, Message, StoreError};
use async_trait::async_trait;
use kar_protocol::RequestId;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Most messages taken by one `recv`.
pub(crate) const BATCH: usize = 1024;
/// Longest server-side block of one `XREAD`; reads loop, so this only bounds how long
/// a silently dead connection can go unnoticed.
const BLOCK: Duration = Duration::from_secs(5);

async fn connect(client: &Connector) -> Result<MultiplexedConnection, StoreError> {
    // A read queued behind a cancelled one may wait for two blocks.
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(super::CONNECT_TIMEOUT))
        .set_response_timeout(Some(BLOCK * 2 + super::RESPONSE_TIMEOUT));
    Ok(client.connect(&config).await?)
}

/// The read side of one inbox stream.
pub(crate) struct Reader {
    client: Connector,
    /// Dedicated to this inbox (a blocking read would stall other commands); `None`
    /// after an error, reopened by the next read.
    conn: Option<MultiplexedConnection>,
    key: String,
    /// Id of the last entry handed out.
    last_id: String,
    /// A copy of `last_id` for a graceful leave (`leave.lua`): the entries after it
    /// were never read, so the leave re-delivers them without charging an attempt.
    read_mark: ReadMark,
    /// Entries below this id were handed out: the next read trims them.
    trim_below: Option<String>,
}

impl Reader {
    pub(crate) async fn connect(client: &Connector, key: String) -> Result<Self, StoreError> {
        let conn = connect(client).await?;
        Ok(Reader {
            client: client.clone(),
            conn: Some(conn),
            key,
            last_id: "0-0".to_string(),
            read_mark: std::sync::Arc::new(std::sync::Mutex::new("0-0".to_string())),
            trim_below: None,
        })
    }

    /// Where this reader stands, shared with the member's leave.
    pub(crate) fn read_mark(&self) -> ReadMark {
        self.read_mark.clone()
    }

    /// One blocking read: the messages available now or arriving within [`BLOCK`]
    /// (possibly none).
    ///
    /// Cancel safety: `last_id` and `trim_below` only change once the reply is in
    /// hand, so a cancelled read is simply repeated by the next call (the trim is
    /// idempotent and the entries are still in the stream). The cancelled `XREAD`
    /// stays queued on the connection; its reply is discarded when it arrives.
    async fn read(&mut self) -> Result<Vec<Message>, StoreError> {
        let conn = match self.conn.as_mut() {
            Some(conn) => conn,
            None => self.conn.insert(connect(&self.client).await?),
        };
        let mut pipe = redis::pipe();
        if let Some(min) = &self.trim_below {
            pipe.cmd("XTRIM")
                .arg(&self.key)
                .arg("MINID")
                .arg(min)
                .ignore();
        }
        pipe.cmd("XREAD")
            .arg("COUNT")
            .arg(BATCH)
            .arg("BLOCK")
            .arg(u64::try_from(BLOCK.as_millis()).unwrap_or(5000))
            .arg("STREAMS")
            .arg(&self.key)
            .arg(&self.last_id);
        let (reply,): (Value,) = match pipe.query_async(conn).await {
            Ok(reply) => reply,
            Err(e) => {
                self.conn = None;
                return Err(e.into());
            }
        };
        self.trim_below = None;
        let entries = stream_entries(reply).map_err(|reason| StoreError::Corrupt {
            key: self.key.clone(),
            reason,
        })?;
        if let Some((last, _)) = entries.last() {
            self.trim_below = Some(successor(last));
        }
        let mut messages = Vec::with_capacity(entries.len());
        for (id, fields) in entries {
            match message(&fields) {
                Ok(Message::MembersChanged) if messages.contains(&Message::MembersChanged) => {}
                Ok(message) => messages.push(message),
                // Skipped rather than returned: an entry that cannot be decoded now
                // never will be, and the messages around it must still arrive.
                Err(e) => {
                    tracing::error!(inbox = %self.key, entry = %id, "dropping a corrupt inbox entry: {e}")
                }
            }
            self.last_id = id;
        }
        if self.trim_below.is_some() {
            *self.read_mark.lock().unwrap_or_else(|e| e.into_inner()) = self.last_id.clone();
        }
        Ok(messages)
    }
}

/// The id of the last inbox entry a member read ("0-0": none yet).
pub(crate) type ReadMark = std::sync::Arc<std::sync::Mutex<String>>;

/// The smallest stream id above `id` (`ms-seq`).
fn successor(id: &str) -> String {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    let ms: u64 = ms.parse().unwrap_or(0);
    match seq.parse::<u64>() {
        Ok(seq) if seq < u64::MAX => format!("{ms}-{}", seq + 1),
        _ => format!("{}-0", ms.saturating_add(1)),
    }
}

type Entry = (String, Vec<(Vec<u8>, Vec<u8>)>);

fn bytes(value: Value) -> Result<Vec<u8>, String> {
    match value {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        other => Err(format!("unexpected value {other:?}")),
    }
}

fn pairs(value: Value) -> Result<Vec<(Value, Value)>, String> {
    match value {
        Value::Map(pairs) => Ok(pairs),
        Value::Array(items) => {
            let mut pairs = Vec::with_capacity(items.len() / 2);
            let mut items = items.into_iter();
            while let (Some(k), Some(v)) = (items.next(), items.next()) {
                pairs.push((k, v));
            }
            Ok(pairs)
        }
        other => Err(format!("unexpected value {other:?}")),
    }
}

/// The entries of the single stream of an `XREAD` reply (nil: none).
fn stream_entries(reply: Value) -> Result<Vec<Entry>, String> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        // RESP2: [[key, entries]]; RESP3: {key: entries}.
        Value::Array(streams) => streams
            .into_iter()
            .map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => Ok(kv.remove(1)),
                other => Err(format!("unexpected stream {other:?}")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Value::Map(streams) => streams.into_iter().map(|(_, v)| v).collect(),
        other => return Err(format!("unexpected XREAD reply {other:?}")),
    };
    let mut out = Vec::new();
    for entries in streams {
        let Value::Array(entries) = entries else {
            return Err("stream entries are not an array".into());
        };
        for entry in entries {
            let Value::Array(mut parts) = entry else {
                return Err("stream entry is not an array".into());
            };
            if parts.len() != 2 {
                return Err("stream entry is not [id, fields]".into());
            }
            let fields = pairs(parts.remove(1))?
                .into_iter()
                .map(|(k, v)| Ok((bytes(k)?, bytes(v)?)))
                .collect::<Result<Vec<_>, String>>()?;
            let id = String::from_utf8(bytes(parts.remove(0))?).map_err(|e| e.to_string())?;
            out.push((id, fields));
        }
    }
    Ok(out)
}

/// Builds the message of one inbox entry.
fn message(fields: &[(Vec<u8>, Vec<u8>)]) -> Result<Message, StoreError> {
    let field = |name: &[u8]| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_slice())
    };
    let corrupt = |reason: &str| StoreError::Corrupt {
        key: "inbox entry".into(),
        reason: reason.into(),
    };
    let id = || {
        field(b"i")
            .map(|i| String::from_utf8_lossy(i).into_owned())
            .ok_or_else(|| corrupt("no request id"))
    };
    match field(b"t") {
        Some(b"e") => {
            let id = id()?;
            let payload = field(b"p").ok_or_else(|| corrupt("no payload"))?;
            let mut request: kar_protocol::Request = decode(&id, payload)?;
            // The record is the request as enqueued; recovery counts attempts apart.
            if let Some(attempt) = field(b"a") {
                request.attempt = std::str::from_utf8(attempt)
                    .ok()
                    .and_then(|a| a.parse().ok())
                    .ok_or_else(|| corrupt("bad attempt"))?;
            }
            Ok(Message::Execute(Box::new(request)))
        }
        Some(b"c") => {
            let id = id()?;
            let payload = field(b"p").ok_or_else(|| corrupt("no payload"))?;
            Ok(Message::Completed {
                outcome: decode(&id, payload)?,
                kind: kind_from_text(&id, field(b"k").ok_or_else(|| corrupt("no kind"))?)?,
                id: RequestId(id),
            })
        }
        Some(b"m") => Ok(Message::MembersChanged),
        Some(b"s") => {
            let payload = field(b"p").ok_or_else(|| corrupt("no payload"))?;
            Ok(Message::Signal(decode("signal", payload)?))
        }
        _ => Err(corrupt("unknown message type")),
    }
}

/// The inbox of a member joined through a [`super::RedisStore`]. Owns the member's
/// lease renewal: dropping the inbox stops renewing, so the member dies one lease
/// later (like the embedded engine's lock released on drop).
pub(crate) struct RedisInbox {
    node: String,
    reader: Reader,
    fenced: watch::Receiver<bool>,
    renew: JoinHandle<()>,
    members: LocalMembers,
}

impl RedisInbox {
    pub(crate) fn new(
        node: String,
        reader: Reader,
        fenced: watch::Receiver<bool>,
        renew: JoinHandle<()>,
        members: LocalMembers,
    ) -> Self {
        RedisInbox {
            node,
            reader,
            fenced,
            renew,
            members,
        }
    }
}

impl Drop for RedisInbox {
    fn drop(&mut self) {
        self.renew.abort();
        let mut members = lock(&self.members);
        // Only our own entry: the node may have joined again through the same handle.
        if members
            .get(&self.node)
            .is_some_and(|m| m.renew.id() == self.renew.id())
        {
            members.remove(&self.node);
        }
    }
}

#[async_trait]
impl Inbox for RedisInbox {
    /// Waits for messages and takes every available one (up to [`BATCH`]). Fails with
    /// [`StoreError::Fenced`] once the member's lease is lost. Cancel-safe: see
    /// [`Reader::read`].
    async fn recv(&mut self) -> Result<Vec<Message>, StoreError> {
        let mut fenced = self.fenced.clone();
        loop {
            if *fenced.borrow() {
                return Err(StoreError::Fenced(self.node.clone()));
            }
            let lost = async {
                // A closed channel means the renewal stopped without fencing (the
                // member left): nothing will ever fence it.
                if fenced.wait_for(|f| *f).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                read = self.reader.read() => {
                    let messages = read?;
                    if !messages.is_empty() {
                        return Ok(messages);
                    }
                }
                _ = lost => return Err(StoreError::Fenced(self.node.clone())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successors() {
        assert_eq!(successor("5-0"), "5-1");
        assert_eq!(successor("1700000000000-41"), "1700000000000-42");
        assert_eq!(successor(&format!("7-{}", u64::MAX)), "8-0");
    }

    #[test]
    fn parses_resp2_xread() {
        let reply = Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"k".to_vec()),
            Value::Array(vec![Value::Array(vec![
                Value::BulkString(b"1-0".to_vec()),
                Value::Array(vec![
                    Value::BulkString(b"t".to_vec()),
                    Value::BulkString(b"m".to_vec()),
                ]),
            ])]),
        ])]);
        let entries = stream_entries(reply).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, "1-0");
        assert_eq!(message(&entries[0].1).unwrap(), Message::MembersChanged);
        assert!(stream_entries(Value::Nil).unwrap().is_empty());
    }

    fn entry(fields: &[(&str, &[u8])]) -> Vec<(Vec<u8>, Vec<u8>)> {
        fields
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
            .collect()
    }

    #[test]
    fn decodes_signals() {
        let signal = crate::Signal::ListActors {
            from: kar_protocol::NodeId("n1".into()),
            query: 7,
        };
        let payload = crate::codec::encode(&signal);
        assert_eq!(
            message(&entry(&[("t", b"s"), ("p", &payload)])).unwrap(),
            Message::Signal(signal)
        );
        assert!(message(&entry(&[("t", b"s")])).is_err());
    }

    #[test]
    fn unknown_kind_codes_are_corrupt() {
        let outcome = crate::codec::encode(&kar_protocol::Outcome::Failed("x".into()));
        let completed = |k: &[u8]| {
            message(&entry(&[
                ("t", b"c"),
                ("i", b"r1"),
                ("k", k),
                ("p", &outcome),
            ]))
        };
        assert!(matches!(
            completed(b"1"),
            Ok(Message::Completed {
                kind: kar_protocol::RequestKind::Tell,
                ..
            })
        ));
        assert!(matches!(completed(b"9"), Err(StoreError::Corrupt { .. })));
    }
}
