//! `--from URL`: the commands read traces from a collector running in this
//! process (`tracewire_collect::Collector` on 127.0.0.1:0, a temporary
//! store), fed by tracewire's own OTLP exporter. Two traces of
//! `GET /checkout` (gateway → orders → `SELECT orders`), the second one
//! later and with a slower query:
//!
//! ```text
//! trace FAST 1111…          trace SLOW 2222… (starts 1 s later)
//! gateway GET /checkout 0–100   0–160
//!   orders POST /orders 10–90   10–150
//!     orders SELECT orders 20–70   20–130
//! ```
//!
//! Waits are bounded polls; no timing is asserted.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant, SystemTime};

use tracewire::export::otlp::{OtlpConfig, OtlpExporter, Protocol};
use tracewire::export::{Resource, SpanExporter as _};
use tracewire::{
    InstrumentationScope, SpanContext, SpanData, SpanId, SpanKind, Status, TraceFlags, TraceId,
    TraceState,
};
use tracewire_collect::{Collector, Config};

use crate::support::tracewire;

const FAST: &str = "11111111111111111111111111111111";
const SLOW: &str = "22222222222222222222222222222222";

/// A collector holding the two traces; it stops when dropped.
struct Running {
    runtime: tokio::runtime::Runtime,
    collector: Option<Collector>,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(collector) = self.collector.take() {
            self.runtime.block_on(collector.shutdown());
        }
    }
}

fn span(
    trace: &str,
    id: u64,
    parent: u64,
    name: &'static str,
    kind: SpanKind,
    start: SystemTime,
    (from_ms, to_ms): (u64, u64),
) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_hex(trace).unwrap(),
            SpanId::from_u64(id),
            TraceFlags::SAMPLED,
            false,
            TraceState::new(),
        ),
        parent_span_id: if parent == 0 {
            SpanId::INVALID
        } else {
            SpanId::from_u64(parent)
        },
        parent_is_remote: false,
        name: name.into(),
        kind,
        start_time: start + Duration::from_millis(from_ms),
        end_time: start + Duration::from_millis(to_ms),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status: Status::Unset,
        scope: InstrumentationScope {
            name: "cli-remote-test".into(),
            version: None,
        },
    }
}

