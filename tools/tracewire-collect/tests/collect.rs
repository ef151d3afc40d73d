//! The collector over loopback, on a temporary directory: tracewire's own
//! OTLP exporter sends, the JSON API answers; bad requests get their
//! documented status and the server stays up. No timing is asserted:
//! waits are bounded polls.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tracewire::{KeyValue, SpanData, SpanKind, Status};
use tracewire_collect::{Collector, Config};

mod common;
use common::{export, get_json, request, request_full, wait_stored};

const TRACE_A: u128 = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736;
const TRACE_B: u128 = 0x0af7_6519_16cd_43dd_8448_eb21_1c80_319c;
const LIMIT: usize = 4096;

async fn start(dir: &tempfile::TempDir) -> Collector {
    Collector::start(Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        grpc_listen: None,
        data_dir: dir.path().to_path_buf(),
        body_limit: LIMIT,
        ..Config::default()
    })
    .await
    .expect("the collector starts")
}

#[allow(clippy::too_many_arguments)]
fn span(
    trace: u128,
    id: u64,
    parent: u64,
    name: &'static str,
    kind: SpanKind,
    millis: u64,
    status: Status,
    attributes: Vec<KeyValue>,
) -> SpanData {
    let start = SystemTime::now() - Duration::from_secs(60);
    common::span(
        "collect-test",
        trace,
        id,
        parent,
        name,
        kind,
        start,
        millis,
        status,
        attributes,
    )
}

async fn assert_still_up(addr: SocketAddr) {
    let (status, _) = get_json(addr, "/api/services").await;
    assert_eq!(status, 200, "the server answers after a bad request");
}

