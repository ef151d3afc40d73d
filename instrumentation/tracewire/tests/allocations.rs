//! Heap allocations on the hot path, counted with dhat's testing mode.
//!
//! One process, one profiler: every check runs inside the single test of
//! this binary, so nothing else allocates concurrently.

use std::cell::RefCell;
use std::collections::HashMap;

use tracewire::TracewireLayer;
use tracewire::propagation::{Propagator, TraceContextPropagator, parse_traceparent};
use tracewire::sampling::AlwaysOff;
use tracewire::testing::InMemoryExporter;
use tracing_subscriber::prelude::*;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Heap blocks allocated while running `f`, the least of three runs: dhat
/// counts every thread of the process, and the test harness's own thread
/// can allocate a few blocks while a busy machine lets it catch up. An
/// allocation made by `f` itself shows in every run.
fn blocks(f: impl Fn()) -> u64 {
    (0..3)
        .map(|_| {
            let before = dhat::HeapStats::get().total_blocks;
            f();
            dhat::HeapStats::get().total_blocks - before
        })
        .min()
        .unwrap_or_default()
}

fn parsing_a_valid_traceparent_allocates_nothing() {
    let n = blocks(|| {
        for _ in 0..100 {
            assert!(parse_traceparent(std::hint::black_box(TRACEPARENT.as_bytes())).is_some());
        }
    });
    assert_eq!(n, 0, "parse_traceparent allocated");
}

fn extracting_from_a_header_map_allocates_nothing() {
    let mut headers = http::HeaderMap::new();
    headers.insert("traceparent", TRACEPARENT.parse().unwrap());
    headers.insert("content-type", "text/plain".parse().unwrap());
    let propagator = TraceContextPropagator::new();
    let n = blocks(|| {
        for _ in 0..100 {
            let cx = propagator.extract(std::hint::black_box(&headers));
            assert!(cx.span_context().is_some());
        }
    });
    assert_eq!(n, 0, "extraction without tracestate allocated");
}

fn injection_allocates_only_the_header_value() {
    let carrier: RefCell<HashMap<String, String>> = RefCell::new(HashMap::with_capacity(4));
    let cx = TraceContextPropagator::new().extract(&HashMap::from([(
        "traceparent".to_owned(),
        TRACEPARENT.to_owned(),
    )]));
    let n = blocks(|| TraceContextPropagator::new().inject(&cx, &mut *carrier.borrow_mut()));
    // One String for the key, one for the value: nothing else.
    assert_eq!(n, 2, "injection allocated more than the carrier's strings");
}

fn unsampled_spans_allocate_nothing_for_fields_or_events() {
    let exporter = InMemoryExporter::new();
    let layer = TracewireLayer::builder()
        .sampler(AlwaysOff)
        .processor(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        let run = |fields: bool| {
            blocks(|| {
                for i in 0..100 {
                    let span = if fields {
                        tracing::info_span!("work", user.id = i, route = "/users/{id}", ok = true)
                    } else {
                        tracing::info_span!("work")
                    };
                    let _guard = span.enter();
                    if fields {
                        tracing::info!(attempt = i, "an event with fields");
                    }
                }
            })
        };
        run(true); // warm the registry's slab
        let bare = run(false);
        let with_fields = run(true);
        assert_eq!(
            with_fields, bare,
            "fields and events on unsampled spans allocated ({with_fields} vs {bare} blocks)"
        );
        // The per-span state (ids and flags) is at most one small block.
        assert!(bare <= 100, "{bare} blocks for 100 unsampled spans");
    });
    assert!(exporter.spans().is_empty());
}

#[test]
fn hot_path_allocations() {
    let _profiler = dhat::Profiler::builder().testing().build();
    parsing_a_valid_traceparent_allocates_nothing();
    extracting_from_a_header_map_allocates_nothing();
    injection_allocates_only_the_header_value();
    unsampled_spans_allocate_nothing_for_fields_or_events();
}
