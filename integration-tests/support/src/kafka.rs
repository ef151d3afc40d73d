//! A Kafka protocol peer for tests.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::unique;

/// A Kafka protocol peer: the broker named by `KAFKA_BROKERS` when set,
/// else an in-process librdkafka mock cluster that lives as long as this
/// value.
pub struct KafkaPeer {
    mock: Option<MockCluster<'static, DefaultProducerContext>>,
    servers: String,
}

impl std::fmt::Debug for KafkaPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaPeer")
            .field("mock", &self.mock.is_some())
            .field("servers", &self.servers)
            .finish()
    }
}

impl KafkaPeer {
    /// `KAFKA_BROKERS` (when set and not blank), else a new mock cluster.
    pub fn start() -> Self {
        match std::env::var("KAFKA_BROKERS")
            .ok()
            .filter(|s| !s.trim().is_empty())
        {
            Some(servers) => KafkaPeer {
                mock: None,
                servers,
            },
            None => {
                let mock = MockCluster::new(1).expect("mock cluster");
                let servers = mock.bootstrap_servers();
                KafkaPeer {
                    mock: Some(mock),
                    servers,
                }
            }
        }
    }

    /// The bootstrap servers (`host:port,…`).
    pub fn servers(&self) -> &str {
        &self.servers
    }

    /// Creates a topic with a unique name (see [`unique`]) and returns it.
    pub async fn topic(&self, prefix: &str, partitions: i32) -> String {
        let name = unique(prefix);
        match &self.mock {
            Some(mock) => mock
                .create_topic(&name, partitions, 1)
                .expect("create topic"),
            None => {
                let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                    .set("bootstrap.servers", &self.servers)
                    .create()
                    .expect("admin client");
                let topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(1));
                let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
                for result in admin
                    .create_topics([&topic], &options)
                    .await
                    .expect("create topics")
                {
                    result.expect("topic created");
                }
            }
        }
        name
    }
}
