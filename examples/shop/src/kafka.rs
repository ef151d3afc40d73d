//! The Kafka side: the `order.created` topic, a broker for the run (a real
//! cluster from `KAFKA_BROKERS`, or librdkafka's mock cluster hosted by the
//! launcher and reached by the services over its sockets), and the client
//! settings of the order and notification services.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

use crate::BoxError;

/// The topic orders publish to and notifications consume.
pub(crate) const TOPIC: &str = "order.created";

/// The broker of a run; a mock cluster lives as long as this value.
pub(crate) struct Broker {
    mock: Option<MockCluster<'static, DefaultProducerContext>>,
    servers: String,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("mock", &self.mock.is_some())
            .field("servers", &self.servers)
            .finish()
    }
}

impl Broker {
    /// Uses `brokers` (creating the topic if needed), or starts a mock
    /// cluster with the topic.
    pub(crate) async fn start(brokers: Option<String>) -> Result<Broker, BoxError> {
        match brokers {
            Some(servers) => {
                create_topic(&servers).await?;
                Ok(Broker {
                    mock: None,
                    servers,
                })
            }
            None => {
                let mock = MockCluster::new(1)
                    .map_err(|e| format!("cannot start the mock Kafka cluster: {e}"))?;
                mock.create_topic(TOPIC, 1, 1)
                    .map_err(|e| format!("cannot create {TOPIC}: {e}"))?;
                let servers = mock.bootstrap_servers();
                Ok(Broker {
                    mock: Some(mock),
                    servers,
                })
            }
        }
    }

    /// The bootstrap servers, for the services.
    pub(crate) fn servers(&self) -> &str {
        &self.servers
    }

    /// A sentence saying which broker this is.
    pub(crate) fn describe(&self) -> String {
        if self.mock.is_some() {
            format!("librdkafka mock cluster at {}", self.servers)
        } else {
            format!("Kafka at {}", self.servers)
        }
    }
}

async fn create_topic(servers: &str) -> Result<(), BoxError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .map_err(|e| format!("cannot reach Kafka at {servers}: {e}"))?;
    let topic = NewTopic::new(TOPIC, 1, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&topic], &options)
        .await
        .map_err(|e| format!("cannot create {TOPIC} at {servers}: {e}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(format!("cannot create {name}: {code}").into()),
        }
    }
    Ok(())
}

/// The order service's producer settings.
pub(crate) fn producer_config(servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", servers)
        .set("client.id", "orders")
        .set("linger.ms", "1")
        .set("message.timeout.ms", "10000");
    config
}

/// The notification service's consumer settings: a group per run, reading
/// the topic from the start, so that no event of this run is missed
/// whenever the group forms. On a real broker that also reads the events of
/// earlier runs: they are skipped, each in a short `process` trace of its
/// own.
pub(crate) fn consumer_config(servers: &str, run_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", servers)
        .set("group.id", format!("notifications-{run_id}"))
        .set("client.id", "notifications")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "6000")
        // An event is handled within tens of milliseconds of its order, not
        // up to half a second later (librdkafka's default fetch wait).
        .set("fetch.wait.max.ms", "50");
    config
}

/// The event published when an order is paid.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct OrderCreated {
    pub(crate) order_id: i64,
    pub(crate) user_id: i64,
    pub(crate) amount_cents: i64,
    /// The launcher run that placed the order.
    pub(crate) run_id: String,
}
