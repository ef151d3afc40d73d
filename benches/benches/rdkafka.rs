//! rdkafka: produce + consume throughput on librdkafka's in-process mock
//! cluster, with and without `tracewire-rdkafka`'s wrappers.
//!
//! One round sends [`MESSAGES`] keyed messages (all in flight at once, each
//! awaited until delivered) and then receives them, on its own topic and
//! consumer group per variant: `FutureProducer` + `StreamConsumer`, or
//! `TracedFutureProducer` + `TracedStreamConsumer` (a `send` span per
//! message with the trace context written into its headers, a `process`
//! span per received message continuing it). They run under
//! `TracewireLayer` with a no-op processor, always sampled (the bar) and
//! never sampled (ids and headers only), with the same client settings;
//! the variants take turns, round by round
//! ([`tracewire_benches::alternate`]).
//!
//! Settings that differ from librdkafka's defaults, for both variants:
//! `fetch.wait.max.ms=10` (the default 500 ms would make a round mostly
//! waiting) and `auto.offset.reset=earliest`.
//!
//! With `KAFKA_BROKERS` set (e.g. a local `tansu` broker, as CI starts),
//! the same rounds run against that broker instead, on topics and groups
//! made for this run: there the network and the broker's work take most of
//! a message's time, which is what a deployment sees.

use std::time::Duration;

use futures_util::future::join_all;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tracewire::TracewireLayer;
use tracewire::processor::NoopProcessor;
use tracewire::sampling::{AlwaysOff, AlwaysOn};
use tracewire_benches::alternate::{self, Settings, Variant};
use tracewire_benches::report::{self, Bar};
use tracewire_rdkafka::{TracedFutureProducer, TracedStreamConsumer};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// Messages per round (sent, then received).
const MESSAGES: u64 = 10_000;
const PAYLOAD: &str = r#"{"order_id":7,"customer":"c-42","total":"100.50","items":3}"#;
const TIMEOUT: Duration = Duration::from_secs(10);

fn producer_config(servers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", servers)
        .set("client.id", "orders-producer")
        .set("message.timeout.ms", "10000");
    config
}

fn consumer_config(servers: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", servers)
        .set("group.id", group)
        .set("client.id", "notifications-consumer")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "10")
        .set("session.timeout.ms", "6000");
    config
}

/// Creates `topic` (one partition) on the broker at `servers`.
async fn create_topic(servers: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", servers)
        .create()
        .expect("an admin client");
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await
        .expect("the topic request");
    for result in results {
        result.expect("the topic");
    }
}

fn keys() -> Vec<String> {
    (0..MESSAGES).map(|i| format!("order-{i}")).collect()
}

async fn plain_round(
    producer: &FutureProducer,
    consumer: &StreamConsumer,
    topic: &str,
    keys: &[String],
) {
    let sends = keys.iter().map(|key| {
        producer.send(
            FutureRecord::to(topic).key(key.as_str()).payload(PAYLOAD),
            TIMEOUT,
        )
    });
    for delivered in join_all(sends).await {
        delivered.expect("delivered");
    }
    for _ in 0..MESSAGES {
        let message = consumer.recv().await.expect("a message");
        assert_eq!(message.topic(), topic);
    }
}

async fn traced_round(
    producer: &TracedFutureProducer,
    consumer: &TracedStreamConsumer,
    topic: &str,
    keys: &[String],
) {
    let sends = keys.iter().map(|key| {
        producer.send(
            FutureRecord::to(topic).key(key.as_str()).payload(PAYLOAD),
            TIMEOUT,
        )
    });
    for delivered in join_all(sends).await {
        delivered.expect("delivered");
    }
    for _ in 0..MESSAGES {
        let message = consumer.recv().await.expect("a message");
        assert_eq!(message.message().topic(), topic);
        assert!(message.message().headers().is_some(), "no trace headers");
    }
}

fn main() {
    let settings = Settings::from_args();
    if !settings.wants("rdkafka/") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // StreamConsumer spawns its wake-up task when created.
    let _entered = runtime.enter();
    // The mock cluster, unless KAFKA_BROKERS names a broker; topics and
    // groups of their own for this run.
    let broker = std::env::var("KAFKA_BROKERS")
        .ok()
        .filter(|b| !b.is_empty());
    let cluster = match broker {
        Some(_) => None,
        None => Some(MockCluster::new(1).expect("the mock cluster")),
    };
    let servers = match (&broker, &cluster) {
        (Some(broker), _) => broker.clone(),
        (None, Some(cluster)) => cluster.bootstrap_servers(),
        (None, None) => unreachable!("a cluster is made when no broker is named"),
    };
    let run = std::process::id();
    let (plain_topic, traced_topic) = (format!("bench-plain-{run}"), format!("bench-traced-{run}"));
    for topic in [&plain_topic, &traced_topic] {
        match &cluster {
            Some(cluster) => cluster.create_topic(topic, 1, 1).expect("the topic"),
            None => runtime.block_on(create_topic(&servers, topic)),
        }
    }
    let place = match broker {
        Some(_) => "the broker at KAFKA_BROKERS",
        None => "the mock cluster",
    };
    let sampled = Dispatch::new(
        tracing_subscriber::registry().with(
            TracewireLayer::builder()
                .sampler(AlwaysOn)
                .processor(NoopProcessor)
                .build(),
        ),
    );
    let unsampled = Dispatch::new(
        tracing_subscriber::registry().with(
            TracewireLayer::builder()
                .sampler(AlwaysOff)
                .processor(NoopProcessor)
                .build(),
        ),
    );

    let plain_producer: FutureProducer = producer_config(&servers).create().expect("a producer");
    let plain_consumer: StreamConsumer = consumer_config(&servers, &format!("plain-{run}"))
        .create()
        .expect("a consumer");
    plain_consumer
        .subscribe(&[plain_topic.as_str()])
        .expect("subscribed");

    let config = producer_config(&servers);
    let traced_producer = TracedFutureProducer::from_config(&config).expect("a producer");
    let config = consumer_config(&servers, &format!("traced-{run}"));
    let traced_consumer: TracedStreamConsumer =
        TracedStreamConsumer::from_config(&config).expect("a consumer");
    traced_consumer
        .subscribe(&[traced_topic.as_str()])
        .expect("subscribed");

    let keys = keys();
    let round = |traced: bool, dispatch: &Dispatch| {
        tracing::dispatcher::with_default(dispatch, || {
            runtime.block_on(async {
                if traced {
                    traced_round(&traced_producer, &traced_consumer, &traced_topic, &keys).await;
                } else {
                    plain_round(&plain_producer, &plain_consumer, &plain_topic, &keys).await;
                }
            });
        });
    };
    let mut variants = [
        Variant::new("traced_sampled", || round(true, &sampled)),
        Variant::new("plain", || round(false, &sampled)),
        Variant::new("traced_unsampled", || round(true, &unsampled)),
    ];
    alternate::run(&settings, "rdkafka", MESSAGES, &mut variants);
    let mut rows = alternate::throughput_row(
        &format!("produce + consume on {place}: traced wrappers (sampled) / plain rdkafka"),
        &variants[0],
        &variants[1],
        Bar::ThroughputAtLeast(0.70),
    );
    rows.push_str(&alternate::throughput_row(
        &format!("produce + consume on {place}: traced wrappers (unsampled) / plain rdkafka"),
        &variants[2],
        &variants[1],
        Bar::Info,
    ));
    drop(variants);
    report::print_rows("rdkafka (issue 6)", &rows);
}
