//! A broker per test and a per-test subscriber.

use std::time::Duration;

use rdkafka::ClientConfig;
use tracewire::TracewireLayer;
use tracewire::testing::InMemoryExporter;
use tracewire_test_support::KafkaPeer;
use tracing_subscriber::prelude::*;

/// The test's Kafka protocol peer (`KAFKA_BROKERS` when set, else a mock
/// cluster), with the client settings these tests use.
pub(crate) struct Broker(KafkaPeer);

impl std::ops::Deref for Broker {
    type Target = KafkaPeer;

    fn deref(&self) -> &KafkaPeer {
        &self.0
    }
}

impl Broker {
    pub(crate) fn start() -> Self {
        Broker(KafkaPeer::start())
    }

    pub(crate) fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.servers())
            .set("client.id", "orders-producer")
            .set("message.timeout.ms", "10000");
        config
    }

    pub(crate) fn consumer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.servers())
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
