//! gRPC server load test (issue 14): a tonic unary hello-world service over
//! loopback, driven by a tonic client (HTTP/2, several calls in flight over
//! a few connections, a fixed duration per run, runs alternating between
//! the servers). It measures what a user pays: the CPU of the whole server
//! process (all its threads, export included) per call.
//!
//! Each server runs in its own child process (this binary, re-executed
//! with `--load-server=<variant>`, see [`tracewire_benches::load`]), pinned
//! to one core with all its threads: the current-thread runtime serving
//! the calls, the batch processor's export thread, any thread the tracing
//! stack starts. The load client runs in this process, pinned to the other
//! core. Around each run the server's usage is read from `/proc/<pid>`:
//! the CPU time of all its threads and their context switches. After the
//! load of a run stops, the server flushes its batch processor, so the
//! export of the run's spans is in the run's measurement.
//!
//! The service is written by hand (no protoc, no generated code): prost
//! messages, `tonic_prost::ProstCodec`, `tonic::server::Grpc` with a
//! `UnaryService`, `NamedService`; the client is `tonic::client::Grpc`
//! over a `Channel`.
//!
//! The servers (variants):
//!
//! - `untraced`: no tracing layer, no subscriber;
//! - `tracewire_100`: `tracewire_tower::TraceLayer::grpc_server()` under
//!   `TracewireLayer` sampling every call, exporting through
//!   `BatchSpanProcessor` (default `BatchConfig`) to an exporter that
//!   discards;
//! - `tracewire_0`: the same, sampling nothing (ids, no recording);
//! - `tower_http_otel`: tower-http's `TraceLayer::new_for_grpc()` with its
//!   defaults (its `DEBUG` events on request, response and end of stream,
//!   recorded as span events since no level filter is installed) except
//!   `make_span_with`, which extracts the W3C context from the metadata
//!   (`opentelemetry_sdk`'s propagator), sets it as the span's parent and
//!   gives the span what tracewire's carries (name `bench.Greeter/SayHello`,
//!   kind server, `rpc.system.name`, `rpc.method`, `server.address`/`port`,
//!   the status code (`rpc.grpc.status_code`) recorded from the
//!   `grpc-status` trailer);
//!   under `tracing-opentelemetry` 0.34's layer with its defaults and
//!   `opentelemetry_sdk` 0.33 (ParentBased AlwaysOn, its batch processor
//!   with its defaults, to an exporter that discards);
//! - `tower_http_otel_tuned`: the same span without tower-http's events
//!   (`on_request`, `on_response`, `on_body_chunk`, `on_failure` off;
//!   `on_eos` only records the status) and the layer built
//!   `with_location(false)`, `with_threads(false)`,
//!   `with_tracked_inactivity(false)`.
//!
//! Every traced server has the same level filter: h2's, hyper's and
//! tonic's own spans and events below `WARN` are left out (h2 alone has
//! dozens of `TRACE` spans per call, which no service records), everything
//! else is kept. Every call carries a sampled `traceparent` in its metadata. Settings
//! from the environment: `BENCH_GRPC_SECONDS` (2) per run,
//! `BENCH_GRPC_CONNECTIONS` (2), `BENCH_GRPC_STREAMS` (32 calls in flight
//! over those connections), `BENCH_GRPC_MAX_REQUESTS` (5,000,000 per run),
//! `BENCH_ROUNDS` (5 runs per server here unless set), after one warm-up
//! run each.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::server::{NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};
use tonic::{Status, transport};
use tonic_prost::ProstCodec;
use tower_http::trace::{OnEos as _, OnResponse as _};
use tracewire::sampling::{AlwaysOff, AlwaysOn};
use tracewire_benches::load::{
    self, LoadSettings, Pipeline, ServeFn, Server, Spec, TRACEPARENT, otel_dispatch, otel_parent,
    tracewire_dispatch,
};
use tracewire_benches::report::Bar;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::filter::{LevelFilter, Targets};

/// The one method the bench calls.
const PATH: &str = "/bench.Greeter/SayHello";

/// The request message.
#[derive(Clone, PartialEq, prost::Message)]
struct HelloRequest {
    #[prost(string, tag = "1")]
    name: String,
}

