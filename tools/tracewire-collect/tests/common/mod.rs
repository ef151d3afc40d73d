//! Helpers shared by the integration tests: span building, exporting with
//! tracewire's `OtlpExporter`, and raw HTTP/1.1 requests.

// Each test crate uses its own subset.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tracewire::export::otlp::{Compression, OtlpConfig, OtlpExporter, Protocol};
use tracewire::export::{Resource, SpanExporter as _};
use tracewire::{
    InstrumentationScope, KeyValue, SpanContext, SpanData, SpanId, SpanKind, Status, TraceFlags,
    TraceId, TraceState,
};

/// A sampled span (`parent` 0: a root span) of the scope `scope`, lasting
/// `millis` from `start`, with no events or links.
#[allow(clippy::too_many_arguments)]
pub(crate) fn span(
    scope: &'static str,
    trace: u128,
    id: u64,
    parent: u64,
    name: &'static str,
    kind: SpanKind,
    start: SystemTime,
    millis: u64,
    status: Status,
    attributes: Vec<KeyValue>,
) -> SpanData {
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_u128(trace),
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
        start_time: start,
        end_time: start + Duration::from_millis(millis),
        attributes,
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status,
        scope: InstrumentationScope {
            name: scope.into(),
            version: None,
        },
    }
}

/// Exports `spans` as `service` over OTLP/HTTP protobuf (gzipped with
/// `gzip`); panics unless the export succeeds.
pub(crate) async fn export(
    addr: SocketAddr,
    service: &'static str,
    gzip: bool,
    spans: Vec<SpanData>,
) {
    let mut config = OtlpConfig::new(Protocol::HttpProtobuf, format!("http://{addr}/v1/traces"));
    config.timeout = Duration::from_secs(10);
    if gzip {
        config.compression = Compression::Gzip;
    }
    let mut exporter = OtlpExporter::new(Resource::new(service), config).unwrap();
    exporter.export(spans).await.expect("the export succeeds");
}

/// One HTTP/1.1 request on a fresh connection: status and body.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let (status, _, body) = request_full(addr, method, path, headers, body).await;
    (status, body)
}

/// One HTTP/1.1 request on a fresh connection: status, head and body.
pub(crate) async fn request_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (and close) before reading a refused body.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete HTTP answer");
    let head = String::from_utf8_lossy(&answer[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head, answer[split + 4..].to_vec())
}

/// `GET path` and its JSON answer.
pub(crate) async fn get_json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = request(addr, "GET", path, &[], b"").await;
    (
        status,
        serde_json::from_slice(&body).expect("a JSON answer"),
    )
}

/// Waits (at most 10 s) until the collector has stored `spans` spans.
pub(crate) async fn wait_stored(collector: &tracewire_collect::Collector, spans: u64) {
    for _ in 0..400 {
        if collector.stats().spans_stored >= spans {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("spans not stored: {:?}", collector.stats());
}

/// A second connection to the store in `dir` holding its write lock (until
/// it rolls back or is dropped): the collector's writer waits within its
/// busy timeout, so accepted batches pile up in the queue.
pub(crate) async fn hold_write_lock(dir: &std::path::Path) -> sqlx::SqliteConnection {
    use sqlx::Connection as _;

    let url = format!("sqlite:{}", dir.join("traces.sqlite").display());
    let mut blocker = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    blocker
}