/// The spans of one checkout, by service.
fn checkout(trace: &str, start: SystemTime, query_ms: u64) -> [(&'static str, Vec<SpanData>); 2] {
    let total = 30 + query_ms;
    [
        (
            "gateway",
            vec![span(
                trace,
                1,
                0,
                "GET /checkout",
                SpanKind::Server,
                start,
                (0, total + 30),
            )],
        ),
        (
            "orders",
            vec![
                span(
                    trace,
                    2,
                    1,
                    "POST /orders",
                    SpanKind::Server,
                    start,
                    (10, total + 20),
                ),
                span(
                    trace,
                    3,
                    2,
                    "SELECT orders",
                    SpanKind::Client,
                    start,
                    (20, 20 + query_ms),
                ),
            ],
        ),
    ]
}

fn start_collector() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let collector = runtime
        .block_on(Collector::start(Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc_listen: None,
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        }))
        .expect("the collector starts");
    let addr = collector.local_addr();
    let t0 = SystemTime::now() - Duration::from_secs(60);
    let batches =
        checkout(FAST, t0, 50)
            .into_iter()
            .chain(checkout(SLOW, t0 + Duration::from_secs(1), 110));
    runtime.block_on(async {
        for (service, spans) in batches {
            let mut config =
                OtlpConfig::new(Protocol::HttpProtobuf, format!("http://{addr}/v1/traces"));
            config.timeout = Duration::from_secs(10);
            let mut exporter = OtlpExporter::new(Resource::new(service), config).unwrap();
            exporter.export(spans).await.expect("the export succeeds");
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while collector.stats().spans_stored < 6 {
        assert!(Instant::now() < deadline, "{:?}", collector.stats());
        std::thread::sleep(Duration::from_millis(20));
    }
    Running {
        runtime,
        collector: Some(collector),
        url: format!("http://{addr}"),
        _dir: dir,
    }
}

#[test]
fn commands_read_a_running_collector() {
    let c = start_collector();
    let url = c.url.as_str();

    let list = tracewire(&["list", "--from", url]).ok();
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 3, "a header and two traces:\n{list}");
    assert!(lines[0].starts_with("TRACE ID"), "{list}");
    assert!(lines[1].starts_with(FAST), "earliest first:\n{list}");
    assert!(lines[2].starts_with(SLOW), "{list}");
    assert!(lines[1].contains("gateway: GET /checkout"), "{list}");
    assert!(lines[1].contains("gateway, orders"), "{list}");

    let newest = tracewire(&["list", "--from", url, "--limit", "1", "--json"]).json();
    let traces = newest["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1, "{newest}");
    assert_eq!(traces[0]["trace_id"], SLOW);
    assert_eq!(traces[0]["span_count"], 3);

    // A prefix, resolved through the search.
    let view = tracewire(&["view", "2222", "--from", url]).ok();
    let order: Vec<usize> = ["GET /checkout", "POST /orders", "SELECT orders"]
        .iter()
        .map(|name| {
            view.find(name)
                .unwrap_or_else(|| panic!("{name} in\n{view}"))
        })
        .collect();
    assert!(order.is_sorted(), "spans in tree order:\n{view}");
    assert!(view.contains(SLOW), "{view}");
    assert!(view.contains("◀ bottleneck"), "{view}");

    let path = tracewire(&["critical-path", SLOW, "--from", url]).ok();
    assert!(
        path.lines()
            .any(|l| l.contains("orders: SELECT orders") && l.ends_with("◀ bottleneck")),
        "{path}"
    );
    assert!(
        path.contains("bottleneck: orders: SELECT orders, 110.0ms of 170.0ms"),
        "{path}"
    );

    let diff = tracewire(&["diff", "1111", "2222", "--from", url, "--json"]).json();
    let text = diff.to_string();
    assert!(text.contains("SELECT orders"), "{diff:#}");
    assert!(
        text.contains("60000000"),
        "the query is 60 ms slower: {diff:#}"
    );

    // A prefix and the full id of one trace: read once, so no warning of
    // duplicate spans.
    let same = tracewire(&["diff", "2222", SLOW, "--from", url]).ok();
    assert!(same.contains(SLOW), "{same}");
}

#[test]
fn unknown_traces_at_a_collector_are_clear_errors() {
    let c = start_collector();
    let url = c.url.as_str();

    let err = tracewire(&["view", "3333", "--from", url]).failed();
    assert!(
        err.contains("no trace id starts with \"3333\" among the 2 most recent traces"),
        "{err}"
    );
    let missing = "33333333333333333333333333333333";
    let err = tracewire(&["critical-path", missing, "--from", url]).failed();
    assert_eq!(
        err,
        format!("tracewire: trace {missing} is not in the collector at {url}\n")
    );
    let err = tracewire(&["view", "xyz", "--from", url]).failed();
    assert!(err.contains("is not a trace id"), "{err}");
    let err = tracewire(&["view", SLOW, "--from", &format!("{url}/elsewhere")]).failed();
    assert!(err.contains("answered 404"), "{err}");
    let err = tracewire(&["list", "gateway.jsonl", "--from", url]).failed();
    assert!(err.contains("not both"), "{err}");
}

#[test]
fn an_unreachable_collector_is_a_clear_error() {
    // A port that was free a moment ago: nothing listens there.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}");
    for args in [
        vec!["list", "--from", &url],
        vec!["view", FAST, "--from", &url],
    ] {
        let err = tracewire(&args).failed();
        assert!(
            err.starts_with(&format!(
                "tracewire: cannot connect to the collector at {url}: "
            )),
            "{err}"
        );
        assert!(
            err.contains("is `tracewire collect` running there?"),
            "{err}"
        );
    }

    let err = tracewire(&["list", "--from", "https://127.0.0.1:4318"]).failed();
    assert!(err.contains("HTTPS is not supported"), "{err}");
    let err = tracewire(&["list", "http://127.0.0.1:4318"]).failed();
    assert!(err.contains("--from http://127.0.0.1:4318"), "{err}");
}

#[test]
fn an_answer_that_is_not_json_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = [0; 1024];
        let _ = stream.read(&mut request);
        let _ = stream.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 15\r\nconnection: close\r\n\r\n<html>hi</html>",
        );
    });
    let err = tracewire(&["list", "--from", &url]).failed();
    assert!(
        err.starts_with(&format!(
            "tracewire: the answer from {url}/api/traces?limit=20 is not the collector's JSON: "
        )),
        "{err}"
    );
    server.join().unwrap();
}
