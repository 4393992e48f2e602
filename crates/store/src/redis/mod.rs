//! The Redis engine (multi-host meshes): the same transitions as the embedded engine,
//! each one Lua script, over the keys of one application.
//!
//! # Key layout
//!
//! Every key of application `app` starts with the prefix `kar:{<tag>}:` where `<tag>` is
//! the application name with `%`, `{` and `}` percent-encoded (`%25`, `%7B`, `%7D`), and
//! `%` alone for the empty name. The tag therefore never contains `}`: it is exactly
//! the Redis Cluster hash tag, so all keys of one application live in one slot (scripts
//! may touch any of them), and the prefixes of two different applications never
//! overlap. With `P` the prefix:
//!
//! | key | type | content |
//! | --- | --- | --- |
//! | `P members` | hash | node → postcard [`Member`] |
//! | `P leases` | zset | node → lease expiry (ms, Redis server clock) |
//! | `P names:<node>` | set | the names (service, actor types) the node offers |
//! | `P route:<name>` | zset (score 0) | nodes offering `name` (sorted, so a random index picks) |
//! | `P seq` | string | arrival counter of requests |
//! | `P req:<id>` | hash | `name`, `actor` (encoded target actor, empty for a service), `kind` (0 call, 1 tell, 2 promise), `caller`, `seq`, `rec` (postcard [`Request`]), `attempt` (delivery attempt of the step, overlaid on `rec` when delivered), `parent` (id of the request that made it, if known), `status` (`q` queued, `p` parked, `h` held: re-delivery waiting for its children, `d` done), `assignee` (while queued), `outcome` (postcard [`Outcome`], once done) |
//! | `P kids:<id>` | set | ids of the calls and promises made by request `id` that may be unfinished (an entry goes when the child finishes) |
//! | `P recovery:<node>` | string | the lock of the recovery of dead member `node`: the recoverer, with a TTL of one lease |
//! | `P assigned:<node>` | zset | ids of the requests queued on the node, by `seq` (re-routed in arrival order) |
//! | `P parked:<name>` | zset | ids of the requests parked for `name`, by `seq` (adopted in arrival order) |
//! | `P done:<node>` | set | ids of completed requests whose outcome awaits collection by caller `node` |
//! | `P inbox:<node>` | stream | the node's inbox (see below) |
//! | `P place` | hash | encoded actor → node hosting it (placement) |
//! | `P placed:<node>` | set | encoded actors placed on the node (dropped when it goes) |
//! | `P sf:<a>` | hash | flat state entries of actor `a`: key → value |
//! | `P sm:<a><key>` | hash | submap `key` of actor `a`: subkey → value |
//! | `P smo:<a><key>` | zset | the same subkeys scored by insertion (counter `P sseq`) |
//! | `P smk:<a>` | set | the non-empty submaps of actor `a` |
//! | `P rem:<a><r>` | hash | reminder `r` of actor `a`: `t`, `i` (actor type, id), `r`, `path`, `due` (target, Unix ms), `text` (targetTime as given, empty once advanced), `period` (ns), `data`, `gen` (new at every schedule, from the counter `P rseq`) |
//! | `P rems:<a>` | set | the ids of actor `a`'s reminders |
//! | `P sub:<a><s>` | hash | subscription `s` of actor `a`: `t`, `i`, `s`, `path`, `topic`, `ct`, `group`, `oldest`, `pos` (offset of the last event delivered), `inflight` (request delivering it) |
//! | `P subs:<a>` | set | the ids of actor `a`'s subscriptions |
//! | `P allsubs` | set | every `<a><s>` of the application |
//! | `kar:topic:{<t>}:meta`, `...:log` | hashes | topic `t` (global, outside every application: see `events.rs`): `last`, `floor`, `live`; offset → event |
//! | `P due` | zset | every `<a><r>` of the application scored by target time (firing reads only what is due) |
//!
//! An actor `a` is encoded as `<len(type)>:<type><len(id)>:<id>` (byte lengths): self
//! delimiting, so any type, id, key or subkey may follow it without collisions, and
//! flat and submap entries live in different keys.
//!
//! # Scripts
//!
//! One script per transition (`lua/*.lua`, each prefixed with the helpers of
//! `lua/lib.lua` and run with EVALSHA). `KEYS[1]` is `P members` (it routes the script
//! to the application's slot), `ARGV[1]` the prefix, `ARGV[2]` a random number from
//! the client (Lua's random generator is deterministic in Redis) used to pick among the
//! members offering a name, and `ARGV[3]` the *fence*: the member on whose behalf the
//! script runs (see below). Times come from `TIME` inside the script.
//!
//! * `join`: writes the member, its lease and its routes, adopts the requests parked
//!   for its names (in arrival order), pushes `MembersChanged` to every other member.
//! * `renew` (every lease/3, by a background task per member): fails if the member's
//!   lease has expired (it must fence itself), extends it, and returns the members
//!   whose leases expired, which the renewing member then recovers. Failure detection
//!   thus runs inside the renewals of the live members, never on the request path.
//! * `recover` (see `recovery.rs`): one bounded step of the recovery of a member whose
//!   lease expired, under a lock with a TTL, so that no script blocks Redis for long
//!   and a recoverer that dies midway is replaced. Outcomes only the dead member could
//!   collect are deleted, its placements dropped, and its queued requests re-delivered
//!   in arrival order with their attempt incremented: routed (actor requests to a new
//!   placement), parked, or *held* while calls or promises they made are unfinished
//!   (the last child's completion routes them). The last step removes the member and
//!   its inbox and tells the others. `leave` ends the member's lease at once, and the
//!   leaving client runs the same recovery.
//! * `enqueue`: stores the request and routes it (its `Execute` is appended to the
//!   chosen member's inbox), or parks it. An actor request goes to the actor's
//!   placement while that member is live; otherwise, and for services, to a random
//!   *live* member offering the name (recorded as the actor's new placement).
//! * `tail_call`: fenced / not-assigned checks, then step k+1 replaces the record of
//!   the same request and stays on the node (`local`) or is routed like `enqueue`.
//! * `complete`: fenced on the completing node; does nothing unless the request is
//!   queued on it; a call or promise whose caller is live becomes `done` with its
//!   outcome and a `Completed` goes to the caller's inbox; a tell, or a request whose
//!   caller is dead, is deleted. A held parent whose last unfinished child it was is
//!   routed.
//! * `forget`, `expire_parked`: delete done / parked records (the latter may release a
//!   held parent too).
//! * `state` (one script, the operation as first argument) and `remove_actor`: actor
//!   state reads and writes, each atomic, `update` included (removals first).
//! * `reminders` (one script, the operation as first argument): schedule, get, cancel;
//!   `due` reads the due reminders and `fire` enqueues their firings and advances them
//!   (compare-and-set on each reminder's generation and target: see `reminders.rs`).
//! * `members`: the members with a valid lease (read only).
//! * `purge`: deletes every key matching the application's prefix (SCAN inside the
//!   script, so it is atomic).
//!
//! # Inboxes
//!
//! An inbox is a stream whose entries carry the message itself, so receiving needs no
//! second round trip: `t=e` (Execute, `p` = postcard request), `t=c` (Completed, `i`
//! = id, `k` = kind, `p` = postcard outcome), `t=m` (MembersChanged). The owner reads
//! it with a blocking `XREAD` on a connection of its own (no polling) and takes up to
//! 1024 entries at once. Entries are trimmed (`XTRIM MINID`) only at the
//! next `recv`, once they were handed out: a cancelled `recv` loses nothing (its
//! entries are read again by the next one). Streams were preferred to lists for that
//! reason: a `BLPOP` cancelled after the server popped would lose messages.
//!
//! # Leases and fencing
//!
//! A member's lease is `lease` long (3 s by default), computed on the Redis clock and
//! renewed every lease/3. A member whose lease expired is dead: it is no longer chosen
//! by `enqueue`, it is recovered by the next renewal of any live member, and its
//! transitions fail with `Fenced`: every script that changes state on behalf of a
//! member gets it as its fence and checks its lease first (`complete` and `tail_call`:
//! the executing node; `enqueue`: the caller when it joined through this handle; the
//! other transitions, `fire_due` and `deliver_event` included: the handle's member
//! when it has exactly one, as a sidecar's handle does). Fencing is also local: once a
//! whole lease has passed since the last successful renewal was *sent*, the server's
//! lease has surely expired, so the inbox and every fenced transition report
//! `Fenced` at once, even if Redis cannot be reached or the process was stopped and
//! has just resumed.

