//! Send spans of the base and threaded producers: each scenario runs on
//! both (`<scenario>::base`, `<scenario>::threaded`), with a user context
//! that checks its own delivery callback still gets its own opaque.

// rdkafka's `send` gives the record back in its error, as these tests check.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::StreamExt as _;
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Header, Headers as _, Message as _, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{
    BaseRecord, DefaultProducerContext, Producer, ProducerContext, PurgeConfig,
};
use tracewire::{SpanContext, SpanData, SpanExt as _, SpanKind, Status, Value};
use tracewire_rdkafka::{
    TracedBaseProducer, TracedProducerContext, TracedStreamConsumer, TracedThreadedProducer,
};
use tracing::Dispatch;

use crate::support::{Broker, traced, within};

/// What the user's context saw in one delivery callback.
#[derive(Clone, Debug)]
struct Delivered {
    /// The user's own opaque.
    order: usize,
    /// Partition and offset, or the `error.type` of the failure.
    outcome: Result<(i32, i64), String>,
    /// The current span inside the callback, under the thread's default
    /// subscriber (on the threaded producer's polling thread, the test's
    /// subscriber is the default only because the traced context makes it).
    current: Option<SpanContext>,
    at: SystemTime,
}

/// A user's producer context: its opaque is an order number.
#[derive(Clone, Default)]
struct Recorder {
    deliveries: Arc<Mutex<Vec<Delivered>>>,
    /// How long each callback takes.
    work: Duration,
}

impl Recorder {
    fn new() -> Self {
        Self::default()
    }

    /// A context whose callback takes `work` per report.
    fn slow(work: Duration) -> Self {
        Recorder {
            work,
            ..Self::default()
        }
    }

    fn deliveries(&self) -> Vec<Delivered> {
        self.deliveries.lock().unwrap().clone()
    }

    fn of(&self, order: usize) -> Delivered {
        let found: Vec<_> = self
            .deliveries()
            .into_iter()
            .filter(|d| d.order == order)
            .collect();
        assert_eq!(
            found.len(),
            1,
            "delivery reports of order {order}: {found:?}"
        );
        found[0].clone()
    }
}

impl ClientContext for Recorder {}

impl ProducerContext for Recorder {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, order: usize) {
        let outcome = match result {
            Ok(message) => Ok((message.partition(), message.offset())),
            Err((error, _)) => Err(format!("{:?}", error.rdkafka_error_code().unwrap())),
        };
        let current = tracewire::current_span_context();
        self.deliveries.lock().unwrap().push(Delivered {
            order,
            outcome,
            current,
            at: SystemTime::now(),
        });
        std::thread::sleep(self.work);
    }
}

type Record<'a> = BaseRecord<'a, str, str, usize>;

/// The two producers under test, behind one interface.
trait Traced: Producer<TracedProducerContext<Recorder>> + Sync + Sized {
    fn create(config: &ClientConfig, recorder: Recorder) -> Self;

    fn send_record<'a>(&self, record: Record<'a>) -> Result<(), (KafkaError, Record<'a>)>;

    /// Lets delivery reports be served until `done` holds.
    fn serve_until(&self, what: &str, done: impl Fn() -> bool);
}

impl Traced for TracedBaseProducer<Recorder> {
    fn create(config: &ClientConfig, recorder: Recorder) -> Self {
        TracedBaseProducer::from_config_and_context(config, recorder).unwrap()
    }

    fn send_record<'a>(&self, record: Record<'a>) -> Result<(), (KafkaError, Record<'a>)> {
        self.send(record)
    }

    fn serve_until(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "timed out: {what}");
            self.poll(Duration::from_millis(50));
        }
    }
}

impl Traced for TracedThreadedProducer<Recorder> {
    fn create(config: &ClientConfig, recorder: Recorder) -> Self {
        TracedThreadedProducer::from_config_and_context(config, recorder).unwrap()
    }

