//! The forwarding exporters over loopback: `otlphttp` into a second
//! collector, `otlp` (gRPC) into a recording `TraceService`, `file` into
//! OTLP/JSON lines; a down or stuck endpoint, a throttling one, and
//! fan-out after tail sampling.

mod common;

use std::collections::BTreeSet;
use std::io::Read as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList, any_value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message as _;
use tracewire_collect::{Collector, CollectorFile, Config, ExporterStats, Stats};

// ---------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------

/// The configuration of a collector from a YAML pipeline (`receivers`
/// is added: OTLP/HTTP on a free port) storing under `dir`. Every test's
/// collector is configured here: every address it listens on must be on
/// a free port (tests run in parallel).
fn config(dir: &Path, yaml: &str) -> Config {
    let text =
        format!("receivers: {{otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:0}}}}}}}}\n{yaml}");
    let file = CollectorFile::from_yaml(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    }
    .apply(file)
}

/// A collector started from [`config`].
async fn collector(dir: &Path, yaml: &str) -> Collector {
    Collector::start(config(dir, yaml)).await.unwrap()
}

/// A collector storing everything it receives (the next hop).
async fn store_only(dir: &Path) -> Collector {
    collector(
        dir,
        "exporters: {tracewire_store: {}}\n\
         service: {pipelines: {traces: {receivers: [otlp], exporters: [tracewire_store]}}}\n",
    )
    .await
}

