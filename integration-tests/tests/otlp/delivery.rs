//! What arrives at the receiver, for each protocol.

use std::time::Duration;

use opentelemetry_proto::tonic::common::v1::any_value::Value as V;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, Span};
use tracewire::{
    Context, SpanContext, SpanId, TraceFlags, TraceId, TraceState, Tracewire, with_remote_parent,
};
use tracing_subscriber::prelude::*;

use crate::support::{Receiver, attr, span};

const TRACE: u128 = 0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736;
const CALLER: u64 = 0x00f0_67aa_0ba9_02b7;

/// The settings `vars` give, looked up like environment variables.
pub(crate) fn from_vars(vars: &[(&str, String)]) -> Tracewire {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    Tracewire::from_otel(move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
}

/// Records a small checkout trace under a remote caller and flushes it.
fn record_checkout(settings: Tracewire) {
    let (layer, guard) = settings.build_layer().expect("pipeline");
    let caller = Context::from_span_context(SpanContext::new(
        TraceId::from_u128(TRACE),
        SpanId::from_u64(CALLER),
        TraceFlags::SAMPLED,
        true,
        TraceState::from_key_values([("vendor", "x")]).unwrap(),
    ));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let server = with_remote_parent(&caller, || {
            tracing::info_span!(
                "GET /orders/{id}",
                otel.kind = "server",
                http.response.status_code = 200,
                cached = false,
                ratio = 0.25,
                url.path = "/orders/7"
            )
        });
        server.in_scope(|| {
            tracing::info!(order.id = 7, "loading order");
            let query = tracing::info_span!(
                "SELECT orders",
                otel.kind = "client",
                error = tracing::field::Empty
            );
            // The operation failed: its span records the error (a log line
            // alone would not set the status).
            let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "statement timeout");
            query.record("error", &e as &dyn std::error::Error);
        });
    });
    guard.force_flush(Duration::from_secs(10)).expect("flush");
}

fn resource_spans(rx: &Receiver) -> ResourceSpans {
    let received = rx.received();
    assert_eq!(received.len(), 1, "one batch expected");
    received[0]
        .request
        .clone()
        .expect("decodable")
        .resource_spans[0]
        .clone()
}

/// The checks every protocol must pass.
fn assert_checkout(rx: &Receiver) {
    let rs = resource_spans(rx);
    let resource = rs.resource.as_ref().unwrap();
    assert_eq!(
        attr(&resource.attributes, "service.name"),
        Some(&V::StringValue("checkout".into()))
    );
    assert_eq!(
        attr(&resource.attributes, "telemetry.sdk.name"),
        Some(&V::StringValue("tracewire".into()))
    );
    assert_eq!(
        attr(&resource.attributes, "telemetry.sdk.language"),
        Some(&V::StringValue("rust".into()))
    );
    assert_eq!(
        attr(&resource.attributes, "deployment.environment.name"),
        Some(&V::StringValue("test".into()))
    );
    assert_eq!(rs.scope_spans[0].scope.as_ref().unwrap().name, "otlp");

    let spans: Vec<Span> = rs
        .scope_spans
        .iter()
        .flat_map(|s| s.spans.clone())
        .collect();
    assert_eq!(spans.len(), 2);
    let server = span(&spans, "GET /orders/{id}");
    assert_eq!(server.trace_id, TRACE.to_be_bytes());
    assert_eq!(server.parent_span_id, CALLER.to_be_bytes());
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(server.trace_state, "vendor=x");
    assert_eq!(
        server.flags & 0xff,
        0x01,
        "sampled, caller sent no random flag"
    );
    assert_eq!(server.flags & 0x300, 0x300, "parent is remote");
    assert_eq!(
        attr(&server.attributes, "http.response.status_code"),
        Some(&V::IntValue(200))
    );
    assert_eq!(
        attr(&server.attributes, "cached"),
        Some(&V::BoolValue(false))
    );
    assert_eq!(
        attr(&server.attributes, "ratio"),
        Some(&V::DoubleValue(0.25))
    );
    assert_eq!(
        attr(&server.attributes, "url.path"),
        Some(&V::StringValue("/orders/7".into()))
    );
    assert!(server.end_time_unix_nano > server.start_time_unix_nano);
    assert_eq!(server.events.len(), 1);
    assert_eq!(
        attr(&server.events[0].attributes, "order.id"),
        Some(&V::IntValue(7))
    );
    assert!(server.status.is_none(), "server status unset");

    let db = span(&spans, "SELECT orders");
    assert_eq!(db.trace_id, server.trace_id);
    assert_eq!(db.parent_span_id, server.span_id);
    assert_eq!(db.flags & 0x300, 0x100, "local parent");
    assert_eq!(db.kind, SpanKind::Client as i32);
    assert_eq!(db.status.as_ref().unwrap().code, StatusCode::Error as i32);
    let exception = db
        .events
        .iter()
        .find(|e| e.name == "exception")
        .expect("exception event");
    assert_eq!(
        attr(&exception.attributes, "exception.message"),
        Some(&V::StringValue("statement timeout".into()))
    );
    assert!(attr(&exception.attributes, "exception.type").is_some());
}