mod events;
mod inbox;
mod recovery;
mod reminders;

use crate::codec::{decode, encode};
use crate::{
    ActorStore, AdminStore, Delivery, EventRequestBuilder, EventStore, Firing, Inbox,
    MembershipStore, RedisConfig, ReminderStore, RequestBuilder, RequestStore, Routing, StoreError,
};
use async_trait::async_trait;
use bytes::Bytes;
use kar_protocol::{
    ActorRef, ActorState, Member, NodeId, Outcome, Reminder, Request, RequestId, RequestKind,
    StateUpdate, Subscription, Target, UpdateCounts,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo, Script,
    ScriptInvocation, Value,
};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

/// Membership lease when the configuration says zero.
const DEFAULT_LEASE: Duration = Duration::from_secs(3);
/// How long opening the store may take before it reports the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Response timeout of ordinary transitions.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

macro_rules! script {
    ($file:literal) => {
        Script::new(concat!(
            include_str!("lua/lib.lua"),
            include_str!(concat!("lua/", $file))
        ))
    };
}

struct Scripts {
    join: Script,
    renew: Script,
    leave: Script,
    members: Script,
    enqueue: Script,
    complete: Script,
    forget: Script,
    expire_parked: Script,
    purge: Script,
    tail_call: Script,
    recover: Script,
    remove_actor: Script,
    state: Script,
    reminders: Script,
    topics: Script,
    events: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    join: script!("join.lua"),
    renew: script!("renew.lua"),
    leave: script!("leave.lua"),
    members: script!("members.lua"),
    enqueue: script!("enqueue.lua"),
    complete: script!("complete.lua"),
    forget: script!("forget.lua"),
    expire_parked: script!("expire_parked.lua"),
    purge: script!("purge.lua"),
    tail_call: script!("tail_call.lua"),
    recover: script!("recover.lua"),
    remove_actor: script!("remove_actor.lua"),
    state: script!("state.lua"),
    reminders: script!("reminders.lua"),
    // Topics live outside the application's keys: no helpers, no prefix arguments.
    topics: Script::new(include_str!("lua/topics.lua")),
    events: script!("events.lua"),
});

