//! A broker per test and a per-test subscriber.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use tracewire::TracewireLayer;
use tracewire::testing::InMemoryExporter;
use tracing_subscriber::prelude::*;

/// A Kafka protocol peer: `KAFKA_BROKERS` when set, else an in-process mock
/// cluster that lives as long as this value.
pub(crate) struct Broker {
    _mock: Option<MockCluster<'static, DefaultProducerContext>>,
    pub(crate) servers: String,
}

impl Broker {
    pub(crate) fn start() -> Self {
        match std::env::var("KAFKA_BROKERS")
            .ok()
            .filter(|s| !s.trim().is_empty())
        {
            Some(servers) => Broker {
                _mock: None,
                servers,
            },
            None => {
                let mock = MockCluster::new(1).expect("mock cluster");
                let servers = mock.bootstrap_servers();
                Broker {
                    _mock: Some(mock),
                    servers,
                }
            }
        }
    }

    /// Creates a topic with a unique name.
    pub(crate) async fn topic(&self, prefix: &str, partitions: i32) -> String {
        let name = format!("{prefix}-{:016x}", fastrand::u64(..));
        match &self._mock {
            Some(mock) => mock
                .create_topic(&name, partitions, 1)
                .expect("create topic"),
            None => {
                let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                    .set("bootstrap.servers", &self.servers)
                    .create()
                    .expect("admin client");
                let topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(1));
                let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
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

    pub(crate) fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.servers)
            .set("client.id", "orders-producer")
            .set("message.timeout.ms", "10000");
        config
    }

    pub(crate) fn consumer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.servers)
            .set(
                "group.id",
                format!("notifications-{:08x}", fastrand::u32(..)),
            )
            .set("client.id", "notifications-consumer")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000");
        config
    }
}

/// Installs a tracewire subscriber for the current thread; spans go to
/// the returned exporter.
pub(crate) fn traced() -> (InMemoryExporter, tracing::subscriber::DefaultGuard) {
    let exporter = InMemoryExporter::new();
    let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone()));
    (exporter, tracing::subscriber::set_default(subscriber))
}

/// Fails the test instead of hanging when the broker stays silent.
pub(crate) async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}
