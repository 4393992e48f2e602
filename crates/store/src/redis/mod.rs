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
//! | `P members` | hash | node → postcard [`Member`](kar_protocol::Member) |
//! | `P leases` | zset | node → lease expiry (ms, Redis server clock) |
//! | `P margins` | hash | node → its fencing margin (ms): it may be recovered only that long after its lease expiry |
//! | `P names:<node>` | set | the names (service, actor types) the node offers |
//! | `P route:<name>` | zset (score 0) | nodes offering `name` (sorted, so a random index picks) |
//! | `P seq` | string | arrival counter of requests |
//! | `P live` | zset | ids of the pending requests (not done), by `seq`: the index an operator's listing pages through (`control.rs`); a request joins it when stored (`store_request` in `lib.lua`) and leaves it when it completes, is killed, expires parked or is drained (`unlist`). Requests stored by a kar older than this index are not listed |
//! | `P firing` | zset | ids of the pending reminder firings (enqueued by `reminders_fire`, scored by that time), left like `live` (`unlist`): `reminders_pending` counts them, dropping stale ones among the oldest |
//! | `P req:<id>` | hash | `name`, `actor` (encoded target actor, empty for a service), `kind` (0 call, 1 tell, 2 promise: `crate::codes`), `caller`, `seq`, `rec` (postcard [`Request`](kar_protocol::Request)), `attempt` (delivery attempt of the step, overlaid on `rec` when delivered), `parent` (id of the request that made it, if known), `status` (`q` queued, `p` parked, `h` held: re-delivery waiting for its children, `x` paused, `d` done: `crate::codes`), `assignee` (while queued), `outcome` (postcard [`Outcome`](kar_protocol::Outcome), once done) |
//! | `P kids:<id>` | set | ids of the calls and promises made by request `id` that may be unfinished (an entry goes when the child finishes) |
//! | `P recovery:<node>` | string | the lock of the recovery of dead member `node`: the recoverer, with a TTL of one lease |
//! | `P assigned:<node>` | zset | ids of the requests queued on the node, by `seq` (re-routed in arrival order) |
//! | `P parked:<name>` | zset | ids of the requests parked for `name`, by `seq` (adopted in arrival order) |
//! | `P released:<node>` | set | ids of the requests a leaving member `node` never handed to its component (`leave.lua`): its recovery, by whichever member, re-delivers them without charging an attempt; deleted with the member |
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
//! | `P idem:<len(t)>:<t><key>` | hash | idempotency key `key` for target `t` (`crate::codec::idempotency_target`): `id` (the request), `ret` (retention, ms), `out` (postcard outcome, once complete); expires by TTL `ret` after its enqueue, again after its completion. The request hash of a keyed request has `ik`: this key's name |
//! | `P due` | zset | every `<a><r>` of the application scored by target time, or by the end of its claim while a member fires it (`reminders_due`; firing reads only what is due) |
//!
//! An actor `a` is encoded as `<len(type)>:<type><len(id)>:<id>` (byte lengths): self
//! delimiting, so any type, id, key or subkey may follow it without collisions, and
//! flat and submap entries live in different keys.
//!
//! # Scripts
//!
//! One Lua script per transition, no script serving several (`lua/<name>.lua`, run
//! with EVALSHA). Each is declared once in `scripts.rs`, with its fencing mode as its
//! type, and its source is the request codes (`crate::codes::LUA`), its preludes and
//! its own file. The prelude `lua/lib.lua` (routing, recovery and state helpers, the
//! fence check) sets the calling convention: `KEYS[1]` is `P members` (it routes the
//! script to the application's slot), `ARGV[1]` the prefix, `ARGV[2]` a random number
//! from the client (Lua's random generator is deterministic in Redis) used to pick
//! among the members offering a name, and `ARGV[3]` the *fence*: the member on whose
//! behalf the script runs (see below), removed from `ARGV` so that each script's own
//! arguments start at `ARGV[3]`; each file documents them at its top. Times come from
//! `TIME` inside the script. Reminders and subscriptions share the prelude
//! `lua/bindings.lua`; the topic scripts have theirs (`lua/topic_lib.lua`: global
//! keys, no prefix, no fence).
//!
//! Membership (`membership.rs`, `lease.rs`, `recovery.rs`):
//! * `join`: writes the member, its lease and its routes, pushes `MembersChanged` to
//!   every other member; then `adopt` (500 per name per script, by a task of the
//!   joining member, `adoption.rs`) routes the requests parked for its names, in
//!   arrival order. Until none is left, `route` parks new requests for those names
//!   behind them. `adopt` returns -1 once its member is not live: the adoption ends.
//! * `renew` (every lease/3, by a background task per member): fails if the member's
//!   lease has expired (it must fence itself), extends it, and returns the members
//!   whose leases expired more than their fencing margin ago, which the renewing
//!   member then recovers, and the member's names for which requests are parked
//!   (one `ZCARD` per name), which it then adopts unless it does already: an adopter
//!   that died, was fenced or left midway is replaced within a renewal period by the
//!   live members offering the names. Failure detection thus runs inside the renewals
//!   of the live members, never on the request path.
//! * `recover`: one bounded step of the recovery of a member whose lease expired,
//!   under a lock with a TTL, so that no script blocks Redis for long and a recoverer
//!   that dies midway is replaced. Outcomes only the dead member could collect are
//!   deleted, its placements dropped, and its queued requests re-delivered in arrival
//!   order with their attempt incremented: routed (actor requests to a new placement),
//!   parked, or *held* while calls or promises they made are unfinished (the last
//!   child's completion routes them). The last step removes the member and its inbox
//!   and tells the others.
//! * `leave`: ends the member's lease at once; the leaving client runs `recover`.
//! * `members`: the members with a valid lease (read only).
//! * `signal`: appends a signal to a live member's inbox; dropped if it is not live.
//!
//! Requests (`requests.rs`):
//! * `enqueue`: stores the request and routes it (its `Execute` is appended to the
//!   chosen member's inbox), or parks it. An actor request goes to the actor's
//!   placement while that member is live; otherwise, and for services, to a random
//!   *live* member offering the name (recorded as the actor's new placement).
//! * `tail_call`: not-assigned check, then step k+1 replaces the record of the same
//!   request and stays on the node (`local`) or is routed like `enqueue`.
//! * `complete`: does nothing unless the request is queued on the completing node; a
//!   call or promise whose caller is live becomes `done` with its outcome and a
//!   `Completed` goes to the caller's inbox; a tell, or a request whose caller is
//!   dead, is deleted. A held parent whose last unfinished child it was is routed.
//! * `complete_all`: several completions by one executor in one script, each exactly
//!   `complete` (the shared body is `lua/complete_lib.lua`): the group commit of tells.
//! * `enqueue_keyed`: like `enqueue`, under an idempotency key: if the key maps to
//!   a pending request or to a recorded outcome, returns it and enqueues nothing;
//!   `keyed` reads a key (`idempotency.rs`). `complete` records a keyed request's
//!   outcome with its key.
//! * `forget`, `expire_parked`: delete done / parked records (the latter may release a
//!   held parent too).
//!
//! Actors (`actors.rs`; placements are read with `HGETALL`):
//! * `remove_actor`: drops the actor's placement and state.
//! * `state_get`, `state_get_all`, `submap_entries` (read only); `state_set`,
//!   `state_remove`, `state_remove_all`, `state_update` (removals first, then
//!   updates, atomically), `submap_clear`.
//!
//! Reminders and subscriptions alike (`bindings.rs`, the kind as first argument):
//! * `binding_get`, `bindings_of` (an actor's), `bindings_all` (read only);
//!   `binding_cancel`, `bindings_cancel_all`.
//!
//! Reminders (`reminders.rs`):
//! * `reminder_schedule`: writes the reminder with a new generation.
//! * `reminders_next_due` (read only): the earliest score of `due` (a target, or the
//!   end of a claim).
//! * `reminders_due`: the due reminders, each claimed for a moment (its score in
//!   `due` moves past the claim) so that the other members' passes skip it; firing
//!   still compares the reminder itself, so the claim is only an optimisation.
//! * `reminders_fire`: enqueues the firings of reminders read by `reminders_due` and
//!   advances them (compare-and-set on each one's generation and target).
//!
//! Events (`events.rs`):
//! * `subscribe`: writes the subscription (a new topic or group starts afresh).
//! * `deliver_event`: enqueues the delivery of an event read by `topic_next` and
//!   advances the position (compare-and-set on it), unless a delivery is in flight.
//! * `topic_create`, `topic_delete`, `topic_publish`, `topic_next`, `topic_reader`
//!   (the start of a new subscription; lowers the application's reader mark to it):
//!   the topic's keys only (global: see `events.rs`).
//! * `topic_trim`: records the application's lowest subscription position on the
//!   topic and deletes the oldest events every reader passed, past their retention.
//! * `bridge_claim`, `bridge_append`: the bridge of a source partition into the topic
//!   (a lease in the topic's slot); appending compares the next offset and appends
//!   the records in one script.
//!
//! Admin (`admin.rs`):
//! * `purge`: deletes every key matching the application's prefix (SCAN inside the
//!   script, so it is atomic).
//! * `drain`: deletes every request that is not done (queued, parked, held, paused)
//!   with its `assigned:`/`parked:` entry, its `kids:` set and its entry in its
//!   parent's, and its Execute entries in the inboxes (SCAN inside the script, like
//!   `purge`: atomic). Done records, state, placements, bindings and members stay.
//!
//! Control (`control.rs`, an operator's, unfenced; prelude `lua/control.lua`):
//! * `list_requests`, `request_get` (read only): a page of `live` with filters (at
//!   most 10,000 entries looked at per call); one request and its `kids:`.
//! * `kill`: withdraws a pending request from its assignee (which is sent
//!   `Signal::Abandon`) or its parked index and finishes it like `complete` with the
//!   outcome `killed by an operator`.
//! * `pause`: withdraws a queued or parked request likewise and makes it paused.
//!
//! ## Adding a transition
//!
//! Write `lua/<name>.lua` (its arguments documented at its top; codes through the
//! locals of `codes.rs`, invariant violations through `invariant(...)` of `lib.lua`,
//! which the client classifies as [`StoreError::Invariant`]), declare it in the table
//! of `scripts.rs` with its fencing mode (`Unfenced` for reads, `ByHandle`,
//! `ByCaller` or `ByExecutor` for writes), invoke it from the area's file through the
//! function of that mode (`unfenced`, `by_handle`, `by_member`), and add its line
//! above. Keys and stored encodings are data: a change needs a migration.
//!
//! # Inboxes
//!
//! An inbox is a stream whose entries carry the message itself, so receiving needs no
//! second round trip: `t=e` (Execute, `i` = id, `p` = postcard request, `a` =
//! attempt when not 0), `t=c` (Completed, `i` = id, `k` = kind, `p` = postcard
//! outcome), `t=m` (MembersChanged), `t=s` (Signal, `p` = postcard signal). The owner
//! reads it with a blocking `XREAD` on a connection of its own (no polling) and takes
//! up to 1024 entries at once. Entries are trimmed (`XTRIM MINID`) only at the next
//! `recv`, once they were handed out: a cancelled `recv` loses nothing (its entries
//! are read again by the next one). Streams were preferred to lists for that reason:
//! a `BLPOP` cancelled after the server popped would lose messages.
//!
//! # Leases and fencing
//!
//! A member's lease is `lease` long (3 s by default), computed on the Redis clock and
//! renewed every lease/3. A member whose lease expired is dead: it is no longer chosen
//! by `enqueue`, and its transitions fail with `Fenced`: every script that changes
//! state on behalf of a member gets it as its fence and checks its lease first, the
//! member being given by the script's mode in `scripts.rs` (`ByExecutor`, `complete`
//! and `tail_call`: the executing node; `ByCaller`, `enqueue`: the caller when it
//! joined through this handle; `ByHandle`, the other writes, `reminders_fire` and
//! `deliver_event` included: the handle's member when it has exactly one, as a
//! sidecar's handle does). It is recovered by the next renewal of any live member once
//! its *fencing margin* (`-redis_fence_margin`, stored with it at join) has passed
//! since its lease ended. Fencing is also local: once the lease less the margin has
//! passed since the last successful renewal was *sent*, the inbox and every fenced
//! transition report `Fenced` at once, even if Redis cannot be reached or the process
//! was stopped and has just resumed; the sidecar then stops its component. Between a
//! member's own fence and the earliest recovery of its requests lie at least twice
//! the margin; `lease.rs` states the clock assumptions, and how renewals get through
//! short partitions.

