//! OTLP/JSON request bodies for traces and logs (as the specification
//! writes them: hex ids, 64-bit integers as strings), and a collector with
//! the web viewer to send them to. Shared by the browser tests and the
//! render benchmark.
#![allow(dead_code, reason = "the tests and the benchmark use different parts")]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tracewire_cli::web::WebServer;
use tracewire_collect::{Collector, Config};

/// OTLP span kinds.
pub(crate) const INTERNAL: u8 = 1;
pub(crate) const SERVER: u8 = 2;
pub(crate) const CLIENT: u8 = 3;
pub(crate) const PRODUCER: u8 = 4;
pub(crate) const CONSUMER: u8 = 5;

/// One span to send.
#[derive(Clone, Debug)]
pub(crate) struct SpanSpec {
    pub(crate) trace: String,
    pub(crate) id: u64,
    pub(crate) parent: u64,
    pub(crate) service: String,
    pub(crate) name: String,
    pub(crate) kind: u8,
    pub(crate) start_ns: u64,
    pub(crate) end_ns: u64,
    pub(crate) attributes: Vec<(&'static str, String)>,
    pub(crate) error: Option<String>,
    /// Links: (trace id, span id).
    pub(crate) links: Vec<(String, u64)>,
}

/// One log record to send.
#[derive(Clone, Debug)]
pub(crate) struct LogSpec {
    pub(crate) trace: String,
    pub(crate) span: u64,
    pub(crate) service: String,
    pub(crate) time_ns: u64,
    pub(crate) severity_number: u8,
    pub(crate) severity_text: &'static str,
    pub(crate) body: String,
}

pub(crate) fn span_hex(id: u64) -> String {
    format!("{id:016x}")
}

fn attributes(list: &[(&str, String)]) -> Value {
    Value::Array(
        list.iter()
            .map(|(k, v)| json!({ "key": k, "value": { "stringValue": v } }))
            .collect(),
    )
}

fn resource(service: &str) -> Value {
    json!({ "attributes": [
        { "key": "service.name", "value": { "stringValue": service } },
        { "key": "host.name", "value": { "stringValue": format!("{service}-1") } },
    ] })
}

/// An `ExportTraceServiceRequest` in OTLP/JSON: one resource per service.
pub(crate) fn traces_body(spans: &[SpanSpec]) -> Vec<u8> {
    let mut services: Vec<&str> = Vec::new();
    for s in spans {
        if !services.contains(&s.service.as_str()) {
            services.push(&s.service);
        }
    }
    let resource_spans: Vec<Value> = services
        .iter()
        .map(|service| {
            let list: Vec<Value> = spans
                .iter()
                .filter(|s| s.service == *service)
                .map(|s| {
                    let mut span = json!({
                        "traceId": s.trace,
                        "spanId": span_hex(s.id),
                        "name": s.name,
                        "kind": s.kind,
                        "startTimeUnixNano": s.start_ns.to_string(),
                        "endTimeUnixNano": s.end_ns.to_string(),
                        "attributes": attributes(&s.attributes),
                        "links": s.links.iter().map(|(t, id)| json!({
                            "traceId": t, "spanId": span_hex(*id),
                            "attributes": [{ "key": "messaging.operation.type", "value": { "stringValue": "receive" } }],
                        })).collect::<Vec<_>>(),
                    });
                    if s.parent != 0 {
                        span["parentSpanId"] = json!(span_hex(s.parent));
                    }
                    if let Some(message) = &s.error {
                        span["status"] = json!({ "code": 2, "message": message });
                        span["events"] = json!([{
                            "name": "exception",
                            "timeUnixNano": s.end_ns.to_string(),
                            "attributes": attributes(&[("exception.message", message.clone())]),
                        }]);
                    }
                    span
                })
                .collect();
            json!({
                "resource": resource(service),
                "scopeSpans": [{ "scope": { "name": "web-test", "version": "1" }, "spans": list }],
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
        .to_string()
        .into_bytes()
}

/// An `ExportLogsServiceRequest` in OTLP/JSON.
pub(crate) fn logs_body(logs: &[LogSpec]) -> Vec<u8> {
    let resource_logs: Vec<Value> = logs
        .iter()
        .map(|l| {
            json!({
                "resource": resource(&l.service),
                "scopeLogs": [{ "scope": { "name": "web-test" }, "logRecords": [{
                    "timeUnixNano": l.time_ns.to_string(),
                    "observedTimeUnixNano": l.time_ns.to_string(),
                    "severityNumber": l.severity_number,
                    "severityText": l.severity_text,
                    "body": { "stringValue": l.body },
                    "traceId": l.trace,
                    "spanId": span_hex(l.span),
                    "attributes": [],
                }] }],
            })
        })
        .collect();
    json!({ "resourceLogs": resource_logs })
        .to_string()
        .into_bytes()
}

/// `POST path` with a JSON body; the answer's status and body.
pub(crate) async fn post(addr: SocketAddr, path: &str, body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the collector accepts");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("sent");
    stream.write_all(body).await.expect("sent");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("answered");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

/// A collector on a free port with a temporary store, and the web viewer
/// over its store on another.
pub(crate) struct Running {
    pub(crate) collector: Collector,
    pub(crate) web: WebServer,
    _dir: tempfile::TempDir,
}

impl Running {
    pub(crate) async fn start() -> Running {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let collector = Collector::start(Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc_listen: None,
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        })
        .await
        .expect("the collector starts");
        let web = tracewire_cli::web::serve(
            collector.store().clone(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
        )
        .await
        .expect("the viewer starts");
        Running {
            collector,
            web,
            _dir: dir,
        }
    }

    /// Sends the spans and waits (bounded) until they are stored.
    pub(crate) async fn send_spans(&self, spans: &[SpanSpec]) {
        let before = self.collector.stats().spans_stored;
        for chunk in spans.chunks(20_000) {
            let (status, body) = post(
                self.collector.local_addr(),
                "/v1/traces",
                &traces_body(chunk),
            )
            .await;
            assert_eq!(status, 200, "{body}");
        }
        let want = before + spans.len() as u64;
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.collector.stats().spans_stored < want {
            assert!(Instant::now() < deadline, "spans not stored in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends the log records and waits (bounded) until the API shows the
    /// last one in its trace.
    pub(crate) async fn send_logs(&self, logs: &[LogSpec]) {
        let (status, body) = post(self.collector.local_addr(), "/v1/logs", &logs_body(logs)).await;
        assert_eq!(status, 200, "POST /v1/logs: {body}");
        let Some(last) = logs.last() else { return };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let trace = self.api(&format!("/api/traces/{}", last.trace)).await;
            let stored = trace["logs"].as_array().is_some_and(|l| {
                l.iter().any(|r| {
                    r["body"] == json!(last.body) || r["body"]["stringValue"] == json!(last.body)
                })
            });
            if stored {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "logs not stored in time: {trace}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A GET of the viewer's API, answered in-process.
    pub(crate) async fn api(&self, path_and_query: &str) -> Value {
        use http_body_util::BodyExt as _;
        let (path, query) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        let reply =
            tracewire_cli::web::respond(self.collector.store(), &hyper::Method::GET, path, query)
                .await;
        let body = reply
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    }

    pub(crate) async fn stop(self) {
        self.web.shutdown().await;
        self.collector.shutdown().await;
    }
}
