//! Mesh membership in the Redis engine: joining (with the member's lease renewal,
//! `lease.rs`, and the adoption of the requests parked for its names, `adoption.rs`),
//! leaving (recovered like a death, `recovery.rs`), the live members, and
//! signals appended to a member's inbox (`inbox.rs` reads them).

use super::connect::connect_error;
use super::lease::{self, lease_millis, lock, LocalMember, Renewal};
use super::scripts::{JOIN, LEAVE, MEMBERS, SIGNAL};
use super::{inbox, recovery, RedisStore, RESPONSE_TIMEOUT};
use crate::codec::{decode, encode};
use crate::{Inbox, MembershipStore, Signal, StoreError};
use async_trait::async_trait;
use kar_protocol::{Member, NodeId};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

#[async_trait]
impl MembershipStore for RedisStore {
    async fn join(&self, member: &Member) -> Result<Box<dyn Inbox>, StoreError> {
        let node = member.node.0.clone();
        // The inbox connection is opened first: a member must not join without one.
        let reader = inbox::Reader::connect(&self.client, self.keys.inbox(&node)).await?;
        let sent = Instant::now();
        let mut invocation = self.unfenced(&JOIN);
        invocation
            .arg(&node)
            .arg(lease_millis(self.lease))
            .arg(lease_millis(self.margin))
            .arg(encode(member));
        for name in member.names() {
            invocation.arg(name);
        }
        invocation
            .invoke_async::<i64>(&mut self.conn.clone())
            .await?;

        // Renewals get a connection (and a thread, `lease.rs`) of their own: behind
        // a queue of large transitions on the shared one, or of request work on the
        // runtime, they could be answered too late, and the member would fence
        // itself while alive and well.
        let (fenced_tx, fenced_rx) = watch::channel(false);
        let lease_end = Arc::new(Mutex::new(sent + self.lease - self.margin));
        let renewal = Renewal {
            client: self.client.clone(),
            conn: None,
            recovery_conn: self.conn.clone(),
            recoveries: self.recoveries.clone(),
            adoptions: self.adoptions.clone(),
            keys: self.keys.clone(),
            node: node.clone(),
            lease: self.lease,
            margin: self.margin,
            wait: self.wait,
            lease_end: lease_end.clone(),
            main: tokio::runtime::Handle::current(),
        };
        let renew = lease::spawn(renewal, sent, fenced_tx)
            .await
            .map_err(|e| match e {
                lease::SpawnError::Connect(e) => connect_error(&self.addr, &self.config, e),
                lease::SpawnError::Thread(e) => StoreError::Unavailable {
                    reason: format!("cannot start the lease renewal: {e}"),
                    source: Some(Box::new(e)),
                },
            })?;
        let previous = lock(&self.members).insert(
            node.clone(),
            LocalMember {
                renew: renew.abort_handle(),
                fenced: fenced_rx.clone(),
                lease_end,
                read_mark: reader.read_mark(),
            },
        );
        if let Some(previous) = previous {
            previous.renew.abort();
        }
        // The requests parked for its names are adopted in bounded scripts, by a
        // task (`adoption.rs`).
        self.adoptions.start(
            &tokio::runtime::Handle::current(),
            &self.conn,
            &self.keys,
            &node,
            member.names().map(str::to_string).collect(),
            fenced_rx.clone(),
            crate::fault::join_adoption_limit(&node),
        );
        Ok(Box::new(inbox::RedisInbox::new(
            node,
            reader,
            fenced_rx,
            renew,
            self.members.clone(),
        )))
    }

    async fn leave_releasing(
        &self,
        node: &NodeId,
        unstarted: &[kar_protocol::RequestId],
    ) -> Result<(), StoreError> {
        // Stop renewing first: once removed, the member must not be renewed (the
        // renewal would report it fenced).
        // No mark (a member of another handle): nothing counts as unread.
        let mut read_mark = String::new();
        if let Some(member) = lock(&self.members).remove(&node.0) {
            member.renew.abort();
            read_mark = member
                .read_mark
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
        }
        let mut invocation = self.unfenced(&LEAVE);
        invocation.arg(&node.0).arg(&read_mark);
        for id in unstarted {
            invocation.arg(&id.0);
        }
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
                self.recoveries.1,
                unstarted,
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
            .unfenced(&MEMBERS)
            .invoke_async(&mut self.conn.clone())
            .await?;
        let mut members = records
            .iter()
            .map(|record| decode::<Member>(&self.keys.anchor, record))
            .collect::<Result<Vec<_>, _>>()?;
        members.sort_by(|a, b| a.node.cmp(&b.node));
        Ok(members)
    }

    async fn signal(&self, to: &NodeId, signal: &Signal) -> Result<(), StoreError> {
        let mut invocation = self.unfenced(&SIGNAL);
        invocation.arg(&to.0).arg(encode(signal));
        // 0: `to` is not live, and the signal is dropped (signals are not durable).
        invocation
            .invoke_async::<i64>(&mut self.conn.clone())
            .await?;
        Ok(())
    }
}
