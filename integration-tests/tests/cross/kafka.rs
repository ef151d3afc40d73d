//! HTTP → Kafka → HTTP (issue 6): a reqwest client with the middleware
//! calls service A (axum + `TraceLayer::server()`), whose handler sends a
//! message with `TracedFutureProducer`; a consumer (`TracedStreamConsumer`
//! in a task, or `TracedBaseConsumer` in a poll loop on a blocking thread)
//! handles each message inside its `process {topic}` span by calling
//! service B (axum + `TraceLayer::server()`) with reqwest and the
//! middleware. All of it is one trace.
//!
//! Against librdkafka's mock cluster, or the broker named by
//! `KAFKA_BROKERS`; every test has its own topic and consumer group.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use futures_util::StreamExt as _;
use rdkafka::ClientConfig;
use rdkafka::consumer::Consumer as _;
use rdkafka::message::{Header, Headers as _, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use reqwest_middleware::ClientWithMiddleware;
use tokio::task::JoinHandle;
use tracewire::testing::InMemoryExporter;
use tracewire::{SpanData, SpanExt as _, SpanKind, Status, TraceId, Value};
use tracewire_rdkafka::{TracedBaseConsumer, TracedFutureProducer, TracedStreamConsumer};
use tracewire_tower::TraceLayer;
use tracing::Instrument as _;

use crate::support::{self, Broker, Subscriber, child, int_attr, str_attr};

/// Spans per request: the caller's root, its CLIENT span, A's SERVER span,
/// the PRODUCER span, the CONSUMER span, its CLIENT span, B's SERVER span.
const SPANS_PER_ORDER: usize = 7;

/// How long the messages may take to come round: a real broker's group
/// join alone takes a few seconds.
const WITHIN: Duration = Duration::from_secs(120);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Service A: takes an order and announces it on the topic, with headers
/// of its own; answers with the partition and offset it was written at.
#[derive(Clone)]
struct Orders {
    producer: TracedFutureProducer,
    topic: Arc<str>,
}

async fn place_order(
    State(orders): State<Orders>,
    Path(id): Path<String>,
) -> Result<String, StatusCode> {
    let payload = format!("{{\"order\":\"{id}\"}}");
    let headers = OwnedHeaders::new()
        .insert(Header {
            key: "x-tenant",
            value: Some("acme"),
        })
        .insert(Header {
            key: "x-order-id",
            value: Some(id.as_str()),
        });
    let delivery = orders
        .producer
        .send(
            FutureRecord::to(&orders.topic)
                .key(&id)
                .payload(&payload)
                .headers(headers),
            Duration::from_secs(30),
        )
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    Ok(format!("{} {}", delivery.partition, delivery.offset))
}

fn service_a(producer: TracedFutureProducer, topic: &str) -> Router {
    Router::new()
        .route("/orders/{id}", post(place_order))
        .with_state(Orders {
            producer,
            topic: topic.into(),
        })
        .layer(TraceLayer::server())
}

/// What service B saw of one call.
#[derive(Clone, Debug)]
struct Notified {
    order: String,
    trace: Option<TraceId>,
    tenant: Option<String>,
}

type Log<T> = Arc<Mutex<Vec<T>>>;

fn service_b(log: Log<Notified>) -> Router {
    async fn notify(
        State(log): State<Log<Notified>>,
        Path(order): Path<String>,
        headers: HeaderMap,
    ) -> StatusCode {
        lock(&log).push(Notified {
            order,
            trace: tracewire::current_span_context().map(|cx| cx.trace_id()),
            tenant: headers
                .get("x-tenant")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        StatusCode::NO_CONTENT
    }
    Router::new()
        .route("/notify/{order}", post(notify))
        .with_state(log)
        .layer(TraceLayer::server())
}

/// What the consumer saw of one message, inside its process span.
#[derive(Clone, Debug)]
struct Consumed {
    key: String,
    trace: Option<TraceId>,
    headers: Vec<(String, Option<String>)>,
}

/// The consumer's work: note the message, tell service B.
struct Notifier {
    client: ClientWithMiddleware,
    b: String,
    consumed: Log<Consumed>,
    errors: Log<String>,
}

impl Notifier {
    /// Handles `message`; runs inside its process span.
    async fn handle(&self, message: &impl Message) {
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        let headers: Vec<(String, Option<String>)> = message
            .headers()
            .map(|headers| {
                headers
                    .iter()
                    .map(|h| {
                        let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                        (h.key.to_owned(), value)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let tenant = headers
            .iter()
            .find(|(k, _)| k == "x-tenant")
            .and_then(|(_, v)| v.clone());
        lock(&self.consumed).push(Consumed {
            key: key.clone(),
            trace: tracewire::current_span_context().map(|cx| cx.trace_id()),
            headers,
        });
        let mut request = self.client.post(format!("{}/notify/{key}", self.b));
        if let Some(tenant) = tenant {
            request = request.header("x-tenant", tenant);
        }
        match request.send().await {
            Ok(response) if response.status() == StatusCode::NO_CONTENT => {}
            Ok(response) => lock(&self.errors).push(format!("B answered {}", response.status())),
            Err(error) => lock(&self.errors).push(format!("cannot call B: {error}")),
        }
    }

    fn error(&self, error: impl std::fmt::Display) {
        lock(&self.errors).push(error.to_string());
    }
}

#[derive(Clone, Copy, Debug)]
enum ConsumerKind {
    /// `TracedStreamConsumer` in a task, messages handled concurrently:
    /// each is detached with its span and handled inside it.
    Stream,
    /// `TracedBaseConsumer` polled on a blocking thread, each message
    /// handled there (`Handle::block_on`) inside its span.
    Base,
}

/// A running consumer; [`Consumer::stop`] ends it.
struct Consumer {
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Consumer {
    fn start(
        kind: ConsumerKind,
        config: ClientConfig,
        topic: String,
        notifier: Arc<Notifier>,
    ) -> Consumer {
        let stop = Arc::new(AtomicBool::new(false));
        let task = match kind {
            ConsumerKind::Stream => tokio::spawn(async move {
                let consumer: TracedStreamConsumer =
                    TracedStreamConsumer::from_config(&config).expect("stream consumer");
                consumer.inner().subscribe(&[&topic]).expect("subscribe");
                consumer
                    .stream()
                    .for_each_concurrent(None, |received| {
                        let notifier = &notifier;
                        let detached = received.map(|message| message.detach());
                        async move {
                            match detached {
                                Ok((message, span)) => {
                                    notifier.handle(&message).instrument(span).await;
                                }
                                Err(error) => notifier.error(error),
                            }
                        }
                    })
                    .await;
            }),
            ConsumerKind::Base => {
                let runtime = tokio::runtime::Handle::current();
                let stop = stop.clone();
                tokio::task::spawn_blocking(move || {
                    let consumer = TracedBaseConsumer::from_config(&config).expect("base consumer");
                    consumer.inner().subscribe(&[&topic]).expect("subscribe");
                    while !stop.load(Ordering::Relaxed) {
                        match consumer.poll(Duration::from_millis(100)) {
                            None => {}
                            Some(Ok(message)) => runtime.block_on(
                                notifier
                                    .handle(&*message)
                                    .instrument(message.span().clone()),
                            ),
                            Some(Err(error)) => notifier.error(error),
                        }
                    }
                })
            }
        };
        Consumer { stop, task }
    }

    async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.task.abort();
        match self.task.await {
            Ok(()) => {}
            Err(error) if error.is_cancelled() => {}
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
}

/// Both services, the broker, a topic and a consumer.
struct Setup {
    broker: Broker,
    topic: String,
    group: String,
    a: String,
    consumer: Consumer,
    notifier: Arc<Notifier>,
    notified: Log<Notified>,
}

impl Setup {
    async fn start(kind: ConsumerKind, partitions: i32) -> Setup {
        let broker = Broker::start();
        let topic = broker.topic("orders", partitions).await;
        let producer: TracedFutureProducer =
            TracedFutureProducer::from_config(&broker.producer_config()).expect("producer");
        let a = support::serve(service_a(producer, &topic)).await;
        let notified = Log::default();
        let b = support::serve(service_b(notified.clone())).await;
        let notifier = Arc::new(Notifier {
            client: support::reqwest_client(),
            b,
            consumed: Log::default(),
            errors: Log::default(),
        });
        let config = broker.consumer_config();
        let group = config.get("group.id").expect("group").to_owned();
        let consumer = Consumer::start(kind, config, topic.clone(), notifier.clone());
        Setup {
            broker,
            topic,
            group,
            a,
            consumer,
            notifier,
            notified,
        }
    }

    /// Places order `id` from a client-side span named `root`; returns the
    /// trace and the partition and offset the message was written at.
    async fn place(
        &self,
        client: &ClientWithMiddleware,
        root: tracing::Span,
        id: String,
    ) -> Placed {
        let trace = root.span_context().expect("traced").trace_id();
        let answer = client
            .post(format!("{}/orders/{id}", self.a))
            .send()
            .instrument(root)
            .await
            .expect("send")
            .error_for_status()
            .expect("A accepted the order")
            .text()
            .await
            .expect("body");
        let (partition, offset) = answer.split_once(' ').expect("partition offset");
        Placed {
            id,
            trace,
            partition: partition.to_owned(),
            offset: offset.parse().expect("offset"),
        }
    }

    async fn wait(&self, exporter: &InMemoryExporter, orders: usize) -> Vec<SpanData> {
        let errors = self.notifier.errors.clone();
        support::wait_for_spans(exporter, orders * SPANS_PER_ORDER, WITHIN, move || {
            format!("consumer errors: {:?}", lock(&errors))
        })
        .await
    }

    /// The tree of one order's trace.
    fn expected_tree(&self, root: &str) -> String {
        let topic = &self.topic;
        support::tree([
            root.to_owned(),
            "  POST [client]".to_owned(),
            "    POST /orders/{id} [server]".to_owned(),
            format!("      send {topic} [producer]"),
            format!("        process {topic} [consumer]"),
            "          POST [client]".to_owned(),
            "            POST /notify/{order} [server]".to_owned(),
        ])
    }

    /// Checks the whole path of one order, from the caller's span to B's.
    fn check(&self, exporter: &InMemoryExporter, root: &SpanData, placed: &Placed) {
        let trace = placed.trace;
        let id = &placed.id;
        assert_eq!(root.span_context.trace_id(), trace);
        let in_trace = exporter.trace(trace);
        assert_eq!(
            in_trace.len(),
            SPANS_PER_ORDER,
            "order {id}: {:#?}",
            in_trace.iter().map(|s| &s.name).collect::<Vec<_>>()
        );

        let to_a = child(exporter, root, "POST");
        assert_eq!(to_a.kind, SpanKind::Client);
        assert_eq!(to_a.status, Status::Unset);
        assert_eq!(
            str_attr(&to_a, "url.full"),
            format!("{}/orders/{id}", self.a)
        );

        let server_a = child(exporter, &to_a, "POST /orders/{id}");
        assert_eq!(server_a.kind, SpanKind::Server);
        assert!(server_a.parent_is_remote);
        assert_eq!(server_a.status, Status::Unset);
        assert_eq!(str_attr(&server_a, "http.route"), "/orders/{id}");
        assert_eq!(str_attr(&server_a, "url.path"), format!("/orders/{id}"));
        assert_eq!(int_attr(&server_a, "http.response.status_code"), 200);

        let topic = &self.topic;
        let (host, port) = self.broker.address();
        let send = child(exporter, &server_a, &format!("send {topic}"));
        assert_eq!(send.kind, SpanKind::Producer);
        assert!(!send.parent_is_remote);
        assert_eq!(send.status, Status::Unset);
        assert_eq!(str_attr(&send, "messaging.system"), "kafka");
        assert_eq!(str_attr(&send, "messaging.operation.type"), "send");
        assert_eq!(str_attr(&send, "messaging.operation.name"), "send");
        assert_eq!(str_attr(&send, "messaging.destination.name"), topic);
        assert_eq!(
            str_attr(&send, "messaging.destination.partition.id"),
            placed.partition
        );
        assert_eq!(int_attr(&send, "messaging.kafka.offset"), placed.offset);
        assert_eq!(str_attr(&send, "messaging.kafka.message.key"), id);
        assert_eq!(str_attr(&send, "messaging.client.id"), "orders-api");
        assert_eq!(str_attr(&send, "server.address"), host);
        assert_eq!(int_attr(&send, "server.port"), port);

        let process = child(exporter, &send, &format!("process {topic}"));
        assert_eq!(process.kind, SpanKind::Consumer);
        assert!(process.parent_is_remote, "the context came through Kafka");
        assert_eq!(process.status, Status::Unset);
        assert!(process.links.is_empty(), "polled outside any span");
        assert_eq!(str_attr(&process, "messaging.system"), "kafka");
        assert_eq!(str_attr(&process, "messaging.operation.type"), "process");
        assert_eq!(str_attr(&process, "messaging.operation.name"), "process");
        assert_eq!(str_attr(&process, "messaging.destination.name"), topic);
        assert_eq!(
            process.attribute("messaging.destination.partition.id"),
            Some(&Value::from(placed.partition.clone())),
            "a string"
        );
        assert_eq!(
            process.attribute("messaging.kafka.offset"),
            Some(&Value::I64(placed.offset))
        );
        assert_eq!(str_attr(&process, "messaging.kafka.message.key"), id);
        assert_eq!(
            str_attr(&process, "messaging.consumer.group.name"),
            self.group
        );
        assert_eq!(str_attr(&process, "messaging.client.id"), "notifier");
        assert_eq!(str_attr(&process, "server.address"), host);
        assert_eq!(int_attr(&process, "server.port"), port);
        assert!(
            process
                .attribute("messaging.kafka.message.tombstone")
                .is_none(),
            "not a tombstone"
        );

        let to_b = child(exporter, &process, "POST");
        assert_eq!(to_b.kind, SpanKind::Client);
        assert!(!to_b.parent_is_remote);
        assert_eq!(int_attr(&to_b, "http.response.status_code"), 204);
        assert!(to_b.end_time <= process.end_time, "called while processing");

        let server_b = child(exporter, &to_b, "POST /notify/{order}");
        assert_eq!(server_b.kind, SpanKind::Server);
        assert!(server_b.parent_is_remote);
        assert_eq!(str_attr(&server_b, "http.route"), "/notify/{order}");
        assert_eq!(str_attr(&server_b, "url.path"), format!("/notify/{id}"));
        assert_eq!(int_attr(&server_b, "http.response.status_code"), 204);

        // What the consumer and B saw while running.
        let consumed: Vec<Consumed> = lock(&self.notifier.consumed)
            .iter()
            .filter(|c| &c.key == id)
            .cloned()
            .collect();
        assert_eq!(consumed.len(), 1, "order {id} consumed once: {consumed:?}");
        let consumed = &consumed[0];
        assert_eq!(
            consumed.trace,
            Some(trace),
            "order {id}: handled in its trace"
        );
        let user: Vec<_> = consumed
            .headers
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "traceparent" | "tracestate" | "baggage"))
            .cloned()
            .collect();
        assert_eq!(
            user,
            [
                ("x-tenant".to_owned(), Some("acme".to_owned())),
                ("x-order-id".to_owned(), Some(id.clone())),
            ],
            "the user's headers survive, in order"
        );
        let traceparent: Vec<_> = consumed
            .headers
            .iter()
            .filter(|(k, _)| k == "traceparent")
            .collect();
        assert_eq!(traceparent.len(), 1, "{:?}", consumed.headers);
        let value = traceparent[0].1.as_deref().expect("a value");
        assert!(
            value.starts_with(&format!("00-{trace}-{}-", send.span_context.span_id())),
            "the producer span's context: {value}"
        );
        let notified: Vec<Notified> = lock(&self.notified)
            .iter()
            .filter(|n| &n.order == id)
            .cloned()
            .collect();
        assert_eq!(notified.len(), 1, "B called once for {id}: {notified:?}");
        assert_eq!(
            notified[0].trace,
            Some(trace),
            "B's request {id} is in its originating A request's trace"
        );
        assert_eq!(notified[0].tenant.as_deref(), Some("acme"));
    }

    async fn finish(self) {
        self.consumer.stop().await;
        let errors = lock(&self.notifier.errors).clone();
        assert!(errors.is_empty(), "consumer errors: {errors:?}");
    }
}

/// One order placed, as A answered it.
#[derive(Debug)]
struct Placed {
    id: String,
    trace: TraceId,
    partition: String,
    offset: i64,
}

/// One order: request → produce → consume → request is one trace.
async fn one_order(exporter: InMemoryExporter, kind: ConsumerKind) {
    let setup = Setup::start(kind, 1).await;
    let client = support::reqwest_client();
    let placed = setup
        .place(
            &client,
            tracing::info_span!("checkout"),
            "order-7".to_owned(),
        )
        .await;
    assert_eq!(placed.partition, "0");

    let spans = setup.wait(&exporter, 1).await;
    assert_eq!(spans.len(), SPANS_PER_ORDER, "{}", exporter.tree());
    assert!(
        spans
            .iter()
            .all(|s| s.span_context.trace_id() == placed.trace),
        "one trace:\n{}",
        exporter.tree()
    );
    assert_eq!(exporter.tree(), setup.expected_tree("checkout"));
    setup.check(&exporter, &exporter.span("checkout"), &placed);
    setup.finish().await;
}

/// Many orders at once: every message is handled in its own trace.
async fn many_orders(exporter: InMemoryExporter, kind: ConsumerKind) {
    const ORDERS: usize = 30;
    let setup = Setup::start(kind, 4).await;
    let client = support::reqwest_client();
    let placed: Vec<Placed> = futures_util::future::join_all((0..ORDERS).map(|i| {
        let root = tracing::info_span!("order", i);
        setup.place(&client, root, format!("order-{i}"))
    }))
    .await;

    let spans = setup.wait(&exporter, ORDERS).await;
    assert_eq!(spans.len(), ORDERS * SPANS_PER_ORDER, "{}", exporter.tree());
    // Thirty separate trees of the same shape: no span under another
    // order's span, none left alone.
    assert_eq!(exporter.tree(), setup.expected_tree("order").repeat(ORDERS));
    let roots = exporter.spans_named("order");
    for (i, placed) in placed.iter().enumerate() {
        let root = roots
            .iter()
            .find(|r| r.attribute("i").and_then(Value::as_i64) == Some(i as i64))
            .expect("root span");
        setup.check(&exporter, root, placed);
    }
    setup.finish().await;
}

#[test]
fn an_order_through_kafka_is_one_trace_stream_consumer() {
    support::run(Subscriber::PerTest, |exporter| {
        one_order(exporter, ConsumerKind::Stream)
    });
}

#[test]
fn an_order_through_kafka_is_one_trace_base_consumer() {
    support::run(Subscriber::PerTest, |exporter| {
        one_order(exporter, ConsumerKind::Base)
    });
}

#[test]
fn parallel_orders_never_mix_contexts_stream_consumer() {
    support::run(Subscriber::PerTest, |exporter| {
        many_orders(exporter, ConsumerKind::Stream)
    });
}

#[test]
fn parallel_orders_never_mix_contexts_base_consumer() {
    support::run(Subscriber::PerTest, |exporter| {
        many_orders(exporter, ConsumerKind::Base)
    });
}