/// The keys of one application.
#[derive(Debug)]
pub(crate) struct Keys {
    /// `kar:{<tag>}:`
    prefix: String,
    /// `KEYS[1]` of every script.
    anchor: String,
}

impl Keys {
    fn new(app: &str) -> Self {
        let prefix = format!("kar:{{{}}}:", hash_tag(app));
        Keys {
            anchor: format!("{prefix}members"),
            prefix,
        }
    }

    fn inbox(&self, node: &str) -> String {
        format!("{}inbox:{node}", self.prefix)
    }

    /// A script invocation with the arguments every script takes; `fence` is the
    /// member on whose behalf it runs ('' for none): the script fails with
    /// [`StoreError::Fenced`] unless that member's lease is valid.
    fn invocation<'a>(&self, script: &'a Script, fence: &str) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&self.anchor)
            .arg(&self.prefix)
            .arg(rand::random::<u32>())
            .arg(fence);
        invocation
    }
}

/// The hash tag of an application: its name with `%`, `{`, `}` percent-encoded
/// (injective, and free of `}`), `%` for the empty name.
fn hash_tag(app: &str) -> String {
    if app.is_empty() {
        return "%".to_string();
    }
    let mut tag = String::with_capacity(app.len());
    for c in app.chars() {
        match c {
            '%' => tag.push_str("%25"),
            '{' => tag.push_str("%7B"),
            '}' => tag.push_str("%7D"),
            c => tag.push(c),
        }
    }
    tag
}

/// Escapes the glob metacharacters of `s` for `SCAN MATCH`.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The self-delimiting encoding of an actor reference used in keys and fields:
/// `<bytes of type>:<type><bytes of id>:<id>` (any character allowed in both, and
/// anything appended after it cannot make two encodings collide).
fn encode_actor(actor_type: &str, id: &str) -> String {
    format!("{}:{actor_type}{}:{id}", actor_type.len(), id.len())
}

fn decode_actor(encoded: &str) -> Option<ActorRef> {
    fn take(s: &str) -> Option<(&str, &str)> {
        let (len, rest) = s.split_once(':')?;
        let len: usize = len.parse().ok()?;
        Some((rest.get(..len)?, rest.get(len..)?))
    }
    let (actor_type, rest) = take(encoded)?;
    let (id, rest) = take(rest)?;
    rest.is_empty().then(|| ActorRef::new(actor_type, id))
}

/// The encoded actor a request is addressed to (empty for a service).
fn target_actor(target: &Target) -> String {
    match target {
        Target::Actor { actor_type, id } => encode_actor(actor_type, id),
        Target::Service { .. } => String::new(),
    }
}

fn unexpected(what: &str, value: &Value) -> StoreError {
    StoreError::Corrupt {
        key: what.to_string(),
        reason: format!("unexpected reply {value:?}"),
    }
}

fn value_bytes(value: Value) -> Result<Vec<u8>, StoreError> {
    match value {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        other => Err(unexpected("string", &other)),
    }
}

fn value_string(value: Value) -> Result<String, StoreError> {
    String::from_utf8(value_bytes(value)?).map_err(|e| StoreError::Corrupt {
        key: "string".into(),
        reason: e.to_string(),
    })
}

/// `[k1, v1, k2, v2, ...]` (or a RESP3 map) as pairs.
fn value_pairs(value: Value) -> Result<Vec<(String, Bytes)>, StoreError> {
    let items = match value {
        Value::Array(items) => items,
        Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
        Value::Nil => Vec::new(),
        other => return Err(unexpected("pairs", &other)),
    };
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        out.push((value_string(k)?, Bytes::from(value_bytes(v)?)));
    }
    Ok(out)
}

fn kind_code(kind: RequestKind) -> u8 {
    match kind {
        RequestKind::Call => 0,
        RequestKind::Tell => 1,
        RequestKind::Promise => 2,
    }
}

fn kind_from_code(code: &[u8]) -> RequestKind {
    match code {
        b"1" => RequestKind::Tell,
        b"2" => RequestKind::Promise,
        _ => RequestKind::Call,
    }
}

/// A member joined through this handle.
struct LocalMember {
    renew: AbortHandle,
    fenced: watch::Receiver<bool>,
    /// When its lease ends at the latest (the last successful renewal *sent*, plus
    /// the lease), kept by the renewal task.
    lease_end: Arc<Mutex<Instant>>,
}

