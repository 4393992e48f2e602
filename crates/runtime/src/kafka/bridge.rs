//! Bridging a Kafka topic's partitions into its bound kar topic (see `mod.rs`).
//!
//! Every member runs one task per partition of each bound topic. A task claims its
//! partition in the store; the owner fetches records from the partition's next
//! offset (kept in the store, never in Kafka: no consumer group) and appends them
//! with the new next offset in one transition. A refused append means another member
//! took the partition over: the task goes back to claiming. Non-owners re-claim when
//! the membership changes (a dead owner's partitions are free at once on the
//! embedded store) and at least every second (on Redis the owner's bridge lease must
//! run out first).

use super::{Kafka, KafkaError, TopicBinding};
use crate::clock::SAFETY_RECHECK;
use crate::Runtime;
use bytes::Bytes;
use kar_store_api::{Bridge, Claim, StoreError};
use rskafka::client::error::{Error as ClientError, ProtocolError};
use rskafka::client::partition::{OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::record::RecordAndOffset;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The owner's lease on its partitions (Redis: how long after the owner's death
/// another member may take over); renewed every third of it.
const LEASE: Duration = Duration::from_secs(3);
/// How long a fetch waits for records at the end of the partition.
const FETCH_WAIT_MS: i32 = 100;
/// The most bytes one fetch brings (at least one record, whatever its size).
const FETCH_BYTES: i32 = 1 << 20;
/// Longest pause between attempts to reach a failing broker.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the partitions of a bound topic are listed again (new partitions).
const RELIST: Duration = Duration::from_secs(30);

/// Why a bridge task stopped owning its partition.
enum Stop {
    /// Another member owns it now.
    Lost,
    Kafka(KafkaError),
    Store(StoreError),
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Self {
        Stop::Store(e)
    }
}

impl From<ClientError> for Stop {
    fn from(e: ClientError) -> Self {
        Stop::Kafka(KafkaError::Client(e))
    }
}

impl Runtime {
    /// Bridges every bound topic until shutdown.
    pub(crate) async fn kafka_bridges(self: Arc<Self>, kafka: Arc<Kafka>) {
        for binding in kafka.bindings().to_vec() {
            tokio::spawn(self.clone().bridge_topic(kafka.clone(), binding));
        }
    }

    /// Starts a task per partition of `binding`'s Kafka topic, listing them again
    /// from time to time (partitions may be added).
    async fn bridge_topic(self: Arc<Self>, kafka: Arc<Kafka>, binding: TopicBinding) {
        let mut started: HashSet<i32> = HashSet::new();
        let mut backoff = Backoff::default();
        while !self.is_shutting_down() {
            let pause = match kafka.partitions(&binding.kafka).await {
                Ok(partitions) => {
                    backoff.reset();
                    for partition in partitions {
                        if started.insert(partition) {
                            tracing::info!(
                                "bridging Kafka topic {} partition {partition} into topic {}",
                                binding.kafka,
                                binding.topic
                            );
                            let task = self.clone().bridge_partition(
                                kafka.clone(),
                                binding.clone(),
                                partition,
                            );
                            tokio::spawn(task);
                        }
                    }
                    RELIST
                }
                Err(e) => {
                    let pause = backoff.next();
                    tracing::error!(
                        "cannot bridge topic {} from Kafka: {e}; retrying in {pause:?}",
                        binding.topic
                    );
                    pause
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.shutdown_started() => return,
            }
        }
    }

    async fn bridge_partition(
        self: Arc<Self>,
        kafka: Arc<Kafka>,
        binding: TopicBinding,
        partition: i32,
    ) {
        let bridge = Bridge {
            topic: binding.topic.clone(),
            source: format!("kafka:{}", binding.kafka),
            partition,
        };
        let node = self.node.as_str().to_string();
        let mut backoff = Backoff::default();
        while !self.is_shutting_down() {
            let pause = match self.store.bridge_claim(&bridge, &node, LEASE).await {
                Ok(Claim::Mine(next)) => {
                    tracing::info!(
                        "bridge of {}/{partition} owned here, from offset {next:?}",
                        bridge.source
                    );
                    match self.own_partition(&kafka, &binding, &bridge, next).await {
                        Stop::Lost => {
                            tracing::info!(
                                "bridge of {}/{partition} taken over by another member",
                                bridge.source
                            );
                            backoff.reset();
                            SAFETY_RECHECK
                        }
                        Stop::Kafka(e) => {
                            let pause = backoff.next();
                            tracing::error!("bridge of {}/{partition} into topic {}: {e}; retrying in {pause:?}", bridge.source, bridge.topic);
                            pause
                        }
                        Stop::Store(e) => {
                            let pause = backoff.next();
                            tracing::error!("bridge of {}/{partition} into topic {}: store: {e}; retrying in {pause:?}", bridge.source, bridge.topic);
                            pause
                        }
                    }
                }
                Ok(Claim::Owned(owner)) => {
                    tracing::debug!("bridge of {}/{partition} owned by {owner}", bridge.source);
                    backoff.reset();
                    SAFETY_RECHECK
                }
                Err(e) => {
                    let pause = backoff.next();
                    tracing::error!(
                        "cannot claim the bridge of {}/{partition}: {e}; retrying in {pause:?}",
                        bridge.source
                    );
                    pause
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.wakes.bridges.notified() => {}
                _ = self.shutdown_started() => return,
            }
        }
    }

    /// Copies the partition into the topic while this member owns it.
    async fn own_partition(
        self: &Arc<Self>,
        kafka: &Kafka,
        binding: &TopicBinding,
        bridge: &Bridge,
        mut next: Option<i64>,
    ) -> Stop {
        let client = match kafka.client().await {
            Ok(client) => client,
            Err(e) => return Stop::Kafka(e),
        };
        let partition = match client
            .partition_client(
                binding.kafka.clone(),
                bridge.partition,
                UnknownTopicHandling::Error,
            )
            .await
        {
            Ok(partition) => partition,
            Err(e) => return Stop::Kafka(e.into()),
        };
        let node = self.node.as_str();
        let mut renewed = Instant::now();
        loop {
            if self.is_shutting_down() {
                return Stop::Lost;
            }
            let step = self.bridge_step(&partition, bridge, node, next).await;
            match step {
                Ok(Some(moved)) => {
                    next = Some(moved);
                    renewed = Instant::now();
                }
                Ok(None) if renewed.elapsed() >= LEASE / 3 => {
                    // Nothing new: renew the claim (the lease, on Redis).
                    match self.store.bridge_claim(bridge, node, LEASE).await {
                        Ok(Claim::Mine(_)) => renewed = Instant::now(),
                        Ok(Claim::Owned(_)) => return Stop::Lost,
                        Err(e) => return Stop::Store(e),
                    }
                }
                Ok(None) => {}
                Err(stop) => return stop,
            }
        }
    }

    /// One fetch and its append: the new next offset if records were appended.
    async fn bridge_step(
        self: &Arc<Self>,
        partition: &PartitionClient,
        bridge: &Bridge,
        node: &str,
        next: Option<i64>,
    ) -> Result<Option<i64>, Stop> {
        let offset = match next {
            Some(offset) => offset,
            // The first owner ever starts from the oldest record Kafka keeps.
            None => partition.get_offset(OffsetAt::Earliest).await?,
        };
        let records = match partition
            .fetch_records(offset, 1..FETCH_BYTES, FETCH_WAIT_MS)
            .await
        {
            Ok((records, _high_watermark)) => records,
            Err(ClientError::ServerError {
                protocol_error: ProtocolError::OffsetOutOfRange,
                ..
            }) => {
                // Kafka's retention removed records nobody bridged yet: skip to the
                // oldest one left (saying so), rather than stall the partition.
                let earliest = partition.get_offset(OffsetAt::Earliest).await?;
                if earliest <= offset {
                    return Ok(None);
                }
                tracing::error!(
                    "Kafka dropped records {offset}..{earliest} of {}/{} before they were bridged",
                    bridge.source,
                    bridge.partition
                );
                let appended = self
                    .store
                    .bridge_append(bridge, node, LEASE, next, earliest, Vec::new())
                    .await?;
                return if appended {
                    Ok(Some(earliest))
                } else {
                    Err(Stop::Lost)
                };
            }
            Err(e) => return Err(e.into()),
        };
        // A compressed batch may start before the offset asked for.
        let records: Vec<RecordAndOffset> =
            records.into_iter().filter(|r| r.offset >= offset).collect();
        let Some(last) = records.last().map(|r| r.offset) else {
            return Ok(None);
        };
        let events = records.iter().map(|r| event_of(bridge, r)).collect();
        let appended = self
            .store
            .bridge_append(bridge, node, LEASE, next, last + 1, events)
            .await?;
        if !appended {
            return Err(Stop::Lost);
        }
        self.wakes.events.notify_one();
        tokio::spawn(self.clone().wake_other_members());
        Ok(Some(last + 1))
    }
}

/// The kar event of a Kafka record: its value, unchanged, as upstream KAR delivered
/// it (spec §4.6: no CloudEvents processing; a binary-mode CloudEvent's attributes
/// travel in headers and are not delivered, a structured-mode one is the value).
fn event_of(bridge: &Bridge, record: &RecordAndOffset) -> Bytes {
    let Some(value) = &record.record.value else {
        tracing::warn!(
            "record {} of {}/{} has no value: delivered as an empty event",
            record.offset,
            bridge.source,
            bridge.partition
        );
        return Bytes::new();
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(value).is_err() {
        tracing::warn!("record {} of {}/{} is not JSON: delivered as is (JSON subscriptions receive it unchanged, as upstream)", record.offset, bridge.source, bridge.partition);
    }
    Bytes::copy_from_slice(value)
}

/// Exponential back-off between failed attempts, logged by the caller.
#[derive(Default)]
struct Backoff(u32);

impl Backoff {
    fn next(&mut self) -> Duration {
        let pause = Duration::from_millis(100u64 << self.0.min(10)).min(MAX_BACKOFF);
        self.0 += 1;
        pause
    }

    fn reset(&mut self) {
        self.0 = 0;
    }
}