/// The response message.
#[derive(Clone, PartialEq, prost::Message)]
struct HelloReply {
    #[prost(string, tag = "1")]
    message: String,
}

/// `bench.Greeter`: `SayHello` answers `Hello, <name>!`.
#[derive(Clone, Copy, Debug, Default)]
struct Greeter;

impl NamedService for Greeter {
    const NAME: &'static str = "bench.Greeter";
}

struct SayHello;

impl UnaryService<HelloRequest> for SayHello {
    type Response = HelloReply;
    type Future = Ready<Result<tonic::Response<HelloReply>, Status>>;

    fn call(&mut self, request: tonic::Request<HelloRequest>) -> Self::Future {
        let name = request.into_inner().name;
        ready(Ok(tonic::Response::new(HelloReply {
            message: format!("Hello, {name}!"),
        })))
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl tower::Service<http::Request<tonic::body::Body>> for Greeter {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            Ok(if request.uri().path() == PATH {
                let mut grpc =
                    tonic::server::Grpc::new(ProstCodec::<HelloReply, HelloRequest>::default());
                grpc.unary(SayHello, request).await
            } else {
                Status::unimplemented("no such method").into_http()
            })
        })
    }
}

/// tower-http's span, continuing the caller's W3C context, with the
/// attributes tracewire's gRPC server span has.
fn otel_make_span<B>(request: &http::Request<B>) -> Span {
    let parent = otel_parent(request.headers());
    let method = request.uri().path().trim_start_matches('/');
    let span = tracing::info_span!(
        "gRPC request",
        otel.name = method,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        rpc.system.name = "grpc",
        rpc.method = method,
        server.address = request.uri().host(),
        server.port = request.uri().port_u16(),
        rpc.grpc.status_code = tracing::field::Empty,
    );
    let _ = span.set_parent(parent);
    span
}

/// Records the `grpc-status` of the trailers (or of a trailers-only
/// response's headers); an error as tracewire's server span counts them.
fn record_status(headers: Option<&http::HeaderMap>, span: &Span) {
    let code = headers
        .and_then(|h| h.get("grpc-status"))
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    let Some(code) = code else { return };
    // The integer code (the older attribute): the same work as the name,
    // without a second copy of the status-name table.
    span.record("rpc.grpc.status_code", code);
    // UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE,
    // DATA_LOSS.
    if matches!(code, 2 | 4 | 12 | 13 | 14 | 15) {
        span.record("otel.status_code", "error");
    }
}

fn on_response<B>(response: &http::Response<B>, latency: Duration, span: &Span) {
    record_status(Some(response.headers()), span);
    tower_http::trace::DefaultOnResponse::new().on_response(response, latency, span);
}

fn on_eos(trailers: Option<&http::HeaderMap>, duration: Duration, span: &Span) {
    record_status(trailers, span);
    tower_http::trace::DefaultOnEos::new().on_eos(trailers, duration, span);
}

fn on_response_tuned<B>(response: &http::Response<B>, _: Duration, span: &Span) {
    record_status(Some(response.headers()), span);
}

fn on_eos_tuned(trailers: Option<&http::HeaderMap>, _: Duration, span: &Span) {
    record_status(trailers, span);
}

/// Serves `Greeter` behind the layer with tonic's server (a macro: the
/// layered service's bounds are tonic's to check).
macro_rules! serve_with {
    ($layer:expr) => {{
        let layer = $layer;
        let serve: ServeFn = Box::new(move |listener, shutdown| {
            Box::pin(async move {
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                transport::Server::builder()
                    .layer(layer)
                    .add_service(Greeter)
                    .serve_with_incoming_shutdown(incoming, shutdown)
                    .await
                    .expect("the server runs");
            })
        });
        serve
    }};
}

/// h2, hyper and tonic trace their own internals (h2: dozens of
/// `TRACE`-level spans per call); every traced server keeps them out, as
/// any gRPC service's level filter does, and keeps everything else.
fn transport_filter() -> Targets {
    Targets::new()
        .with_default(LevelFilter::TRACE)
        .with_target("h2", LevelFilter::WARN)
        .with_target("hyper", LevelFilter::WARN)
        .with_target("hyper_util", LevelFilter::WARN)
        .with_target("tonic", LevelFilter::WARN)
}

