//! gRPC → HTTP → Kafka (issue 14): a tonic client traced by
//! `TraceLayer::grpc_client()` calls a tonic service traced by
//! `TraceLayer::grpc_server()`, whose handler calls an axum service
//! (`TraceLayer::server()`) with reqwest and the middleware; that handler
//! sends a message with `TracedFutureProducer`, and a
//! `TracedStreamConsumer` handles it inside its `process {topic}` span.
//! All of it is one trace.
//!
//! Against librdkafka's mock cluster, or the broker named by
//! `KAFKA_BROKERS`; the test has its own topic and consumer group.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use futures_util::StreamExt as _;
use rdkafka::ClientConfig;
use rdkafka::Message as _;
use rdkafka::consumer::Consumer as _;
use rdkafka::producer::FutureRecord;
use reqwest_middleware::ClientWithMiddleware;
use tonic::server::{NamedService, UnaryService};
use tonic::service::Routes;
use tonic_prost::ProstCodec;
use tower::Service;
use tracewire::testing::InMemoryExporter;
use tracewire::{SpanExt as _, SpanKind, Status, TraceId, Value};
use tracewire_rdkafka::{TracedFutureProducer, TracedStreamConsumer};
use tracewire_tower::TraceLayer;
use tracing::Instrument as _;

use crate::support::{self, Broker, Subscriber, child, int_attr, str_attr};

/// The caller's root, the gRPC CLIENT and SERVER spans, the HTTP CLIENT
/// and SERVER spans, the PRODUCER span and the CONSUMER (process) span.
const SPANS: usize = 7;

/// How long the message may take to come round: a real broker's group
/// join alone takes a few seconds.
const WITHIN: Duration = Duration::from_secs(120);

/// The gRPC method, as the span name and `rpc.method` give it.
const PLACE: &str = "cross.Checkout/Place";

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

type Log<T> = Arc<Mutex<Vec<T>>>;

/// `cross.PlaceRequest`, written by hand with prost derives.
#[derive(Clone, PartialEq, prost::Message)]
struct PlaceRequest {
    #[prost(string, tag = "1")]
    order: String,
}

/// `cross.PlaceReply`: where the payment's message was written.
#[derive(Clone, PartialEq, prost::Message)]
struct PlaceReply {
    #[prost(string, tag = "1")]
    written_at: String,
}

/// The HTTP service: charges an order and announces it on the topic;
/// answers with the partition and offset the message was written at.
#[derive(Clone)]
struct Payments {
    producer: TracedFutureProducer,
    topic: Arc<str>,
}

async fn charge(
    State(payments): State<Payments>,
    Path(order): Path<String>,
) -> Result<String, StatusCode> {
    let payload = format!("{{\"paid\":\"{order}\"}}");
    let delivery = payments
        .producer
        .send(
            FutureRecord::to(&payments.topic)
                .key(&order)
                .payload(&payload),
            Duration::from_secs(30),
        )
        .await
        .map_err(|_| StatusCode::BAD_GATEWAY)?;
    Ok(format!("{} {}", delivery.partition, delivery.offset))
}

fn payments(producer: TracedFutureProducer, topic: &str) -> Router {
    Router::new()
        .route("/payments/{order}", post(charge))
        .with_state(Payments {
            producer,
            topic: topic.into(),
        })
        .layer(TraceLayer::server())
}

/// The gRPC service `cross.Checkout`: `Place` pays the order through the
/// HTTP service.
#[derive(Clone)]
struct Checkout {
    client: ClientWithMiddleware,
    payments: Arc<str>,
}

impl NamedService for Checkout {
    const NAME: &'static str = "cross.Checkout";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

struct Place(Checkout);

impl UnaryService<PlaceRequest> for Place {
    type Response = PlaceReply;
    type Future = BoxFuture<Result<tonic::Response<PlaceReply>, tonic::Status>>;