/// POSTs `request` as OTLP/protobuf; panics unless it is accepted.
async fn send(addr: SocketAddr, request: &ExportTraceServiceRequest) {
    let (status, body) = common::request(
        addr,
        "POST",
        "/v1/traces",
        &[("content-type", "application/x-protobuf")],
        &request.encode_to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
}

/// Polls `done` on the collector's stats every 20 ms, for at most 20 s.
async fn wait_for(collector: &Collector, what: &str, done: impl Fn(&Stats) -> bool) {
    for _ in 0..1000 {
        if done(&collector.stats()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within 20 s: {:?}", collector.stats());
}

/// Shuts `collector` down, failing (not hanging) if that takes more
/// than a minute.
async fn shutdown(collector: Collector) -> Stats {
    tokio::time::timeout(Duration::from_secs(60), collector.shutdown())
        .await
        .expect("the shutdown ends")
}

fn exporter<'a>(stats: &'a Stats, id: &str) -> &'a ExporterStats {
    stats
        .exporters
        .iter()
        .find(|e| e.id == id)
        .unwrap_or_else(|| panic!("no exporter {id} in {stats:?}"))
}

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn string(s: &str) -> any_value::Value {
    any_value::Value::StringValue(s.to_owned())
}

fn trace_id(trace: u128) -> Vec<u8> {
    trace.to_be_bytes().to_vec()
}

fn span_id(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

const START: u64 = 1_765_062_000_000_000_000;

/// A span of `trace` with every kind of value OTLP has: string, int,
/// double (a whole one, that must stay a double), bool, array, bytes,
/// key-value list; an event and a link; a status; trace state and flags;
/// dropped counts.
fn rich_span(trace: u128, id: u64, parent: u64, error: bool) -> Span {
    Span {
        trace_id: trace_id(trace),
        span_id: span_id(id),
        trace_state: "vendor=a,other=b".into(),
        parent_span_id: if parent == 0 {
            Vec::new()
        } else {
            span_id(parent)
        },
        flags: 0x301,
        name: format!("op-{id}"),
        kind: if parent == 0 { 2 } else { 3 },
        start_time_unix_nano: START + id * 1000,
        end_time_unix_nano: START + id * 1000 + 250_000_000,
        attributes: vec![
            kv("http.route", string("/checkout")),
            kv("int", any_value::Value::IntValue(42)),
            kv("whole.double", any_value::Value::DoubleValue(1.0)),
            kv("double", any_value::Value::DoubleValue(0.25)),
            kv("bool", any_value::Value::BoolValue(true)),
            kv(
                "array",
                any_value::Value::ArrayValue(ArrayValue {
                    values: vec![
                        AnyValue {
                            value: Some(any_value::Value::IntValue(-7)),
                        },
                        AnyValue {
                            value: Some(string("x")),
                        },
                    ],
                }),
            ),
            kv(
                "bytes",
                any_value::Value::BytesValue(vec![0, 1, 0xfe, 0xff]),
            ),
            kv(
                "map",
                any_value::Value::KvlistValue(KeyValueList {
                    values: vec![kv("inner", any_value::Value::IntValue(1))],
                }),
            ),
            // A repeated key: kept as sent on the wire.
            kv("int", any_value::Value::IntValue(43)),
        ],
        dropped_attributes_count: 3,
        events: vec![Event {
            time_unix_nano: START + id * 1000 + 5,
            name: "exception".into(),
            attributes: vec![
                kv("exception.type", string("Boom")),
                kv("exception.escaped", any_value::Value::BoolValue(false)),
            ],
            dropped_attributes_count: 1,
        }],
        dropped_events_count: 2,
        links: vec![Link {
            trace_id: trace_id(trace ^ 0xffff),
            span_id: span_id(99),
            trace_state: "k=v".into(),
            attributes: vec![kv("link.n", any_value::Value::DoubleValue(2.5))],
            dropped_attributes_count: 0,
            flags: 0x101,
        }],
        dropped_links_count: 1,
        status: Some(Status {
            message: if error {
                "it broke".into()
            } else {
                String::new()
            },
            code: if error { 2 } else { 1 },
        }),
    }
}

/// A request of two services (two resources), the first with two scopes;
/// the trace `trace` has a root in `frontend` and two children.
fn rich_request(trace: u128) -> ExportTraceServiceRequest {
    let scope = |name: &str, version: &str| InstrumentationScope {
        name: name.into(),
        version: version.into(),
        attributes: vec![kv("scope.attr", string(name))],
        dropped_attributes_count: 0,
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", string("frontend")),
                        kv("host.id", any_value::Value::BytesValue(vec![0xab, 0xcd])),
                        kv("process.pid", any_value::Value::IntValue(1234)),
                    ],
                    dropped_attributes_count: 1,
                    ..Default::default()
                }),
                scope_spans: vec![
                    ScopeSpans {
                        scope: Some(scope("web", "1.2.3")),
                        spans: vec![rich_span(trace, 1, 0, true)],
                        schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                    },
                    ScopeSpans {
                        scope: Some(scope("db", "")),
                        spans: vec![rich_span(trace, 2, 1, false)],
                        schema_url: String::new(),
                    },
                ],
                schema_url: "https://opentelemetry.io/schemas/1.27.0".into(),
            },
            ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", string("backend"))],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope("rpc", "0.1")),
                    spans: vec![rich_span(trace, 3, 1, false)],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            },
        ],
    }
}

fn hex(trace: u128) -> String {
    format!("{trace:032x}")
}

/// A span with its resource, the resource's schema URL, its scope and
/// the scope's schema URL.
type Placed = (
    Option<Resource>,
    String,
    Option<InstrumentationScope>,
    String,
    Span,
);

/// Every span of `requests` with its resource and scope, sorted by span
/// id: what a receiver got, however it was grouped.
fn flatten<'a>(requests: impl IntoIterator<Item = &'a ExportTraceServiceRequest>) -> Vec<Placed> {
    let mut out = Vec::new();
    for request in requests {
        for rs in &request.resource_spans {
            for ss in &rs.scope_spans {
                for span in &ss.spans {
                    out.push((
                        rs.resource.clone(),
                        rs.schema_url.clone(),
                        ss.scope.clone(),
                        ss.schema_url.clone(),
                        span.clone(),
                    ));
                }
            }
        }
    }
    out.sort_by(|a, b| (&a.4.trace_id, &a.4.span_id).cmp(&(&b.4.trace_id, &b.4.span_id)));
    out
}

