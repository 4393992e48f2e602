//! Kafka at the edge of kar's events (`-kafka_brokers`, `-kafka_topics`).
//!
//! A kar topic named in `-kafka_topics` is *bound* to a Kafka topic (of the same name,
//! or `kar=kafka`). Subscriptions are unchanged: they read the kar topic's log in the
//! store. What differs is how events reach that log and where publishing goes:
//!
//! * **Bridge in** (`bridge.rs`): each partition of the Kafka topic is copied into the
//!   kar topic by one live member at a time. The member that owns a partition is
//!   recorded in the store (`EventStore::bridge_claim`: membership on the embedded
//!   store, a lease on Redis); another member takes a dead owner's partitions over.
//!   Records are appended with the partition's next offset in one store transition
//!   (`EventStore::bridge_append`, a compare-and-set on that offset), so after any
//!   crash each record is in the kar topic once, in partition order, and each
//!   subscription gets it once through the usual delivery.
//! * **Topics** (`topics.rs`): creating a bound topic creates its Kafka topic too.
//! * **Publish out** (`publish.rs`): publishing to a bound topic produces a Kafka
//!   record (acknowledged by every in-sync replica before `200 OK`); the event reaches
//!   kar subscribers through the bridge, like any other record of the topic.
//!
//! The brokers are reached lazily: an unreachable broker makes publishes fail with a
//! reason and the bridge retry with a logged back-off; nothing else stops.

mod bridge;
mod publish;
mod topics;

pub use topics::TopicOptions;

use rskafka::client::partition::PartitionClient;
use rskafka::client::{Client, ClientBuilder};
use rskafka::BackoffConfig;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

/// The Kafka settings of a runtime.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `host:port` of each bootstrap broker.
    pub brokers: Vec<String>,
    /// The kar topics bound to Kafka topics.
    pub topics: Vec<TopicBinding>,
}

/// One kar topic bound to a Kafka topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicBinding {
    pub topic: String,
    pub kafka: String,
}

impl KafkaConfig {
    /// Parses `-kafka_topics`: comma-separated `topic` (same name in Kafka) or
    /// `topic=kafka_topic` entries.
    pub fn parse_topics(spec: &str) -> Result<Vec<TopicBinding>, String> {
        let mut topics: Vec<TopicBinding> = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (topic, kafka) = entry.split_once('=').unwrap_or((entry, entry));
            let (topic, kafka) = (topic.trim(), kafka.trim());
            if topic.is_empty() || kafka.is_empty() {
                return Err(format!(
                    "invalid Kafka topic binding {entry:?}: expected TOPIC or TOPIC=KAFKA_TOPIC"
                ));
            }
            if topics.iter().any(|b| b.topic == topic) {
                return Err(format!(
                    "the topic {topic:?} is bound twice in -kafka_topics"
                ));
            }
            topics.push(TopicBinding {
                topic: topic.to_string(),
                kafka: kafka.to_string(),
            });
        }
        Ok(topics)
    }

    /// Parses `-kafka_brokers`: comma-separated `host:port`.
    pub fn parse_brokers(spec: &str) -> Vec<String> {
        spec.split(',')
            .map(str::trim)
            .filter(|b| !b.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Why a Kafka operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("cannot reach the Kafka brokers {brokers}: {reason}")]
    Unreachable { brokers: String, reason: String },
    #[error("Kafka topic {0} does not exist")]
    NoTopic(String),
    #[error("Kafka: {0}")]
    Client(#[from] rskafka::client::error::Error),
}

/// How long one attempt to reach the brokers may take before it is reported.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The runtime's Kafka connection (made on first use) and its bindings.
pub(crate) struct Kafka {
    config: KafkaConfig,
    client: OnceCell<Arc<Client>>,
    /// The partition this member publishes to, per Kafka topic (`publish.rs`).
    producers: tokio::sync::Mutex<HashMap<String, Arc<PartitionClient>>>,
}

impl Kafka {
    pub(crate) fn new(config: KafkaConfig) -> Self {
        Kafka {
            config,
            client: OnceCell::new(),
            producers: Default::default(),
        }
    }

    /// The Kafka topic bound to kar topic `topic`, if any.
    pub(crate) fn binding(&self, topic: &str) -> Option<&TopicBinding> {
        self.config.topics.iter().find(|b| b.topic == topic)
    }

    pub(crate) fn bindings(&self) -> &[TopicBinding] {
        &self.config.topics
    }

    fn brokers(&self) -> String {
        self.config.brokers.join(",")
    }

    /// The client, connecting first if needed. A failed attempt is not cached: the
    /// next call tries again.
    pub(crate) async fn client(&self) -> Result<Arc<Client>, KafkaError> {
        let unreachable = |reason: String| KafkaError::Unreachable {
            brokers: self.brokers(),
            reason,
        };
        self.client
            .get_or_try_init(|| async {
                // Operations give up after a few seconds (rskafka retries forever by
                // default): the bridge retries with its own logged back-off.
                let backoff = BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_secs(1),
                    base: 2.,
                    deadline: Some(CONNECT_TIMEOUT),
                };
                let build = ClientBuilder::new(self.config.brokers.clone())
                    .client_id("kar")
                    .backoff_config(backoff)
                    .build();
                match tokio::time::timeout(CONNECT_TIMEOUT, build).await {
                    Ok(Ok(client)) => Ok(Arc::new(client)),
                    Ok(Err(e)) => Err(unreachable(e.to_string())),
                    Err(_) => Err(unreachable(format!("no answer within {CONNECT_TIMEOUT:?}"))),
                }
            })
            .await
            .cloned()
    }

    /// The partitions of Kafka topic `kafka`.
    pub(crate) async fn partitions(&self, kafka: &str) -> Result<Vec<i32>, KafkaError> {
        let client = self.client().await?;
        let topics = client.list_topics().await?;
        let topic = topics
            .into_iter()
            .find(|t| t.name == kafka)
            .ok_or_else(|| KafkaError::NoTopic(kafka.to_string()))?;
        Ok(topic.partitions.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(topic: &str, kafka: &str) -> TopicBinding {
        TopicBinding {
            topic: topic.into(),
            kafka: kafka.into(),
        }
    }

    #[test]
    fn topic_bindings_parse() {
        assert_eq!(KafkaConfig::parse_topics("").unwrap(), vec![]);
        assert_eq!(
            KafkaConfig::parse_topics("a, b=kb ,").unwrap(),
            vec![binding("a", "a"), binding("b", "kb")]
        );
        assert!(KafkaConfig::parse_topics("a=").is_err());
        assert!(KafkaConfig::parse_topics("=k").is_err());
        let twice = KafkaConfig::parse_topics("a,a=b").unwrap_err();
        assert!(twice.contains("bound twice"), "{twice}");
        assert_eq!(
            KafkaConfig::parse_brokers(" h1:9092,,h2:9093 "),
            vec!["h1:9092".to_string(), "h2:9093".to_string()]
        );
    }
}