    fn send_record<'a>(&self, record: Record<'a>) -> Result<(), (KafkaError, Record<'a>)> {
        self.send(record)
    }

    fn serve_until(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !done() {
            assert!(Instant::now() < deadline, "timed out: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Runs each scenario on both producers.
macro_rules! on_both_producers {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::*;

            #[tokio::test]
            async fn base() {
                super::$scenario::<TracedBaseProducer<Recorder>>().await;
            }

            #[tokio::test]
            async fn threaded() {
                super::$scenario::<TracedThreadedProducer<Recorder>>().await;
            }
        }
    )*};
}

on_both_producers!(
    send_span_records_attributes_and_delivery,
    the_span_ends_when_the_delivery_report_is_served,
    failed_delivery_sets_error_status,
    a_refused_record_ends_its_span_at_once_and_comes_back,
    dropping_the_producer_ends_spans_of_messages_in_flight,
    headers_carry_the_context_and_the_consumer_continues_the_trace,
    concurrent_sends_keep_their_own_contexts,
);

/// A producer of `servers`; `127.0.0.1:1` never answers.
fn config(servers: &str, message_timeout_ms: u32) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", servers)
        .set("client.id", "orders-producer")
        .set("message.timeout.ms", message_timeout_ms.to_string());
    config
}

fn attr(span: &SpanData, key: &str) -> Option<Value> {
    span.attribute(key).cloned()
}

async fn send_span_records_attributes_and_delivery<P: Traced>() {
    let broker = Broker::start();
    let topic = broker.topic("orders", 3).await;
    let (exporter, _guard) = traced();
    let recorder = Recorder::new();
    let producer = P::create(&broker.producer_config(), recorder.clone());
    let request = tracing::info_span!("POST /orders", otel.kind = "server");
    request
        .in_scope(|| {
            producer.send_record(
                BaseRecord::with_opaque_to(&topic, 7)
                    .key("order-7")
                    .payload("{}")
                    .partition(2),
            )
        })
        .expect("queued");
    drop(request);
    producer.flush(Duration::from_secs(30)).expect("flushed");

    let send = exporter.span(&format!("send {topic}"));
    let delivered = recorder.of(7);
    let Ok((partition, offset)) = delivered.outcome else {
        panic!("not delivered: {delivered:?}");
    };
    assert_eq!(partition, 2);
    assert_eq!(send.kind, SpanKind::Producer);
    assert_eq!(exporter.parent_of(&send).unwrap().name, "POST /orders");
    assert_eq!(attr(&send, "messaging.system"), Some(Value::from("kafka")));
    assert_eq!(
        attr(&send, "messaging.operation.name"),
        Some(Value::from("send"))
    );
    assert_eq!(
        attr(&send, "messaging.operation.type"),
        Some(Value::from("send"))
    );
    assert_eq!(
        attr(&send, "messaging.destination.name"),
        Some(Value::from(topic))
    );
    assert_eq!(
        attr(&send, "messaging.destination.partition.id"),
        Some(Value::from("2"))
    );
    assert_eq!(
        attr(&send, "messaging.kafka.offset"),
        Some(Value::I64(offset))
    );
    assert_eq!(
        attr(&send, "messaging.kafka.message.key"),
        Some(Value::from("order-7"))
    );
    assert_eq!(attr(&send, "messaging.kafka.message.tombstone"), None);
    assert_eq!(
        attr(&send, "messaging.client.id"),
        Some(Value::from("orders-producer"))
    );
    assert!(attr(&send, "server.address").is_some());
    assert_eq!(attr(&send, "error.type"), None);
    assert_eq!(send.status, Status::Unset);
    // The user's callback ran inside the send span, before it ended.
    assert_eq!(
        delivered.current.map(|cx| cx.span_id()),
        Some(send.span_context.span_id())
    );
    assert!(send.end_time >= delivered.at);
}

