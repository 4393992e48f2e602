//! Creating a bound topic creates its Kafka topic (`PUT /kar/v1/event/T`, spec §2.7).

use super::{Kafka, KafkaError, TopicBinding};
use rskafka::client::error::{Error as ClientError, ProtocolError};

/// How long the broker may take to create a topic.
const CREATE_TIMEOUT_MS: i32 = 5_000;

/// The topic options of `PUT /kar/v1/event/T` that Kafka uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TopicOptions {
    pub partitions: Option<i32>,
    pub replication: Option<i16>,
}

impl Kafka {
    /// Creates `binding`'s Kafka topic; `false` if it existed. Without a replication
    /// factor, 3 is tried first, then 1, as upstream does.
    pub(crate) async fn create_topic(
        &self,
        binding: &TopicBinding,
        options: TopicOptions,
    ) -> Result<bool, KafkaError> {
        let client = self.client().await?;
        let controller = client.controller_client()?;
        let partitions = options.partitions.unwrap_or(1);
        let factors: &[i16] = match &options.replication {
            Some(factor) => std::slice::from_ref(factor),
            None => &[3, 1],
        };
        let mut last = None;
        for &factor in factors {
            match controller
                .create_topic(binding.kafka.clone(), partitions, factor, CREATE_TIMEOUT_MS)
                .await
            {
                Ok(()) => return Ok(true),
                Err(ClientError::ServerError {
                    protocol_error: ProtocolError::TopicAlreadyExists,
                    ..
                }) => return Ok(false),
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(
            || KafkaError::NoTopic(binding.kafka.clone()),
            KafkaError::Client,
        ))
    }
}
