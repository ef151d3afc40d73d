//! The Collector-shaped configuration and the processors: the seed's tail
//! sampling configuration (tests/fixtures/sampler.yaml, with a health-check
//! filter) applied to traffic from two services sent with tracewire's
//! `OtlpExporter`. No timing is asserted: waits are bounded polls of the
//! collector's counts, and each trace's deciding span is sent first, so
//! the decision does not depend on when the other service's spans arrive.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tracewire::tail::Probabilistic;
use tracewire::{KeyValue, SpanData, SpanId, SpanKind, Status, TraceId};
use tracewire_collect::{Collector, CollectorFile, Config};

mod common;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/sampler.yaml");

#[allow(clippy::too_many_arguments)]
fn span(
    trace: u128,
    id: u64,
    parent: u64,
    name: &'static str,
    start: SystemTime,
    millis: u64,
    status: Status,
    attributes: Vec<KeyValue>,
) -> SpanData {
    SpanData {
        parent_is_remote: parent != 0,
        ..common::span(
            "pipeline-test",
            trace,
            id,
            parent,
            name,
            SpanKind::Server,
            start,
            millis,
            status,
            attributes,
        )
    }
}

async fn export(addr: SocketAddr, service: &'static str, spans: Vec<SpanData>) {
    common::export(addr, service, false, spans).await;
}

async fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (_, head, body) = common::request_full(addr, "GET", path, &[], b"").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{path}");
    serde_json::from_slice(&body).expect("a JSON answer")
}

fn load(text: &str) -> Result<CollectorFile, String> {
    CollectorFile::from_yaml(text).map_err(|e| e.to_string())
}

#[test]
fn the_seed_configuration_loads() {
    let file = CollectorFile::load(Path::new(FIXTURE)).expect("the fixture loads");
    assert_eq!(file.listen, Some(SocketAddr::from(([127, 0, 0, 1], 0))));
    assert_eq!(
        file.pipeline.processor_ids(),
        ["filter/health", "tail_sampling", "batch"]
    );
}

#[test]
fn unknown_and_unsupported_components_are_errors_naming_them() {
    let with = |extra: &str, pipeline: &str| {
        format!(
            "receivers: {{otlp: {{protocols: {{http: {{endpoint: 127.0.0.1:0}}}}}}}}\n{extra}\n\
             service: {{pipelines: {{traces: {{receivers: [otlp], {pipeline}}}}}}}\n"
        )
    };
    let store = "exporters: [tracewire_store]";
    let cases = [
        (
            with(
                "processors: {frobnicate/x: {}}\nexporters: {tracewire_store: {}}",
                store,
            ),
            "frobnicate/x",
        ),
        (
            with("exporters: {tracewire_store: {}, kafka_out: {}}", store),
            "kafka_out",
        ),
        (
            with(
                "exporters: {debug/out: {verbosity: detailed}}",
                "exporters: [debug/out]",
            ),
            "debug/out",
        ),
        (
            with(
                "exporters: {tracewire_store: {}}",
                "processors: [batch/missing], exporters: [tracewire_store]",
            ),
            "batch/missing",
        ),
    ];
    for (text, name) in cases {
        let err = load(&text).expect_err(name);
        assert!(err.contains(name), "{err}");
    }
    // The seed's own tier-2 file loads unchanged: its OTLP/gRPC receiver
    // and its otlp exporter (to Tempo; tests/exporters.rs forwards).
    let seed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/collector/sampler.yaml"
    ))
    .unwrap();
    let file = load(&seed).expect("the seed's sampler configuration loads");
    assert_eq!(
        file.grpc_listen,
        Some(SocketAddr::from(([0, 0, 0, 0], 4317)))
    );
    assert_eq!(file.listen, None);
    // The router's loadbalancing exporter is unknown here.
    let router = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/collector/router.yaml"
    ))
    .unwrap()
    .replace("      grpc:\n        endpoint: 0.0.0.0:4317\n", "");
    let err = load(&router).unwrap_err();
    assert!(err.contains("loadbalancing"), "{err}");
}

