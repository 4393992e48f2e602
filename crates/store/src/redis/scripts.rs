//! The Lua scripts, one per transition, each declared once below together with how
//! it is fenced. The fencing mode is the script's type, and each mode has its own way
//! to invoke the script, so a script cannot be run with a fence other than the one it
//! was declared with (a read cannot be fenced by mistake, nor a write left unfenced).

use super::lease::lock;
use super::{Keys, RedisStore};
use crate::{codes, StoreError};
use redis::ScriptInvocation;
use std::marker::PhantomData;
use std::sync::LazyLock;

/// A Lua script whose fencing mode is `F` (one of the marker types below).
pub(super) struct Script<F> {
    lua: redis::Script,
    fence: PhantomData<F>,
}

/// Never fenced: reads (they commit nothing, and they remain possible after a purge
/// removed this handle's member), the membership scripts (they name their member and
/// check its lease themselves), `purge`, `drain` and `signal` (no state of the mesh), and an operator's control
/// (`kill`, `pause`, like `resume`).
pub(super) enum Unfenced {}
/// Fenced on this handle's member when it has exactly one (see [`RedisStore::fence`]).
pub(super) enum ByHandle {}
/// Fenced on the caller named by the transition if it joined through this handle.
pub(super) enum ByCaller {}
/// Fenced on the executor named by the transition, always (it must be live).
pub(super) enum ByExecutor {}

/// The fencing modes that name their member.
pub(super) trait ByMember {
    /// Whether the member is the fence even if it did not join through this handle.
    const ALWAYS: bool;
}

impl ByMember for ByCaller {
    const ALWAYS: bool = false;
}

impl ByMember for ByExecutor {
    const ALWAYS: bool = true;
}

impl<F> Script<F> {
    /// The script of `source`, after the request codes (`crate::codes::LUA`: no
    /// script spells a status or kind code itself).
    fn new(name: &'static str, source: &str) -> Self {
        let lua = redis::Script::new(&[codes::LUA, source].concat());
        register(name, &lua);
        Script {
            lua,
            fence: PhantomData,
        }
    }
}

/// The scripts by SHA1, named for the store metrics (`command` label).
static NAMES: std::sync::Mutex<Option<std::collections::HashMap<String, &'static str>>> =
    std::sync::Mutex::new(None);

fn register(name: &'static str, lua: &redis::Script) {
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    // Once per script: the lower-case name lives as long as the process.
    let label: &'static str = Box::leak(name.to_ascii_lowercase().into_boxed_str());
    names
        .get_or_insert_with(Default::default)
        .insert(lua.get_hash().to_string(), label);
}

/// The name of the script whose SHA1 is `sha` (`EVALSHA`'s first argument).
pub(super) fn script_name(sha: &[u8]) -> Option<&'static str> {
    let sha = std::str::from_utf8(sha).ok()?;
    NAMES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()?
        .get(sha)
        .copied()
}

impl Script<Unfenced> {
    pub(super) fn invocation(&self, keys: &Keys) -> ScriptInvocation<'_> {
        keys.invocation(&self.lua, "")
    }
}

impl<F: ByMember> Script<F> {
    /// An invocation fenced on `fence` as given ('' for none): the caller made the
    /// local checks ([`RedisStore::by_member`] does).
    pub(super) fn fenced_on(&self, keys: &Keys, fence: &str) -> ScriptInvocation<'_> {
        keys.invocation(&self.lua, fence)
    }
}

/// A script on the keys of one topic (global: no prefix, no fence; `topic_lib.lua`).
pub(super) struct TopicScript(redis::Script);

impl TopicScript {
    fn new(name: &'static str, source: &str) -> Self {
        let lua = redis::Script::new(source);
        register(name, &lua);
        TopicScript(lua)
    }

    pub(super) fn invocation(&self, topic: &str) -> ScriptInvocation<'_> {
        let mut invocation = self.0.prepare_invoke();
        for key in super::topic_keys(topic) {
            invocation.key(key);
        }
        invocation
    }
}

