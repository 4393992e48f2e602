//! What reminders and subscriptions (an actor's *bindings*) share in the Redis
//! engine: their layout (`lua/bindings.lua`), and the scripts that read and cancel a
//! binding of either kind ([`BindingStore`], implemented once for both kinds). Each
//! kind's own transitions (scheduling and firing, subscribing and delivering) are in
//! `reminders.rs` and `events.rs`, which implement [`Binding`] for their kind.

use super::scripts::{BINDINGS_ALL, BINDINGS_CANCEL_ALL, BINDINGS_OF, BINDING_CANCEL, BINDING_GET};
use super::{encode_actor, unexpected, RedisStore};
use crate::{BindingStore, StoreError, StoredBinding};
use async_trait::async_trait;
use kar_protocol::ActorRef;
use redis::{ScriptInvocation, Value};

/// A kind of binding: its name in the scripts and how its records read.
pub(super) trait Binding: StoredBinding {
    /// The kind's name in `BINDINGS` of `lua/bindings.lua`.
    const KIND: &'static str;
    /// The binding as read, with what only this engine keeps (a reminder's
    /// generation, a subscription's position).
    type Read: Into<Self>;

    /// A record as the kind's scripts return it (the kind's fields, in the order of
    /// `lua/bindings.lua`).
    fn parse(record: Value) -> Result<Self::Read, StoreError>;
}

/// Adds the arguments a kind's storing script starts with (`lua/bindings.lua`): the
/// actor's key, the id, the actor type and id, and the path.
pub(super) fn head_args(invocation: &mut ScriptInvocation<'_>, binding: &impl StoredBinding) {
    let actor = binding.actor();
    invocation
        .arg(encode_actor(&actor.actor_type, &actor.id))
        .arg(binding.id())
        .arg(&actor.actor_type)
        .arg(&actor.id)
        .arg(binding.path());
}

/// The `N` fields of a record.
pub(super) fn fields<const N: usize>(what: &str, record: Value) -> Result<[Value; N], StoreError> {
    let Value::Array(fields) = record else {
        return Err(unexpected(what, &record));
    };
    fields
        .try_into()
        .map_err(|fields| unexpected(what, &Value::Array(fields)))
}

/// The bindings of a list of records, in its order.
pub(super) fn records<B: Binding>(value: Value) -> Result<Vec<B::Read>, StoreError> {
    match value {
        Value::Array(items) => items.into_iter().map(B::parse).collect(),
        Value::Nil => Ok(Vec::new()),
        other => Err(unexpected(B::KIND, &other)),
    }
}

/// The bindings of a list of records, sorted by actor and id.
fn sorted<B: Binding>(value: Value) -> Result<Vec<B>, StoreError> {
    let mut all: Vec<B> = records::<B>(value)?.into_iter().map(Into::into).collect();
    all.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Ok(all)
}

impl RedisStore {
    /// The binding as read (with what only this engine keeps, such as a
    /// subscription's position).
    pub(super) async fn binding_read<B: Binding>(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<Option<B::Read>, StoreError> {
        let mut invocation = self.unfenced(&BINDING_GET);
        invocation
            .arg(B::KIND)
            .arg(encode_actor(&actor.actor_type, &actor.id))
            .arg(id);
        match invocation.invoke_async(&mut self.conn.clone()).await? {
            Value::Nil => Ok(None),
            record => Ok(Some(B::parse(record)?)),
        }
    }
}

#[async_trait]
impl<B: Binding> BindingStore<B> for RedisStore {
    async fn get(&self, actor: &ActorRef, id: &str) -> Result<Option<B>, StoreError> {
        Ok(self.binding_read::<B>(actor, id).await?.map(Into::into))
    }

    async fn list(&self, actor: &ActorRef) -> Result<Vec<B>, StoreError> {
        let mut invocation = self.unfenced(&BINDINGS_OF);
        invocation
            .arg(B::KIND)
            .arg(encode_actor(&actor.actor_type, &actor.id));
        sorted::<B>(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    async fn list_all(&self) -> Result<Vec<B>, StoreError> {
        let mut invocation = self.unfenced(&BINDINGS_ALL);
        invocation.arg(B::KIND);
        sorted::<B>(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    async fn cancel(&self, actor: &ActorRef, id: &str) -> Result<bool, StoreError> {
        let mut invocation = self.by_handle(&BINDING_CANCEL)?;
        invocation
            .arg(B::KIND)
            .arg(encode_actor(&actor.actor_type, &actor.id))
            .arg(id);
        let existed: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(existed == 1)
    }

    async fn cancel_all(&self, actor: &ActorRef) -> Result<u64, StoreError> {
        let mut invocation = self.by_handle(&BINDINGS_CANCEL_ALL)?;
        invocation
            .arg(B::KIND)
            .arg(encode_actor(&actor.actor_type, &actor.id));
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }
}