/// What was sent, per trace id (hex): the spans' ids.
type Sent = BTreeMap<String, BTreeSet<String>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_go_errors_and_slow_traces_are_kept_whole_across_services() {
    let dir = tempfile::tempdir().unwrap();
    let file = CollectorFile::load(Path::new(FIXTURE)).unwrap();
    let collector = Collector::start(
        Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        }
        .apply(file),
    )
    .await
    .expect("the collector starts");
    let addr = collector.local_addr();

    let start = SystemTime::now() - Duration::from_secs(60);
    let one_percent = Probabilistic::new(1.0, "");
    let mut frontend = Vec::new();
    let mut backend = Vec::new();
    let mut expected = Sent::new();
    let (mut errors, mut slow) = (0, 0);
    let traces = 60_u64;
    for i in 0..traces {
        let trace = 0x1000_0000_0000_0000_0000_0000_0000_0000_u128 + u128::from(i) * 0x9e37_79b9;
        let root = 2 * i + 1;
        let child = 2 * i + 2;
        let is_error = i % 5 == 0;
        let is_slow = i % 7 == 3;
        errors += u64::from(is_error);
        slow += u64::from(is_slow);
        // The backend's span decides (error or 2.5 s); the frontend's root
        // span is ordinary.
        backend.push(span(
            trace,
            child,
            root,
            "GET /stock",
            start,
            if is_slow { 2_500 } else { 5 },
            if is_error {
                Status::Error {
                    message: "out of stock".into(),
                }
            } else {
                Status::Ok
            },
            vec![KeyValue::new("http.route", "/stock")],
        ));
        frontend.push(span(
            trace,
            root,
            0,
            "GET /checkout",
            start,
            10,
            Status::Unset,
            vec![KeyValue::new("http.route", "/checkout")],
        ));
        let id = TraceId::from_u128(trace);
        if is_error || is_slow || one_percent.samples(id) {
            let ids = [root, child]
                .iter()
                .map(|s| SpanId::from_u64(*s).to_hex().to_string())
                .collect();
            expected.insert(id.to_hex().to_string(), ids);
        }
    }
    // Health checks, failing and slow ones too: the filter drops them
    // before tail sampling sees them.
    let health_trace = 0x2000_0000_0000_0000_0000_0000_0000_0000_u128;
    let error = || Status::Error {
        message: "down".into(),
    };
    let mut health_spans = 0;
    for i in 0..10_u64 {
        frontend.push(span(
            health_trace + u128::from(i),
            1_000 + i,
            0,
            "GET /health",
            start,
            3_000,
            error(),
            vec![KeyValue::new("http.route", "/health")],
        ));
        backend.push(span(
            health_trace + 100 + u128::from(i),
            2_000 + i,
            0,
            "GET",
            start,
            1,
            error(),
            vec![KeyValue::new("url.path", "/readyz")],
        ));
        health_spans += 2;
    }
    assert!(errors > 0 && slow > 0);

    // The deciding service first.
    let sent = u64::try_from(frontend.len() + backend.len()).unwrap();
    export(addr, "backend", backend).await;
    export(addr, "frontend", frontend).await;

    // Every span is decided within decision_wait of its trace's first
    // span; wait (bounded) until each is stored or dropped.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = collector.stats();
        if s.spans_stored + s.spans_filtered + s.spans_not_sampled >= sent {
            break;
        }
        assert!(Instant::now() < deadline, "not all decided: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = collector.stats();
    assert_eq!(stats.spans_filtered, health_spans);
    let kept_spans: usize = expected.values().map(BTreeSet::len).sum();
    assert_eq!(stats.spans_stored, u64::try_from(kept_spans).unwrap());

    // The API: exactly the expected traces, each whole (both services).
    let found = get_json(addr, "/api/traces?limit=1000").await;
    let found: BTreeSet<String> = found["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(found, expected.keys().cloned().collect::<BTreeSet<_>>());
    for (trace, ids) in &expected {
        let spans = get_json(addr, &format!("/api/traces/{trace}")).await;
        let spans = spans["spans"].as_array().unwrap();
        let got: BTreeSet<String> = spans
            .iter()
            .map(|s| s["span_id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(&got, ids, "trace {trace}");
        let services: BTreeSet<&str> = spans
            .iter()
            .map(|s| s["service"].as_str().unwrap())
            .collect();
        assert_eq!(services, BTreeSet::from(["backend", "frontend"]));
    }
    let health = get_json(addr, "/api/traces?operation=GET%20%2Fhealth").await;
    assert_eq!(health["traces"].as_array().unwrap().len(), 0);
    let errors_found = get_json(addr, "/api/traces?error=true&limit=1000").await;
    assert_eq!(
        errors_found["traces"].as_array().unwrap().len(),
        usize::try_from(errors).unwrap()
    );
    collector.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_decides_buffered_traces_and_num_traces_decides_early() {
    // A wait far longer than the test, and room for 2 traces: the first of
    // 3 traces is decided when the third arrives, the others at shutdown.
    let text = std::fs::read_to_string(FIXTURE)
        .unwrap()
        .replace("decision_wait: 300ms", "decision_wait: 1h")
        .replace("num_traces: 100000", "num_traces: 2");
    let dir = tempfile::tempdir().unwrap();
    let collector = Collector::start(
        Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        }
        .apply(load(&text).unwrap()),
    )
    .await
    .unwrap();
    let addr = collector.local_addr();
    let start = SystemTime::now() - Duration::from_secs(60);
    let failed = |trace: u128| {
        span(
            trace,
            1,
            0,
            "GET /pay",
            start,
            1,
            Status::Error {
                message: "declined".into(),
            },
            Vec::new(),
        )
    };
    export(addr, "frontend", vec![failed(1), failed(2), failed(3)]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while collector.stats().spans_stored < 1 {
        assert!(Instant::now() < deadline, "{:?}", collector.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = collector.shutdown().await;
    assert_eq!(stats.spans_stored, 3);
    assert_eq!(stats.spans_not_sampled, 0);
}
