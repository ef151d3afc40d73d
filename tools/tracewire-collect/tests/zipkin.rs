//! The `zipkin` receiver: Zipkin v2 JSON spans posted to
//! `/api/v2/spans` are stored as OTLP spans and answered by the API; a
//! 64-bit trace id is padded; bad bodies get documented answers and the
//! collector stays up; the YAML `receivers: zipkin:` starts the listener,
//! which is off otherwise. No timing is asserted: waits are bounded polls.

use std::io::Write as _;
use std::net::SocketAddr;

use serde_json::{Value, json};
use tracewire_collect::{Collector, CollectorFile, Config};

mod common;
use common::{get_json, request, request_full, wait_stored};

const LIMIT: usize = 8 * 1024;
const JSON: [(&str, &str); 1] = [("content-type", "application/json")];
const TRACE: &str = "5af7183fb1d4cf5f6b221d5bc9e6496c";

fn config(dir: &tempfile::TempDir) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        grpc_listen: None,
        zipkin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        data_dir: dir.path().to_path_buf(),
        body_limit: LIMIT,
        ..Config::default()
    }
}

async fn start(dir: &tempfile::TempDir) -> Collector {
    Collector::start(config(dir))
        .await
        .expect("the collector starts")
}

fn zipkin(collector: &Collector) -> SocketAddr {
    collector.zipkin_addr().expect("the Zipkin listener is on")
}

