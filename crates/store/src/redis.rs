//! The Redis engine (multi-host meshes). See the crate docs.

use crate::{Inbox, Message, RedisConfig, Routing, Store, StoreError};
use async_trait::async_trait;
use kar_protocol::{Member, NodeId, Outcome, Request, RequestId};

pub struct RedisStore {
    app: String,
    config: RedisConfig,
}

impl RedisStore {
    pub async fn open(config: &RedisConfig, app: &str) -> Result<Self, StoreError> {
        Ok(RedisStore {
            app: app.to_string(),
            config: config.clone(),
        })
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn join(&self, _member: &Member) -> Result<Box<dyn Inbox>, StoreError> {
        Err(StoreError::Config(
            "redis engine not implemented yet".into(),
        ))
    }
    async fn leave(&self, _node: &NodeId) -> Result<(), StoreError> {
        todo!()
    }
    async fn members(&self) -> Result<Vec<Member>, StoreError> {
        todo!()
    }
    async fn enqueue(&self, _request: &Request) -> Result<Routing, StoreError> {
        todo!()
    }
    async fn complete(
        &self,
        _n: &NodeId,
        _id: &RequestId,
        _o: &Outcome,
    ) -> Result<bool, StoreError> {
        todo!()
    }
    async fn forget(&self, _ids: &[RequestId]) -> Result<(), StoreError> {
        todo!()
    }
    async fn expire_parked(&self, _id: &RequestId) -> Result<bool, StoreError> {
        todo!()
    }
    async fn purge(&self) -> Result<u64, StoreError> {
        todo!()
    }
    fn describe(&self) -> String {
        format!(
            "redis://{}:{} (app {})",
            self.config.host, self.config.port, self.app
        )
    }
}

#[allow(dead_code)]
fn _unused(_: Message) {}