/// A test HTTP server: answers the n-th request (from 0) with
/// `answer(n)`, records every request's gunzipped body.
async fn http_server(
    answer: fn(usize) -> (u16, Option<&'static str>),
) -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let recorded = bodies.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let bodies = bodies.clone();
                        async move {
                            let gzip = req.headers().get("content-encoding").is_some();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            let body = if gzip {
                                let mut out = Vec::new();
                                flate2::read::GzDecoder::new(&body[..])
                                    .read_to_end(&mut out)
                                    .unwrap();
                                out
                            } else {
                                body.to_vec()
                            };
                            let n = {
                                let mut bodies = bodies.lock().unwrap();
                                bodies.push(body);
                                bodies.len() - 1
                            };
                            let (status, retry_after) = answer(n);
                            let ok = ExportTraceServiceResponse::default().encode_to_vec();
                            let mut response = hyper::Response::new(Full::new(Bytes::from(ok)));
                            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            response.headers_mut().insert(
                                "content-type",
                                hyper::header::HeaderValue::from_static("application/x-protobuf"),
                            );
                            if let Some(after) = retry_after {
                                response.headers_mut().insert(
                                    "retry-after",
                                    hyper::header::HeaderValue::from_static(after),
                                );
                            }
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, recorded)
}

// ---------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlphttp_into_a_second_collector_stores_exactly_what_was_received() {
    let dir_b = tempfile::tempdir().unwrap();
    let b = store_only(dir_b.path()).await;
    let dir_a = tempfile::tempdir().unwrap();
    let a = collector(
        dir_a.path(),
        &format!(
            "exporters:\n  tracewire_store: {{}}\n  otlphttp/next:\n    endpoint: http://{}\n    \
             headers: {{x-tenant: shop}}\n    timeout: 10s\n\
             service: {{pipelines: {{traces: {{receivers: [otlp], exporters: [tracewire_store, \
             otlphttp/next]}}}}}}\n",
            b.local_addr()
        ),
    )
    .await;
    let traces = [0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736_u128, 7];
    for trace in traces {
        send(a.local_addr(), &rich_request(trace)).await;
    }
    wait_for(&b, "B stores 6 spans", |s| s.spans_stored == 6).await;
    wait_for(&a, "A counts 6 spans sent", |s| {
        exporter(s, "otlphttp/next").spans_sent == 6
    })
    .await;
    for trace in traces {
        let at_a = a.store().trace(&hex(trace)).await.unwrap();
        let at_b = b.store().trace(&hex(trace)).await.unwrap();
        assert_eq!(at_a.len(), 3);
        assert_eq!(at_a, at_b, "B stores what A stored");
    }
    // The values kept their types through the hop.
    let span = &b.store().trace(&hex(7)).await.unwrap()[0];
    let attributes: serde_json::Value = serde_json::from_str(&span.attributes).unwrap();
    assert_eq!(attributes["int"], serde_json::json!(43));
    assert!(attributes["whole.double"].is_f64(), "{attributes}");
    assert_eq!(attributes["bytes"], "0001feff");
    assert_eq!(attributes["array"], serde_json::json!([-7, "x"]));
    assert_eq!(attributes["map"], serde_json::json!({"inner": 1}));
    assert_eq!(span.parent_span_id, None);
    assert_eq!(span.status_code, 2);
    assert_eq!(span.flags, 0x301);
    assert_eq!(span.trace_state, "vendor=a,other=b");
    assert_eq!(span.service, "frontend");
    let b_stats = shutdown(b).await;
    assert_eq!(b_stats.spans_rejected, 0);
    let stats = shutdown(a).await;
    let next = exporter(&stats, "otlphttp/next");
    assert_eq!((next.spans_failed, next.spans_dropped), (0, 0), "{next:?}");
}

