//! Send spans.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::producer::FutureRecord;
use tracewire::{SpanKind, Status, Value};
use tracewire_rdkafka::TracedFutureProducer;

use crate::support::{Broker, traced};

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
