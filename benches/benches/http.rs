//! HTTP server load test: an axum hello-world service over loopback,
//! driven by the load client below (keep-alive HTTP/1.1 connections, a
//! fixed duration per run, runs alternating between the servers). It
//! measures what a user pays: the CPU of the whole server process (all its
//! threads, export included) per request.
//!
//! Each server runs in its own child process (this binary, re-executed
//! with `--http-server=<variant>`), pinned to one core with all its
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

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Path};
use axum::routing::get;
use http::{Request, Response};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Notify;
use tower_http::trace::OnResponse as _;
use tracewire::TracewireLayer;
use tracewire::export::{BatchConfig, BatchSpanProcessor, ExportFuture, SpanExporter};
use tracewire::processor::SpanProcessor as _;
use tracewire::sampling::{AlwaysOff, AlwaysOn};
use tracewire_benches::alternate::{self, Settings, Variant, median, per_round_ratios};
use tracewire_benches::report::{self, Bar};
use tracewire_benches::usage::{self, Usage};
use tracing::{Dispatch, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::prelude::*;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The servers, in the order of the rounds.
const VARIANTS: [&str; 5] = [
    "untraced",
    "tracewire_100",
    "tracewire_0",
    "tower_http_otel",
    "tower_http_otel_tuned",
];

/// Re-executes this binary as the server `--http-server=<variant>`.
const SERVER_FLAG: &str = "--http-server=";
/// The core the server process pins itself to.
const CORE_FLAG: &str = "--http-server-core=";
/// Seconds after which the server process exits whatever happens.
const LIFETIME_FLAG: &str = "--http-server-lifetime=";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn flag(prefix: &str) -> Option<String> {
    std::env::args().find_map(|a| a.strip_prefix(prefix).map(str::to_owned))
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

fn record_status(response: &Response<axum::body::Body>, span: &Span) {
    span.record("http.response.status_code", response.status().as_u16());
}

/// A server's span pipeline, to flush after each run and count what it
/// exported.
enum Pipeline {
    None,
    Tracewire(Arc<BatchSpanProcessor>, DiscardTracewire),
    Otel(opentelemetry_sdk::trace::SdkTracerProvider, DiscardOtel),
}

impl Pipeline {
    fn flush(&self) {
        match self {
            Pipeline::None => {}
            Pipeline::Tracewire(processor, _) => {
                let _ = processor.force_flush(Duration::from_secs(10));
            }
            Pipeline::Otel(provider, _) => {
                let _ = provider.force_flush();
            }
        }
    }

    /// Shuts the pipeline down; returns how many spans it exported.
    fn shutdown(&self) -> u64 {
        match self {
            Pipeline::None => 0,
            Pipeline::Tracewire(processor, exported) => {
                let _ = processor.shutdown(Duration::from_secs(10));
                exported.0.load(Ordering::Relaxed)
            }
            Pipeline::Otel(provider, exported) => {
                let _ = provider.shutdown();
                exported.0.load(Ordering::Relaxed)
            }
        }
    }
}

fn tracewire_server(sampler: impl tracewire::sampling::Sampler) -> (Router, Dispatch, Pipeline) {
    let exporter = DiscardTracewire::default();
    let processor = Arc::new(BatchSpanProcessor::new(
        exporter.clone(),
        BatchConfig::default(),
    ));
    let layer = TracewireLayer::builder()
        .sampler(sampler)
        .processor(Arc::clone(&processor))
        .build();
    (
        app().layer(tracewire_tower::TraceLayer::server()),
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        Pipeline::Tracewire(processor, exporter),
    )
}

/// tracing-opentelemetry's layer over `opentelemetry_sdk`, with its
/// defaults or tuned.
fn otel_dispatch(tuned: bool) -> (Dispatch, Pipeline) {
    let exporter = DiscardOtel::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
            opentelemetry_sdk::trace::Sampler::AlwaysOn,
        )))
        .with_batch_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
    let layer = if tuned {
        layer
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
    } else {
        layer
    };
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        Pipeline::Otel(provider, exporter),
    )
}

