//! What reminders and subscriptions share in the embedded engine: both are bindings
//! of an actor, one row per (app, actor_type, actor_id, id) in a table of their own,
//! looked up and cancelled the same way ([`BindingStore`], implemented once for both
//! kinds). What differs (scheduling and firing, subscribing and delivering) stays in
//! `reminders` and `events`, which implement [`Binding`] for their kind.

use super::db::Db;
use super::EmbeddedStore;
use crate::{BindingStore, StoreError, StoredBinding};
use async_trait::async_trait;
use kar_protocol::ActorRef;
use rusqlite::Row;

/// A kind of binding: its table and how one of its rows reads.
pub(super) trait Binding: StoredBinding {
    /// The table, with primary key (app, actor_type, actor_id, id).
    const TABLE: &'static str;
    /// The columns [`Binding::from_row`] reads, in order.
    const COLUMNS: &'static str;
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self>;
}

#[async_trait]
impl<B: Binding> BindingStore<B> for EmbeddedStore {
    async fn get(&self, actor: &ActorRef, id: &str) -> Result<Option<B>, StoreError> {
        Ok(find(&self.db, &self.app, Scope::One(actor, id))
            .await?
            .pop())
    }

    async fn list(&self, actor: &ActorRef) -> Result<Vec<B>, StoreError> {
        find(&self.db, &self.app, Scope::Actor(actor)).await
    }

    async fn list_all(&self) -> Result<Vec<B>, StoreError> {
        find(&self.db, &self.app, Scope::App).await
    }

    async fn cancel(&self, actor: &ActorRef, id: &str) -> Result<bool, StoreError> {
        Ok(cancel::<B>(&self.db, &self.app, Scope::One(actor, id)).await? > 0)
    }

    async fn cancel_all(&self, actor: &ActorRef) -> Result<u64, StoreError> {
        cancel::<B>(&self.db, &self.app, Scope::Actor(actor)).await
    }
}

/// Which bindings of the application an operation is about.
enum Scope<'a> {
    One(&'a ActorRef, &'a str),
    Actor(&'a ActorRef),
    App,
}

impl Scope<'_> {
    /// The condition after `app = ?1`, and its parameters from `?2` on.
    fn filter(&self) -> (&'static str, Vec<String>) {
        match self {
            Scope::One(actor, id) => (
                "AND actor_type = ?2 AND actor_id = ?3 AND id = ?4",
                vec![actor.actor_type.clone(), actor.id.clone(), id.to_string()],
            ),
            Scope::Actor(actor) => (
                "AND actor_type = ?2 AND actor_id = ?3",
                vec![actor.actor_type.clone(), actor.id.clone()],
            ),
            Scope::App => ("", Vec::new()),
        }
    }

    fn params(&self, app: &str) -> Vec<String> {
        let mut params = vec![app.to_string()];
        params.extend(self.filter().1);
        params
    }
}

/// The bindings in `scope`, by actor and id.
async fn find<B: Binding>(db: &Db, app: &str, scope: Scope<'_>) -> Result<Vec<B>, StoreError> {
    let sql = format!(
        "SELECT {} FROM {} WHERE app = ?1 {} ORDER BY actor_type, actor_id, id",
        B::COLUMNS,
        B::TABLE,
        scope.filter().0
    );
    let params = scope.params(app);
    let body = move |conn: &rusqlite::Connection| {
        Ok(conn
            .prepare_cached(&sql)?
            .query_map(rusqlite::params_from_iter(&params), B::from_row)?
            .collect::<Result<_, _>>()?)
    };
    match scope {
        // Every binding of the application: as many as there are actors.
        Scope::App => db.read_long(body).await,
        Scope::One(..) | Scope::Actor(_) => db.read(body).await,
    }
}

/// Cancels the bindings in `scope`; returns how many went.
async fn cancel<B: Binding>(db: &Db, app: &str, scope: Scope<'_>) -> Result<u64, StoreError> {
    let sql = format!(
        "DELETE FROM {} WHERE app = ?1 {}",
        B::TABLE,
        scope.filter().0
    );
    let params = scope.params(app);
    db.run(move |conn| {
        let n = conn
            .prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(&params))?;
        Ok((n as u64, Vec::new()))
    })
    .await
}
