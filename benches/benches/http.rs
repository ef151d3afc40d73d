//! HTTP server load test: an axum hello-world service over loopback,
//! driven by the load client below (keep-alive HTTP/1.1 connections, a
//! fixed duration per run, runs alternating between the servers). It
//! measures what a user pays: the CPU of the whole server process (all its
//! threads, export included) per request.
//!
//! Each server runs in its own child process (this binary, re-executed
//! with `--load-server=<variant>`, see [`tracewire_benches::load`]), pinned to one core with all its
//! threads: the current-thread runtime serving the requests, the batch
//! processor's export thread, any thread the tracing stack starts. The
//! load client runs in this process, pinned to the other core. Around each
//! run the server's usage is read from `/proc/<pid>` (see
//! [`tracewire_benches::usage`]): the CPU time of all its threads and their
//! context switches. After the load of a run stops, the server is told to
//! flush its batch processor and answers when done, so the export of the
//! run's spans is in the run's measurement.
//!
//! The servers (variants):
//!
//! - `untraced`: no tracing layer, no subscriber;
//! - `tracewire_100`: `tracewire_tower::TraceLayer::server()` under
//!   `TracewireLayer` sampling every request, exporting through
//!   `BatchSpanProcessor` (default `BatchConfig`) to an exporter that
//!   discards;
//! - `tracewire_0`: the same, sampling nothing (ids, no recording);
//! - `tower_http_otel`: tower-http's `TraceLayer::new_for_http()` with its
//!   defaults — its `DEBUG` events on request and response, recorded as
//!   span events since no level filter is installed — except
//!   `make_span_with`, which extracts the W3C context (`opentelemetry_sdk`'s
//!   propagator), sets it as the span's parent and gives the span what
//!   tracewire's carries (name from the route, kind, method, path, route,
//!   status code, recorded on response); under `tracing-opentelemetry`
//!   0.34's layer with its defaults (source location, thread name and id,
//!   busy and idle time) and `opentelemetry_sdk` 0.33 (ParentBased
//!   AlwaysOn, its `BatchSpanProcessor` to an exporter that discards);
//! - `tower_http_otel_tuned`: the same span without tower-http's events
//!   (`on_request`, `on_body_chunk`, `on_eos`, `on_failure` off;
//!   `on_response` only records the status code) and the layer built
//!   `with_location(false)`, `with_threads(false)`,
//!   `with_tracked_inactivity(false)`: the attributes of tracewire's span.
//!
//! Every request carries a sampled `traceparent`. The client is as light
//! as `wrk` (prepared request bytes, responses only framed), so the server's
//! core, not the client's, sets the pace: the report shows how busy the
//! server's core was. Settings from the
//! environment: `BENCH_HTTP_SECONDS` (2) per run, `BENCH_HTTP_CONNECTIONS`
//! (16), `BENCH_HTTP_MAX_REQUESTS` (5,000,000 per run), `BENCH_ROUNDS` (5
//! runs per server here unless set), after one warm-up run each. A server
//! process exits when this process closes its stdin (or dies), and by
//! itself after a deadline covering the whole bench.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Path};
use axum::routing::get;
use http::{Request, Response};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tower_http::trace::OnResponse as _;
use tracewire::sampling::{AlwaysOff, AlwaysOn};
use tracewire_benches::load::{
    self, LoadSettings, Pipeline, Server, Spec, TRACEPARENT, otel_dispatch, otel_parent,
    tracewire_dispatch,
};
use tracewire_benches::report::Bar;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

async fn user(Path(id): Path<u32>) -> String {
    format!("Hello, user {id}!")
}

fn app() -> Router {
    Router::new().route("/users/{id}", get(user))
}