impl RedisStore {
    /// An invocation of a transition fenced on this handle's member.
    pub(super) fn by_handle(
        &self,
        script: &'static Script<ByHandle>,
    ) -> Result<ScriptInvocation<'static>, StoreError> {
        let fence = self.fence()?;
        Ok(self.keys.invocation(&script.lua, &fence))
    }

    /// An invocation of a transition made by member `node`.
    pub(super) fn by_member<F: ByMember>(
        &self,
        script: &'static Script<F>,
        node: &str,
    ) -> Result<ScriptInvocation<'static>, StoreError> {
        let fence = self.fence_of(node, F::ALWAYS)?;
        Ok(script.fenced_on(&self.keys, &fence))
    }

    /// An invocation of an unfenced script.
    pub(super) fn unfenced(&self, script: &'static Script<Unfenced>) -> ScriptInvocation<'static> {
        script.invocation(&self.keys)
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

/// Declares each script as a static of its type (its fencing mode), its source the
/// concatenation of its files.
macro_rules! scripts {
    ($($(#[doc = $doc:literal])* $name:ident: $ty:ty = [$($file:literal),+];)*) => {
        $(
            $(#[doc = $doc])*
            pub(super) static $name: LazyLock<$ty> =
                LazyLock::new(|| {
                    <$ty>::new(stringify!($name), concat!($(include_str!(concat!("lua/", $file))),+))
                });
        )*
    };
}

// One line per transition: name, fencing mode, files (preludes first). The module
// doc of `redis/mod.rs` says what each does; each file documents its arguments.
scripts! {
    // Membership (membership.rs, recovery.rs).
    JOIN: Script<Unfenced> = ["lib.lua", "join.lua"];
    ADOPT: Script<Unfenced> = ["lib.lua", "adopt.lua"];
    RENEW: Script<Unfenced> = ["lib.lua", "renew.lua"];
    LEAVE: Script<Unfenced> = ["lib.lua", "leave.lua"];
    MEMBERS: Script<Unfenced> = ["lib.lua", "members.lua"];
    SIGNAL: Script<Unfenced> = ["lib.lua", "signal.lua"];
    /// Fenced on the recovering member ('' for a leave), given by the recovery.
    RECOVER: Script<ByExecutor> = ["lib.lua", "recover.lua"];
    // Requests (requests.rs).
    ENQUEUE: Script<ByCaller> = ["lib.lua", "enqueue.lua"];
    COMPLETE: Script<ByExecutor> = ["lib.lua", "complete_lib.lua", "complete.lua"];
    /// Several completions by one executor in one script (group commit of tells).
    COMPLETE_ALL: Script<ByExecutor> = ["lib.lua", "complete_lib.lua", "complete_all.lua"];
    /// A completion and the state writes handed over with its reply, together.
    COMPLETE_WITH_STATE: Script<ByExecutor> =
        ["lib.lua", "complete_lib.lua", "state_lib.lua", "complete_with_state.lua"];
    TAIL_CALL: Script<ByExecutor> = ["lib.lua", "tail_call.lua"];
    FORGET: Script<ByHandle> = ["lib.lua", "forget.lua"];
    EXPIRE_PARKED: Script<ByHandle> = ["lib.lua", "expire_parked.lua"];
    /// An operator's transition (`kar resume`, no member needed), like `purge`.
    RESUME: Script<Unfenced> = ["lib.lua", "resume.lua"];
    // Idempotency keys (idempotency.rs).
    ENQUEUE_KEYED: Script<ByCaller> = ["lib.lua", "enqueue_keyed.lua"];
    KEYED: Script<Unfenced> = ["lib.lua", "keyed.lua"];
    // Actors: removal and state (actors.rs).
    REMOVE_ACTOR: Script<ByHandle> = ["lib.lua", "remove_actor.lua"];
    /// Fenced on the member the actor moves off (rebalancing, a graceful leave).
    MOVE_ACTOR: Script<ByExecutor> = ["lib.lua", "move_actor.lua"];
    STATE_GET: Script<Unfenced> = ["lib.lua", "state_get.lua"];
    STATE_SET: Script<ByHandle> = ["lib.lua", "state_set.lua"];
    STATE_REMOVE: Script<ByHandle> = ["lib.lua", "state_remove.lua"];
    STATE_GET_ALL: Script<Unfenced> = ["lib.lua", "state_get_all.lua"];
    STATE_REMOVE_ALL: Script<ByHandle> = ["lib.lua", "state_remove_all.lua"];
    STATE_UPDATE: Script<ByHandle> = ["lib.lua", "state_lib.lua", "state_update.lua"];
    SUBMAP_ENTRIES: Script<Unfenced> = ["lib.lua", "submap_entries.lua"];
    SUBMAP_CLEAR: Script<ByHandle> = ["lib.lua", "submap_clear.lua"];
    // Reminders and subscriptions alike (bindings.rs), then each (reminders.rs, events.rs).
    BINDING_GET: Script<Unfenced> = ["lib.lua", "bindings.lua", "binding_get.lua"];
    BINDINGS_OF: Script<Unfenced> = ["lib.lua", "bindings.lua", "bindings_of.lua"];
    BINDINGS_ALL: Script<Unfenced> = ["lib.lua", "bindings.lua", "bindings_all.lua"];
    BINDING_CANCEL: Script<ByHandle> = ["lib.lua", "bindings.lua", "binding_cancel.lua"];
    BINDINGS_CANCEL_ALL: Script<ByHandle> = ["lib.lua", "bindings.lua", "bindings_cancel_all.lua"];
    REMINDER_SCHEDULE: Script<ByHandle> = ["lib.lua", "bindings.lua", "reminder_schedule.lua"];
    REMINDERS_NEXT_DUE: Script<Unfenced> = ["lib.lua", "bindings.lua", "reminders_next_due.lua"];
    /// Claims what it reads (a write).
    REMINDERS_DUE: Script<ByHandle> = ["lib.lua", "bindings.lua", "reminders_due.lua"];
    REMINDERS_FIRE: Script<ByHandle> = ["lib.lua", "bindings.lua", "reminders_fire.lua"];
    /// Drops stale entries of `firing` (a write, harmless from anyone).
    REMINDERS_PENDING: Script<Unfenced> = ["lib.lua", "reminders_pending.lua"];
    SUBSCRIBE: Script<ByHandle> = ["lib.lua", "bindings.lua", "subscribe.lua"];
    DELIVER_EVENT: Script<ByHandle> = ["lib.lua", "bindings.lua", "deliver_event.lua"];
    // Topics (events.rs): global keys, no prelude but their own.
    TOPIC_CREATE: TopicScript = ["topic_lib.lua", "topic_create.lua"];
    TOPIC_DELETE: TopicScript = ["topic_lib.lua", "topic_delete.lua"];
    TOPIC_PUBLISH: TopicScript = ["topic_lib.lua", "topic_publish.lua"];
    TOPIC_READER: TopicScript = ["topic_lib.lua", "topic_reader.lua"];
    TOPIC_NEXT: TopicScript = ["topic_lib.lua", "topic_next.lua"];
    TOPIC_TRIM: TopicScript = ["topic_lib.lua", "topic_trim.lua"];
    BRIDGE_CLAIM: TopicScript = ["topic_lib.lua", "bridge_claim.lua"];
    BRIDGE_APPEND: TopicScript = ["topic_lib.lua", "bridge_append.lua"];
    // Admin (admin.rs).
    PURGE: Script<Unfenced> = ["lib.lua", "purge.lua"];
    // Connections (connect.rs): the permissions of the ACL user, checked at open.
    ACL_CHECK: Script<Unfenced> = ["lib.lua", "acl_check.lua"];
    DRAIN: Script<Unfenced> = ["lib.lua", "drain.lua"];
    // An operator's control of pending requests (control.rs): no member needed.
    LIST_REQUESTS: Script<Unfenced> = ["lib.lua", "control.lua", "list_requests.lua"];
    REQUEST_GET: Script<Unfenced> = ["lib.lua", "control.lua", "request_get.lua"];
    KILL: Script<Unfenced> = ["lib.lua", "control.lua", "kill.lua"];
    PAUSE: Script<Unfenced> = ["lib.lua", "control.lua", "pause.lua"];
}

#[cfg(test)]
mod tests {
    /// Every file of `lua/` is a script or a prelude of the table above (a file left
    /// out would be dead, or a transition nobody can run).
    #[test]
    fn every_lua_file_is_declared() {
        let table = include_str!("scripts.rs");
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/redis/lua");
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                table.contains(&format!("\"{name}\"")),
                "{name} is not declared"
            );
        }
    }
}