/// A request and its `x-tenant` metadata.
type Recorded = (ExportTraceServiceRequest, Option<String>);

/// A test OTLP/gRPC server recording what it receives.
#[derive(Clone, Default)]
struct Recorder {
    /// Each request with its `x-tenant` metadata.
    requests: Arc<Mutex<Vec<Recorded>>>,
    /// Answer the first this many requests with UNAVAILABLE.
    unavailable: usize,
}

#[tonic::async_trait]
impl TraceService for Recorder {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let tenant = request
            .metadata()
            .get("x-tenant")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let n = {
            let mut requests = self.requests.lock().unwrap();
            requests.push((request.into_inner(), tenant));
            requests.len()
        };
        if n <= self.unavailable {
            return Err(tonic::Status::unavailable("warming up"));
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn grpc_server(recorder: Recorder) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(recorder)
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_grpc_sends_the_received_request_as_it_was() {
    let recorder = Recorder {
        // One retryable failure first: retried.
        unavailable: 1,
        ..Recorder::default()
    };
    let requests = recorder.requests.clone();
    let addr = grpc_server(recorder).await;
    let dir = tempfile::tempdir().unwrap();
    // Forward only: no tracewire_store in the pipeline.
    let a = collector(
        dir.path(),
        &format!(
            "exporters:\n  otlp/backend:\n    endpoint: {addr}\n    tls: {{insecure: true}}\n    \
             headers: {{X-Tenant: shop}}\n    retry_on_failure: {{initial_interval: 50ms}}\n\
             service: {{pipelines: {{traces: {{receivers: [otlp], exporters: [otlp/backend]}}}}}}\n"
        ),
    )
    .await;
    let sent = rich_request(11);
    send(a.local_addr(), &sent).await;
    wait_for(&a, "3 spans sent", |s| {
        exporter(s, "otlp/backend").spans_sent == 3
    })
    .await;
    {
        let requests = requests.lock().unwrap();
        assert_eq!(requests.len(), 2, "one UNAVAILABLE, then delivered");
        // One request in, the same request out: same grouping, same
        // order, every field.
        assert_eq!(requests[1].0, sent);
        assert_eq!(requests[0].0, sent);
        assert_eq!(requests[1].1.as_deref(), Some("shop"));
    }
    // Forward only: the API answers empty.
    assert!(a.store().services().await.unwrap().is_empty());
    let stats = shutdown(a).await;
    assert_eq!(stats.spans_stored, 0);
    let backend = exporter(&stats, "otlp/backend");
    assert_eq!((backend.spans_failed, backend.spans_dropped), (0, 0));
    assert!(
        backend
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("Unavailable")),
        "{backend:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_exporter_writes_otlp_json_lines_and_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/traces.jsonl");
    let a = collector(
        dir.path(),
        &format!(
            "exporters:\n  file/out:\n    path: {}\n    rotation: {{max_megabytes: 1, max_backups: 2}}\n\
             service: {{pipelines: {{traces: {{receivers: [otlp], exporters: [file/out]}}}}}}\n",
            path.display()
        ),
    )
    .await;
    let first = rich_request(21);
    let second = rich_request(22);
    send(a.local_addr(), &first).await;
    send(a.local_addr(), &second).await;
    wait_for(&a, "6 spans written", |s| {
        exporter(s, "file/out").spans_sent == 6
    })
    .await;
    let lines: Vec<ExportTraceServiceRequest> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(flatten(&lines), flatten([&first, &second]));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("{\"resourceSpans\":[{"), "{text}");