mod actors;
mod admin;
mod adoption;
mod bindings;
mod connect;
mod control;
mod events;
mod idempotency;
mod inbox;
mod lease;
mod membership;
mod recovery;
mod reminders;
mod replication;
mod reply;
mod requests;
mod scripts;

use crate::{RedisConfig, StoreError};
use kar_protocol::{ActorRef, Target};
use redis::ScriptInvocation;
use reply::{unexpected, value_bytes, value_pairs, value_string};
use std::sync::Arc;
use std::time::Duration;

/// Membership lease when the configuration says zero.
const DEFAULT_LEASE: Duration = Duration::from_secs(3);
/// How long opening the store may take before it reports the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Response timeout of ordinary transitions.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The keys of one application.
#[derive(Debug)]
pub(crate) struct Keys {
    /// `kar:{<tag>}:`
    prefix: String,
    /// `KEYS[1]` of every script.
    anchor: String,
    /// The application's name (for messages).
    app: String,
}

impl Keys {
    fn new(app: &str) -> Self {
        let prefix = format!("kar:{{{}}}:", hash_tag(app));
        Keys {
            anchor: format!("{prefix}members"),
            prefix,
            app: app.to_string(),
        }
    }

    fn inbox(&self, node: &str) -> String {
        format!("{}inbox:{node}", self.prefix)
    }