async fn the_span_ends_when_the_delivery_report_is_served<P: Traced>() {
    let broker = Broker::start();
    let topic = broker.topic("linger", 1).await;
    let (exporter, _guard) = traced();
    let recorder = Recorder::new();
    let mut config = broker.producer_config();
    // The message leaves no earlier than 300 ms after the send.
    config.set("linger.ms", "300");
    let producer = P::create(&config, recorder.clone());
    let name = format!("send {topic}");
    let sent = SystemTime::now();
    producer
        .send_record(BaseRecord::with_opaque_to(&topic, 1).key("k").payload("x"))
        .expect("queued");
    std::thread::sleep(Duration::from_millis(100));
    assert!(exporter.find(&name).is_none(), "ended before delivery");
    producer.serve_until("delivery", || exporter.find(&name).is_some());

    let send = exporter.span(&name);
    let delivered = recorder.of(1);
    assert!(delivered.outcome.is_ok(), "{delivered:?}");
    assert!(send.end_time >= delivered.at, "ended before the report");
    assert!(
        send.end_time.duration_since(sent).unwrap() >= Duration::from_millis(300),
        "ended {:?} after the send",
        send.end_time.duration_since(sent)
    );
    assert!(attr(&send, "messaging.kafka.offset").is_some());
}

#[tokio::test]
async fn a_base_producer_span_stays_open_until_its_report_is_polled() {
    let broker = Broker::start();
    let topic = broker.topic("unpolled", 1).await;
    let (exporter, _guard) = traced();
    let producer: TracedBaseProducer =
        TracedBaseProducer::from_config(&broker.producer_config()).unwrap();
    producer
        .send(BaseRecord::<str, str>::to(&topic).payload("x"))
        .expect("queued");
    let name = format!("send {topic}");
    // Delivered by now on any broker, but nobody polled: the report waits.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(exporter.find(&name).is_none(), "ended without a report");
    producer.poll(Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(60);
    while exporter.find(&name).is_none() {
        assert!(Instant::now() < deadline, "timed out: delivery");
        producer.poll(Duration::from_millis(100));
    }
    let send = exporter.span(&name);
    assert!(send.duration() >= Duration::from_millis(1500));
    assert_eq!(
        attr(&send, "messaging.destination.partition.id"),
        Some(Value::from("0"))
    );
    assert!(matches!(
        attr(&send, "messaging.kafka.offset"),
        Some(Value::I64(_))
    ));
}

async fn failed_delivery_sets_error_status<P: Traced>() {
    let (exporter, _guard) = traced();
    let recorder = Recorder::new();
    let producer = P::create(&config("127.0.0.1:1", 300), recorder.clone());
    producer
        .send_record(BaseRecord::with_opaque_to("nowhere", 3).payload("x"))
        .expect("queued");
    // The user's callback runs just before the span ends: wait for the span.
    producer.serve_until("delivery report", || {
        exporter.find("send nowhere").is_some()
    });

    let send = exporter.span("send nowhere");
    assert!(send.status.is_error(), "{:?}", send.status);
    assert_eq!(
        attr(&send, "error.type"),
        Some(Value::from("MessageTimedOut"))
    );
    assert_eq!(attr(&send, "messaging.kafka.offset"), None);
    assert_eq!(
        attr(&send, "server.address"),
        Some(Value::from("127.0.0.1"))
    );
    assert_eq!(attr(&send, "server.port"), Some(Value::I64(1)));
    assert_eq!(recorder.of(3).outcome, Err("MessageTimedOut".to_owned()));
}

async fn a_refused_record_ends_its_span_at_once_and_comes_back<P: Traced>() {
    let (exporter, _guard) = traced();
    let recorder = Recorder::new();
    let mut config = config("127.0.0.1:1", 60_000);
    config.set("queue.buffering.max.messages", "1");
    let producer = P::create(&config, recorder.clone());
    producer
        .send_record(BaseRecord::with_opaque_to("accepted", 1).payload("x"))
        .expect("queued");
    let headers = OwnedHeaders::new().insert(Header {
        key: "tenant",
        value: Some("acme"),
    });
    let (error, record) = tracing::info_span!("request")
        .in_scope(|| {
            producer.send_record(
                BaseRecord::with_opaque_to("refused", 2)
                    .key("k")
                    .payload("y")
                    .headers(headers),
            )
        })
        .expect_err("the queue holds one message");

    assert_eq!(
        format!("{:?}", error.rdkafka_error_code().unwrap()),
        "QueueFull"
    );
    assert_eq!(record.delivery_opaque, 2, "the user's opaque comes back");
    assert_eq!((record.key, record.payload), (Some("k"), Some("y")));
    let headers = record.headers.expect("headers");
    assert_eq!(headers.get(0).key, "tenant");
    assert!(headers.iter().any(|h| h.key == "traceparent"));
    let refused = exporter.span("send refused");
    assert!(refused.status.is_error(), "{:?}", refused.status);
    assert_eq!(attr(&refused, "error.type"), Some(Value::from("QueueFull")));
    assert_eq!(exporter.parent_of(&refused).unwrap().name, "request");
    assert!(exporter.find("send accepted").is_none(), "still queued");

    // Dropping the producer purges the queued message and ends its span.
    drop(producer);
    let accepted = exporter.span("send accepted");
    assert!(accepted.status.is_error(), "{:?}", accepted.status);
    assert_eq!(
        attr(&accepted, "error.type"),
        Some(Value::from("PurgeQueue"))
    );
    assert_eq!(recorder.of(1).outcome, Err("PurgeQueue".to_owned()));
    assert_eq!(
        recorder.deliveries().len(),
        1,
        "no report for the refused record"
    );
}

/// Needs a broker that holds its answers back, so always librdkafka's mock
/// cluster (in-process) whatever `KAFKA_BROKERS` says. The user's callback
/// is slow and the reports come as one event per partition: serving them
/// takes longer than the 500 ms rdkafka's own drop gives them (it would
/// leave the later events, and their spans, behind).
async fn dropping_the_producer_ends_spans_of_messages_in_flight<P: Traced>() {
    let mock: MockCluster<'static, DefaultProducerContext> = MockCluster::new(1).unwrap();
    mock.create_topic("slow", 4, 1).unwrap();
    let (exporter, _guard) = traced();
    let work = Duration::from_millis(100);
    let recorder = Recorder::slow(work);
    let producer = P::create(&config(&mock.bootstrap_servers(), 60_000), recorder.clone());
    // A first delivery makes the producer know the topic and the broker.
    producer
        .send_record(BaseRecord::with_opaque_to("slow", 0).payload("x"))
        .expect("queued");
    producer.flush(Duration::from_secs(30)).expect("flushed");
    assert!(recorder.of(0).outcome.is_ok());

    mock.broker_round_trip_time(1, Duration::from_secs(30))
        .unwrap();
    let n = 20;
    for order in 1..=n {
        producer
            .send_record(
                BaseRecord::with_opaque_to("slow", order)
                    .payload("x")
                    .partition(i32::try_from(order % 4).unwrap()),
            )
            .expect("queued");
    }
    // Sent, waiting for the broker's answer.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(producer.in_flight_count(), i32::try_from(n).unwrap());
    assert_eq!(exporter.spans_named("send slow").len(), 1);
    let dropped = Instant::now();
    drop(producer);
    assert!(dropped.elapsed() < Duration::from_secs(10));

    let sends = exporter.spans_named("send slow");
    assert_eq!(sends.len(), n + 1, "every span ended");
    for order in 1..=n {
        assert_eq!(recorder.of(order).outcome, Err("PurgeInflight".to_owned()));
    }
    let failed: Vec<_> = sends.iter().filter(|s| s.status.is_error()).collect();
    assert_eq!(failed.len(), n);
    for send in failed {
        assert_eq!(attr(send, "error.type"), Some(Value::from("PurgeInflight")));
    }
}

#[tokio::test]
async fn a_threaded_producer_purges_when_its_last_clone_is_dropped() {
    let (exporter, _guard) = traced();
    let producer: TracedThreadedProducer =
        TracedThreadedProducer::from_config(&config("127.0.0.1:1", 60_000)).unwrap();
    let clone = producer.clone();
    clone
        .send(BaseRecord::<str, str>::to("held").payload("x"))
        .expect("queued");
    drop(clone);
    std::thread::sleep(Duration::from_millis(300));
    assert!(exporter.find("send held").is_none(), "a clone is left");
    assert_eq!(producer.in_flight_count(), 1);
    drop(producer);
    let send = exporter.span("send held");
    assert_eq!(attr(&send, "error.type"), Some(Value::from("PurgeQueue")));
}

#[tokio::test]
async fn purge_then_flush_ends_the_spans() {
    let (exporter, _guard) = traced();
    let producer: TracedBaseProducer =
        TracedBaseProducer::from_config(&config("127.0.0.1:1", 60_000)).unwrap();
    for _ in 0..3 {
        producer
            .send(BaseRecord::<str, str>::to("purged").payload("x"))
            .expect("queued");
    }
    producer.purge(PurgeConfig::default().queue());
    producer.flush(Duration::from_secs(10)).expect("flushed");
    let sends = exporter.spans_named("send purged");
    assert_eq!(sends.len(), 3);
    assert!(
        sends
            .iter()
            .all(|s| s.attribute("error.type") == Some(&Value::from("PurgeQueue")))
    );
    assert_eq!(producer.in_flight_count(), 0);
}

const STALE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

async fn headers_carry_the_context_and_the_consumer_continues_the_trace<P: Traced>() {
    let broker = Broker::start();
    let topic = broker.topic("order.created", 1).await;
    let (exporter, _guard) = traced();
    let producer = P::create(&broker.producer_config(), Recorder::new());
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "tenant",
            value: Some("acme"),
        })
        .insert(Header {
            key: "TraceParent",
            value: Some(STALE),
        })
        .insert(Header {
            key: "content-type",
            value: Some("application/json"),
        });
    tracing::info_span!("POST /orders", otel.kind = "server")
        .in_scope(|| {
            producer.send_record(
                BaseRecord::with_opaque_to(&topic, 1)
                    .key("order-7")
                    .payload("{}")
                    .headers(headers),
            )
        })
        .expect("queued");
    producer.flush(Duration::from_secs(30)).expect("flushed");

    let consumer: TracedStreamConsumer =
        TracedStreamConsumer::from_config(&broker.consumer_config()).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    let message = within("recv", consumer.recv()).await.expect("message");
    let pairs: Vec<(String, Vec<u8>)> = message
        .headers()
        .expect("headers")
        .iter()
        .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
        .collect();
    message
        .span()
        .in_scope(|| tracing::info_span!("send e-mail").in_scope(|| {}));
    drop(message);

    let request = exporter.span("POST /orders");
    let send = exporter.span(&format!("send {topic}"));
    let process = exporter.span(&format!("process {topic}"));
    let traceparents: Vec<_> = pairs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
        .collect();
    assert_eq!(traceparents.len(), 1, "{pairs:?}");
    let expected = format!(
        "00-{}-{}-{}",
        send.span_context.trace_id(),
        send.span_context.span_id(),
        send.span_context.flags().to_hex()
    );
    assert_eq!(traceparents[0].1, expected.as_bytes());
    assert_eq!(pairs[0], ("tenant".into(), b"acme".to_vec()));
    assert_eq!(
        pairs[1],
        ("content-type".into(), b"application/json".to_vec())
    );

    assert_eq!(send.parent_span_id, request.span_context.span_id());
    assert_eq!(process.kind, SpanKind::Consumer);
    assert_eq!(
        process.span_context.trace_id(),
        request.span_context.trace_id()
    );
    assert_eq!(process.parent_span_id, send.span_context.span_id());
    assert!(process.parent_is_remote);
    let email = exporter.span("send e-mail");
    assert_eq!(
        email.parent_span_id,
        process.span_context.span_id(),
        "work inside the message's span joins the trace"
    );
}

