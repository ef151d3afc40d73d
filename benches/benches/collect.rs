//! `tracewire collect`, measured from outside over loopback as a user's
//! SDKs and viewer reach it:
//!
//! - **ingest**: OTLP/HTTP protobuf exports of 512-span batches (the
//!   OpenTelemetry Collector's and SDKs' default batch size) from four
//!   connections at once, counted from the first request until the last
//!   span is in the store (`Stats::spans_stored`); spans per second of wall
//!   time and CPU time of the whole process (collector and senders) per
//!   span. Bar: at least 100,000 spans/s.
//! - **fetch**: `GET /api/traces/{id}` of a 10,000-span trace, whole
//!   answer read.
//! - **search**: `GET /api/traces?…` searches, `GET /api/services` and
//!   `GET /api/dependencies` over a store of 1,000,000 spans.
//!
//! Request bodies are encoded before the clock starts; every run starts
//! from an empty store in a temporary directory. The numbers are wall
//! times on this machine: a busy machine makes them worse, never better.
//!
//! `bash benches/run.sh collect`; `BENCH_COLLECT_SPANS` (1,000,000) sets
//! the size of the searched store, `BENCH_ROUNDS` the ingest rounds (5),
//! `BENCH_COLLECT_BATCHES` the 512-span batches per ingest round (200),
//! `BENCH_COLLECT_PARTS` which parts run (default `ingest,fetch,search`).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span, status,
};
use prost::Message as _;
use tracewire_benches::alternate::median;
use tracewire_benches::load::env;
use tracewire_benches::report::format_ns;
use tracewire_collect::{Collector, Config};

/// Spans per export request.
const BATCH: usize = 512;
/// Export requests in flight at once.
const CONNECTIONS: usize = 4;
/// The bar for ingest, spans per second.
const INGEST_BAR: f64 = 100_000.0;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let rounds = usize::try_from(env("BENCH_ROUNDS", 5).clamp(1, 100)).unwrap_or(5);
    let store_spans = usize::try_from(env("BENCH_COLLECT_SPANS", 1_000_000)).unwrap_or(1_000_000);
    println!("### tracewire collect (OTLP/HTTP protobuf in, SQLite store, JSON API)\n");
    println!("| what | measured | bar |");
    println!("|---|---|---|");

    let parts =
        std::env::var("BENCH_COLLECT_PARTS").unwrap_or_else(|_| "ingest,fetch,search".into());
    let wants = |part: &str| parts.split(',').any(|p| p.trim() == part);
    if wants("ingest") {
        ingest(rounds).await;
    }
    if wants("fetch") {
        fetch().await;
    }
    if wants("search") {
        search(store_spans).await;
    }
    println!();
}

/// About 100,000 spans per round (`BENCH_COLLECT_BATCHES`, 200 batches),
/// a fresh store each time.
async fn ingest(rounds: usize) {
    let batches =
        usize::try_from(env("BENCH_COLLECT_BATCHES", 200).clamp(1, 10_000)).unwrap_or(200);
    let bodies = encode(&mut Traces::new(1), batches);
    let per_round = bodies.len() * BATCH;
    let mut rates = Vec::new();
    let mut cpu_per_span = Vec::new();
    for _ in 0..rounds {
        let collector = Started::new().await;
        let cpu = cpu_time::ProcessTime::now();
        let start = Instant::now();
        collector.send_all(&bodies).await;
        collector.wait_stored(per_round as u64).await;
        let wall = start.elapsed();
        let cpu = cpu.elapsed();
        rates.push(per_round as f64 / wall.as_secs_f64());
        cpu_per_span.push(cpu.as_nanos() as f64 / per_round as f64);
        collector.stop().await;
    }
    let rate = median(rates.clone());
    println!(
        "| ingest, {BATCH}-span batches, {CONNECTIONS} connections ({} spans per round, median of {rounds}) | {:.0} spans/s (rounds: {}), {} CPU per span (whole process) | >= {INGEST_BAR:.0} spans/s: {} |",
        per_round,
        rate,
        rates
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        format_ns(median(cpu_per_span)),
        if rate >= INGEST_BAR { "met" } else { "NOT met" },
    );
}

