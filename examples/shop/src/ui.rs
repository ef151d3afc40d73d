//! `shop --ui`: the run's traces and log lines in `tracewire collect`'s
//! store, shown by the web viewer, which keeps running after the report.
//!
//! The launcher starts a collector in-process (OTLP/HTTP on a free
//! loopback port, its store under `<out>/collect`) and points every
//! service's OTLP exporter at it. The services write their log lines as
//! JSON to their own files (as without `--ui`); once they have stopped,
//! the launcher sends those lines to the collector as OTLP log records
//! (`POST /v1/logs`, OTLP/JSON), as the Collector's `filelog` receiver
//! would, so the viewer shows each trace's log lines from every service.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};
use tracewire_cli::web::{self, WebServer};
use tracewire_collect::{Collector, Config};

use crate::BoxError;
use crate::net::Shutdown;
use crate::services::Service;
use crate::telemetry::logs_file;

/// Log records per export request.
const RECORDS_PER_REQUEST: usize = 1_000;
/// How long the collector may take to store what it accepted.
const STORE_TIMEOUT: Duration = Duration::from_secs(30);

/// The collector and the viewer of a `--ui` run.
pub(crate) struct Ui {
    collector: Collector,
    viewer: WebServer,
    /// Watching Ctrl-C and SIGTERM from the start, so that one sent as
    /// soon as the links are printed stops the viewer cleanly.
    shutdown: Shutdown,
}

impl Ui {
    /// Starts the collector (store in `<out>/collect`, emptied first) and
    /// the viewer on `listen`, on the current runtime.
    pub(crate) async fn start(out: &Path, listen: SocketAddr) -> Result<Ui, BoxError> {
        let data = data_dir(out);
        match std::fs::remove_dir_all(&data) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot empty {}: {e}", data.display()).into()),
        }
        // Bound first: a busy port is reported before the services start.
        let listener = std::net::TcpListener::bind(listen)
            .map_err(|e| format!("cannot listen on {listen} for the viewer: {e}"))?;
        let collector = Collector::start(Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc_listen: None,
            data_dir: data,
            ..Config::default()
        })
        .await
        .map_err(|e| format!("cannot start the collector: {e}"))?;
        let viewer = web::serve_listener(collector.store().clone(), listener)
            .map_err(|e| format!("cannot start the viewer: {e}"))?;
        Ok(Ui {
            collector,
            viewer,
            shutdown: Shutdown::from_signals(),
        })
    }

    /// The OTLP endpoint the services export to.
    pub(crate) fn otlp_endpoint(&self) -> String {
        format!("http://{}", self.collector.local_addr())
    }

    /// Sends every service's log lines to the collector as OTLP log
    /// records, then waits (bounded) until the collector has stored them
    /// and the spans it accepted. Returns the number of records sent.
    pub(crate) async fn send_logs(&self, out: &Path) -> Result<u64, BoxError> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()?;
        let url = format!("{}/v1/logs", self.otlp_endpoint());
        let mut sent = 0_u64;
        for service in Service::ALL {
            let path = logs_file(out, service);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let records: Vec<Json> = text.lines().filter_map(log_record).collect();
            for chunk in records.chunks(RECORDS_PER_REQUEST) {
                let body = export_request(service, chunk);
                let response = client.post(&url).json(&body).send().await?;
                if !response.status().is_success() {
                    return Err(format!(
                        "the collector refused {}'s log lines: {}",
                        service.name(),
                        response.status()
                    )
                    .into());
                }
                sent += chunk.len() as u64;
            }
        }
        let deadline = Instant::now() + STORE_TIMEOUT;
        loop {
            let stats = self.collector.stats();
            let done = stats.logs_stored + stats.logs_lost >= stats.logs_accepted
                && stats.spans_stored + stats.spans_lost >= stats.spans_accepted;
            if done || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(sent)
    }

    /// The viewer's URL, and the page of one trace.
    pub(crate) fn url(&self) -> String {
        self.viewer.url()
    }

    pub(crate) fn trace_url(&self, trace_id: &str) -> String {
        self.viewer.trace_url(trace_id)
    }

    /// Keeps serving until Ctrl-C or SIGTERM, then stops the viewer and
    /// the collector (storing what it holds).
    pub(crate) async fn serve_until_stopped(self) {
        self.shutdown.wait().await;
        self.viewer.shutdown().await;
        self.collector.shutdown().await;
    }
}

/// Where the collector keeps its store.
fn data_dir(out: &Path) -> PathBuf {
    out.join("collect")
}