    // Big spans: the file rotates at 1 MiB, keeping two backups.
    let mut big = rich_request(23);
    big.resource_spans[0].scope_spans[0].spans[0]
        .attributes
        .push(kv("blob", string(&"x".repeat(400 * 1024))));
    for _ in 0..8 {
        send(a.local_addr(), &big).await;
    }
    let stats = shutdown(a).await;
    let out = exporter(&stats, "file/out");
    assert_eq!(out.spans_sent, 6 + 8 * 3, "{out:?}");
    for name in ["traces.jsonl", "traces.jsonl.1", "traces.jsonl.2"] {
        let file = dir.path().join("out").join(name);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.len() <= 1024 * 1024, "{name}: {}", text.len());
        for line in text.lines() {
            let request: ExportTraceServiceRequest = serde_json::from_str(line).unwrap();
            assert_eq!(flatten([&request]), flatten([&big]));
        }
    }
    assert!(!dir.path().join("out/traces.jsonl.3").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_endpoint_fails_and_drops_while_the_store_keeps_storing() {
    // A port with nobody listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    // A server that accepts connections and never answers.
    let stuck = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stuck_addr = stuck.local_addr().unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let holder = held.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = stuck.accept().await {
            holder.lock().unwrap().push(stream);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let a = collector(
        dir.path(),
        &format!(
            "exporters:\n  tracewire_store: {{}}\n  otlphttp/down:\n    endpoint: http://{closed}\n    \
             retry_on_failure: {{initial_interval: 10ms, max_interval: 20ms, max_elapsed_time: 100ms}}\n  \
             otlphttp/stuck:\n    endpoint: http://{stuck_addr}\n    timeout: 10m\n    \
             sending_queue: {{queue_size: 1}}\n\
             service: {{pipelines: {{traces: {{receivers: [otlp], exporters: [tracewire_store, \
             otlphttp/down, otlphttp/stuck]}}}}}}\n"
        ),
    )
    .await;
    // One write per request (the writer joins what is queued together).
    for (n, trace) in (100..106).enumerate() {
        send(a.local_addr(), &rich_request(trace)).await;
        let stored = 3 * (n as u64 + 1);
        wait_for(&a, "the request's spans stored", |s| {
            s.spans_stored == stored
        })
        .await;
    }
    // The stuck exporter holds one batch in flight and one queued; the
    // others are dropped as they come.
    wait_for(&a, "stuck drops 4 batches (or 5)", |s| {
        exporter(s, "otlphttp/stuck").spans_dropped >= 12
    })
    .await;
    wait_for(&a, "down fails every batch", |s| {
        let down = exporter(s, "otlphttp/down");
        down.spans_failed + down.spans_dropped == 18
    })
    .await;
    assert_eq!(a.store().services().await.unwrap(), ["backend", "frontend"]);
    let stats = shutdown(a).await;
    assert_eq!(stats.spans_stored, 18);
    let down = exporter(&stats, "otlphttp/down");
    assert_eq!(down.spans_sent, 0);
    assert!(down.last_error.is_some(), "{down:?}");
    // At shutdown, what the stuck exporter held is dropped once its flush
    // time is over.
    let stuck = exporter(&stats, "otlphttp/stuck");
    assert_eq!(
        (stuck.spans_sent, stuck.spans_failed, stuck.spans_dropped),
        (0, 0, 18),
        "{stuck:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_503_with_retry_after_is_retried_and_delivered_once() {
    let (addr, bodies) = http_server(|n| {
        if n == 0 {
            (503, Some("1"))
        } else {
            (200, None)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let a = collector(
        dir.path(),
        &format!(
            "exporters:\n  otlphttp:\n    traces_endpoint: http://{addr}/v1/traces\n    \
             compression: none\n    retry_on_failure: {{initial_interval: 10m}}\n\
             service: {{pipelines: {{traces: {{receivers: [otlp], exporters: [otlphttp]}}}}}}\n"
        ),
    )
    .await;
    let sent = rich_request(31);
    send(a.local_addr(), &sent).await;
    // The back-off would be 10 minutes: only Retry-After (1 s) gets it
    // delivered now.
    wait_for(&a, "3 spans sent", |s| {
        exporter(s, "otlphttp").spans_sent == 3
    })
    .await;
    let stats = shutdown(a).await;
    let bodies = bodies.lock().unwrap();
    assert_eq!(bodies.len(), 2, "sent twice: refused, then accepted");
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(
        ExportTraceServiceRequest::decode(&bodies[1][..]).unwrap(),
        sent
    );
    let e = exporter(&stats, "otlphttp");
    assert_eq!((e.spans_sent, e.spans_failed, e.spans_dropped), (3, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exporter_gets_only_the_traces_tail_sampling_keeps() {
    let dir_b = tempfile::tempdir().unwrap();
    let b = store_only(dir_b.path()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kept.jsonl");
    let a = collector(
        dir.path(),
        &format!(
            "processors:\n  tail_sampling:\n    decision_wait: 100ms\n    policies:\n      \
             - {{name: errors, type: status_code, status_code: {{status_codes: [ERROR]}}}}\n\
             exporters:\n  tracewire_store: {{}}\n  otlphttp/b:\n    endpoint: http://{}\n    \
             encoding: json\n  \
             file:\n    path: {}\n\
             service: {{pipelines: {{traces: {{receivers: [otlp], processors: [tail_sampling], \
             exporters: [otlphttp/b, tracewire_store, file]}}}}}}\n",
            b.local_addr(),
            file.display()
        ),
    )
    .await;
    // Trace 41 has an error span; trace 42 none.
    let mut ok = rich_request(42);
    for rs in &mut ok.resource_spans {
        for ss in &mut rs.scope_spans {
            for span in &mut ss.spans {
                span.status = None;
            }
        }
    }
    send(a.local_addr(), &rich_request(41)).await;
    send(a.local_addr(), &ok).await;
    wait_for(&a, "both traces decided", |s| {
        s.spans_stored == 3 && s.spans_not_sampled == 3
    })
    .await;
    let stats = shutdown(a).await;
    assert_eq!(exporter(&stats, "otlphttp/b").spans_sent, 3);
    assert_eq!(exporter(&stats, "file").spans_sent, 3);
    wait_for(&b, "B stores the kept trace", |s| s.spans_stored == 3).await;
    let stored: BTreeSet<String> = b
        .store()
        .find_traces(&tracewire_collect::TraceQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.trace_id)
        .collect();
    assert_eq!(stored, BTreeSet::from([hex(41)]));
    let lines: Vec<ExportTraceServiceRequest> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(flatten(&lines), flatten([&rich_request(41)]));
    shutdown(b).await;
}

#[test]
fn exporter_settings_are_read_or_refused_clearly() {
    let load = |exporters: &str, used: &str| {
        CollectorFile::from_yaml(&format!(
            "receivers: {{otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:0}}}}}}}}\n\
             exporters:\n{exporters}\n\
             service: {{pipelines: {{traces: {{receivers: [otlp], exporters: [{used}]}}}}}}\n"
        ))
        .map_err(|e| e.to_string())
    };
    let file = load(
        "  otlphttp/x:\n    endpoint: http://127.0.0.1:1\n    compression: gzip\n    \
         encoding: json\n    frobnicate: 1\n    tls: {insecure: true, min_version: '1.3'}\n    \
         sending_queue: {enabled: true, queue_size: 10, num_consumers: 4}\n    \
         retry_on_failure: {enabled: true, initial_interval: 1s, max_interval: 5s, \
         max_elapsed_time: 1m, multiplier: 2}",
        "otlphttp/x",
    )
    .unwrap();
    assert_eq!(file.pipeline.exporter_ids(), ["otlphttp/x"]);
    assert!(!file.pipeline.stores());
    let warnings = file.warnings.join("\n");
    assert!(warnings.contains("frobnicate"), "{warnings}");
    assert!(warnings.contains("tls.min_version"), "{warnings}");
    assert!(warnings.contains("num_consumers"), "{warnings}");

    let cases = [
        (
            "  otlp/tls:\n    endpoint: backend:4317\n    tls: {insecure_skip_verify: true}",
            "otlp/tls",
            "insecure_skip_verify",
        ),
        (
            "  otlphttp:\n    endpoint: https://backend:4318\n    tls: {cert_file: c.pem}",
            "otlphttp",
            "key_file",
        ),
        (
            "  otlphttp:\n    endpoint: backend:4318",
            "otlphttp",
            "not an http:// or https:// URL",
        ),
        (
            "  otlphttp:\n    endpoint: http://backend:4318\n    compression: zstd",
            "otlphttp",
            "zstd",
        ),
        ("  otlphttp:\n    timeout: 5s", "otlphttp", "endpoint"),
        (
            "  otlphttp:\n    endpoint: http://b:1\n    sending_queue: {queue_size: 0}",
            "otlphttp",
            "queue_size",
        ),
        ("  file:\n    rotation: {max_megabytes: 1}", "file", "path"),
        (
            "  file:\n    path: /tmp/x\n    format: proto",
            "file",
            "proto",
        ),
        ("  debug: {}", "debug", "debug"),
        (
            "  loadbalancing:\n    protocol: {otlp: {}}",
            "loadbalancing",
            "not supported",
        ),
    ];
    for (exporters, used, words) in cases {
        let err = load(exporters, used).expect_err(exporters);
        assert!(
            err.contains(used) && err.contains(words),
            "{exporters}: {err}"
        );
    }
}

#[test]
fn the_seed_sampler_runs_with_its_otlp_exporter_once_received_over_http() {
    // deploy/collector/sampler.yaml with only its endpoints changed (the
    // receiver to OTLP/HTTP, as OTLP/gRPC is another part of issue 15).
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/collector/sampler.yaml"
    ))
    .unwrap()
    .replace(
        "      grpc:\n        endpoint: 0.0.0.0:4317\n",
        "      http:\n        endpoint: 127.0.0.1:0\n",
    )
    .replace(
        "tempo.observability.svc.cluster.local:4317",
        "127.0.0.1:4317",
    );
    let file = CollectorFile::from_yaml(&seed).unwrap();
    assert_eq!(file.pipeline.exporter_ids(), ["otlp/backend"]);
    assert_eq!(file.pipeline.processor_ids(), ["tail_sampling", "batch"]);
}

// ---------------------------------------------------------------------
// TLS (tests/fixtures/tls: a test CA, server and client certificates)
// ---------------------------------------------------------------------

fn tls_fixture(name: &str) -> String {
    format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_grpc_over_tls_with_a_client_certificate() {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};

    let recorder = Recorder::default();
    let requests = recorder.requests.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let read = |name: &str| std::fs::read(tls_fixture(name)).unwrap();
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(read("server.pem"), read("server.key")))
        // Only clients with a certificate of the test CA get in.
        .client_ca_root(Certificate::from_pem(read("ca.pem")));
    tokio::spawn(
        tonic::transport::Server::builder()
            .tls_config(tls)
            .unwrap()
            .add_service(
                TraceServiceServer::new(recorder)
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    let dir = tempfile::tempdir().unwrap();
    // `host:port` without `tls.insecure`: TLS, as in the Collector.
    let a = collector(
        dir.path(),
        &format!(
            "exporters:\n  otlp:\n    endpoint: {addr}\n    tls:\n      ca_file: {}\n      \
             cert_file: {}\n      key_file: {}\n\
             service: {{pipelines: {{traces: {{receivers: [otlp], exporters: [otlp]}}}}}}\n",
            tls_fixture("ca.pem"),
            tls_fixture("client.pem"),
            tls_fixture("client.key"),
        ),
    )
    .await;
    let sent = rich_request(51);
    send(a.local_addr(), &sent).await;
    wait_for(&a, "3 spans sent", |s| exporter(s, "otlp").spans_sent == 3).await;
    assert_eq!(requests.lock().unwrap()[0].0, sent);
    shutdown(a).await;
}

/// A one-request-per-connection HTTPS server (rustls, blocking, on its
/// own threads) answering 200 and recording the gunzipped bodies.
fn https_server() -> (SocketAddr, Arc<Mutex<Vec<Vec<u8>>>>) {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::io::Write as _;

    let certs = CertificateDer::pem_file_iter(tls_fixture("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(tls_fixture("server.key")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let recorded = bodies.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let config = config.clone();
            let bodies = bodies.clone();
            std::thread::spawn(move || {
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(10)));
                let connection = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(connection, tcp);
                let mut buf = Vec::new();
                let mut chunk = [0u8; 16 * 1024];
                let mut read_more = |buf: &mut Vec<u8>| match tls.read(&mut chunk) {
                    Ok(0) | Err(_) => false,
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        true
                    }
                };
                let head_end = loop {
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                    if !read_more(&mut buf) {
                        // A refused handshake ends here.
                        return;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    if !read_more(&mut buf) {
                        return;
                    }
                }
                let body = &buf[head_end..head_end + length];
                let body = if head.contains("content-encoding: gzip") {
                    let mut out = Vec::new();
                    flate2::read::GzDecoder::new(body)
                        .read_to_end(&mut out)
                        .unwrap();
                    out
                } else {
                    body.to_vec()
                };
                bodies.lock().unwrap().push(body);
                let _ = tls.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\n\
                      content-length: 0\r\nconnection: close\r\n\r\n",
                );
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (addr, recorded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlphttp_over_https_verifies_the_server() {
    let (addr, bodies) = https_server();
    let dir = tempfile::tempdir().unwrap();
    let a = collector(
        dir.path(),
        &format!(
            "exporters:\n  otlphttp/trusted:\n    endpoint: https://localhost:{port}\n    \
             tls: {{ca_file: {ca}}}\n  \
             otlphttp/untrusted:\n    endpoint: https://localhost:{port}\n    \
             retry_on_failure: {{enabled: false}}\n\
             service: {{pipelines: {{traces: {{receivers: [otlp], exporters: [otlphttp/trusted, \
             otlphttp/untrusted]}}}}}}\n",
            port = addr.port(),
            ca = tls_fixture("ca.pem"),
        ),
    )
    .await;
    let sent = rich_request(61);
    send(a.local_addr(), &sent).await;
    wait_for(&a, "sent to the trusted, failed to the untrusted", |s| {
        exporter(s, "otlphttp/trusted").spans_sent == 3
            && exporter(s, "otlphttp/untrusted").spans_failed == 3
    })
    .await;
    {
        let bodies = bodies.lock().unwrap();
        assert_eq!(
            bodies.len(),
            1,
            "only the exporter trusting the test CA got through"
        );
        assert_eq!(
            ExportTraceServiceRequest::decode(&bodies[0][..]).unwrap(),
            sent
        );
    }
    let stats = shutdown(a).await;
    // Without ca_file the Mozilla roots are used: the test CA is not one.
    let untrusted = exporter(&stats, "otlphttp/untrusted");
    assert_eq!(untrusted.spans_sent, 0);
    assert!(untrusted.last_error.is_some(), "{untrusted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ca_file_is_a_startup_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(
        dir.path(),
        "exporters: {otlp: {endpoint: 'b:4317', tls: {ca_file: /nonexistent/ca.pem}}}\n\
         service: {pipelines: {traces: {receivers: [otlp], exporters: [otlp]}}}\n",
    );
    let err = Collector::start(config).await.unwrap_err().to_string();
    assert!(
        err.contains("/nonexistent/ca.pem") && err.contains("\"otlp\""),
        "{err}"
    );
}