impl LocalMember {
    /// Whether the member must commit nothing more: the renewal task said so, or the
    /// lease ran out while nothing renewed it (say the process was stopped: this
    /// holds the moment it resumes, before the renewal task runs again).
    fn is_fenced(&self) -> bool {
        let lease_end = *self.lease_end.lock().unwrap_or_else(|e| e.into_inner());
        *self.fenced.borrow() || Instant::now() >= lease_end
    }
}

type LocalMembers = Arc<Mutex<HashMap<String, LocalMember>>>;

fn lock(members: &LocalMembers) -> std::sync::MutexGuard<'_, HashMap<String, LocalMember>> {
    // The map stays consistent even if a holder panicked.
    members.lock().unwrap_or_else(|e| e.into_inner())
}

/// Settings of the managed connections (the shared one and each renewal's).
fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
        .set_number_of_retries(2)
}

pub struct RedisStore {
    keys: Arc<Keys>,
    client: Client,
    conn: ConnectionManager,
    lease: Duration,
    members: LocalMembers,
    recoveries: recovery::Recoveries,
    addr: String,
}

impl RedisStore {
    /// Connects to Redis (failing fast with [`StoreError::Unavailable`] when it cannot
    /// be reached) and returns the store of application `app`.
    pub async fn open(config: &RedisConfig, app: &str) -> Result<Self, StoreError> {
        if config.host.is_empty() {
            return Err(StoreError::Config("Redis host is required".into()));
        }
        if config.tls {
            return Err(StoreError::Config(
                "TLS connections to Redis are not supported by this build of kar".into(),
            ));
        }
        let port = if config.port == 0 { 6379 } else { config.port };
        let addr = format!("{}:{}", config.host, port);
        let mut redis_info = RedisConnectionInfo::default();
        if let Some(user) = config.user.as_deref().filter(|u| !u.is_empty()) {
            redis_info = redis_info.set_username(user);
        }
        if let Some(password) = config.password.as_deref().filter(|p| !p.is_empty()) {
            redis_info = redis_info.set_password(password);
        }
        let info = ConnectionAddr::Tcp(config.host.clone(), port)
            .into_connection_info()
            .map_err(|e| StoreError::Config(format!("invalid Redis address {addr}: {e}")))?
            .set_redis_settings(redis_info);
        let client = Client::open(info)
            .map_err(|e| StoreError::Config(format!("invalid Redis address {addr}: {e}")))?;

        // One direct attempt first, so that an unreachable server or bad credentials
        // are reported at once instead of after the connection manager's retries.
        let probe_config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(CONNECT_TIMEOUT));
        let mut probe = client
            .get_multiplexed_async_connection_with_config(&probe_config)
            .await
            .map_err(|e| connect_error(&addr, e))?;
        redis::cmd("PING")
            .query_async::<()>(&mut probe)
            .await
            .map_err(|e| connect_error(&addr, e))?;
        drop(probe);

        let conn = ConnectionManager::new_with_config(client.clone(), manager_config())
            .await
            .map_err(|e| connect_error(&addr, e))?;
        let lease = if config.lease.is_zero() {
            DEFAULT_LEASE
        } else {
            config.lease
        };
        Ok(RedisStore {
            keys: Arc::new(Keys::new(app)),
            client,
            conn,
            lease,
            members: Arc::default(),
            recoveries: recovery::Recoveries::default(),
            addr,
        })
    }

    /// An invocation of the state script: operation `op` on `actor`.
    fn state_op(
        &self,
        op: &str,
        actor: &ActorRef,
    ) -> Result<ScriptInvocation<'static>, StoreError> {
        let mut invocation =
            self.op_invocation(&SCRIPTS.state, op, &["get", "get_all", "entries"])?;
        invocation.arg(encode_actor(&actor.actor_type, &actor.id));
        Ok(invocation)
    }

    /// An invocation of a transition that names no member, fenced on the member of
    /// this handle (see [`RedisStore::fence`]).
    fn invocation(&self, script: &'static Script) -> Result<ScriptInvocation<'static>, StoreError> {
        let fence = self.fence()?;
        Ok(self.keys.invocation(script, &fence))
    }

    /// An invocation of operation `op` of a script that serves several, fenced
    /// unless `op` is one of the script's `reads` (reads commit nothing, and they
    /// remain possible after a purge removed this handle's member).
    fn op_invocation(
        &self,
        script: &'static Script,
        op: &str,
        reads: &[&str],
    ) -> Result<ScriptInvocation<'static>, StoreError> {
        let mut invocation = if reads.contains(&op) {
            self.keys.invocation(script, "")
        } else {
            self.invocation(script)?
        };
        invocation.arg(op);
        Ok(invocation)
    }

    /// The fence of a transition that names no member: the member joined through
    /// this handle when there is exactly one (a sidecar's handle serves its own
    /// member only), else none. Fails at once if that member is fenced locally.
    fn fence(&self) -> Result<String, StoreError> {
        let members = lock(&self.members);
        let mut joined = members.iter();
        match (joined.next(), joined.next()) {
            (Some((node, member)), None) if member.is_fenced() => {
                Err(StoreError::Fenced(node.clone()))
            }
            (Some((node, _)), None) => Ok(node.clone()),
            _ => Ok(String::new()),
        }
    }

    /// The fence of a transition made by `node`: `node` itself if it joined through
    /// this handle or if `always` (a completion or a tail call comes from the
    /// executor, which must be a live member), else none (a request made on behalf
    /// of a caller that is no member here). Fails at once if `node` is fenced
    /// locally.
    fn fence_of(&self, node: &str, always: bool) -> Result<String, StoreError> {
        match lock(&self.members).get(node) {
            Some(member) if member.is_fenced() => Err(StoreError::Fenced(node.to_string())),
            Some(_) => Ok(node.to_string()),
            None if always => Ok(node.to_string()),
            None => Ok(String::new()),
        }
    }
}