/// tower-http's span, continuing the caller's W3C context, with the
/// attributes tracewire's server span has.
fn otel_make_span<B>(request: &Request<B>) -> Span {
    let parent = otel_parent(request.headers());
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

fn record_status(response: &Response<axum::body::Body>, span: &Span) {
    span.record("http.response.status_code", response.status().as_u16());
}

/// The server `variant`, in its process.
fn server(variant: &str) -> Server {
    let (app, dispatch, pipeline) = match variant {
        "untraced" => (app(), None, Pipeline::None),
        "tracewire_100" | "tracewire_0" => {
            let (dispatch, pipeline) = if variant == "tracewire_100" {
                tracewire_dispatch(AlwaysOn, None)
            } else {
                tracewire_dispatch(AlwaysOff, None)
            };
            let app = app().layer(tracewire_tower::TraceLayer::server());
            (app, Some(dispatch), pipeline)
        }
        "tower_http_otel" => {
            let (dispatch, pipeline) = otel_dispatch(false, None);
            let layer = tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(otel_make_span)
                .on_response(
                    |response: &Response<axum::body::Body>, latency: Duration, span: &Span| {
                        record_status(response, span);
                        tower_http::trace::DefaultOnResponse::new()
                            .on_response(response, latency, span);
                    },
                );
            (app().layer(layer), Some(dispatch), pipeline)
        }
        "tower_http_otel_tuned" => {
            let (dispatch, pipeline) = otel_dispatch(true, None);
            let layer = tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(otel_make_span)
                .on_request(())
                .on_response(
                    |response: &Response<axum::body::Body>, _: Duration, span: &Span| {
                        record_status(response, span);
                    },
                )
                .on_body_chunk(())
                .on_eos(())
                .on_failure(());
            (app().layer(layer), Some(dispatch), pipeline)
        }
        other => panic!("unknown server {other:?}"),
    };
    Server {
        dispatch,
        pipeline,
        serve: Box::new(move |listener, shutdown| {
            Box::pin(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                    .expect("the server runs");
            })
        }),
    }
}

/// The length of the first response in `buf`, once it is all there
/// (a `200` with a `content-length`, as the server sends).
fn response_len(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&buf[..head_end]).expect("an ASCII head");
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a content-length");
    assert!(length > 0, "an empty body");
    (buf.len() >= head_end + length).then_some(head_end + length)
}

/// The load client: `connections` keep-alive HTTP/1.1 connections sending
/// requests back to back (one in flight each) for the run's duration, and
/// at most `max_requests` in all; returns the responses received. Like `wrk`, it
/// writes prepared bytes and only frames the responses, so that one core
/// of client loads one core of server fully.
async fn drive(addr: SocketAddr, settings: LoadSettings) -> u64 {
    let connections = settings.connections;
    let deadline = Instant::now() + settings.duration;
    let per_connection = (settings.max_requests / connections.max(1)).max(1);
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..connections {
        tasks.spawn(async move {
            let mut stream = tokio::net::TcpStream::connect(addr)
                .await
                .expect("connected");
            stream.set_nodelay(true).expect("nodelay");
            let request = format!(
                "GET /users/{c} HTTP/1.1\r\nhost: bench\r\ntraceparent: {TRACEPARENT}\r\n\r\n"
            );
            let mut buf = Vec::with_capacity(4096);
            let mut done = 0u64;
            while done < per_connection && Instant::now() < deadline {
                stream
                    .write_all(request.as_bytes())
                    .await
                    .expect("a request sent");
                let len = loop {
                    if let Some(len) = response_len(&buf) {
                        break len;
                    }
                    let read = stream.read_buf(&mut buf).await.expect("a response");
                    assert!(read > 0, "the server closed the connection");
                };
                buf.drain(..len);
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
            label: "http",
            title: "HTTP server, whole server process pinned to one core (issue 4)",
            subject: "tracewire-tower",
            bar_0: Bar::ThroughputAtLeast(0.95),
            bar_100: Bar::ThroughputAtLeast(0.8),
            bar_tuned: Bar::ThroughputAtLeast(1.6),
            connections: 16,
            streams: None,
        },
        server,
        drive,
    );
}
