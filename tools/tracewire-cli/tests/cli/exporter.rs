//! Reads what the core's JSON-lines file exporter really writes: two
//! services, each with its own subscriber, batch processor and file, joined
//! by W3C headers.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tracewire::export::{BatchConfig, BatchSpanProcessor, JsonLinesExporter, Resource};
use tracewire::processor::SpanProcessor;
use tracewire::propagation::{Propagator, TraceContextPropagator};
use tracewire::{SpanExt, SpanKind, TraceId, TracewireLayer, Value, with_remote_parent};
use tracewire_cli::{Traces, critical_path};
use tracing_subscriber::prelude::*;

use crate::support::tracewire;

fn processor(path: &Path, service: &'static str) -> Arc<BatchSpanProcessor> {
    let exporter = JsonLinesExporter::create(path, Resource::new(service)).unwrap();
    Arc::new(BatchSpanProcessor::new(exporter, BatchConfig::default()))
}

/// A frontend calling a backend that runs a query and fails a payment;
/// returns the trace id.
fn record(frontend: &Arc<BatchSpanProcessor>, backend: &Arc<BatchSpanProcessor>) -> TraceId {
    let frontend_subscriber =
        tracing_subscriber::registry().with(TracewireLayer::new(Arc::clone(frontend)));
    let backend_subscriber =
        tracing_subscriber::registry().with(TracewireLayer::new(Arc::clone(backend)));
    tracing::subscriber::with_default(frontend_subscriber, || {
        let server = tracing::info_span!("GET /orders/{id}", otel.kind = "server");
        let _server = server.enter();
        let client = tracing::info_span!("GET", otel.kind = "client", http.request.method = "GET");
        let _client = client.enter();
        let mut headers = HashMap::new();
        TraceContextPropagator::new().inject(&client.context(), &mut headers);

        // The backend, in "another process": its own subscriber and file.
        tracing::subscriber::with_default(backend_subscriber, || {
            let cx = TraceContextPropagator::new().extract(&headers);
            let span = with_remote_parent(&cx, || {
                tracing::info_span!("GET /orders/{id}", otel.kind = "server")
            });
            let _entered = span.enter();
            tracing::info_span!(
                "SELECT orders",
                otel.kind = "client",
                db.system.name = "postgresql",
                db.response.returned_rows = 3_i64
            )
            .in_scope(|| std::thread::sleep(Duration::from_millis(20)));
            tracing::info_span!(
                "charge",
                otel.status_code = "error",
                otel.status_message = "declined"
            )
            .in_scope(|| std::thread::sleep(Duration::from_millis(1)));
        });
        server
            .context()
            .span_context()
            .expect("the server span has a context")
            .trace_id()
    })
}

#[test]
fn spans_from_two_exporter_files_form_one_trace() {
    let dir = tempfile::tempdir().unwrap();
    let front_path = dir.path().join("frontend.jsonl");
    let back_path = dir.path().join("backend.jsonl");
    let frontend = processor(&front_path, "frontend");
    let backend = processor(&back_path, "backend");
    let trace_id = record(&frontend, &backend);
    frontend.shutdown(Duration::from_secs(10)).unwrap();
    backend.shutdown(Duration::from_secs(10)).unwrap();

    let traces = Traces::from_paths([&front_path, &back_path]).unwrap();
    assert_eq!(traces.stats().bad_lines, 0);
    assert_eq!(traces.stats().invalid_spans, 0);
    assert_eq!(traces.len(), 1);
    let trace = traces.get(trace_id).expect("the recorded trace");
    let rows: Vec<(String, String, usize, SpanKind)> = trace
        .tree_order()
        .iter()
        .map(|&(i, depth)| {
            let s = trace.span(i);
            (s.service.clone(), s.name.clone(), depth, s.kind)
        })
        .collect();
    let expected = [
        ("frontend", "GET /orders/{id}", 0, SpanKind::Server),
        ("frontend", "GET", 1, SpanKind::Client),
        ("backend", "GET /orders/{id}", 2, SpanKind::Server),
        ("backend", "SELECT orders", 3, SpanKind::Client),
        ("backend", "charge", 3, SpanKind::Internal),
    ];
    assert_eq!(
        rows,
        expected
            .iter()
            .map(|&(s, n, d, k)| (s.to_owned(), n.to_owned(), d, k))
            .collect::<Vec<_>>()
    );
    assert_eq!(trace.orphan_count(), 0);

    let select = trace.span(trace.tree_order()[3].0);
    assert_eq!(
        select.attribute("db.response.returned_rows"),
        Some(&Value::I64(3))
    );
    assert_eq!(
        select.attribute("db.system.name").and_then(Value::as_str),
        Some("postgresql")
    );
    assert!(select.duration() >= Duration::from_millis(20));
    let charge = trace.span(trace.tree_order()[4].0);
    assert_eq!(charge.error_message(), Some("declined"));
    assert_eq!(trace.error_count(), 1);

    // The 20 ms query is where the time went.
    let path = critical_path(trace);
    assert_eq!(trace.span(path.bottleneck().span).name, "SELECT orders");
    assert_eq!(
        path.total_nanos(),
        trace.span(trace.root()).duration_nanos()
    );

    // The binary reads the same files.
    let front = front_path.to_str().unwrap();
    let back = back_path.to_str().unwrap();
    let id = trace_id.to_string();
    let view = tracewire(&["view", &id[..8], front, back]).ok();
    assert!(view.starts_with(&format!("trace {id} · ")), "{view}");
    assert!(view.contains("◀ bottleneck"), "{view}");
    assert!(view.contains("✗ error: declined"), "{view}");

    // Only the backend's file: its server span's parent is missing.
    let list = tracewire(&["list", back]).ok();
    assert!(
        list.contains("backend: GET /orders/{id} (parent not loaded)"),
        "{list}"
    );
}
