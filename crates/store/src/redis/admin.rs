//! Administration of the Redis engine: purging an application's keys.

use super::scripts::PURGE;
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

    fn describe(&self) -> String {
        format!("redis://{}", self.addr)
    }
}
