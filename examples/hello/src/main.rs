//! A small traced program: a "frontend" handles a request and calls a
//! "backend" through W3C headers; every log line carries the trace id, and
//! the finished trace is printed as a tree at the end.
//!
//! Run it with `cargo run -p hello`.

use std::time::Duration;

use http::HeaderMap;
use tracewire::propagation::{CompositePropagator, Propagator};
use tracewire::testing::InMemoryExporter;
use tracewire::{SpanData, SpanExt, TracewireLayer, with_remote_parent};
use tracing::{info, info_span, warn};
use tracing_subscriber::prelude::*;

/// The backend: continues the caller's trace from the request headers.
fn backend(headers: &HeaderMap, propagator: &dyn Propagator) -> u16 {
    let cx = propagator.extract(headers);
    let span = with_remote_parent(&cx, || {
        info_span!(
            "GET /users/{id}",
            otel.kind = "server",
            http.request.method = "GET",
            user.id = 42
        )
    });
    let _guard = span.enter();
    info!(baggage.tenant = cx.baggage().get("tenant"), "loading user");
    info_span!(
        "SELECT users",
        otel.kind = "client",
        db.system.name = "sqlite"
    )
    .in_scope(|| {
        std::thread::sleep(Duration::from_millis(15));
    });
    200
}

/// The frontend: starts the trace and calls the backend.
fn frontend(propagator: &dyn Propagator) {
    let span = info_span!(
        "GET /profile",
        otel.kind = "server",
        http.response.status_code = tracing::field::Empty
    );
    let _guard = span.enter();
    info!("rendering profile");
    let status =
        info_span!("GET", otel.kind = "client", server.address = "backend").in_scope(|| {
            let mut headers = HeaderMap::new();
            let cx = tracing::Span::current().context();
            let cx = cx
                .clone()
                .with_baggage(cx.baggage().insert("tenant", "acme").unwrap_or_default());
            propagator.inject(&cx, &mut headers);
            for (name, value) in &headers {
                info!(header = %name, value = ?value, "sending");
            }
            backend(&headers, propagator)
        });
    span.record("http.response.status_code", status);
    if status != 200 {
        warn!(status, "backend failed");
    }
}

fn print_tree(spans: &[SpanData]) {
    fn walk(all: &[SpanData], span: &SpanData, depth: usize) {
        println!(
            "{:indent$}{:<24} {:>8.2} ms  span_id={} kind={:?}",
            "",
            span.name,
            span.duration().as_secs_f64() * 1e3,
            span.span_context.span_id(),
            span.kind,
            indent = depth * 2
        );
        let mut children: Vec<_> = all
            .iter()
            .filter(|c| c.parent_span_id == span.span_context.span_id())
            .collect();
        children.sort_by_key(|c| c.start_time);
        for child in children {
            walk(all, child, depth + 1);
        }
    }
    for root in spans.iter().filter(|s| !s.parent_span_id.is_valid()) {
        println!("trace {}", root.span_context.trace_id());
        walk(spans, root, 1);
    }
}

fn main() {
    let exporter = InMemoryExporter::new();
    tracing_subscriber::registry()
        .with(TracewireLayer::new(exporter.clone()))
        .with(tracewire::fmt::text_layer())
        .init();

    let propagator = CompositePropagator::default();
    frontend(&propagator);

    println!("\nExported spans:");
    print_tree(&exporter.spans());
}