/// The server `variant`, in its process.
fn server(variant: &str) -> Server {
    let (dispatch, pipeline, serve) = match variant {
        "untraced" => (
            None,
            Pipeline::None,
            serve_with!(tower::layer::util::Identity::new()),
        ),
        "tracewire_100" | "tracewire_0" => {
            let (dispatch, pipeline) = if variant == "tracewire_100" {
                tracewire_dispatch(AlwaysOn, Some(transport_filter()))
            } else {
                tracewire_dispatch(AlwaysOff, Some(transport_filter()))
            };
            let serve = serve_with!(tracewire_tower::TraceLayer::grpc_server());
            (Some(dispatch), pipeline, serve)
        }
        "tower_http_otel" => {
            let (dispatch, pipeline) = otel_dispatch(false, Some(transport_filter()));
            let layer = tower_http::trace::TraceLayer::new_for_grpc()
                .make_span_with(otel_make_span::<tonic::body::Body>)
                .on_response(on_response::<tonic::body::Body>)
                .on_eos(on_eos);
            (Some(dispatch), pipeline, serve_with!(layer))
        }
        "tower_http_otel_tuned" => {
            let (dispatch, pipeline) = otel_dispatch(true, Some(transport_filter()));
            let layer = tower_http::trace::TraceLayer::new_for_grpc()
                .make_span_with(otel_make_span::<tonic::body::Body>)
                .on_request(())
                .on_response(on_response_tuned::<tonic::body::Body>)
                .on_body_chunk(())
                .on_eos(on_eos_tuned)
                .on_failure(());
            (Some(dispatch), pipeline, serve_with!(layer))
        }
        other => panic!("unknown server {other:?}"),
    };
    Server {
        dispatch,
        pipeline,
        serve,
    }
}

/// The load client: `streams` tasks calling `SayHello` back to back (one
/// call in flight each), spread over `connections` HTTP/2 connections, for
/// the run's duration and at most `max_requests` calls in all; returns the
/// replies received.
async fn drive(addr: SocketAddr, settings: LoadSettings) -> u64 {
    let deadline = Instant::now() + settings.duration;
    let per_stream = (settings.max_requests / settings.streams.max(1)).max(1);
    let mut channels: Vec<Channel> = Vec::new();
    for _ in 0..settings.connections.max(1) {
        let endpoint = Endpoint::from_shared(format!("http://{addr}"))
            .expect("an origin")
            .tcp_nodelay(true);
        channels.push(endpoint.connect().await.expect("connected"));
    }
    let traceparent = MetadataValue::from_static(TRACEPARENT);
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..settings.streams {
        let channel = channels[s as usize % channels.len()].clone();
        let traceparent = traceparent.clone();
        tasks.spawn(async move {
            let mut client = tonic::client::Grpc::new(channel);
            let mut done = 0u64;
            while done < per_stream && Instant::now() < deadline {
                client.ready().await.expect("the channel is ready");
                let mut request = tonic::Request::new(HelloRequest {
                    name: format!("user {s}"),
                });
                request
                    .metadata_mut()
                    .insert("traceparent", traceparent.clone());
                let reply = client
                    .unary(
                        request,
                        PathAndQuery::from_static(PATH),
                        ProstCodec::<HelloRequest, HelloReply>::default(),
                    )
                    .await
                    .expect("a reply");
                assert!(!reply.get_ref().message.is_empty(), "an empty reply");
                done += 1;
            }
            done
        });
    }
    let mut total = 0;
    while let Some(done) = tasks.join_next().await {
        total += done.expect("the client task");
    }
    total
}

fn main() {
    load::main(
        &Spec {
            label: "grpc",
            title: "gRPC server (tonic unary), whole server process pinned to one core (issue 14)",
            subject: "tracewire-tower gRPC",
            bar_0: Bar::ThroughputAtLeast(0.95),
            bar_100: Bar::ThroughputAtLeast(0.9),
            bar_tuned: Bar::Info,
            connections: 2,
            streams: Some(32),
        },
        server,
        drive,
    );
}