async fn concurrent_sends_keep_their_own_contexts<P: Traced>() {
    let broker = Broker::start();
    let topic = broker.topic("concurrent", 4).await;
    let (exporter, _guard) = traced();
    let dispatch = tracing::dispatcher::get_default(Dispatch::clone);
    let recorder = Recorder::new();
    let producer = P::create(&broker.producer_config(), recorder.clone());
    let (threads, per_thread) = (4, 25);
    let n = threads * per_thread;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let (producer, dispatch, topic) = (&producer, &dispatch, &topic);
            scope.spawn(move || {
                let _guard = tracing::dispatcher::set_default(dispatch);
                for i in 0..per_thread {
                    let order = t * per_thread + i;
                    let root = tracing::info_span!("request", order);
                    let trace = root.span_context().unwrap().trace_id().to_string();
                    root.in_scope(|| {
                        producer.send_record(
                            BaseRecord::with_opaque_to(topic, order)
                                .key(trace.as_str())
                                .payload("x"),
                        )
                    })
                    .expect("queued");
                    if i % 5 == 0 {
                        std::thread::yield_now();
                    }
                }
            });
        }
    });
    producer.flush(Duration::from_secs(60)).expect("flushed");

    let requests: HashMap<_, _> = exporter
        .spans_named("request")
        .into_iter()
        .map(|r| (r.span_context.span_id(), r))
        .collect();
    let sends = exporter.spans_named(&format!("send {topic}"));
    assert_eq!(sends.len(), n);
    let mut send_of_key = HashMap::new();
    for send in &sends {
        let key = send
            .attribute("messaging.kafka.message.key")
            .and_then(Value::as_str)
            .unwrap()
            .to_owned();
        let request = &requests[&send.parent_span_id];
        assert_eq!(request.span_context.trace_id().to_string(), key);
        assert_eq!(
            send.span_context.trace_id(),
            request.span_context.trace_id()
        );
        let order = request.attribute("order").and_then(Value::as_i64).unwrap();
        let delivered = recorder.of(usize::try_from(order).unwrap());
        let Ok((partition, offset)) = delivered.outcome else {
            panic!("not delivered: {delivered:?}");
        };
        assert_eq!(
            delivered.current.map(|cx| cx.span_id()),
            Some(send.span_context.span_id()),
            "order {order}'s report ran in its own send span"
        );
        assert_eq!(
            attr(send, "messaging.destination.partition.id"),
            Some(Value::from(partition.to_string()))
        );
        assert_eq!(
            attr(send, "messaging.kafka.offset"),
            Some(Value::I64(offset))
        );
        send_of_key.insert(key, send.span_context.span_id());
    }
    assert_eq!(send_of_key.len(), n);

    let consumer: TracedStreamConsumer =
        TracedStreamConsumer::from_config(&broker.consumer_config()).unwrap();
    consumer.subscribe(&[&topic]).unwrap();
    within(
        "consume all",
        consumer.stream().take(n).for_each(|message| async move {
            drop(message.expect("message"));
        }),
    )
    .await;
    let processes = exporter.spans_named(&format!("process {topic}"));
    assert_eq!(processes.len(), n);
    for process in processes {
        let key = process
            .attribute("messaging.kafka.message.key")
            .and_then(Value::as_str)
            .unwrap();
        assert_eq!(process.span_context.trace_id().to_string(), key);
        assert_eq!(process.parent_span_id, send_of_key[key]);
    }
}