/// One OTLP/JSON `ExportLogsServiceRequest` of `service`'s records.
fn export_request(service: Service, records: &[Json]) -> Json {
    json!({
        "resourceLogs": [{
            "resource": {"attributes": [attribute("service.name", &json!(service.name()))]},
            "scopeLogs": [{"scope": {"name": "shop"}, "logRecords": records}],
        }]
    })
}

/// A JSON log line of a service (`tracing-subscriber`'s JSON format with
/// tracewire's `trace_id`, `span_id` and `trace_flags`) as an OTLP/JSON
/// log record: the message is the body, the other fields and the target
/// are attributes, the level is the severity. `None` for a line that is
/// not such an object (the services' own output only).
fn log_record(line: &str) -> Option<Json> {
    let log: Json = serde_json::from_str(line).ok()?;
    let object = log.as_object()?;
    let time = object
        .get("timestamp")
        .and_then(Json::as_str)
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let level = object.get("level").and_then(Json::as_str).unwrap_or("INFO");
    let severity = match level {
        "TRACE" => 1,
        "DEBUG" => 5,
        "INFO" => 9,
        "WARN" => 13,
        "ERROR" => 17,
        _ => 0,
    };
    let fields = object.get("fields").and_then(Json::as_object);
    let message = fields
        .and_then(|f| f.get("message"))
        .and_then(Json::as_str)
        .unwrap_or_default();
    let mut attributes: Vec<Json> = fields
        .into_iter()
        .flatten()
        .filter(|(key, _)| key.as_str() != "message")
        .map(|(key, value)| attribute(key, value))
        .collect();
    if let Some(target) = object.get("target") {
        attributes.push(attribute("log.target", target));
    }
    let mut record = json!({
        "timeUnixNano": time.to_string(),
        "observedTimeUnixNano": time.to_string(),
        "severityNumber": severity,
        "severityText": level,
        "body": {"stringValue": message},
        "attributes": attributes,
    });
    for (field, otlp) in [("trace_id", "traceId"), ("span_id", "spanId")] {
        if let Some(id) = object.get(field).and_then(Json::as_str) {
            record[otlp] = json!(id);
        }
    }
    if let Some(flags) = object
        .get("trace_flags")
        .and_then(Json::as_str)
        .and_then(|f| u8::from_str_radix(f, 16).ok())
    {
        record["flags"] = json!(flags);
    }
    Some(record)
}

/// An OTLP/JSON attribute: strings, integers, floats and booleans as
/// themselves, anything else as its JSON text.
fn attribute(key: &str, value: &Json) -> Json {
    let value = match value {
        Json::String(s) => json!({"stringValue": s}),
        Json::Bool(b) => json!({"boolValue": b}),
        Json::Number(n) if n.is_i64() => json!({"intValue": n.to_string()}),
        Json::Number(n) => json!({"doubleValue": n.as_f64()}),
        other => json!({"stringValue": other.to_string()}),
    };
    json!({"key": key, "value": value})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_log_line_becomes_an_otlp_log_record() {
        let line = r#"{"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7","trace_flags":"01","timestamp":"2026-12-07T00:35:11.123456Z","level":"WARN","fields":{"message":"cache miss","user.id":42,"hit":false},"target":"users"}"#;
        let record = log_record(line).expect("a record");
        assert_eq!(record["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(record["spanId"], "00f067aa0ba902b7");
        assert_eq!(record["flags"], 1);
        assert_eq!(record["severityNumber"], 13);
        assert_eq!(record["severityText"], "WARN");
        assert_eq!(record["body"]["stringValue"], "cache miss");
        assert_eq!(record["timeUnixNano"], "1796603711123456000");
        let attributes = record["attributes"].as_array().unwrap();
        assert!(attributes.contains(&json!({"key": "user.id", "value": {"intValue": "42"}})));
        assert!(attributes.contains(&json!({"key": "hit", "value": {"boolValue": false}})));
        assert!(
            attributes.contains(&json!({"key": "log.target", "value": {"stringValue": "users"}}))
        );
    }

    #[test]
    fn lines_that_are_not_json_objects_are_skipped() {
        assert!(log_record("thread 'main' panicked").is_none());
        assert!(log_record("[1, 2]").is_none());
        // A line without ids is a record without ids.
        let record = log_record(r#"{"level":"INFO","fields":{"message":"ready"}}"#).unwrap();
        assert!(record.get("traceId").is_none());
    }
}