    fn call(&mut self, request: tonic::Request<PlaceRequest>) -> Self::Future {
        let checkout = self.0.clone();
        Box::pin(async move {
            let order = request.into_inner().order;
            let response = checkout
                .client
                .post(format!("{}/payments/{order}", checkout.payments))
                .send()
                .await
                .map_err(|e| tonic::Status::unavailable(format!("cannot call payments: {e}")))?;
            if response.status() != StatusCode::OK {
                return Err(tonic::Status::internal(format!(
                    "payments answered {}",
                    response.status()
                )));
            }
            let written_at = response
                .text()
                .await
                .map_err(|e| tonic::Status::internal(format!("payments' body: {e}")))?;
            Ok(tonic::Response::new(PlaceReply { written_at }))
        })
    }
}

impl Service<http::Request<tonic::body::Body>> for Checkout {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let checkout = self.clone();
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<PlaceReply, PlaceRequest>::default());
            let response = match request.uri().path() {
                "/cross.Checkout/Place" => grpc.unary(Place(checkout), request).await,
                _ => tonic::Status::unimplemented("no such method").into_http(),
            };
            Ok(response)
        })
    }
}

/// What the consumer saw of one message, inside its process span.
#[derive(Clone, Debug)]
struct Consumed {
    key: String,
    trace: Option<TraceId>,
}

/// A `TracedStreamConsumer` in a task, noting each message (or error)
/// inside its process span.
fn consume(
    config: &ClientConfig,
    topic: &str,
    consumed: Log<Consumed>,
    errors: Log<String>,
) -> ConsumerTask {
    let consumer: TracedStreamConsumer =
        TracedStreamConsumer::from_config(config).expect("stream consumer");
    consumer.inner().subscribe(&[topic]).expect("subscribe");
    ConsumerTask(tokio::spawn(async move {
        consumer
            .stream()
            .for_each(|received| {
                match received.map(|message| message.detach()) {
                    Ok((message, span)) => {
                        let _entered = span.enter();
                        lock(&consumed).push(Consumed {
                            key: String::from_utf8_lossy(message.key().unwrap_or_default())
                                .into_owned(),
                            trace: tracewire::current_span_context().map(|cx| cx.trace_id()),
                        });
                    }
                    Err(error) => lock(&errors).push(error.to_string()),
                }
                std::future::ready(())
            })
            .await;
    }))
}

struct ConsumerTask(tokio::task::JoinHandle<()>);

impl ConsumerTask {
    async fn stop(self) {
        self.0.abort();
        match self.0.await {
            Ok(()) => {}
            Err(error) if error.is_cancelled() => {}
            Err(error) => std::panic::resume_unwind(error.into_panic()),
        }
    }
}

