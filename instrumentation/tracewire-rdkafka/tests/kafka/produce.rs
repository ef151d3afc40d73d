//! Send spans.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::message::{Headers as _, Message as _};
use rdkafka::producer::FutureRecord;
use tracewire::testing::InMemoryExporter;
use tracewire::{SpanExt as _, SpanKind, Status, TracewireLayer, Value};
use tracewire_rdkafka::TracedFutureProducer;
use tracing::Instrument as _;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

use crate::support::{Broker, traced, within};

#[tokio::test]
async fn send_span_records_messaging_attributes_and_delivery() {
    let broker = Broker::start();
    let topic = broker.topic("orders", 3).await;
    let (exporter, _guard) = traced();
    let producer: TracedFutureProducer =
        TracedFutureProducer::from_config(&broker.producer_config()).unwrap();
    let request = tracing::info_span!("POST /orders", otel.kind = "server");
    let delivery = {
        let _entered = request.enter();
        producer
            .send(
                FutureRecord::to(&topic)
                    .key("order-7")
                    .payload("{}")
                    .partition(2),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered")
    };
    drop(request);
    let send = exporter.span(&format!("send {topic}"));
    assert_eq!(send.kind, SpanKind::Producer);
    assert_eq!(exporter.parent_of(&send).unwrap().name, "POST /orders");
    let attr = |k: &str| send.attribute(k).cloned();
    assert_eq!(attr("messaging.system"), Some(Value::from("kafka")));
    assert_eq!(attr("messaging.operation.name"), Some(Value::from("send")));
    assert_eq!(attr("messaging.operation.type"), Some(Value::from("send")));
    assert_eq!(
        attr("messaging.destination.name"),
        Some(Value::from(topic.clone()))
    );
    assert_eq!(
        attr("messaging.destination.partition.id"),
        Some(Value::from("2"))
    );
    assert_eq!(
        attr("messaging.kafka.offset"),
        Some(Value::I64(delivery.offset))
    );
    assert_eq!(
        attr("messaging.kafka.message.key"),
        Some(Value::from("order-7"))
    );
    assert_eq!(attr("messaging.kafka.message.tombstone"), None);
    assert_eq!(
        attr("messaging.client.id"),
        Some(Value::from("orders-producer"))
    );
    assert!(attr("server.address").is_some());
    assert_eq!(send.status, Status::Unset);
}

#[tokio::test]
async fn failed_delivery_sets_error_status() {
    let (exporter, _guard) = traced();
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", "127.0.0.1:1")
        .set("message.timeout.ms", "300");
    let producer: TracedFutureProducer = TracedFutureProducer::from_config(&config).unwrap();
    let result = producer
        .send(
            FutureRecord::<str, str>::to("nowhere").payload("x"),
            Duration::from_secs(1),
        )
        .await;
    assert!(result.is_err());
    let send = exporter.span("send nowhere");
    assert!(send.status.is_error(), "{:?}", send.status);
    assert_eq!(
        send.attribute("error.type"),
        Some(&Value::from("MessageTimedOut"))
    );
    assert_eq!(
        send.attribute("server.address"),
        Some(&Value::from("127.0.0.1"))
    );
    assert_eq!(send.attribute("server.port"), Some(&Value::I64(1)));
}

/// A filter that leaves out every span of this crate, and keeps the
/// application's.
fn without_kafka_spans() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("tracewire_rdkafka", LevelFilter::OFF)
}

/// Sends one message inside an application span, under the subscriber
/// already installed, and returns the application span's `traceparent` and
/// the `traceparent` headers the message arrived with.
async fn send_in_request(broker: &Broker, topic: &str) -> (String, Vec<Vec<u8>>) {
    let producer: TracedFutureProducer =
        TracedFutureProducer::from_config(&broker.producer_config()).unwrap();
    let request = tracing::info_span!("POST /orders", otel.kind = "server");
    let cx = request
        .span_context()
        .expect("the application span is traced");
    let expected = format!(
        "00-{}-{}-{}",
        cx.trace_id(),
        cx.span_id(),
        cx.flags().to_hex()
    );
    producer
        .send(
            FutureRecord::to(topic).key("k").payload("x"),
            Duration::from_secs(10),
        )
        .instrument(request)
        .await
        .expect("delivered");
    let consumer: StreamConsumer = broker.consumer_config().create().unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let message = within("recv", consumer.recv()).await.unwrap();
    let traceparents = message
        .headers()
        .map(|headers| {
            headers
                .iter()
                .filter(|h| h.key.eq_ignore_ascii_case("traceparent"))
                .map(|h| h.value.unwrap_or_default().to_vec())
                .collect()
        })
        .unwrap_or_default();
    (expected, traceparents)
}

#[tokio::test]
async fn a_send_span_filtered_out_sends_the_current_context() {
    let broker = Broker::start();
    let topic = broker.topic("filtered", 1).await;
    let exporter = InMemoryExporter::new();
    let subscriber = tracing_subscriber::registry()
        .with(without_kafka_spans())
        .with(TracewireLayer::new(exporter.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    let (expected, traceparents) = send_in_request(&broker, &topic).await;
    assert_eq!(traceparents, [expected.into_bytes()]);
    assert!(exporter.find(&format!("send {topic}")).is_none());
    assert_eq!(exporter.spans_named("POST /orders").len(), 1);
}

#[tokio::test]
async fn a_send_span_filtered_out_of_the_tracewire_layer_sends_the_current_context() {
    let broker = Broker::start();
    let topic = broker.topic("layer-filtered", 1).await;
    let exporter = InMemoryExporter::new();
    // A per-layer filter: the send span exists, but tracewire never sees it.
    let subscriber = tracing_subscriber::registry()
        .with(TracewireLayer::new(exporter.clone()).with_filter(without_kafka_spans()));
    let _guard = tracing::subscriber::set_default(subscriber);
    let (expected, traceparents) = send_in_request(&broker, &topic).await;
    assert_eq!(traceparents, [expected.into_bytes()]);
    assert!(exporter.find(&format!("send {topic}")).is_none());
}
