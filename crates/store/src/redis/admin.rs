//! Administration of the Redis engine: purging an application's keys, draining its
//! pending requests.

use super::scripts::{DRAIN, PURGE};
use super::{glob_escape, RedisStore};
use crate::{AdminStore, StoreError};
use async_trait::async_trait;

#[async_trait]
impl AdminStore for RedisStore {
    async fn purge(&self) -> Result<u64, StoreError> {
        let mut invocation = self.unfenced(&PURGE);
        invocation.arg(format!("{}*", glob_escape(&self.keys.prefix)));
        let deleted: u64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(deleted)
    }

    async fn drain(&self) -> Result<u64, StoreError> {
        let mut invocation = self.unfenced(&DRAIN);
        let prefix = glob_escape(&self.keys.prefix);
        invocation.arg(format!("{prefix}req:*"));
        invocation.arg(format!("{prefix}inbox:*"));
        let drained: u64 = invocation.invoke_async(&mut self.conn.clone()).await?;
        Ok(drained)
    }

    fn describe(&self) -> String {
        self.url.clone()
    }
}