fn settings(rx: &Receiver, extra: &[(&'static str, &str)]) -> Tracewire {
    let mut vars = vec![
        ("OTEL_SERVICE_NAME", "checkout".to_owned()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test".to_owned(),
        ),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.url()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    from_vars(&vars)
}

#[test]
fn http_protobuf_is_the_default() {
    let rx = Receiver::http(vec![]);
    record_checkout(settings(&rx, &[]));
    let received = &rx.received()[0];
    assert_eq!(received.path, "/v1/traces");
    assert_eq!(received.headers["content-type"], "application/x-protobuf");
    assert_checkout(&rx);
}

#[test]
fn http_json_sends_hex_ids() {
    let rx = Receiver::http(vec![]);
    record_checkout(settings(
        &rx,
        &[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")],
    ));
    let received = &rx.received()[0];
    assert_eq!(received.headers["content-type"], "application/json");
    let json: serde_json::Value = serde_json::from_slice(&received.raw).unwrap();
    let first = &json["resourceSpans"][0]["scopeSpans"][0]["spans"];
    let ids: Vec<&str> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["traceId"].as_str().unwrap())
        .collect();
    assert!(
        ids.iter()
            .all(|id| *id == "4bf92f3577b34da6a3ce929d0e0e4736"),
        "{ids:?}"
    );
    assert_checkout(&rx);
}

#[test]
fn gzip_and_custom_headers() {
    let rx = Receiver::http(vec![]);
    record_checkout(settings(
        &rx,
        &[
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "x-api-key=s3cr%3Dt,x-tenant=acme",
            ),
        ],
    ));
    let received = &rx.received()[0];
    assert_eq!(received.headers["content-encoding"], "gzip");
    assert_eq!(received.headers["x-api-key"], "s3cr=t");
    assert_eq!(received.headers["x-tenant"], "acme");
    assert_checkout(&rx);
}

#[test]
fn trace_specific_endpoint_is_used_as_is() {
    let rx = Receiver::http(vec![]);
    let url = format!("{}/custom/path", rx.url());
    record_checkout(settings(
        &rx,
        &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url.as_str())],
    ));
    assert_eq!(rx.received()[0].path, "/custom/path");
}

#[test]
fn grpc_delivers_the_same_data() {
    let rx = Receiver::grpc(vec![]);
    record_checkout(settings(
        &rx,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=k"),
        ],
    ));
    assert_eq!(rx.received()[0].headers["x-api-key"], "k");
    assert_checkout(&rx);
}

#[test]
fn grpc_with_gzip_and_a_retry() {
    let rx = Receiver::grpc(vec![crate::support::Reply::Status(503, None)]);
    let mut settings = settings(
        &rx,
        &[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ],
    );
    let mut otlp =
        tracewire::export::otlp::OtlpConfig::new(tracewire::export::otlp::Protocol::Grpc, rx.url());
    otlp.compression = tracewire::export::otlp::Compression::Gzip;
    otlp.retry.initial_backoff = Duration::from_millis(50);
    settings = settings.otlp(otlp);
    let (layer, guard) = settings.build_layer().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info_span!("retried").in_scope(|| {});
    });
    guard.force_flush(Duration::from_secs(10)).unwrap();
    let received = rx.received();
    assert_eq!(received.len(), 2, "UNAVAILABLE is retried");
    assert_eq!(received[0].request, received[1].request);
    assert_eq!(guard.stats()[0].exported(), 1);
}

#[test]
fn json_lines_file_holds_one_request_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("traces.jsonl");
    let settings = from_vars(&[
        ("OTEL_SERVICE_NAME", "checkout".to_owned()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment.name=test".to_owned(),
        ),
        ("OTEL_TRACES_EXPORTER", "file".to_owned()),
        ("TRACEWIRE_TRACES_FILE", path.display().to_string()),
    ]);
    record_checkout(settings);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1);
    let request: opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest =
        serde_json::from_str(lines[0]).unwrap();
    let spans: Vec<Span> = request.resource_spans[0]
        .scope_spans
        .iter()
        .flat_map(|s| s.spans.clone())
        .collect();
    assert_eq!(spans.len(), 2);
    assert_eq!(
        span(&spans, "SELECT orders").parent_span_id,
        span(&spans, "GET /orders/{id}").span_id
    );
    assert!(lines[0].contains("\"traceId\":\"4bf92f3577b34da6a3ce929d0e0e4736\""));
}
