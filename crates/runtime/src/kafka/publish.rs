//! Publishing to a bound topic produces a Kafka record (see `mod.rs`).
//!
//! Guarantee: `200 OK` means the record was acknowledged by every in-sync replica
//! (rskafka produces with `acks=all`). A produce whose reply was lost is resent by
//! the client (at least once): each record carries a header `kar-publish-id` (a
//! fresh UUID per publish), so a consumer can tell such duplicates apart from
//! events published twice. The record has no key, like upstream's; the partition is
//! the same for every publish of one member (so one publisher's events keep their
//! order), chosen by a hash of the member's id.

use super::{Kafka, KafkaError, TopicBinding};
use bytes::Bytes;
use rskafka::chrono::DateTime;
use rskafka::client::partition::{Compression, PartitionClient, UnknownTopicHandling};
use rskafka::record::Record;
use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The header naming one publish (duplicates of a resent produce share it).
pub(crate) const PUBLISH_ID: &str = "kar-publish-id";

impl Kafka {
    /// Produces `event` to `binding`'s Kafka topic on behalf of member `node`; returns
    /// the record's Kafka offset.
    pub(crate) async fn publish(
        &self,
        binding: &TopicBinding,
        node: &str,
        event: Bytes,
    ) -> Result<i64, KafkaError> {
        let partition = self.producer(binding, node).await?;
        let mut headers = BTreeMap::new();
        headers.insert(
            PUBLISH_ID.to_string(),
            uuid::Uuid::new_v4().to_string().into_bytes(),
        );
        let record = Record {
            key: None,
            value: Some(event.to_vec()),
            headers,
            timestamp: DateTime::from_timestamp_millis(now_ms()).unwrap_or_default(),
        };
        let produced = partition
            .produce(vec![record], Compression::NoCompression)
            .await;
        match produced {
            Ok(offsets) => Ok(offsets.first().copied().unwrap_or(-1)),
            Err(e) => {
                // The partition may have moved: look it up afresh next time.
                self.producers.lock().await.remove(&binding.kafka);
                Err(e.into())
            }
        }
    }

    /// The client of the partition this member publishes `binding`'s events to
    /// (looked up once, then kept).
    async fn producer(
        &self,
        binding: &TopicBinding,
        node: &str,
    ) -> Result<Arc<PartitionClient>, KafkaError> {
        let mut producers = self.producers.lock().await;
        if let Some(partition) = producers.get(&binding.kafka) {
            return Ok(partition.clone());
        }
        let mut partitions = self.partitions(&binding.kafka).await?;
        partitions.sort_unstable();
        if partitions.is_empty() {
            return Err(KafkaError::NoTopic(binding.kafka.clone()));
        }
        let mut hasher = DefaultHasher::new();
        node.hash(&mut hasher);
        let index = usize::try_from(hasher.finish() % partitions.len() as u64).unwrap_or(0);
        let client = self.client().await?;
        let partition = client
            .partition_client(
                binding.kafka.clone(),
                partitions[index],
                UnknownTopicHandling::Error,
            )
            .await?;
        let partition = Arc::new(partition);
        producers.insert(binding.kafka.clone(), partition.clone());
        Ok(partition)
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
