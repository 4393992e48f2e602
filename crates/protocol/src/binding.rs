//! What reminders and subscriptions share (upstream calls both "bindings" of an
//! actor): an actor method bound to a trigger, keyed by (actor, id), shown as a JSON
//! object that starts with the actor, the id and the path.

use crate::ActorRef;
use serde_json::{Map, Value};

/// A reminder or a subscription, as far as listing, filtering and showing them go.
pub trait Binding {
    /// The actor whose method it calls.
    fn actor(&self) -> &ActorRef;
    /// Its id among the actor's bindings of its kind.
    fn id(&self) -> &str;
    /// The actor method path, starting with `/`.
    fn path(&self) -> &str;

    /// The order listings use: actor type, actor id, binding id.
    fn sort_key(&self) -> (&str, &str, &str) {
        let actor = self.actor();
        (&actor.actor_type, &actor.id, self.id())
    }

    /// Whether it belongs to the actors `actor_type` / `id` select (an empty one
    /// selects all).
    fn selected_by(&self, actor_type: &str, id: &str) -> bool {
        let actor = self.actor();
        (actor_type.is_empty() || actor.actor_type == actor_type)
            && (id.is_empty() || actor.id == id)
    }
}

/// Implements [`Binding`] for a record with `actor`, `id` and `path` fields.
macro_rules! binding_fields {
    ($($record:ty),*) => {$(
        impl Binding for $record {
            fn actor(&self) -> &ActorRef {
                &self.actor
            }

            fn id(&self) -> &str {
                &self.id
            }

            fn path(&self) -> &str {
                &self.path
            }
        }
    )*};
}

binding_fields!(crate::Reminder, crate::Subscription);

/// The members every binding's JSON object starts with, in Go's struct order: the
/// actor as `{"Type","ID"}` under `actor_key` (upstream spells it `Actor` in reminders
/// and `actor` in subscriptions), then `id` and `path`.
pub(crate) fn json_head(actor_key: &str, binding: &impl Binding) -> Map<String, Value> {
    let actor = binding.actor();
    let mut map = Map::new();
    map.insert(
        actor_key.into(),
        serde_json::json!({"Type": actor.actor_type, "ID": actor.id}),
    );
    map.insert("id".into(), binding.id().into());
    map.insert("path".into(), binding.path().into());
    map
}
