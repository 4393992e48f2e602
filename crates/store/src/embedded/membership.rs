//! Mesh membership in the embedded engine: `members` and `offers`; a member's
//! liveness is its lock file (`liveness`), its wake-ups a loopback port (`poke`); the
//! requests parked for its names are adopted after it joined (`adoption`).

use super::adoption::Adoption;
use super::inbox::{self, EmbeddedInbox};
use super::mesh::{bump_version, is_member, mesh_version, poke_ports};
use super::recovery::{remove_member, Removal};
use super::{liveness, poke, EmbeddedStore};
use crate::codec::{decode, encode};
use crate::{Inbox, MembershipStore, Signal, StoreError};
use async_trait::async_trait;
use kar_protocol::{Member, NodeId};
use rusqlite::params;
use std::collections::HashSet;

#[async_trait]
impl MembershipStore for EmbeddedStore {
    async fn join(&self, member: &Member) -> Result<Box<dyn Inbox>, StoreError> {
        let node = member.node.0.clone();
        let lock = liveness::hold(&self.dir, &node)
            .map_err(|e| StoreError::unavailable_from("cannot create the member's lock", e))?;
        let reader = super::connection::open_reader(&self.path)?;
        let listening = poke::listen(&self.dir)
            .await
            .map_err(|e| StoreError::unavailable_from("cannot listen for wake-ups", e))?;
        let poke_port = listening.port;
        let app = self.app.clone();
        let record = encode(member);
        let names: Vec<String> = member.names().map(str::to_string).collect();
        let adoption = Adoption::new(&app, &node, names.clone(), &self.db);
        let node2 = node.clone();
        let (others, version) = self
            .db
            .run(move |conn| {
                let node = node2;
                let others: Vec<String> = conn
                    .prepare_cached("SELECT node FROM members WHERE app = ?1")?
                    .query_map([&app], |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut pokes = poke_ports(conn, &app)?;
                conn.prepare_cached(
                    "INSERT OR REPLACE INTO members (app, node, member, poke_port) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![app, node, record, poke_port])?;
                for name in &names {
                    conn.prepare_cached("INSERT OR IGNORE INTO offers (app, name, node) VALUES (?1, ?2, ?3)")?
                        .execute([&app, name, &node])?;
                }
                bump_version(conn, &app)?;
                let version = mesh_version(conn, &app)?;
                pokes.push(poke_port);
                Ok(((others, version), pokes))
            })
            .await?;
        self.watchers.watch_all(others, std::slice::from_ref(&node));
        // The requests parked for its names are adopted after the join, in bounded
        // transactions (`adoption`).
        adoption.start(crate::fault::join_adoption_limit(&node));
        Ok(Box::new(EmbeddedInbox {
            app: self.app.clone(),
            node,
            db: self.db.clone(),
            reader,
            mailbox: listening.mailbox.clone(),
            acked: 0,
            // Changes after the join are reported, even before the first recv.
            version,
            drained: false,
            watchers: self.watchers.clone(),
            adoption,
            _lock: lock,
            _pokes: listening,
        }))
    }

    async fn leave_releasing(
        &self,
        node: &NodeId,
        unstarted: &[kar_protocol::RequestId],
    ) -> Result<(), StoreError> {
        let app = self.app.clone();
        let node = node.0.clone();
        let policy = self.policy;
        let unstarted: HashSet<String> = unstarted.iter().map(|id| id.0.clone()).collect();
        self.db
            .run_long(move |conn| {
                remove_member(conn, &app, &node, Removal::Left(&unstarted), policy)
            })
            .await?;
        Ok(())
    }

    async fn members(&self) -> Result<Vec<Member>, StoreError> {
        let app = self.app.clone();
        self.db
            .read(move |conn| {
                let rows: Vec<(String, Vec<u8>)> = conn
                    .prepare_cached(
                        "SELECT node, member FROM members WHERE app = ?1 ORDER BY node",
                    )?
                    .query_map([&app], |row| Ok((row.get(0)?, row.get(1)?)))?
                    .collect::<Result<_, _>>()?;
                let members = rows
                    .iter()
                    .map(|(node, bytes)| decode(node, bytes))
                    .collect::<Result<Vec<Member>, _>>()?;
                Ok(members)
            })
            .await
    }

    async fn signal(&self, to: &NodeId, signal: &Signal) -> Result<(), StoreError> {
        let app = self.app.clone();
        let node = to.0.clone();
        let signal = signal.clone();
        self.db
            .run(move |conn| {
                // A signal to a member that is gone is lost, by design (see `Signal`).
                let Some(port) = is_member(conn, &app, &node)? else {
                    return Ok(((), Vec::new()));
                };
                inbox::push_signal(conn, &app, &node, &signal)?;
                Ok(((), vec![port]))
            })
            .await
    }
}