fn trace_ids(answer: &Value) -> Vec<String> {
    answer["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn send_two_services(addr: SocketAddr) {
    let frontend = vec![span(
        TRACE_A,
        1,
        0,
        "GET /checkout",
        SpanKind::Server,
        250,
        Status::Ok,
        vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.response.status_code", 200_i64),
        ],
    )];
    let backend = vec![
        span(
            TRACE_A,
            2,
            1,
            "SELECT orders",
            SpanKind::Client,
            100,
            Status::Error {
                message: "disk full".into(),
            },
            vec![
                KeyValue::new("db.system.name", "sqlite"),
                KeyValue::new("retried", true),
                KeyValue::new("ratio", 0.5),
            ],
        ),
        span(
            TRACE_B,
            3,
            0,
            "cleanup",
            SpanKind::Internal,
            5,
            Status::Unset,
            Vec::new(),
        ),
    ];
    export(addr, "frontend", false, frontend).await;
    export(addr, "backend", true, backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_from_two_services_come_back_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let collector = start(&dir).await;
    let addr = collector.local_addr();
    send_two_services(addr).await;
    wait_stored(&collector, 3).await;

    let (status, services) = get_json(addr, "/api/services").await;
    assert_eq!(status, 200);
    assert_eq!(services, json!({ "services": ["backend", "frontend"] }));

    let trace_a = format!("{TRACE_A:032x}");
    let (status, trace) = get_json(addr, &format!("/api/traces/{trace_a}")).await;
    assert_eq!(status, 200);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2);
    let root = spans.iter().find(|s| s["name"] == "GET /checkout").unwrap();
    let child = spans.iter().find(|s| s["name"] == "SELECT orders").unwrap();
    assert_eq!(root["trace_id"], trace_a);
    assert_eq!(root["span_id"], "0000000000000001");
    assert_eq!(root["parent_span_id"], Value::Null);
    assert_eq!(root["service"], "frontend");
    assert_eq!(root["kind"], "server");
    assert_eq!(root["status"], json!({ "code": "ok", "message": "" }));
    assert_eq!(
        root["attributes"],
        json!({ "http.request.method": "GET", "http.response.status_code": 200 })
    );
    assert_eq!(root["duration_ns"], 250_000_000);
    assert_eq!(root["resource"]["service.name"], "frontend");
    assert_eq!(child["span_id"], "0000000000000002");
    assert_eq!(child["parent_span_id"], "0000000000000001");
    assert_eq!(child["service"], "backend");
    assert_eq!(child["kind"], "client");
    assert_eq!(
        child["status"],
        json!({ "code": "error", "message": "disk full" })
    );
    assert_eq!(
        child["attributes"],
        json!({ "db.system.name": "sqlite", "retried": true, "ratio": 0.5 })
    );
    assert_eq!(child["scope"]["name"], "collect-test");

    let stats = collector.shutdown().await;
    assert_eq!(stats.spans_stored, 3);
    assert_eq!(stats.spans_lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_filter_by_service_operation_duration_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let collector = start(&dir).await;
    let addr = collector.local_addr();
    send_two_services(addr).await;
    wait_stored(&collector, 3).await;
    let a = format!("{TRACE_A:032x}");
    let b = format!("{TRACE_B:032x}");

    let search = |query: &'static str| async move {
        let (status, answer) = get_json(addr, &format!("/api/traces{query}")).await;
        assert_eq!(status, 200, "{query}: {answer}");
        let mut ids = trace_ids(&answer);
        ids.sort();
        ids
    };
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(search("").await, both);
    assert_eq!(search("?service=frontend").await, vec![a.clone()]);
    assert_eq!(search("?service=backend").await, both);
    assert_eq!(
        search("?service=backend&operation=cleanup").await,
        vec![b.clone()]
    );
    assert_eq!(search("?operation=SELECT%20orders").await, vec![a.clone()]);
    assert_eq!(search("?min_duration_ms=50").await, vec![a.clone()]);
    assert_eq!(search("?max_duration_ms=50").await, vec![b.clone()]);
    assert_eq!(
        search("?min_duration_ms=200&service=backend").await,
        Vec::<String>::new()
    );
    assert_eq!(search("?error=true").await, vec![a.clone()]);
    assert_eq!(
        search("?error=true&service=frontend").await,
        Vec::<String>::new()
    );
    assert_eq!(search("?limit=1").await.len(), 1);
    assert_eq!(search("?service=nobody").await, Vec::<String>::new());

    // The summary of a found trace.
    let (_, answer) = get_json(addr, "/api/traces?service=frontend").await;
    let summary = &answer["traces"][0];
    assert_eq!(summary["span_count"], 2);
    assert_eq!(summary["error_count"], 1);
    assert_eq!(summary["root_name"], "GET /checkout");
    assert_eq!(summary["services"], json!(["backend", "frontend"]));

    // Bad queries and unknown traces.
    let (status, _) = get_json(addr, "/api/traces?limit=zero").await;
    assert_eq!(status, 400);
    let (status, _) = get_json(addr, "/api/traces?colour=red").await;
    assert_eq!(status, 400);
    let (status, _) = get_json(addr, "/api/traces/not-an-id").await;
    assert_eq!(status, 400);
    let (status, _) = get_json(addr, &format!("/api/traces/{:032x}", 7)).await;
    assert_eq!(status, 404);
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_json_is_accepted() {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue as PKeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource as PResource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as PSpan};

    let dir = tempfile::tempdir().unwrap();
    let collector = start(&dir).await;
    let addr = collector.local_addr();
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(PResource {
                attributes: vec![PKeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("python-app".into())),
                    }),
                    key_strindex: 0,
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![PSpan {
                    trace_id: vec![0xab; 16],
                    span_id: vec![0xcd; 8],
                    name: "from json".into(),
                    kind: 2,
                    start_time_unix_nano: 1_700_000_000_000_000_000,
                    end_time_unix_nano: 1_700_000_000_001_000_000,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let body = serde_json::to_vec(&request).unwrap();
    let (status, _) = request_json(addr, &body).await;
    assert_eq!(status, 200);
    wait_stored(&collector, 1).await;
    let (_, trace) = get_json(addr, &format!("/api/traces/{}", "ab".repeat(16))).await;
    assert_eq!(trace["spans"][0]["span_id"], "cd".repeat(8));
    assert_eq!(trace["spans"][0]["service"], "python-app");
    assert_eq!(trace["spans"][0]["kind"], "server");

    // As the OTLP/JSON spec (and the Python SDK) writes it: hex ids,
    // 64-bit integers as strings.
    let spec = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name",
        "value":{"stringValue":"py"}}]},"scopeSpans":[{"scope":{"name":"s"},"spans":[{
        "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
        "parentSpanId":"eee19b7ec3c1b173","name":"x","kind":3,
        "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
        "attributes":[{"key":"n","value":{"intValue":"42"}}],"status":{"code":2,"message":"m"}}]}]}]}"#;
    let (status, body) = request_json(addr, spec).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    wait_stored(&collector, 2).await;
    let (_, trace) = get_json(addr, "/api/traces/5b8efff798038103d269b633813fc60c").await;
    let one = &trace["spans"][0];
    assert_eq!(one["span_id"], "eee19b7ec3c1b174");
    assert_eq!(one["parent_span_id"], "eee19b7ec3c1b173");
    assert_eq!(one["kind"], "client");
    assert_eq!(one["attributes"], json!({ "n": 42 }));
    assert_eq!(one["status"], json!({ "code": "error", "message": "m" }));
    assert_eq!(one["duration_ns"], 1_000_000_000);
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after_then_drains() {
    use sqlx::Connection as _;

    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        grpc_listen: None,
        data_dir: dir.path().to_path_buf(),
        queue_capacity: 1,
        ..Config::default()
    })
    .await
    .unwrap();
    let addr = collector.local_addr();
    let mut blocker = common::hold_write_lock(dir.path()).await;
    let body = ExportBody::one(9).encode();
    let protobuf = [("content-type", "application/x-protobuf")];
    let mut accepted = 0;
    let mut refused = None;
    for _ in 0..10 {
        let (status, headers, _) = request_full(addr, "POST", "/v1/traces", &protobuf, &body).await;
        match status {
            200 => accepted += 1,
            503 => {
                refused = Some(headers);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let headers = refused.expect("a full queue is refused");
    assert!(
        headers.to_ascii_lowercase().contains("retry-after: 1"),
        "{headers}"
    );
    assert!((1..=2).contains(&accepted), "{accepted}");
    assert_still_up(addr).await;
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    blocker.close().await.unwrap();
    let stats = collector.shutdown().await;
    assert_eq!(stats.spans_stored, accepted);
    assert_eq!(stats.requests_throttled, 1);
}

/// A one-span protobuf export request.
struct ExportBody(opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest);

impl ExportBody {
    fn one(id: u8) -> Self {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as PSpan};
        ExportBody(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![PSpan {
                        trace_id: vec![id; 16],
                        span_id: vec![id; 8],
                        name: "queued".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    }

    fn encode(&self) -> Vec<u8> {
        use prost::Message as _;
        self.0.encode_to_vec()
    }
}

async fn request_json(addr: SocketAddr, body: &[u8]) -> (u16, Vec<u8>) {
    request(
        addr,
        "POST",
        "/v1/traces",
        &[("content-type", "application/json")],
        body,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_answers_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let collector = start(&dir).await;
    let addr = collector.local_addr();
    let protobuf = [("content-type", "application/x-protobuf")];
    let protobuf_gzip = [
        ("content-type", "application/x-protobuf"),
        ("content-encoding", "gzip"),
    ];

    // Garbage: 400 with a message.
    let (status, body) = request(
        addr,
        "POST",
        "/v1/traces",
        &protobuf,
        b"\xff\xff\xff garbage",
    )
    .await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("protobuf"));
    assert_still_up(addr).await;
    let (status, _) = request_json(addr, b"{not json").await;
    assert_eq!(status, 400);
    assert_still_up(addr).await;

    // Wrong or missing content type, unknown encoding: 415.
    let (status, _) = request(
        addr,
        "POST",
        "/v1/traces",
        &[("content-type", "text/plain")],
        b"x",
    )
    .await;
    assert_eq!(status, 415);
    let (status, _) = request(addr, "POST", "/v1/traces", &[], b"x").await;
    assert_eq!(status, 415);
    let (status, _) = request(
        addr,
        "POST",
        "/v1/traces",
        &[
            ("content-type", "application/x-protobuf"),
            ("content-encoding", "br"),
        ],
        b"x",
    )
    .await;
    assert_eq!(status, 415);
    assert_still_up(addr).await;

    // Too large, as sent and once decompressed: 413.
    let (status, _) = request(addr, "POST", "/v1/traces", &protobuf, &vec![0u8; LIMIT + 1]).await;
    assert_eq!(status, 413);
    assert_still_up(addr).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![0u8; LIMIT * 16]).unwrap();
    let bomb = gz.finish().unwrap();
    assert!(bomb.len() < LIMIT);
    let (status, _) = request(addr, "POST", "/v1/traces", &protobuf_gzip, &bomb).await;
    assert_eq!(status, 413);
    // Not gzip at all: 400.
    let (status, _) = request(addr, "POST", "/v1/traces", &protobuf_gzip, b"plain").await;
    assert_eq!(status, 400);
    assert_still_up(addr).await;

    // Wrong method and path.
    let (status, _) = request(addr, "GET", "/v1/traces", &[], b"").await;
    assert_eq!(status, 405);
    let (status, _) = request(addr, "GET", "/nowhere", &[], b"").await;
    assert_eq!(status, 404);

    // An empty request is a success with an empty response.
    let (status, body) = request(addr, "POST", "/v1/traces", &protobuf, b"").await;
    assert_eq!((status, body.len()), (200, 0));

    // A real export still works after all that.
    send_two_services(addr).await;
    wait_stored(&collector, 3).await;
    let stats = collector.shutdown().await;
    assert_eq!(stats.spans_stored, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_with_bad_ids_are_a_partial_success() {
    use opentelemetry_proto::tonic::collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
    };
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span as PSpan};
    use prost::Message as _;

    let dir = tempfile::tempdir().unwrap();
    let collector = start(&dir).await;
    let addr = collector.local_addr();
    let request_body = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![
                    PSpan {
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        name: "good".into(),
                        ..Default::default()
                    },
                    PSpan {
                        trace_id: vec![1; 3],
                        span_id: vec![2; 8],
                        name: "bad".into(),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let (status, body) = request(
        addr,
        "POST",
        "/v1/traces",
        &[("content-type", "application/x-protobuf")],
        &request_body,
    )
    .await;
    assert_eq!(status, 200);
    let response = ExportTraceServiceResponse::decode(body.as_slice()).unwrap();
    assert_eq!(response.partial_success.unwrap().rejected_spans, 1);
    wait_stored(&collector, 1).await;
    let (_, trace) = get_json(addr, &format!("/api/traces/{}", "01".repeat(16))).await;
    assert_eq!(trace["spans"][0]["service"], "unknown_service");
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let collector = start(&dir).await;
    send_two_services(collector.local_addr()).await;
    wait_stored(&collector, 3).await;
    collector.shutdown().await;

    let collector = start(&dir).await;
    let (status, services) = get_json(collector.local_addr(), "/api/services").await;
    assert_eq!(status, 200);
    assert_eq!(services, json!({ "services": ["backend", "frontend"] }));
    collector.shutdown().await;
}
