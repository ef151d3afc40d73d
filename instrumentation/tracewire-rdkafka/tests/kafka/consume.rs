//! Process, poll and commit spans, and the trace across the broker.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::message::Message as _;
use rdkafka::producer::FutureRecord;
use rdkafka::producer::Producer as _;
use tracewire::testing::InMemoryExporter;
use tracewire::{SpanExt as _, SpanKind, TracewireLayer, Value};
use tracewire_rdkafka::{
    ProcessParent, TracedBaseConsumer, TracedFutureProducer, TracedStreamConsumer,
};
use tracing::Instrument as _;

use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;

use crate::support::{Broker, traced, within};

#[tokio::test]
async fn produce_then_consume_is_one_trace() {
    let broker = Broker::start();
    let topic = broker.topic("order.created", 1).await;
    let (exporter, _guard) = traced();
    let producer: TracedFutureProducer =
        TracedFutureProducer::from_config(&broker.producer_config()).unwrap();
    async {
        producer
            .send(
                FutureRecord::to(&topic)
                    .key("order-7")
                    .payload("{\"id\":7}"),
                Duration::from_secs(10),
            )
            .await
            .expect("delivered");
    }
    .instrument(tracing::info_span!("POST /orders", otel.kind = "server"))
    .await;

    let config = broker.consumer_config();
    let consumer: TracedStreamConsumer = TracedStreamConsumer::from_config(&config).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let message = within("recv", consumer.recv()).await.expect("message");
    async { tracing::info_span!("send e-mail").in_scope(|| tracing::info!("sent")) }
        .instrument(message.span().clone())
        .await;
    consumer
        .commit_message(&message, CommitMode::Sync)
        .expect("commit");
    drop(message);

    let request = exporter.span("POST /orders");
    let send = exporter.span(&format!("send {topic}"));
    let process = exporter.span(&format!("process {topic}"));
    let email = exporter.span("send e-mail");
    let trace = request.span_context.trace_id();
    for span in [&send, &process, &email] {
        assert_eq!(
            span.span_context.trace_id(),
            trace,
            "{} in another trace",
            span.name
        );
    }
    assert_eq!(send.parent_span_id, request.span_context.span_id());
    assert_eq!(process.parent_span_id, send.span_context.span_id());
    assert!(
        process.parent_is_remote,
        "the producer's context came over the broker"
    );
    assert_eq!(email.parent_span_id, process.span_context.span_id());
    assert_eq!(process.kind, SpanKind::Consumer);
    assert!(process.end_time <= email.end_time.max(process.end_time));
    let attr = |k: &str| process.attribute(k).cloned();
    assert_eq!(
        attr("messaging.operation.type"),
        Some(Value::from("process"))
    );
    assert_eq!(
        attr("messaging.destination.name"),
        Some(Value::from(topic.clone()))
    );
    assert_eq!(
        attr("messaging.destination.partition.id"),
        Some(Value::from("0"))
    );
    assert_eq!(attr("messaging.kafka.offset"), Some(Value::I64(0)));
    assert_eq!(
        attr("messaging.kafka.message.key"),
        Some(Value::from("order-7"))
    );
    assert_eq!(
        attr("messaging.consumer.group.name"),
        Some(Value::from(config.get("group.id").unwrap().to_owned()))
    );
    assert_eq!(
        attr("messaging.client.id"),
        Some(Value::from("notifications-consumer"))
    );
    let commit = exporter.span(&format!("commit {topic}"));
    assert_eq!(commit.kind, SpanKind::Client);
    assert_eq!(
        commit.attribute("messaging.operation.type"),
        Some(&Value::from("settle"))
    );
}