    /// A script invocation with the arguments every script of the application takes
    /// (`lua/lib.lua`); `fence` is the member on whose behalf it runs ('' for none):
    /// the script fails with [`StoreError::Fenced`] unless that member's lease is
    /// valid. `scripts.rs` chooses the fence.
    fn invocation<'a>(&self, script: &'a redis::Script, fence: &str) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation
            .key(&self.anchor)
            .arg(&self.prefix)
            .arg(rand::random::<u32>())
            .arg(fence);
        invocation
    }
}

/// The keys of topic `topic`, global (outside every application): its meta hash, its
/// log, the times of its events, the positions of its readers and its bridges
/// (`lua/topic_lib.lua`), in a slot of their own (the topic name is tagged like an
/// application's).
fn topic_keys(topic: &str) -> [String; 5] {
    let prefix = format!("kar:topic:{{{}}}:", hash_tag(topic));
    ["meta", "log", "at", "readers", "bridges"].map(|key| format!("{prefix}{key}"))
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

pub struct RedisStore {
    keys: Arc<Keys>,
    client: connect::Connector,
    conn: replication::StoreConn,
    lease: Duration,
    /// The fencing margin (`lease.rs`).
    margin: Duration,
    /// The replication wait (`replication.rs`).
    wait: Option<replication::Wait>,
    members: lease::LocalMembers,
    recoveries: recovery::Recoveries,
    adoptions: adoption::Adoptions,
    /// `host:port`, for messages.
    addr: String,
    /// `redis://host:port` (`rediss://` with TLS): the store's description.
    url: String,
    config: RedisConfig,
}

impl RedisStore {
    /// Connects to Redis (failing fast with [`StoreError::Unavailable`] when it cannot
    /// be reached) and returns the store of application `app`.
    /// Its recoveries follow `policy`.
    pub async fn open(
        config: &RedisConfig,
        app: &str,
        policy: crate::RecoveryPolicy,
    ) -> Result<Self, StoreError> {
        if config.host.is_empty() && config.sentinels.is_empty() {
            return Err(StoreError::Config(
                "Redis host (or Sentinels) is required".into(),
            ));
        }
        let keys = Arc::new(Keys::new(app));
        let (client, addr) = connect::client(config)?;
        connect::probe(&client, config, &addr, &keys).await?;

        let wait = replication::Wait::of(config.wait_replicas, config.wait_timeout);
        let conn = replication::StoreConn::open(client.clone(), wait)
            .await
            .map_err(|e| connect::connect_error(&addr, config, e))?;
        let lease = if config.lease.is_zero() {
            DEFAULT_LEASE
        } else {
            config.lease
        };
        let margin = lease::fence_margin(lease, config.fence_margin)?;
        let scheme = if config.tls { "rediss" } else { "redis" };
        Ok(RedisStore {
            url: format!("{scheme}://{addr}"),
            keys,
            client,
            conn,
            lease,
            margin,
            wait,
            members: Arc::default(),
            recoveries: recovery::Recoveries(Arc::default(), policy),
            adoptions: adoption::Adoptions::default(),
            addr,
            config: config.clone(),
        })
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
    fn topic_keys_are_global_and_tagged() {
        assert_eq!(
            topic_keys("t{x")[..2],
            ["kar:topic:{t%7Bx}:meta", "kar:topic:{t%7Bx}:log"]
        );
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
}