/// The server `variant`: its app, its subscriber, its span pipeline.
fn server(variant: &str) -> (Router, Option<Dispatch>, Pipeline) {
    match variant {
        "untraced" => (app(), None, Pipeline::None),
        "tracewire_100" => {
            let (app, dispatch, pipeline) = tracewire_server(AlwaysOn);
            (app, Some(dispatch), pipeline)
        }
        "tracewire_0" => {
            let (app, dispatch, pipeline) = tracewire_server(AlwaysOff);
            (app, Some(dispatch), pipeline)
        }
        "tower_http_otel" => {
            let (dispatch, pipeline) = otel_dispatch(false);
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
            let (dispatch, pipeline) = otel_dispatch(true);
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
    }
}

/// The server process: pins itself, serves on loopback, and reads its
/// commands from stdin (`flush` → flushes the span pipeline and answers
/// `flushed`); at the end of stdin it stops, shuts the pipeline down and
/// writes `exported <spans>`.
fn serve(variant: &str) {
    // First: the threads started below inherit the pinning.
    if let Some(core) = flag(CORE_FLAG).and_then(|c| c.parse().ok())
        && let Err(e) = usage::pin_current_thread(core)
    {
        let _ = writeln!(
            std::io::stderr(),
            "http server {variant}: not pinned to core {core}: {e}"
        );
    }
    let lifetime = flag(LIFETIME_FLAG)
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let name = variant.to_owned();
    thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            thread::sleep(Duration::from_secs(lifetime));
            let _ = writeln!(
                std::io::stderr(),
                "http server {name}: still running after {lifetime} s, exiting"
            );
            std::process::exit(3);
        })
        .expect("the watchdog thread");

    let (app, dispatch, pipeline) = server(variant);
    if let Some(dispatch) = dispatch {
        tracing::dispatcher::set_global_default(dispatch).expect("the first subscriber");
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("an address");
    let stop = Arc::new(Notify::new());
    let stopped = Arc::clone(&stop);
    let runtime_thread = thread::Builder::new()
        .name("server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stopped.notified().await })
                    .await
                    .expect("the server runs");
            });
        })
        .expect("the server thread");

    println!("listening {addr}");
    for line in std::io::stdin().lines() {
        match line.as_deref().map(str::trim) {
            Ok("flush") => {
                pipeline.flush();
                println!("flushed");
            }
            _ => break,
        }
    }
    stop.notify_one();
    let _ = runtime_thread.join();
    println!("exported {}", pipeline.shutdown());
}

/// A server process, seen from the bench.
struct ServerProcess {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
    /// Responses received from it, warm-up included.
    requests: u64,
}