fn connect_error(addr: &str, e: redis::RedisError) -> StoreError {
    match e.kind() {
        redis::ErrorKind::AuthenticationFailed => {
            StoreError::Config(format!("Redis at {addr} refused the credentials: {e}"))
        }
        _ => StoreError::unavailable(format!("failed to connect to Redis at {addr}: {e}")),
    }
}

fn lease_millis(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl MembershipStore for RedisStore {
    async fn join(&self, member: &Member) -> Result<Box<dyn Inbox>, StoreError> {
        let node = member.node.0.clone();
        // The inbox connection is opened first: a member must not join without one.
        let reader = inbox::Reader::connect(&self.client, self.keys.inbox(&node)).await?;
        let sent = Instant::now();
        let mut invocation = self.keys.invocation(&SCRIPTS.join, "");
        invocation
            .arg(&node)
            .arg(lease_millis(self.lease))
            .arg(encode(member));
        for name in member.names() {
            invocation.arg(name);
        }
        invocation
            .invoke_async::<i64>(&mut self.conn.clone())
            .await?;

        // Renewals get a connection of their own: behind a queue of large
        // transitions on the shared one they could be answered too late, and the
        // member would fence itself while alive and well.
        let renew_conn = ConnectionManager::new_with_config(self.client.clone(), manager_config())
            .await
            .map_err(|e| connect_error(&self.addr, e))?;
        let (fenced_tx, fenced_rx) = watch::channel(false);
        let lease_end = Arc::new(Mutex::new(sent + self.lease));
        let renewal = Renewal {
            conn: renew_conn,
            recovery_conn: self.conn.clone(),
            recoveries: self.recoveries.clone(),
            keys: self.keys.clone(),
            node: node.clone(),
            lease: self.lease,
            lease_end: lease_end.clone(),
        };
        let renew = tokio::spawn(renewal.run(sent, fenced_tx));
        let previous = lock(&self.members).insert(
            node.clone(),
            LocalMember {
                renew: renew.abort_handle(),
                fenced: fenced_rx.clone(),
                lease_end,
            },
        );
        if let Some(previous) = previous {
            previous.renew.abort();
        }
        Ok(Box::new(inbox::RedisInbox::new(
            node,
            reader,
            fenced_rx,
            renew,
            self.members.clone(),
        )))
    }

    async fn leave(&self, node: &NodeId) -> Result<(), StoreError> {
        // Stop renewing first: once removed, the member must not be renewed (the
        // renewal would report it fenced).
        if let Some(member) = lock(&self.members).remove(&node.0) {
            member.renew.abort();
        }
        let mut invocation = self.keys.invocation(&SCRIPTS.leave, "");
        invocation.arg(&node.0);
        let was_member: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        if was_member == 0 {
            return Ok(());
        }
        // Dead from here on; recovered like a dead member, by this call unless a live
        // member's renewal took it first (then wait for that one, within reason: it
        // completes the recovery anyway).
        let owner = format!("leave-{:x}", rand::random::<u64>());
        let patience = Instant::now() + RESPONSE_TIMEOUT + self.lease * 2;
        let mut conn = self.conn.clone();
        loop {
            let recovery = recovery::recover(
                &mut conn,
                &self.keys,
                &node.0,
                &owner,
                "",
                self.lease,
                recovery::Removal::Left,
            )
            .await?;
            match recovery {
                recovery::Recovery::Finished | recovery::Recovery::Gone => return Ok(()),
                _ if Instant::now() < patience => {
                    tokio::time::sleep(Duration::from_millis(5)).await
                }
                _ => return Ok(()),
            }
        }
    }

    async fn members(&self) -> Result<Vec<Member>, StoreError> {
        let records: Vec<Vec<u8>> = self
            .keys
            .invocation(&SCRIPTS.members, "")
            .invoke_async(&mut self.conn.clone())
            .await?;
        let mut members = records
            .iter()
            .map(|record| decode::<Member>(&self.keys.anchor, record))
            .collect::<Result<Vec<_>, _>>()?;
        members.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(members)
    }

    async fn signal(&self, _to: &NodeId, _signal: &crate::Signal) -> Result<(), StoreError> {
        Err(StoreError::unavailable(
            "signals are not implemented by this engine yet",
        ))
    }
}

#[async_trait]
impl RequestStore for RedisStore {
    async fn enqueue(&self, request: &Request) -> Result<Routing, StoreError> {
        let fence = self.fence_of(&request.caller.0, false)?;
        let mut invocation = self.keys.invocation(&SCRIPTS.enqueue, &fence);
        invocation
            .arg(&request.id.0)
            .arg(request.target.routing_name())
            .arg(kind_code(request.kind))
            .arg(&request.caller.0)
            .arg(encode(request))
            .arg(target_actor(&request.target))
            .arg(request.parent.as_ref().map_or("", |p| p.as_str()))
            .arg(request.attempt);
        let assignee: Option<String> = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(match assignee {
            Some(node) => Routing::Assigned(NodeId(node)),
            None => Routing::Parked,
        })
    }

    async fn complete(
        &self,
        node: &NodeId,
        id: &RequestId,
        outcome: &Outcome,
    ) -> Result<bool, StoreError> {
        let fence = self.fence_of(&node.0, true)?;
        let mut invocation = self.keys.invocation(&SCRIPTS.complete, &fence);
        invocation.arg(&node.0).arg(&id.0).arg(encode(outcome));
        let done: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(done == 1)
    }

    async fn forget(&self, ids: &[RequestId]) -> Result<(), StoreError> {
        // Bounded batches keep each script short (Redis runs one script at a time).
        for chunk in ids.chunks(512) {
            let mut invocation = self.invocation(&SCRIPTS.forget)?;
            for id in chunk {
                invocation.arg(&id.0);
            }
            invocation
                .invoke_async::<i64>(&mut self.conn.clone())
                .await?;
        }
        Ok(())
    }

    async fn expire_parked(&self, id: &RequestId) -> Result<bool, StoreError> {
        let mut invocation = self.invocation(&SCRIPTS.expire_parked)?;
        invocation.arg(&id.0);
        let removed: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(removed == 1)
    }

    async fn tail_call(
        &self,
        node: &NodeId,
        next: &Request,
        local: bool,
    ) -> Result<Routing, StoreError> {
        let fence = self.fence_of(&node.0, true)?;
        let mut invocation = self.keys.invocation(&SCRIPTS.tail_call, &fence);
        invocation
            .arg(&node.0)
            .arg(&next.id.0)
            .arg(next.target.routing_name())
            .arg(target_actor(&next.target))
            .arg(encode(next))
            .arg(if local { "1" } else { "0" })
            .arg(next.attempt);
        match invocation
            .invoke_async::<Value>(&mut self.conn.clone())
            .await?
        {
            Value::Int(-2) => Err(StoreError::NotAssigned(next.id.0.clone())),
            Value::Nil => Ok(Routing::Parked),
            other => Ok(Routing::Assigned(NodeId(value_string(other)?))),
        }
    }
}

#[async_trait]
impl ActorStore for RedisStore {
    async fn remove_actor(&self, actor: &ActorRef) -> Result<(), StoreError> {
        let mut invocation = self.invocation(&SCRIPTS.remove_actor)?;
        invocation.arg(encode_actor(&actor.actor_type, &actor.id));
        invocation
            .invoke_async::<i64>(&mut self.conn.clone())
            .await?;
        Ok(())
    }

    async fn placements(&self) -> Result<Vec<(ActorRef, NodeId)>, StoreError> {
        let key = format!("{}place", self.keys.prefix);
        let value: Value = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut self.conn.clone())
            .await?;
        let mut placements = value_pairs(value)?
            .into_iter()
            .map(|(actor, node)| {
                let actor = decode_actor(&actor).ok_or_else(|| StoreError::Corrupt {
                    key: key.clone(),
                    reason: format!("bad actor field {actor:?}"),
                })?;
                Ok((actor, NodeId(String::from_utf8_lossy(&node).into_owned())))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        placements.sort();
        Ok(placements)
    }

    async fn state_get(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
    ) -> Result<Option<Bytes>, StoreError> {
        let mut invocation = self.state_op("get", actor)?;
        invocation
            .arg(key)
            .arg(if subkey.is_some() { "1" } else { "0" })
            .arg(subkey.unwrap_or(""));
        let value: Option<Vec<u8>> = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(value.map(Bytes::from))
    }

    async fn state_set(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
        value: Bytes,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.state_op("set", actor)?;
        invocation
            .arg(key)
            .arg(if subkey.is_some() { "1" } else { "0" })
            .arg(subkey.unwrap_or(""))
            .arg(value.as_ref());
        let created: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(created == 1)
    }

    async fn state_remove(
        &self,
        actor: &ActorRef,
        key: &str,
        subkey: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.state_op("remove", actor)?;
        invocation
            .arg(key)
            .arg(if subkey.is_some() { "1" } else { "0" })
            .arg(subkey.unwrap_or(""));
        let removed: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(removed == 1)
    }

    async fn state_get_all(&self, actor: &ActorRef) -> Result<ActorState, StoreError> {
        let reply: Value = self
            .state_op("get_all", actor)?
            .invoke_async(&mut self.conn.clone())
            .await?;
        let Value::Array(mut parts) = reply else {
            return Err(unexpected("state", &reply));
        };
        if parts.is_empty() {
            return Err(unexpected("state", &Value::Array(parts)));
        }
        let mut flat = value_pairs(parts.remove(0))?;
        flat.sort_by(|a, b| a.0.cmp(&b.0));
        let mut submaps = Vec::with_capacity(parts.len());
        for part in parts {
            let Value::Array(mut pair) = part else {
                return Err(unexpected("submap", &part));
            };
            if pair.len() != 2 {
                return Err(unexpected("submap", &Value::Array(pair)));
            }
            let entries = value_pairs(pair.remove(1))?;
            let key = value_string(pair.remove(0))?;
            if !entries.is_empty() {
                submaps.push((key, entries));
            }
        }
        submaps.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(ActorState { flat, submaps })
    }

    async fn state_remove_all(&self, actor: &ActorRef) -> Result<u64, StoreError> {
        Ok(self
            .state_op("remove_all", actor)?
            .invoke_async(&mut self.conn.clone())
            .await?)
    }

    async fn state_update(
        &self,
        actor: &ActorRef,
        update: &StateUpdate,
    ) -> Result<UpdateCounts, StoreError> {
        let mut invocation = self.state_op("update", actor)?;
        invocation.arg(update.removals.len());
        for key in &update.removals {
            invocation.arg(key);
        }
        invocation.arg(update.submap_removals.len());
        for (key, subkeys) in &update.submap_removals {
            invocation.arg(key).arg(subkeys.len());
            for sub in subkeys {
                invocation.arg(sub);
            }
        }
        invocation.arg(update.updates.len());
        for (key, value) in &update.updates {
            invocation.arg(key).arg(value.as_ref());
        }
        invocation.arg(update.submap_updates.len());
        for (key, entries) in &update.submap_updates {
            invocation.arg(key).arg(entries.len());
            for (sub, value) in entries {
                invocation.arg(sub).arg(value.as_ref());
            }
        }
        let (removed, added): (u64, u64) = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(UpdateCounts { removed, added })
    }

    async fn submap_entries(
        &self,
        actor: &ActorRef,
        key: &str,
    ) -> Result<Vec<(String, Bytes)>, StoreError> {
        let mut invocation = self.state_op("entries", actor)?;
        invocation.arg(key);
        let reply: Value = invocation.invoke_async(&mut self.conn.clone()).await?;
        value_pairs(reply)
    }

    async fn submap_clear(&self, actor: &ActorRef, key: &str) -> Result<u64, StoreError> {
        let mut invocation = self.state_op("clear", actor)?;
        invocation.arg(key);
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }
}

#[async_trait]
impl ReminderStore for RedisStore {
    async fn reminder_schedule(&self, reminder: &Reminder) -> Result<bool, StoreError> {
        self.reminder_schedule_impl(reminder).await
    }

    async fn reminder_get(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<Option<Reminder>, StoreError> {
        self.reminder_get_impl(actor, id).await
    }

    async fn reminders_of(&self, actor: &ActorRef) -> Result<Vec<Reminder>, StoreError> {
        self.reminders_of_impl(actor).await
    }

    async fn reminders(&self) -> Result<Vec<Reminder>, StoreError> {
        self.reminders_impl().await
    }

    async fn reminder_cancel(&self, actor: &ActorRef, id: &str) -> Result<bool, StoreError> {
        Ok(self.reminder_cancel_impl(actor, Some(id)).await? > 0)
    }

    async fn reminders_cancel_all(&self, actor: &ActorRef) -> Result<u64, StoreError> {
        self.reminder_cancel_impl(actor, None).await
    }

    async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        self.next_due_impl().await
    }

    async fn fire_due(
        &self,
        now: i64,
        limit: usize,
        build: &RequestBuilder,
    ) -> Result<Vec<Firing>, StoreError> {
        self.fire_due_impl(now, limit, build).await
    }
}

#[async_trait]
impl EventStore for RedisStore {
    async fn topic_create(&self, topic: &str) -> Result<bool, StoreError> {
        self.topic_create_impl(topic).await
    }

    async fn topic_delete(&self, topic: &str) -> Result<bool, StoreError> {
        self.topic_delete_impl(topic).await
    }

    async fn publish(&self, topic: &str, event: Bytes) -> Result<u64, StoreError> {
        self.publish_impl(topic, event).await
    }

    async fn subscribe(&self, subscription: &Subscription) -> Result<bool, StoreError> {
        self.subscribe_impl(subscription).await
    }

    async fn subscription_get(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        self.subscription_get_impl(actor, id).await
    }

    async fn subscriptions_of(&self, actor: &ActorRef) -> Result<Vec<Subscription>, StoreError> {
        self.subscriptions_of_impl(actor).await
    }

    async fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.subscriptions_impl().await
    }

    async fn subscription_cancel(&self, actor: &ActorRef, id: &str) -> Result<bool, StoreError> {
        Ok(self.subscription_cancel_impl(actor, Some(id)).await? > 0)
    }

    async fn subscriptions_cancel_all(&self, actor: &ActorRef) -> Result<u64, StoreError> {
        self.subscription_cancel_impl(actor, None).await
    }

    async fn deliver_event(
        &self,
        actor: &ActorRef,
        id: &str,
        build: &EventRequestBuilder,
    ) -> Result<Delivery, StoreError> {
        self.deliver_event_impl(actor, id, build).await
    }
}

#[async_trait]
impl AdminStore for RedisStore {
    async fn purge(&self) -> Result<u64, StoreError> {
        let mut invocation = self.keys.invocation(&SCRIPTS.purge, "");
        invocation.arg(format!("{}*", glob_escape(&self.keys.prefix)));
        let deleted: u64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(deleted)
    }

    fn describe(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

/// How long after another member's lease ends a renewal looks for it (the local and
/// the server's clocks tick at the same rate, but the reply took some time to arrive).
const EXPIRY_MARGIN: Duration = Duration::from_millis(10);

/// The lease renewal of one member joined through this handle. Renewals also report
/// the members whose leases expired: this member then recovers them (each recovery
/// in a task of its own, on the shared connection, so renewals never wait for one).
struct Renewal {
    conn: ConnectionManager,
    recovery_conn: ConnectionManager,
    recoveries: recovery::Recoveries,
    keys: Arc<Keys>,
    node: String,
    lease: Duration,
    lease_end: Arc<Mutex<Instant>>,
}

impl Renewal {
    /// Renews the lease every lease/3 until the task is aborted (leave, inbox
    /// dropped) or the member is fenced.
    async fn run(mut self, joined: Instant, fenced: watch::Sender<bool>) {
        let node = self.node.clone();
        let lease = self.lease;
        let period = lease / 3;
        let retry = (period / 4).max(Duration::from_millis(10));
        // When the last successful renewal (or the join) was sent: the server's lease
        // expires at least `lease` after that instant.
        let mut last_ok = joined;
        let mut next = joined + period;
        loop {
            let deadline = last_ok + lease;
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = tokio::time::sleep_until(deadline) => break,
            }
            let sent = Instant::now();
            let mut invocation = self.keys.invocation(&SCRIPTS.renew, "");
            invocation.arg(&node).arg(lease_millis(lease));
            let result = tokio::select! {
                result = invocation.invoke_async::<Vec<String>>(&mut self.conn) => result,
                _ = tokio::time::sleep_until(deadline) => break,
            };
            match result {
                Ok(reply) if reply.first().is_some_and(|ok| ok == "1") => {
                    last_ok = sent;
                    next = sent + period;
                    // Look again as soon as another member's lease runs out, so that
                    // its death is seen within a few milliseconds of its lease rather
                    // than up to a renewal period later.
                    if let Some(expiry) = reply
                        .get(1)
                        .and_then(|ms| ms.parse::<u64>().ok())
                        .map(|ms| sent + Duration::from_millis(ms) + EXPIRY_MARGIN)
                    {
                        next = next.min(expiry);
                    }
                    *self.lease_end.lock().unwrap_or_else(|e| e.into_inner()) = sent + lease;
                    let expired = reply.into_iter().skip(2).collect::<Vec<_>>();
                    if !expired.is_empty() {
                        self.recoveries.start(
                            &self.recovery_conn,
                            &self.keys,
                            &node,
                            expired,
                            lease,
                        );
                    }
                }
                Ok(_) => {
                    tracing::error!(
                        node,
                        "the lease of this member expired: it was removed from the mesh"
                    );
                    let _ = fenced.send(true);
                    return;
                }
                Err(e) => {
                    tracing::warn!(node, "cannot renew the membership lease (retrying): {e}");
                    next = Instant::now() + retry;
                }
            }
        }
        tracing::error!(
            node,
            "could not renew the membership lease in time: fencing this member"
        );
        let _ = fenced.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tags_are_injective_and_brace_free() {
        assert_eq!(hash_tag("app"), "app");
        assert_eq!(hash_tag(""), "%");
        assert_eq!(hash_tag("%"), "%25");
        assert_eq!(hash_tag("a{b}c"), "a%7Bb%7Dc");
        assert_eq!(hash_tag("%7B"), "%257B");
        assert_ne!(hash_tag("{"), hash_tag("%7B"));
        assert!(!hash_tag("}}{{").contains(['{', '}']));
        assert_eq!(Keys::new("x}y").prefix, "kar:{x%7Dy}:");
    }

    #[test]
    fn globs_are_escaped() {
        assert_eq!(
            glob_escape("kar:{a*b?[c]\\}:"),
            "kar:{a\\*b\\?\\[c\\]\\\\}:"
        );
    }

    #[test]
    fn actor_encoding_round_trips_and_is_self_delimiting() {
        for (t, i) in [("A", "1"), ("", ""), ("a:b", "1:2"), ("3:x", "é{}*")] {
            assert_eq!(decode_actor(&encode_actor(t, i)), Some(ActorRef::new(t, i)));
        }
        assert_ne!(encode_actor("ab", "c"), encode_actor("a", "bc"));
        assert_eq!(decode_actor("1:a1:bextra"), None);
    }

    #[test]
    fn kinds_round_trip() {
        for kind in [RequestKind::Call, RequestKind::Tell, RequestKind::Promise] {
            assert_eq!(kind_from_code(kind_code(kind).to_string().as_bytes()), kind);
        }
    }
}
