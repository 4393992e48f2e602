//! What reminders and subscriptions (an actor's *bindings*) share in the Redis
//! engine: their layout (`lua/bindings.lua`), and the scripts that read and cancel a
//! binding of either kind. Each kind's own transitions (scheduling and firing,
//! subscribing and delivering) are in `reminders.rs` and `events.rs`.

use super::scripts::{BINDINGS_ALL, BINDINGS_CANCEL_ALL, BINDINGS_OF, BINDING_CANCEL, BINDING_GET};
use super::{encode_actor, unexpected, RedisStore};
use crate::StoreError;
use kar_protocol::ActorRef;
use redis::Value;

/// A binding as its kind's scripts return it (the kind's fields, in the order of
/// `lua/bindings.lua`).
pub(super) trait Binding: Sized {
    /// The kind's name in `BINDINGS` of `lua/bindings.lua`.
    const KIND: &'static str;
    /// The binding as the store API returns it.
    type Item;

    fn parse(record: Value) -> Result<Self, StoreError>;

    fn into_item(self) -> Self::Item;

    /// The actor and the id of the binding (listings are sorted by them).
    fn key(&self) -> (&ActorRef, &str);
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
pub(super) fn records<B: Binding>(value: Value) -> Result<Vec<B>, StoreError> {
    match value {
        Value::Array(items) => items.into_iter().map(B::parse).collect(),
        Value::Nil => Ok(Vec::new()),
        other => Err(unexpected(B::KIND, &other)),
    }
}

/// The bindings of a list of records, sorted by actor and id.
fn sorted<B: Binding>(value: Value) -> Result<Vec<B::Item>, StoreError> {
    let mut all = records::<B>(value)?;
    all.sort_by(|a, b| a.key().cmp(&b.key()));
    Ok(all.into_iter().map(B::into_item).collect())
}

impl RedisStore {
    /// The binding as read (with what only this engine keeps, such as a
    /// subscription's position).
    pub(super) async fn binding_read<B: Binding>(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<Option<B>, StoreError> {
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

    pub(super) async fn binding_get<B: Binding>(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<Option<B::Item>, StoreError> {
        Ok(self.binding_read::<B>(actor, id).await?.map(B::into_item))
    }

    /// The bindings of `actor`.
    pub(super) async fn bindings_of<B: Binding>(
        &self,
        actor: &ActorRef,
    ) -> Result<Vec<B::Item>, StoreError> {
        let mut invocation = self.unfenced(&BINDINGS_OF);
        invocation
            .arg(B::KIND)
            .arg(encode_actor(&actor.actor_type, &actor.id));
        sorted::<B>(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    /// Every binding of the kind in the application.
    pub(super) async fn bindings_all<B: Binding>(&self) -> Result<Vec<B::Item>, StoreError> {
        let mut invocation = self.unfenced(&BINDINGS_ALL);
        invocation.arg(B::KIND);
        sorted::<B>(invocation.invoke_async(&mut self.conn.clone()).await?)
    }

    /// Whether the binding existed.
    pub(super) async fn binding_cancel<B: Binding>(
        &self,
        actor: &ActorRef,
        id: &str,
    ) -> Result<bool, StoreError> {
        let mut invocation = self.by_handle(&BINDING_CANCEL)?;
        invocation
            .arg(B::KIND)
            .arg(encode_actor(&actor.actor_type, &actor.id))
            .arg(id);
        let existed: i64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(existed == 1)
    }

    /// How many bindings `actor` had.
    pub(super) async fn bindings_cancel_all<B: Binding>(
        &self,
        actor: &ActorRef,
    ) -> Result<u64, StoreError> {
        let mut invocation = self.by_handle(&BINDINGS_CANCEL_ALL)?;
        invocation
            .arg(B::KIND)
            .arg(encode_actor(&actor.actor_type, &actor.id));
        Ok(invocation.invoke_async(&mut self.conn.clone()).await?)
    }
}