/// One trace of 10,000 spans, fetched whole.
async fn fetch() {
    let collector = Started::new().await;
    let mut big = Traces::new(2);
    let (id, bodies) = big.one_big_trace(10_000);
    collector.send_all(&bodies).await;
    collector.wait_stored(10_000).await;
    let path = format!("/api/traces/{id}");
    let (times, bytes) = collector.time_get(&path, 10).await;
    println!(
        "| fetch a 10,000-span trace (`GET /api/traces/{{id}}`, {} KB of JSON, median of 10) | {} | - |",
        bytes / 1000,
        format_ns(times),
    );
    collector.stop().await;
}

/// Searches over a store of `store_spans` spans.
async fn search(store_spans: usize) {
    let collector = Started::new().await;
    let mut traces = Traces::new(3);
    let mut stored = 0;
    let started = Instant::now();
    while stored < store_spans {
        let n = ((store_spans - stored) / BATCH).clamp(1, 200);
        let bodies = encode(&mut traces, n);
        collector.send_all(&bodies).await;
        stored += bodies.len() * BATCH;
    }
    collector.wait_stored(stored as u64).await;
    println!(
        "| fill the store with {stored} spans ({} traces) | {:.0} spans/s | - |",
        traces.next_trace - 1,
        stored as f64 / started.elapsed().as_secs_f64()
    );
    let searches = [
        ("`/api/services`", "/api/services".to_owned()),
        ("by service", "/api/traces?service=users".to_owned()),
        (
            "by service and operation",
            "/api/traces?service=users&operation=SELECT%20users".to_owned(),
        ),
        ("errors only", "/api/traces?error=true".to_owned()),
        (
            "by service, slower than 200 ms",
            "/api/traces?service=users&min_duration_ms=200".to_owned(),
        ),
        (
            "by attribute (`http.response.status_code=500`, 2 % of traces)",
            "/api/traces?attribute=http.response.status_code%3D500".to_owned(),
        ),
        (
            "by service and attribute (`user.id=4242`)",
            "/api/traces?service=users&attribute=user.id%3D4242".to_owned(),
        ),
        (
            "the last minute (time range)",
            format!(
                "/api/traces?since_ms={}",
                traces.now_ns / 1_000_000 - 60_000
            ),
        ),
        (
            "`/api/dependencies` (service map)",
            "/api/dependencies".to_owned(),
        ),
    ];
    for (label, path) in searches {
        let status = collector.status(&path).await;
        if status != 200 {
            println!(
                "| search {stored} spans: {label} | not measured: `{path}` answers {status} | - |"
            );
            continue;
        }
        let (time, bytes) = collector.time_get(&path, 5).await;
        println!(
            "| search {stored} spans: {label} (`{path}`, median of 5, {bytes} bytes) | {} | - |",
            format_ns(time)
        );
    }
    collector.stop().await;
}

/// A collector on a free port with its store in a temporary directory.
struct Started {
    collector: Collector,
    _dir: tempfile::TempDir,
}

impl Started {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            // OTLP/HTTP only: a fixed gRPC port would collide between runs.
            grpc_listen: None,
            data_dir: dir.path().to_path_buf(),
            queue_capacity: 64,
            ..Config::default()
        };
        let collector = Collector::start(config)
            .await
            .expect("the collector starts");
        Started {
            collector,
            _dir: dir,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.collector.local_addr()
    }

    /// Sends every body from [`CONNECTIONS`] connections, each request
    /// after the previous one's answer; a 503 (queue full) is retried
    /// after the `Retry-After` the collector asks for, scaled down (the
    /// queue drains in milliseconds here).
    async fn send_all(&self, bodies: &[Bytes]) {
        let addr = self.addr();
        let mut tasks = Vec::new();
        for c in 0..CONNECTIONS {
            let mine: Vec<Bytes> = bodies
                .iter()
                .skip(c)
                .step_by(CONNECTIONS)
                .cloned()
                .collect();
            tasks.push(tokio::spawn(async move {
                let mut sender = connect(addr).await;
                for body in mine {
                    loop {
                        sender.ready().await.expect("the connection stays open");
                        let request = Request::post("/v1/traces")
                            .header("host", addr.to_string())
                            .header("content-type", "application/x-protobuf")
                            .body(Full::new(body.clone()))
                            .expect("a request");
                        let response = sender.send_request(request).await.expect("an answer");
                        let status = response.status();
                        let _ = response.into_body().collect().await;
                        if status == 503 {
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            continue;
                        }
                        assert_eq!(status, 200, "export refused");
                        break;
                    }
                }
            }));
        }
        for task in tasks {
            task.await.expect("a sender");
        }
    }

    async fn wait_stored(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(600);
        while self.collector.stats().spans_stored < n {
            assert!(Instant::now() < deadline, "spans not stored in 10 minutes");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn status(&self, path: &str) -> u16 {
        let mut sender = connect(self.addr()).await;
        sender.ready().await.expect("the connection is open");
        let response = sender
            .send_request(get(self.addr(), path))
            .await
            .expect("an answer");
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await;
        status
    }

    /// The median wall time of `n` GETs of `path` (whole body read) and
    /// the body's size.
    async fn time_get(&self, path: &str, n: usize) -> (f64, usize) {
        let mut sender = connect(self.addr()).await;
        let mut times = Vec::new();
        let mut size = 0;
        for _ in 0..n {
            sender.ready().await.expect("the connection stays open");
            let start = Instant::now();
            let response = sender
                .send_request(get(self.addr(), path))
                .await
                .expect("an answer");
            let body = response
                .into_body()
                .collect()
                .await
                .expect("a body")
                .to_bytes();
            times.push(start.elapsed().as_nanos() as f64);
            size = body.len();
        }
        (median(times), size)
    }

    async fn stop(self) {
        self.collector.shutdown().await;
    }
}

fn get(addr: SocketAddr, path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", addr.to_string())
        .body(Full::new(Bytes::new()))
        .expect("a request")
}

async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("an HTTP/1.1 connection");
    tokio::spawn(connection);
    sender
}