impl ServerProcess {
    fn start(name: &'static str, core: Option<usize>, lifetime: Duration) -> Self {
        let mut command = Command::new(std::env::current_exe().expect("this binary"));
        command
            .arg(format!("{SERVER_FLAG}{name}"))
            .arg(format!("{LIFETIME_FLAG}{}", lifetime.as_secs()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(core) = core {
            command.arg(format!("{CORE_FLAG}{core}"));
        }
        let mut child = command.spawn().expect("the server process");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("its stdout"));
        let mut server = ServerProcess {
            name,
            child,
            stdin,
            stdout,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            requests: 0,
        };
        let line = server.read_line();
        server.addr = line
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{name}: unexpected {line:?}"));
        server
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("the server's answer");
        line.trim().to_owned()
    }

    /// Flushes its span pipeline, waiting for the end.
    fn flush(&mut self) {
        let stdin = self.stdin.as_mut().expect("running");
        writeln!(stdin, "flush").expect("the server reads");
        stdin.flush().expect("the server reads");
        let line = self.read_line();
        assert_eq!(line, "flushed", "{}", self.name);
    }

    fn usage(&self) -> Usage {
        Usage::of(self.child.id()).expect("the server's /proc")
    }

    /// Stops it; returns how many spans it exported.
    fn finish(mut self) -> u64 {
        drop(self.stdin.take());
        let line = self.read_line();
        let _ = self.child.wait();
        line.strip_prefix("exported ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}: unexpected {line:?}", self.name))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
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
/// requests back to back (one in flight each) for `duration`, and at most
/// `max_requests` in all; returns the responses received. Like `wrk`, it
/// writes prepared bytes and only frames the responses, so that one core
/// of client loads one core of server fully.
async fn load(addr: SocketAddr, connections: u64, duration: Duration, max_requests: u64) -> u64 {
    let deadline = Instant::now() + duration;
    let per_connection = (max_requests / connections.max(1)).max(1);
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

/// The measurements of a round, per request, after the wall time.
const CPU_NS: usize = 0;
const CONTEXT_SWITCHES: usize = 1;
const CPU_TICKS_NS: usize = 2;
const BUSY: usize = 3;
const THREADS: usize = 4;

/// The load of one run.
struct Load {
    client: tokio::runtime::Runtime,
    connections: u64,
    duration: Duration,
    max_requests: u64,
}

impl Load {
    /// One run against `server`: its wall time per request and, per
    /// request, the server's CPU time (ns, all threads), context switches,
    /// CPU time by clock ticks (ns); the fraction of the run's wall time
    /// its core was busy with it; its thread count.
    fn run(&self, server: &mut ServerProcess) -> (Duration, Vec<f64>) {
        let before = server.usage();
        let start = Instant::now();
        let requests = self.client.block_on(load(
            server.addr,
            self.connections,
            self.duration,
            self.max_requests,
        ));
        server.flush();
        let elapsed = start.elapsed();
        let used = server.usage().since(&before);
        server.requests += requests;
        let n = requests.max(1) as f64;
        let wall = elapsed.div_f64(n);
        (
            wall,
            vec![
                used.cpu.as_nanos() as f64 / n,
                used.context_switches as f64 / n,
                used.cpu_ticks.as_nanos() as f64 / n,
                used.cpu.as_secs_f64() / elapsed.as_secs_f64(),
                used.threads as f64,
            ],
        )
    }
}

/// The ratio rows of `subject` against `baseline`: CPU per request
/// (baseline's / subject's: higher is cheaper) and requests per second
/// (subject's / baseline's), each with its bar.
fn compare(label: &str, subject: &Variant<'_>, baseline: &Variant<'_>, bar: Bar) -> String {
    let cpu = |v: &Variant<'_>| v.metric(CPU_NS);
    let wall =
        |v: &Variant<'_>| -> Vec<f64> { v.times().iter().map(Duration::as_secs_f64).collect() };
    let (subject_cpu, baseline_cpu) = (cpu(subject), cpu(baseline));
    let mut rows = alternate::ratio_row(
        &format!("{label}: CPU per request (baseline's / subject's)"),
        "CPU efficiency",
        &format!(
            "median {:.2} µs vs {:.2} µs of CPU per request, all server threads",
            median(subject_cpu.clone()) / 1e3,
            median(baseline_cpu.clone()) / 1e3
        ),
        per_round_ratios(&baseline_cpu, &subject_cpu),
        bar,
    );
    let (subject_wall, baseline_wall) = (wall(subject), wall(baseline));
    rows.push_str(&alternate::ratio_row(
        &format!("{label}: requests/s, server pinned to one core"),
        "throughput",
        &format!(
            "median {:.0} vs {:.0} requests/s",
            1.0 / median(subject_wall.clone()),
            1.0 / median(baseline_wall.clone())
        ),
        per_round_ratios(&baseline_wall, &subject_wall),
        bar,
    ));
    rows
}

fn main() {
    if let Some(variant) = flag(SERVER_FLAG) {
        serve(&variant);
        return;
    }
    let settings = Settings::from_args();
    if !settings.wants("http/") {
        return;
    }
    let seconds = env("BENCH_HTTP_SECONDS", 2);
    let settings = Settings {
        rounds: env("BENCH_ROUNDS", 5) as usize,
        warm_up_rounds: 1,
        ..settings
    };

    // The client on one core, every server process on another.
    let cores = usage::allowed_cores().unwrap_or_default();
    let (client_core, server_core) = match cores.as_slice() {
        [client, server, ..] => (Some(*client), Some(*server)),
        _ => (None, None),
    };
    match (client_core, server_core) {
        (Some(client), Some(server)) => {
            usage::pin_current_thread(client).expect("pinning the client");
            println!("http: load client pinned to core {client}, servers to core {server}");
        }
        _ => println!("http: fewer than 2 cores: nothing pinned, CPU per request still measured"),
    }
    let lifetime = Duration::from_secs(
        (settings.rounds + settings.warm_up_rounds) as u64 * VARIANTS.len() as u64 * (seconds + 10)
            + 120,
    );
    let mut servers: Vec<ServerProcess> = VARIANTS
        .iter()
        .map(|name| ServerProcess::start(name, server_core, lifetime))
        .collect();
    let load = Load {
        client: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime"),
        connections: env("BENCH_HTTP_CONNECTIONS", 16),
        duration: Duration::from_secs(seconds),
        max_requests: env("BENCH_HTTP_MAX_REQUESTS", 5_000_000),
    };

    let mut variants: Vec<Variant<'_>> = servers
        .iter_mut()
        .map(|server| {
            let load = &load;
            Variant::metered(server.name, move || load.run(server))
        })
        .collect();
    alternate::run(&settings, "http", 1, &mut variants);

    let mut rows = String::new();
    for v in &variants {
        let m = |i: usize| median(v.metric(i));
        rows.push_str(&report::row(
            &format!("`{}`", v.name),
            &format!(
                "{:.0} requests/s; {:.2} µs CPU per request, all server threads ({:.2} µs by utime+stime); \
                 {:.4} context switches per request; server core busy {:.0}%; {} threads",
                1e9 / v.median_ns(),
                m(CPU_NS) / 1e3,
                m(CPU_TICKS_NS) / 1e3,
                m(CONTEXT_SWITCHES),
                m(BUSY) * 100.0,
                m(THREADS)
            ),
            "(context)",
            None,
        ));
    }
    let [untraced, tracewire_100, tracewire_0, otel, otel_tuned] = &variants[..] else {
        unreachable!("five variants");
    };
    rows.push_str(&compare(
        "tracewire-tower at 0% / no layer",
        tracewire_0,
        untraced,
        Bar::ThroughputAtLeast(0.95),
    ));
    rows.push_str(&compare(
        "tracewire-tower at 100% with export / no layer",
        tracewire_100,
        untraced,
        Bar::ThroughputAtLeast(0.8),
    ));
    rows.push_str(&compare(
        "tracewire-tower at 100% / tower-http + tracing-opentelemetry tuned (similar attributes)",
        tracewire_100,
        otel_tuned,
        Bar::ThroughputAtLeast(1.6),
    ));
    rows.push_str(&compare(
        "tracewire-tower at 100% / tower-http + tracing-opentelemetry defaults",
        tracewire_100,
        otel,
        Bar::Info,
    ));
    rows.push_str(&compare(
        "tower-http + tracing-opentelemetry tuned / no layer",
        otel_tuned,
        untraced,
        Bar::Info,
    ));
    rows.push_str(&compare(
        "tower-http + tracing-opentelemetry defaults / no layer",
        otel,
        untraced,
        Bar::Info,
    ));
    drop(variants);

    for server in servers {
        let (name, requests) = (server.name, server.requests);
        let exported = server.finish();
        println!("http/{name}: {requests} requests served, {exported} spans exported");
        // Every request was sampled and exported: a span dropped on a full
        // queue would make tracing look cheaper than it is.
        let complete = match name {
            "untraced" => continue,
            "tracewire_0" => exported == 0,
            _ => exported >= requests,
        };
        rows.push_str(&report::row(
            &format!("`{name}`: spans exported"),
            &format!("{exported} of {requests} requests"),
            if name == "tracewire_0" { "none" } else { "all" },
            Some(complete),
        ));
    }
    report::print_rows(
        "HTTP server, whole server process pinned to one core (issue 4)",
        &rows,
    );
}
