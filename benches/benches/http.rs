//! HTTP server load test: an axum hello-world service over loopback,
//! driven by the load client below (keep-alive HTTP/1.1 connections, a
//! fixed duration per run, runs alternating between the servers):
//!
//! - `untraced`: no tracing layer, no subscriber;
//! - `tracewire_100`: `tracewire_tower::TraceLayer::server()` under
//!   `TracewireLayer` sampling every request, exporting through
//!   `BatchSpanProcessor` to an exporter that discards;
//! - `tracewire_0`: the same, sampling nothing (ids, no recording);
//! - `tower_http_otel`: tower-http's `TraceLayer` whose `make_span_with`
//!   extracts the W3C context (`opentelemetry_sdk`'s propagator) and sets
//!   it as the span's parent, under `tracing-opentelemetry` 0.34 with
//!   `opentelemetry_sdk` 0.33 (AlwaysOn, its `BatchSpanProcessor` to an
//!   exporter that discards). Its span carries what tracewire's does
//!   (name from the route, kind, method, path, route, status code).
//!
//! Every request carries a sampled `traceparent`. Each server runs on one
//! thread (a current-thread runtime) and the client on another, so on the
//! 2-core machine both have a core. Settings from the environment:
//! `BENCH_HTTP_SECONDS` (2) per run, `BENCH_HTTP_CONNECTIONS` (16),
//! `BENCH_ROUNDS` (5 runs per server here unless set), after one warm-up
//! run each.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Path};
use axum::routing::get;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::rt::TokioIo;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use tokio::sync::Notify;
use tracewire::TracewireLayer;
use tracewire::export::{BatchConfig, BatchSpanProcessor, ExportFuture, SpanExporter};
use tracewire::sampling::{AlwaysOff, AlwaysOn};
use tracewire_benches::alternate::{self, Settings, Variant};
use tracewire_benches::report::{self, Bar};
use tracing::{Dispatch, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::prelude::*;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

async fn user(Path(id): Path<u32>) -> String {
    format!("Hello, user {id}!")
}

fn app() -> Router {
    Router::new().route("/users/{id}", get(user))
}

/// Counts and discards what tracewire's batch processor exports.
#[derive(Debug, Clone, Default)]
struct DiscardTracewire(Arc<AtomicU64>);

impl SpanExporter for DiscardTracewire {
    fn export(&mut self, batch: Vec<tracewire::SpanData>) -> ExportFuture<'_> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
}

/// Counts and discards what opentelemetry_sdk's batch processor exports.
#[derive(Debug, Clone, Default)]
struct DiscardOtel(Arc<AtomicU64>);

impl opentelemetry_sdk::trace::SpanExporter for DiscardOtel {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// `opentelemetry`'s view of an `http::HeaderMap`.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// tower-http's span, continuing the caller's W3C context, with the
/// attributes tracewire's server span has.
fn otel_make_span<B>(request: &Request<B>) -> Span {
    let propagator = opentelemetry_sdk::propagation::TraceContextPropagator::new();
    let parent = propagator.extract(&HeaderExtractor(request.headers()));
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("", MatchedPath::as_str);
    let span = tracing::info_span!(
        "HTTP request",
        otel.name = %format_args!("{} {}", request.method(), route),
        otel.kind = "server",
        http.request.method = %request.method(),
        url.path = request.uri().path(),
        url.scheme = "http",
        http.route = route,
        network.protocol.version = "1.1",
        http.response.status_code = tracing::field::Empty,
    );
    let _ = span.set_parent(parent);
    span
}

/// A server on its own thread and current-thread runtime, with `dispatch`
/// as the thread's subscriber.
struct Server {
    addr: SocketAddr,
    stop: Arc<Notify>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start(app: Router, dispatch: Dispatch) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("an address");
        let stop = Arc::new(Notify::new());
        let stopped = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            tracing::dispatcher::with_default(&dispatch, || {
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stopped.notified().await })
                        .await
                        .expect("the server runs");
                });
            });
        });
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The load client: `connections` keep-alive connections sending requests
/// back to back for `duration`; returns the responses received.
async fn load(addr: SocketAddr, connections: u64, duration: Duration) -> u64 {
    let deadline = Instant::now() + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        tasks.spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .expect("connected");
            stream.set_nodelay(true).expect("nodelay");
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(connection);
            let uri = format!("http://{addr}/users/{c}");
            let mut done = 0u64;
            while Instant::now() < deadline {
                let request = Request::get(uri.as_str())
                    .header(http::header::HOST, "bench")
                    .header("traceparent", TRACEPARENT)
                    .body(Empty::new())
                    .expect("a request");
                sender.ready().await.expect("connection ready");
                let response: Response<_> = sender.send_request(request).await.expect("a response");
                assert!(response.status().is_success(), "{}", response.status());
                let body = response.into_body().collect().await.expect("a body");
                assert!(!body.to_bytes().is_empty());
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

fn tracewire_dispatch(sampler: impl tracewire::sampling::Sampler) -> (Dispatch, DiscardTracewire) {
    let exporter = DiscardTracewire::default();
    let layer = TracewireLayer::builder()
        .sampler(sampler)
        .processor(BatchSpanProcessor::new(
            exporter.clone(),
            BatchConfig::default(),
        ))
        .build();
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        exporter,
    )
}

fn main() {
    let settings = Settings::from_args();
    if !settings.wants("http/") {
        return;
    }
    let seconds = env("BENCH_HTTP_SECONDS", 2);
    let connections = env("BENCH_HTTP_CONNECTIONS", 16);
    let settings = Settings {
        rounds: env("BENCH_ROUNDS", 5) as usize,
        warm_up_rounds: 1,
        ..settings
    };

    let untraced = Server::start(app(), Dispatch::none());
    let (dispatch, tracewire_100_spans) = tracewire_dispatch(AlwaysOn);
    let tracewire_100 = Server::start(app().layer(tracewire_tower::TraceLayer::server()), dispatch);
    let (dispatch, tracewire_0_spans) = tracewire_dispatch(AlwaysOff);
    let tracewire_0 = Server::start(app().layer(tracewire_tower::TraceLayer::server()), dispatch);
    let otel_spans = DiscardOtel::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
            opentelemetry_sdk::trace::Sampler::AlwaysOn,
        )))
        .with_batch_exporter(otel_spans.clone())
        .build();
    let otel_dispatch = Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"))),
    );
    let tower_http_otel = Server::start(
        app().layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(otel_make_span)
                .on_request(())
                .on_response(
                    |response: &Response<axum::body::Body>, _: Duration, span: &Span| {
                        span.record("http.response.status_code", response.status().as_u16());
                    },
                )
                .on_failure(()),
        ),
        otel_dispatch,
    );

    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let duration = Duration::from_secs(seconds);
    let run = |addr: SocketAddr| {
        let requests = client.block_on(load(addr, connections, duration));
        duration / u32::try_from(requests.max(1)).unwrap_or(u32::MAX)
    };
    let mut variants = [
        Variant::measured("untraced", || run(untraced.addr)),
        Variant::measured("tracewire_100", || run(tracewire_100.addr)),
        Variant::measured("tracewire_0", || run(tracewire_0.addr)),
        Variant::measured("tower_http_otel", || run(tower_http_otel.addr)),
    ];
    alternate::run(&settings, "http", 1, &mut variants);
    let mut rows = alternate::throughput_row(
        "axum hello world, requests/s: tracewire-tower at 100% sampling / no layer",
        &variants[1],
        &variants[0],
        Bar::ThroughputAtLeast(0.9),
    );
    rows.push_str(&alternate::throughput_row(
        "axum hello world, requests/s: tracewire-tower at 100% / tower-http TraceLayer + tracing-opentelemetry",
        &variants[1],
        &variants[3],
        Bar::ThroughputAtLeast(1.5),
    ));
    rows.push_str(&alternate::throughput_row(
        "axum hello world, requests/s: tracewire-tower at 0% sampling / no layer",
        &variants[2],
        &variants[0],
        Bar::Info,
    ));
    drop(variants);
    drop((untraced, tracewire_100, tracewire_0, tower_http_otel));
    let _ = provider.shutdown();
    // Every sampled request was exported (the servers flushed on drop).
    assert!(
        tracewire_100_spans.0.load(Ordering::Relaxed) > 0,
        "nothing exported"
    );
    assert_eq!(
        tracewire_0_spans.0.load(Ordering::Relaxed),
        0,
        "0% exported spans"
    );
    assert!(
        otel_spans.0.load(Ordering::Relaxed) > 0,
        "nothing exported (otel)"
    );
    report::print_rows("HTTP server (issue 4)", &rows);
}