/// `n` export requests of [`BATCH`] spans each, protobuf-encoded.
fn encode(traces: &mut Traces, n: usize) -> Vec<Bytes> {
    (0..n)
        .map(|_| {
            let spans: Vec<(usize, Span)> = (0..BATCH).map(|_| traces.next_span()).collect();
            Bytes::from(request(spans).encode_to_vec())
        })
        .collect()
}

/// One export request: the spans grouped by service into ResourceSpans.
fn request(spans: Vec<(usize, Span)>) -> ExportTraceServiceRequest {
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES.len()];
    for (service, span) in spans {
        by_service[service].push(span);
    }
    let resource_spans = by_service
        .into_iter()
        .enumerate()
        .filter(|(_, spans)| !spans.is_empty())
        .map(|(service, spans)| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", SERVICES[service]),
                    string("telemetry.sdk.name", "tracewire"),
                    string("telemetry.sdk.language", "rust"),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..ScopeSpans::default()
            }],
            schema_url: String::new(),
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

/// One span of a generated trace: service index, name, kind, parent
/// index, start offset and duration (nanoseconds).
type Shape = (usize, &'static str, span::SpanKind, Option<usize>, u64, u64);

const SERVICES: [&str; 5] = ["gateway", "auth", "users", "orders", "payments"];

/// A shop-like stream of traces: each a gateway server span calling auth,
/// auth calling users, users running `SELECT users`, then orders and
/// payments (8 spans), with five attributes per span, 2 % errors and a
/// slow query now and then; the next span on every call.
struct Traces {
    seed: u64,
    next_trace: u64,
    queue: Vec<(usize, Span)>,
    now_ns: u64,
}

impl Traces {
    fn new(seed: u64) -> Self {
        let now_ns = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos(),
        )
        .unwrap_or(0);
        Traces {
            seed: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            next_trace: 1,
            queue: Vec::new(),
            now_ns,
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        self.seed ^= self.seed >> 12;
        self.seed ^= self.seed << 25;
        self.seed ^= self.seed >> 27;
        self.seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn next_span(&mut self) -> (usize, Span) {
        if self.queue.is_empty() {
            self.queue = self.trace();
            self.queue.reverse();
        }
        self.queue.pop().expect("a trace has spans")
    }

    /// One trace's spans, parents first.
    fn trace(&mut self) -> Vec<(usize, Span)> {
        let t = self.next_trace;
        self.next_trace += 1;
        let trace_id = [self.random().to_be_bytes(), t.to_be_bytes()].concat();
        // Spread over the last hour, in trace order.
        let start = self.now_ns - 3_600_000_000_000 + (t % 3_600_000) * 1_000_000;
        let slow = self.random().is_multiple_of(50);
        let error = self.random().is_multiple_of(50);
        let query_ns = if slow {
            250_000_000
        } else {
            2_000_000 + self.random() % 3_000_000
        };
        let user = (self.random() % 10_000).to_string();
        let shape: [Shape; 8] = [
            (
                0,
                "POST /checkout",
                span::SpanKind::Server,
                None,
                0,
                query_ns + 40_000_000,
            ),
            (
                0,
                "POST",
                span::SpanKind::Client,
                Some(0),
                1_000_000,
                query_ns + 8_000_000,
            ),
            (
                1,
                "POST /verify",
                span::SpanKind::Server,
                Some(1),
                2_000_000,
                query_ns + 6_000_000,
            ),
            (
                1,
                "GET",
                span::SpanKind::Client,
                Some(2),
                3_000_000,
                query_ns + 4_000_000,
            ),
            (
                2,
                "GET /users/{id}",
                span::SpanKind::Server,
                Some(3),
                3_500_000,
                query_ns + 3_000_000,
            ),
            (
                2,
                "SELECT users",
                span::SpanKind::Client,
                Some(4),
                4_000_000,
                query_ns,
            ),
            (
                3,
                "POST /orders",
                span::SpanKind::Server,
                Some(0),
                query_ns + 12_000_000,
                20_000_000,
            ),
            (
                4,
                "shop.Payments/Charge",
                span::SpanKind::Server,
                Some(6),
                query_ns + 15_000_000,
                10_000_000,
            ),
        ];
        let ids: Vec<[u8; 8]> = (0..shape.len())
            .map(|_| self.random().to_be_bytes())
            .collect();
        shape
            .iter()
            .enumerate()
            .map(|(i, &(service, name, kind, parent, offset, duration))| {
                let failed = error && i == 7;
                let attributes = match kind {
                    span::SpanKind::Client if name == "SELECT users" => vec![
                        string("db.system.name", "sqlite"),
                        string("db.query.text", "SELECT id, name FROM users WHERE name = ?"),
                        string("db.operation.name", "SELECT"),
                        string("db.collection.name", "users"),
                        string("user.id", &user),
                    ],
                    _ => vec![
                        string("http.request.method", "POST"),
                        string("url.path", name),
                        int("http.response.status_code", if failed { 500 } else { 200 }),
                        string("server.address", SERVICES[service]),
                        string("user.id", &user),
                    ],
                };
                let span = Span {
                    trace_id: trace_id.clone(),
                    span_id: ids[i].to_vec(),
                    parent_span_id: parent.map(|p| ids[p].to_vec()).unwrap_or_default(),
                    name: name.to_owned(),
                    kind: kind as i32,
                    start_time_unix_nano: start + offset,
                    end_time_unix_nano: start + offset + duration,
                    attributes,
                    status: Some(Status {
                        code: if failed {
                            status::StatusCode::Error
                        } else {
                            status::StatusCode::Unset
                        } as i32,
                        message: if failed {
                            "card declined".to_owned()
                        } else {
                            String::new()
                        },
                    }),
                    flags: 0x101,
                    ..Span::default()
                };
                (service, span)
            })
            .collect()
    }

    /// One trace of `n` spans (a root with a tree of children below it,
    /// over five services) as export requests, and its id.
    fn one_big_trace(&mut self, n: usize) -> (String, Vec<Bytes>) {
        let trace_id = [self.random().to_be_bytes(), self.random().to_be_bytes()].concat();
        let start = self.now_ns - 60_000_000_000;
        let ids: Vec<[u8; 8]> = (0..n).map(|_| self.random().to_be_bytes()).collect();
        let spans: Vec<(usize, Span)> = (0..n)
            .map(|i| {
                // Each span's parent is an earlier one: a tree eight wide.
                let parent = (i > 0).then(|| (i - 1) / 8);
                let service = i % SERVICES.len();
                let offset = i as u64 * 10_000;
                let span = Span {
                    trace_id: trace_id.clone(),
                    span_id: ids[i].to_vec(),
                    parent_span_id: parent.map(|p| ids[p].to_vec()).unwrap_or_default(),
                    name: format!("step {}", i % 100),
                    kind: span::SpanKind::Internal as i32,
                    start_time_unix_nano: start + offset,
                    end_time_unix_nano: start + offset + 1_000_000 + (n - i) as u64 * 10_000,
                    attributes: vec![
                        string("code.function.name", "handle"),
                        int("item.index", i64::try_from(i).unwrap_or(0)),
                    ],
                    ..Span::default()
                };
                (service, span)
            })
            .collect();
        let bodies = spans
            .chunks(BATCH)
            .map(|chunk| Bytes::from(request(chunk.to_vec()).encode_to_vec()))
            .collect();
        (hex::encode(&trace_id), bodies)
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
        ..KeyValue::default()
    }
}

fn int(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(value)),
        }),
        ..KeyValue::default()
    }
}