async fn post(addr: SocketAddr, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let (status, body) = request(addr, "POST", "/api/v2/spans", headers, body).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn assert_still_up(collector: &Collector) {
    let (status, _) = get_json(collector.local_addr(), "/api/services").await;
    assert_eq!(status, 200, "the API answers after a bad request");
    let (status, _) = post(zipkin(collector), &JSON, b"[]").await;
    assert_eq!(
        status, 202,
        "the Zipkin listener answers after a bad request"
    );
}

/// The Zipkin API documentation's example, as a CLIENT span of
/// `frontend` (tags, annotations, both endpoints) and its child SERVER
/// span in `backend`, which failed.
fn two_services() -> Value {
    json!([
        {
            "traceId": TRACE,
            "id": "6b221d5bc9e6496c",
            "name": "get /api",
            "kind": "CLIENT",
            "timestamp": 1_556_604_172_355_737_u64,
            "duration": 1431,
            "localEndpoint": {"serviceName": "frontend", "ipv4": "192.168.99.1", "port": 3306},
            "remoteEndpoint": {"serviceName": "backend", "ipv4": "172.19.0.2", "port": 8080},
            "annotations": [
                {"timestamp": 1_556_604_172_355_800_u64, "value": "ws"},
                {"timestamp": 1_556_604_172_357_100_u64, "value": "wr"}
            ],
            "tags": {"http.method": "GET", "http.path": "/api"},
            "debug": true
        },
        {
            "traceId": TRACE,
            "id": "352bff9a74ca9ad2",
            "parentId": "6b221d5bc9e6496c",
            "name": "get /api",
            "kind": "SERVER",
            "timestamp": 1_556_604_172_355_900_u64,
            "duration": 1000,
            "localEndpoint": {"serviceName": "backend", "ipv6": "::1"},
            "tags": {"http.method": "GET", "error": "500 Internal Server Error"},
            "shared": true
        }
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zipkin_spans_are_stored_and_answered_as_otlp() {
    let dir = tempfile::tempdir().unwrap();
    let collector = start(&dir).await;
    let body = serde_json::to_vec(&two_services()).unwrap();
    let (status, answer) = post(zipkin(&collector), &JSON, &body).await;
    assert_eq!((status, answer.as_str()), (202, ""));
    wait_stored(&collector, 2).await;

    let api = collector.local_addr();
    let (status, services) = get_json(api, "/api/services").await;
    assert_eq!(status, 200);
    assert_eq!(services, json!({ "services": ["backend", "frontend"] }));
    let (status, trace) = get_json(api, &format!("/api/traces/{TRACE}")).await;
    assert_eq!(status, 200);
    let spans = trace["spans"].as_array().unwrap();
    assert_eq!(spans.len(), 2);
    let client = spans.iter().find(|s| s["kind"] == "client").unwrap();
    let server = spans.iter().find(|s| s["kind"] == "server").unwrap();

    assert_eq!(client["trace_id"], TRACE);
    assert_eq!(client["span_id"], "6b221d5bc9e6496c");
    assert_eq!(client["parent_span_id"], Value::Null);
    assert_eq!(client["name"], "get /api");
    assert_eq!(client["service"], "frontend");
    assert_eq!(client["resource"], json!({ "service.name": "frontend" }));
    assert_eq!(client["start_unix_nano"], 1_556_604_172_355_737_000_u64);
    assert_eq!(client["duration_ns"], 1_431_000);
    assert_eq!(client["status"], json!({ "code": "unset", "message": "" }));
    assert_eq!(
        client["attributes"],
        json!({
            "http.method": "GET",
            "http.path": "/api",
            "network.local.address": "192.168.99.1",
            "network.local.port": 3306,
            "service.peer.name": "backend",
            "network.peer.address": "172.19.0.2",
            "network.peer.port": 8080,
        })
    );
    assert_eq!(
        client["events"],
        json!([
            { "name": "ws", "time_unix_nano": 1_556_604_172_355_800_000_u64, "attributes": {} },
            { "name": "wr", "time_unix_nano": 1_556_604_172_357_100_000_u64, "attributes": {} },
        ])
    );

    assert_eq!(server["span_id"], "352bff9a74ca9ad2");
    assert_eq!(server["parent_span_id"], "6b221d5bc9e6496c");
    assert_eq!(server["service"], "backend");
    assert_eq!(server["start_unix_nano"], 1_556_604_172_355_900_000_u64);
    assert_eq!(server["duration_ns"], 1_000_000);
    assert_eq!(
        server["status"],
        json!({ "code": "error", "message": "500 Internal Server Error" })
    );
    assert_eq!(
        server["attributes"],
        json!({ "http.method": "GET", "network.local.address": "::1" })
    );
    assert_eq!(server["events"], json!([]));

    let stats = collector.shutdown().await;
    assert_eq!(stats.spans_accepted, 2);
    assert_eq!(stats.spans_rejected, 0);
    assert_eq!(stats.spans_stored, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_bit_trace_id_is_left_padded_and_gzip_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let collector = start(&dir).await;
    let body = serde_json::to_vec(&json!([{
        "traceId": "5af7183fb1d4cf5f",
        "id": "0000000000000001",
        "name": "compressed",
        "timestamp": 1_556_604_172_355_737_u64,
        "duration": 5,
        "localEndpoint": {"serviceName": "legacy"}
    }]))
    .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&body).unwrap();
    let gzipped = gz.finish().unwrap();
    let headers = [
        ("content-type", "application/json; charset=utf-8"),
        ("content-encoding", "gzip"),
    ];
    let (status, _) = post(zipkin(&collector), &headers, &gzipped).await;
    assert_eq!(status, 202);
    wait_stored(&collector, 1).await;

    let (status, trace) = get_json(
        collector.local_addr(),
        "/api/traces/00000000000000005af7183fb1d4cf5f",
    )
    .await;
    assert_eq!(status, 200);
    let span = &trace["spans"][0];
    assert_eq!(span["trace_id"], "00000000000000005af7183fb1d4cf5f");
    assert_eq!(span["name"], "compressed");
    assert_eq!(span["kind"], "internal", "no kind: INTERNAL");
    assert_eq!(span["service"], "legacy");
    assert_eq!(span["duration_ns"], 5_000);
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_documented_answers_and_the_collector_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let collector = start(&dir).await;
    let addr = zipkin(&collector);

    // Not JSON, not an array, a field of the wrong type: 400 with a message.
    for body in [
        &b"{not json"[..],
        br#"{"traceId":"5af7183fb1d4cf5f","id":"0000000000000001"}"#,
        br#"[{"traceId":"5af7183fb1d4cf5f","id":"0000000000000001","timestamp":"soon"}]"#,
        b"",
    ] {
        let (status, answer) = post(addr, &JSON, body).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(body));
        assert!(
            answer.starts_with("not a JSON array of Zipkin v2 spans"),
            "{answer}"
        );
        assert_still_up(&collector).await;
    }

    // Bad ids: those spans are rejected and counted, the others stored,
    // and the answer is still 202.
    let body = json!([
        {"traceId": "5af7183fb1d4cf5f", "id": "0000000000000001"},
        {"traceId": "not hex at all!!", "id": "0000000000000002"},
        {"traceId": "5af7183fb1d4cf5f", "id": "02"},
        {"traceId": "5af7183fb1d4cf5f", "id": "0000000000000003", "parentId": "xyz"},
        {"id": "0000000000000004"}
    ]);
    let (status, answer) = post(addr, &JSON, body.to_string().as_bytes()).await;
    assert_eq!(status, 202);
    assert!(
        answer.starts_with("4 span(s) rejected: span 1: traceId"),
        "{answer}"
    );
    wait_stored(&collector, 1).await;
    let stats = collector.stats();
    assert_eq!((stats.spans_accepted, stats.spans_rejected), (1, 4));

    // Not JSON's content type (or none): 415.
    let ok = br#"[{"traceId":"5af7183fb1d4cf5f","id":"0000000000000009"}]"#;
    for headers in [
        &[("content-type", "application/x-protobuf")][..],
        &[("content-type", "text/plain")],
        &[],
    ] {
        let (status, _) = post(addr, headers, ok).await;
        assert_eq!(status, 415, "{headers:?}");
    }
    // Bad gzip: 400; an unknown encoding: 415; too large: 413.
    let gzip = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
    ];
    let (status, answer) = post(addr, &gzip, b"not gzip").await;
    assert_eq!(status, 400, "{answer}");
    let br = [
        ("content-type", "application/json"),
        ("content-encoding", "br"),
    ];
    assert_eq!(post(addr, &br, ok).await.0, 415);
    let large = format!("[{}]", vec!["null"; LIMIT].join(","));
    assert_eq!(post(addr, &JSON, large.as_bytes()).await.0, 413);
    // Other methods and paths.
    assert_eq!(request(addr, "GET", "/api/v2/spans", &[], b"").await.0, 405);
    assert_eq!(
        request(addr, "POST", "/api/v1/spans", &JSON, ok).await.0,
        404
    );
    assert_eq!(request(addr, "POST", "/v1/traces", &JSON, ok).await.0, 404);
    assert_still_up(&collector).await;

    let stats = collector.shutdown().await;
    assert_eq!(stats.spans_rejected, 4);
    assert_eq!(stats.spans_stored, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_with_retry_after() {
    use sqlx::Connection as _;

    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(Config {
        queue_capacity: 1,
        ..config(&dir)
    })
    .await
    .unwrap();
    let mut blocker = common::hold_write_lock(dir.path()).await;
    let mut accepted = 0;
    let mut refused = None;
    for id in 1..=10 {
        let body = format!(r#"[{{"traceId":"5af7183fb1d4cf5f","id":"{id:016x}"}}]"#);
        let (status, head, _) = request_full(
            zipkin(&collector),
            "POST",
            "/api/v2/spans",
            &JSON,
            body.as_bytes(),
        )
        .await;
        match status {
            202 => accepted += 1,
            503 => {
                refused = Some(head);
                break;
            }
            other => panic!("unexpected {other}"),
        }
    }
    let head = refused.expect("a full queue is refused");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 1"),
        "{head}"
    );
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    blocker.close().await.unwrap();
    let stats = collector.shutdown().await;
    assert_eq!(stats.spans_stored, accepted);
    assert_eq!(stats.requests_throttled, 1);
}

/// A configuration with the OTLP receiver and `receiver` (a line under
/// `receivers:`), a traces pipeline taking `traces` and `logs` (more
/// pipelines, as lines under `pipelines:`).
fn yaml(receiver: &str, traces: &str, logs: &str) -> String {
    format!(
        "receivers:\n  otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:0}}}}}}\n  {receiver}\n\
         exporters:\n  tracewire_store:\n\
         service:\n  pipelines:\n    traces: {{receivers: [{traces}], exporters: [tracewire_store]}}\n\
         {logs}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_yaml_zipkin_receiver_starts_the_listener() {
    let file =
        CollectorFile::from_yaml(&yaml("zipkin: {endpoint: 127.0.0.1:0}", "otlp, zipkin", ""))
            .expect("the configuration loads");
    assert_eq!(
        file.zipkin_listen,
        Some(SocketAddr::from(([127, 0, 0, 1], 0)))
    );
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(Config {
        grpc_listen: None,
        data_dir: dir.path().to_path_buf(),
        ..Config::default().apply(file)
    })
    .await
    .unwrap();
    let body = serde_json::to_vec(&two_services()).unwrap();
    assert_eq!(post(zipkin(&collector), &JSON, &body).await.0, 202);
    wait_stored(&collector, 2).await;
    collector.shutdown().await;

    // Without an endpoint: Zipkin's port on the loopback interface.
    let file = CollectorFile::from_yaml(&yaml("zipkin:", "zipkin", "")).unwrap();
    assert_eq!(
        file.zipkin_listen,
        Some(SocketAddr::from(([127, 0, 0, 1], 9411)))
    );
    // Defined, but no pipeline uses it: not started.
    let file = CollectorFile::from_yaml(&yaml("zipkin:", "otlp", "")).unwrap();
    assert_eq!(file.zipkin_listen, None);
    assert_eq!(Config::default().apply(file).zipkin_listen, None);
    // Bad settings and a logs pipeline are errors naming the receiver.
    for (text, message) in [
        (
            yaml("zipkin: {parse_string_tags: true}", "zipkin", ""),
            "parse_string_tags",
        ),
        (yaml("zipkin: {endpoint: 7}", "zipkin", ""), "endpoint"),
        (
            yaml(
                "zipkin:",
                "otlp",
                "    logs: {receivers: [zipkin], exporters: [tracewire_store]}\n",
            ),
            "traces only",
        ),
    ] {
        let error = CollectorFile::from_yaml(&text).unwrap_err().to_string();
        assert!(
            error.contains("zipkin") && error.contains(message),
            "{error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_configuration_there_is_no_zipkin_listener() {
    assert_eq!(Config::default().zipkin_listen, None);
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(Config {
        zipkin_listen: None,
        ..config(&dir)
    })
    .await
    .unwrap();
    assert_eq!(collector.zipkin_addr(), None);
    // The OTLP/HTTP listener does not take Zipkin spans.
    let body = serde_json::to_vec(&two_services()).unwrap();
    let (status, _) = request(
        collector.local_addr(),
        "POST",
        "/api/v2/spans",
        &JSON,
        &body,
    )
    .await;
    assert_eq!(status, 405, "the API only answers GET");
    let stats = collector.shutdown().await;
    assert_eq!(stats.spans_accepted, 0);
}