async fn grpc_http_kafka(exporter: InMemoryExporter) {
    let broker = Broker::start();
    let topic = broker.topic("payments", 1).await;
    // A group of its own (each `consumer_config` names a new one).
    let config = broker.consumer_config();
    let group = config.get("group.id").expect("group").to_owned();
    let producer: TracedFutureProducer =
        TracedFutureProducer::from_config(&broker.producer_config()).expect("producer");
    let payments_url = support::serve(payments(producer, &topic)).await;
    let checkout = support::grpc::start_server(Routes::new(Checkout {
        client: support::reqwest_client(),
        payments: payments_url.clone().into(),
    }));
    let consumed = Log::default();
    let errors = Log::default();
    let consumer = consume(&config, &topic, consumed.clone(), errors.clone());

    let mut client = support::grpc::client_of(checkout);
    let root = tracing::info_span!("checkout");
    let trace = root.span_context().expect("traced").trace_id();
    let reply: PlaceReply = support::grpc::unary(
        &mut client,
        "/cross.Checkout/Place",
        PlaceRequest {
            order: "order-9".to_owned(),
        },
    )
    .instrument(root)
    .await
    .expect("Place answered OK");
    let (partition, offset) = reply.written_at.split_once(' ').expect("partition offset");
    assert_eq!(partition, "0");
    let offset: i64 = offset.parse().expect("offset");

    let waiting_errors = errors.clone();
    let spans = support::wait_for_spans(&exporter, SPANS, WITHIN, move || {
        format!("consumer errors: {:?}", lock(&waiting_errors))
    })
    .await;
    consumer.stop().await;
    assert!(
        lock(&errors).is_empty(),
        "consumer errors: {:?}",
        lock(&errors)
    );

    // One trace, and exactly this tree.
    assert_eq!(spans.len(), SPANS, "{}", exporter.tree());
    assert!(
        spans.iter().all(|s| s.span_context.trace_id() == trace),
        "one trace:\n{}",
        exporter.tree()
    );
    assert_eq!(
        exporter.tree(),
        support::tree([
            "checkout".to_owned(),
            format!("  {PLACE} [client]"),
            format!("    {PLACE} [server]"),
            "      POST [client]".to_owned(),
            "        POST /payments/{order} [server]".to_owned(),
            format!("          send {topic} [producer]"),
            format!("            process {topic} [consumer]"),
        ])
    );

    // The parent chain, span by span.
    let root = exporter.span("checkout");
    let grpc_client = child(&exporter, &root, PLACE);
    assert_eq!(grpc_client.kind, SpanKind::Client);
    assert!(!grpc_client.parent_is_remote);
    let grpc_server = child(&exporter, &grpc_client, PLACE);
    assert_eq!(grpc_server.kind, SpanKind::Server);
    assert!(
        grpc_server.parent_is_remote,
        "the context came through gRPC metadata"
    );
    for span in [&grpc_client, &grpc_server] {
        assert_eq!(str_attr(span, "rpc.system.name"), "grpc");
        assert_eq!(str_attr(span, "rpc.method"), PLACE, "fully qualified");
        assert_eq!(str_attr(span, "rpc.response.status_code"), "OK");
        assert_eq!(str_attr(span, "server.address"), "127.0.0.1");
        assert_eq!(span.status, Status::Unset);
        assert!(span.attribute("error.type").is_none());
    }
    assert_eq!(
        int_attr(&grpc_client, "server.port"),
        i64::from(checkout.port())
    );

    let http_client = child(&exporter, &grpc_server, "POST");
    assert_eq!(http_client.kind, SpanKind::Client);
    assert!(
        !http_client.parent_is_remote,
        "called from the gRPC handler"
    );
    assert_eq!(
        str_attr(&http_client, "url.full"),
        format!("{payments_url}/payments/order-9")
    );
    assert_eq!(int_attr(&http_client, "http.response.status_code"), 200);
    assert!(
        http_client.attribute("rpc.system.name").is_none(),
        "an HTTP span"
    );

    let http_server = child(&exporter, &http_client, "POST /payments/{order}");
    assert_eq!(http_server.kind, SpanKind::Server);
    assert!(
        http_server.parent_is_remote,
        "the context came through HTTP headers"
    );
    assert_eq!(str_attr(&http_server, "http.route"), "/payments/{order}");
    assert_eq!(int_attr(&http_server, "http.response.status_code"), 200);
    assert_eq!(http_server.status, Status::Unset);

    let (host, port) = broker.address();
    let send = child(&exporter, &http_server, &format!("send {topic}"));
    assert_eq!(send.kind, SpanKind::Producer);
    assert!(!send.parent_is_remote);
    assert_eq!(send.status, Status::Unset);
    assert_eq!(str_attr(&send, "messaging.system"), "kafka");
    assert_eq!(str_attr(&send, "messaging.operation.type"), "send");
    assert_eq!(str_attr(&send, "messaging.destination.name"), topic);
    assert_eq!(str_attr(&send, "messaging.destination.partition.id"), "0");
    assert_eq!(int_attr(&send, "messaging.kafka.offset"), offset);
    assert_eq!(str_attr(&send, "messaging.kafka.message.key"), "order-9");
    assert_eq!(str_attr(&send, "server.address"), host);
    assert_eq!(int_attr(&send, "server.port"), port);

    // The messaging conventions: the process span of a message polled
    // outside any span is the producer span's remote child, with no links.
    let process = child(&exporter, &send, &format!("process {topic}"));
    assert_eq!(process.kind, SpanKind::Consumer);
    assert!(process.parent_is_remote, "the context came through Kafka");
    assert!(process.links.is_empty(), "polled outside any span");
    assert_eq!(process.status, Status::Unset);
    assert_eq!(str_attr(&process, "messaging.system"), "kafka");
    assert_eq!(str_attr(&process, "messaging.operation.type"), "process");
    assert_eq!(str_attr(&process, "messaging.destination.name"), topic);
    assert_eq!(
        process.attribute("messaging.kafka.offset"),
        Some(&Value::I64(offset))
    );
    assert_eq!(str_attr(&process, "messaging.kafka.message.key"), "order-9");
    assert_eq!(str_attr(&process, "messaging.consumer.group.name"), group);

    // What the consumer saw while processing.
    let consumed = lock(&consumed).clone();
    assert_eq!(consumed.len(), 1, "one message: {consumed:?}");
    assert_eq!(consumed[0].key, "order-9");
    assert_eq!(
        consumed[0].trace,
        Some(trace),
        "processed in the gRPC caller's trace"
    );
}

#[test]
fn grpc_http_kafka_is_one_trace() {
    support::run(Subscriber::PerTest, grpc_http_kafka);
}