#[tokio::test]
async fn the_process_span_ends_when_processing_ends() {
    let broker = Broker::start();
    let topic = broker.topic("timing", 1).await;
    let (exporter, _guard) = traced();
    let producer: TracedFutureProducer =
        TracedFutureProducer::from_config(&broker.producer_config()).unwrap();
    producer
        .send(
            FutureRecord::to(&topic).key("a").payload("1"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let consumer: TracedStreamConsumer =
        TracedStreamConsumer::from_config(&broker.consumer_config()).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let message = within("recv", consumer.recv()).await.unwrap();
    tokio::task::yield_now().await;
    // Work done after receiving, outside the span, still falls within it.
    let work = tracing::info_span!(parent: None, "work");
    drop(work);
    assert!(
        exporter.find(&format!("process {topic}")).is_none(),
        "ended before processing finished"
    );
    drop(message);
    let process = exporter.span(&format!("process {topic}"));
    let work = exporter.span("work");
    assert!(process.start_time <= work.start_time && work.end_time <= process.end_time);
}

#[tokio::test]
async fn tombstones_are_marked() {
    let broker = Broker::start();
    let topic = broker.topic("compacted", 1).await;
    let (exporter, _guard) = traced();
    let producer: TracedFutureProducer =
        TracedFutureProducer::from_config(&broker.producer_config()).unwrap();
    producer
        .send(
            FutureRecord::<str, [u8]>::to(&topic).key("user-1"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let consumer: TracedStreamConsumer =
        TracedStreamConsumer::from_config(&broker.consumer_config()).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    drop(within("recv", consumer.recv()).await.unwrap());
    for name in [format!("send {topic}"), format!("process {topic}")] {
        assert_eq!(
            exporter
                .span(&name)
                .attribute("messaging.kafka.message.tombstone"),
            Some(&Value::Bool(true)),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_batch_links_every_message() {
    let broker = Broker::start();
    let topic = broker.topic("batch", 1).await;
    let (exporter, _guard) = traced();
    let producer: TracedFutureProducer =
        TracedFutureProducer::from_config(&broker.producer_config()).unwrap();
    let mut senders = Vec::new();
    for i in 0..3 {
        let root = tracing::info_span!("request", i);
        senders.push(root.span_context().unwrap());
        producer
            .send(
                FutureRecord::to(&topic).key(&format!("k{i}")).payload("x"),
                Duration::from_secs(10),
            )
            .instrument(root)
            .await
            .unwrap();
    }
    let consumer = TracedBaseConsumer::from_config(&broker.consumer_config()).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let mut received = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while received < 3 && std::time::Instant::now() < deadline {
        if let Some(batch) = consumer.poll_batch(10, Duration::from_secs(2)) {
            let batch = batch.expect("batch");
            received += batch.messages.len();
        }
    }
    assert_eq!(received, 3);
    let polls = exporter.spans_named(&format!("poll {topic}"));
    let links: Vec<_> = polls
        .iter()
        .flat_map(|p| p.links.iter().map(|l| l.span_context.trace_id()))
        .collect();
    let counts: i64 = polls
        .iter()
        .map(|p| {
            p.attribute("messaging.batch.message_count")
                .and_then(Value::as_i64)
                .unwrap()
        })
        .sum();
    assert_eq!(counts, 3);
    for sender in senders {
        assert!(links.contains(&sender.trace_id()), "no link to {sender:?}");
    }
    assert!(
        polls
            .iter()
            .all(|p| p.kind == SpanKind::Client && !p.parent_span_id.is_valid())
    );
}

#[tokio::test]
async fn the_poll_span_covers_the_receive_and_the_batch_is_processed_after_it() {
    let broker = Broker::start();
    let topic = broker.topic("batch-order", 1).await;
    let (exporter, _guard) = traced();
    let producer: TracedFutureProducer =
        TracedFutureProducer::from_config(&broker.producer_config()).unwrap();
    for i in 0..3 {
        producer
            .send(
                FutureRecord::to(&topic).key(&format!("k{i}")).payload("x"),
                Duration::from_secs(10),
            )
            .instrument(tracing::info_span!("request", i))
            .await
            .unwrap();
    }
    let consumer = TracedBaseConsumer::from_config(&broker.consumer_config()).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let consumer_loop = tracing::info_span!("consumer loop");
    let mut received = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while received < 3 && std::time::Instant::now() < deadline {
        let _in_loop = consumer_loop.enter();
        if let Some(batch) = consumer.poll_batch(10, Duration::from_secs(2)) {
            let batch = batch.expect("batch");
            received += batch.messages.len();
            batch
                .span
                .in_scope(|| tracing::info_span!("handle batch").in_scope(|| {}));
        }
    }
    drop(consumer_loop);
    assert_eq!(received, 3);
    let consumer_loop = exporter.span("consumer loop");
    let polls = exporter.spans_named(&format!("poll {topic}"));
    let processes = exporter.spans_named(&format!("process {topic}"));
    assert_eq!(polls.len(), processes.len(), "one process span per batch");
    let linked = |links: &[tracewire::Link]| -> Vec<_> {
        links.iter().map(|l| l.span_context.span_id()).collect()
    };
    let count = |span: &tracewire::SpanData| {
        span.attribute("messaging.batch.message_count")
            .and_then(Value::as_i64)
    };
    for process in &processes {
        assert_eq!(process.kind, SpanKind::Consumer);
        assert_eq!(process.parent_span_id, consumer_loop.span_context.span_id());
        assert_eq!(
            process.attribute("messaging.operation.type"),
            Some(&Value::from("process"))
        );
        // Its poll: the one that linked the same messages.
        let poll = polls
            .iter()
            .find(|p| linked(&p.links) == linked(&process.links))
            .expect("a poll span for each processed batch");
        assert_eq!(poll.parent_span_id, consumer_loop.span_context.span_id());
        assert_eq!(count(poll), count(process));
        assert!(
            poll.start_time <= process.start_time && poll.end_time <= process.start_time,
            "the poll span covers the receive only"
        );
        let handle = exporter
            .children_of(process)
            .into_iter()
            .find(|c| c.name == "handle batch")
            .expect("processing inside the process span");
        assert_eq!(
            handle.span_context.trace_id(),
            process.span_context.trace_id()
        );
    }
    assert_eq!(processes.iter().filter_map(count).sum::<i64>(), 3);
    // Polls that received nothing are plain `poll` spans counting 0.
    for empty in exporter.spans_named("poll") {
        assert_eq!(count(&empty), Some(0));
    }
}

#[test]
fn an_empty_poll_is_a_poll_span_counting_nothing() {
    let broker = Broker::start();
    let (exporter, _guard) = traced();
    let consumer = TracedBaseConsumer::from_config(&broker.consumer_config()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let topic = rt.block_on(broker.topic("empty", 1));
    consumer.subscribe(&[&topic]).unwrap();
    assert!(
        consumer
            .poll_batch(10, Duration::from_millis(200))
            .is_none()
    );
    let poll = exporter.span("poll");
    assert_eq!(poll.kind, SpanKind::Client);
    assert_eq!(
        poll.attribute("messaging.batch.message_count"),
        Some(&Value::I64(0))
    );
    assert_eq!(poll.attribute("messaging.destination.name"), None);
    assert!(exporter.find(&format!("process {topic}")).is_none());
}

#[tokio::test]
async fn new_trace_with_link_keeps_the_producer_as_a_link() {
    let broker = Broker::start();
    let topic = broker.topic("fanout", 1).await;
    let (exporter, _guard) = traced();
    let producer: TracedFutureProducer =
        TracedFutureProducer::from_config(&broker.producer_config()).unwrap();
    producer
        .send(
            FutureRecord::to(&topic).key("k").payload("x"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let consumer: TracedStreamConsumer =
        TracedStreamConsumer::from_config(&broker.consumer_config())
            .unwrap()
            .process_parent(ProcessParent::NewTraceWithLink);
    consumer.subscribe(&[&topic]).unwrap();
    let ambient = tracing::info_span!("consumer loop");
    async { drop(within("recv", consumer.recv()).await.unwrap()) }
        .instrument(ambient.clone())
        .await;
    drop(ambient);
    let send = exporter.span(&format!("send {topic}"));
    let process = exporter.span(&format!("process {topic}"));
    assert!(!process.parent_span_id.is_valid());
    assert_ne!(
        process.span_context.trace_id(),
        send.span_context.trace_id()
    );
    let linked: Vec<_> = process
        .links
        .iter()
        .map(|l| l.span_context.span_id())
        .collect();
    assert!(
        linked.contains(&send.span_context.span_id()),
        "producer linked"
    );
    assert!(
        linked.contains(&exporter.span("consumer loop").span_context.span_id()),
        "ambient linked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_messages_never_mix_contexts() {
    let broker = Broker::start();
    let topic = broker.topic("parallel", 4).await;
    let (exporter, _guard) = traced();
    let producer: TracedFutureProducer =
        TracedFutureProducer::from_config(&broker.producer_config()).unwrap();
    let n = 40;
    let sends = (0..n).map(|i| {
        let producer = producer.clone();
        let topic = topic.clone();
        let root = tracing::info_span!("request", i);
        let trace = root.span_context().unwrap().trace_id();
        async move {
            producer
                .send(
                    FutureRecord::to(&topic)
                        .key(&trace.to_string())
                        .payload("x"),
                    Duration::from_secs(10),
                )
                .await
                .unwrap();
        }
        .instrument(root)
    });
    futures_util::future::join_all(sends).await;

    let consumer: TracedStreamConsumer =
        TracedStreamConsumer::from_config(&broker.consumer_config()).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let handled = within(
        "consume all",
        consumer
            .stream()
            .take(n)
            .for_each_concurrent(8, |message| async move {
                let message = message.expect("message");
                let key = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
                async move {
                    tokio::task::yield_now().await;
                    tracing::info_span!("handle", key = key.as_str()).in_scope(|| {});
                }
                .instrument(message.span().clone())
                .await;
            }),
    );
    handled.await;
    let processes = exporter.spans_named(&format!("process {topic}"));
    assert_eq!(processes.len(), n);
    let handles: HashMap<_, _> = exporter
        .spans_named("handle")
        .into_iter()
        .map(|h| (h.parent_span_id, h))
        .collect();
    for process in processes {
        let key = process
            .attribute("messaging.kafka.message.key")
            .and_then(Value::as_str)
            .unwrap()
            .to_owned();
        assert_eq!(
            process.span_context.trace_id().to_string(),
            key,
            "process span in the producer's trace"
        );
        let handle = &handles[&process.span_context.span_id()];
        assert_eq!(
            handle.attribute("key").and_then(Value::as_str),
            Some(key.as_str())
        );
        assert_eq!(
            handle.span_context.trace_id(),
            process.span_context.trace_id()
        );
    }
}

/// Every span of the crate has the target `tracewire_rdkafka`, which
/// `tracewire::is_instrumentation` (what `tracewire::init` always traces:
/// targets starting with `tracewire_`; it needs the core's `otlp` feature,
/// which this crate does not enable) covers; rdkafka's own `Producer` and
/// `Consumer` calls work on the wrappers.
#[tokio::test]
async fn every_span_has_the_crate_target_and_rdkafka_calls_work_on_the_wrappers() {
    let broker = Broker::start();
    let topic = broker.topic("targets", 1).await;
    let exporter = InMemoryExporter::new();
    let ours = filter_fn(|metadata| {
        metadata.target() == "tracewire_rdkafka" && metadata.target().starts_with("tracewire_")
    });
    let subscriber = tracing_subscriber::registry()
        .with(TracewireLayer::new(exporter.clone()).with_filter(ours));
    let _guard = tracing::subscriber::set_default(subscriber);

    let producer: TracedFutureProducer =
        TracedFutureProducer::from_config(&broker.producer_config()).unwrap();
    producer
        .send(
            FutureRecord::to(&topic).key("k").payload("x"),
            Duration::from_secs(10),
        )
        .await
        .expect("delivered");
    producer.flush(Duration::from_secs(10)).unwrap(); // rdkafka's Producer
    assert_eq!(producer.in_flight_count(), 0);
    assert!(
        producer
            .client()
            .fetch_metadata(Some(&topic), Duration::from_secs(10))
            .is_ok()
    );

    let consumer = TracedBaseConsumer::from_config(&broker.consumer_config()).unwrap();
    consumer.subscribe(&[&topic]).unwrap(); // rdkafka's Consumer
    assert_eq!(consumer.subscription().unwrap().count(), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let batch = loop {
        assert!(std::time::Instant::now() < deadline, "no message");
        if let Some(batch) = consumer.poll_batch(10, Duration::from_secs(2)) {
            break batch.expect("batch");
        }
    };
    consumer
        .commit_message(&batch.messages[0], CommitMode::Sync)
        .expect("commit");
    drop(batch);
    let position = consumer.position().unwrap();
    assert_eq!(position.count(), 1);

    for name in ["send", "poll", "process", "commit"] {
        assert_eq!(
            exporter.spans_named(&format!("{name} {topic}")).len(),
            1,
            "{name} span"
        );
    }
}
