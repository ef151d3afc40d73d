//! Heap held per span buffered by `TailSamplingProcessor`, counted by dhat
//! (its heap profiler as this binary's global allocator).
//!
//! Spans are made by `TracewireLayer` from real `tracing` spans (a server
//! root with four attributes, children with four attributes; the shape of
//! the `tail` throughput bench), kept in a `Vec`, then moved into a stage
//! without worker thread (nothing is decided while measuring). For several
//! trace sizes it prints:
//!
//! - the heap a finished span holds on its own (in a `Vec`, inline part
//!   included);
//! - the heap per span once buffered in the stage (the span and the
//!   stage's bookkeeping: per-trace `Vec`s, the trace map, the arrival
//!   queue);
//! - the stage's overhead per span (the difference);
//! - the heap per trace for its remembered decision, once decided (the
//!   cache that makes late spans follow the decision).
//!
//! Not a criterion benchmark: it counts bytes, not time.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracewire::processor::{NoopProcessor, SpanProcessor};
use tracewire::tail::{Policy, TailConfig, TailSamplingProcessor};
use tracewire::{SpanData, TracewireLayer};
use tracing_subscriber::prelude::*;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Traces buffered per measurement.
const TRACES: usize = 2000;

fn heap_bytes() -> i64 {
    i64::try_from(dhat::HeapStats::get().curr_bytes).unwrap_or(i64::MAX)
}

/// Keeps the spans the layer finishes, as they are (no clone).
#[derive(Debug, Clone, Default)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanProcessor for Collect {
    fn on_end(&self, span: SpanData) {
        self.0.lock().expect("not poisoned").push(span);
    }
}

/// `TRACES` traces of `spans_per_trace` spans each (a root and its
/// children), in the order the layer finished them, in an exact-size
/// `Vec`.
fn make_spans(spans_per_trace: usize) -> Vec<SpanData> {
    let collect = Collect::default();
    let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(collect.clone()));
    tracing::subscriber::with_default(subscriber, || {
        for i in 0..TRACES {
            let root = tracing::info_span!(
                "GET /orders/{id}",
                otel.kind = "server",
                http.request.method = "GET",
                url.path = "/orders/7",
                order.id = i,
                http.response.status_code = tracing::field::Empty,
            );
            let _root = root.enter();
            for j in 1..spans_per_trace {
                let child = tracing::info_span!(
                    "load",
                    db.system.name = "postgresql",
                    db.operation.name = "SELECT",
                    row = j,
                    db.response.returned_rows = tracing::field::Empty,
                );
                child.record("db.response.returned_rows", 1);
            }
            root.record("http.response.status_code", 200);
        }
    });
    let mut spans = std::mem::take(&mut *collect.0.lock().expect("not poisoned"));
    spans.shrink_to_fit();
    assert_eq!(spans.len(), TRACES * spans_per_trace);
    spans
}

struct Measured {
    /// Heap per span held in a `Vec` (inline part included).
    own: f64,
    /// Heap per span buffered in the stage (span and bookkeeping).
    buffered: f64,
    /// Heap per trace for a remembered decision.
    decided: f64,
}

fn measure(spans_per_trace: usize) -> Measured {
    // The same spans twice (the layer makes them deterministically): the
    // first set is dropped to count what spans hold on their own.
    let spans = make_spans(spans_per_trace);
    let count = spans.len() as f64;
    let held = heap_bytes();
    drop(spans);
    let own_total = held - heap_bytes();

    let spans = make_spans(spans_per_trace);
    let base = heap_bytes() - own_total;
    let tail = TailSamplingProcessor::without_worker(
        vec![Policy::AlwaysSample],
        TailConfig {
            max_traces: TRACES * 2,
            max_spans_per_trace: spans_per_trace * 2,
            decision_cache: TRACES * 2,
            ..TailConfig::default()
        },
        NoopProcessor,
    );
    let now = Instant::now();
    for span in spans {
        tail.on_end_at(span, now);
    }
    assert_eq!(tail.buffered_spans(), TRACES * spans_per_trace);
    let buffered_total = heap_bytes() - base;

    // Decide them all: the spans go to the no-op processor, the decisions
    // stay in the cache for late spans.
    tail.decide_ready(now + TailConfig::default().trace_timeout);
    assert_eq!(tail.buffered_spans(), 0);
    let decided_total = heap_bytes() - base;
    drop(tail);
    Measured {
        own: own_total as f64 / count,
        buffered: buffered_total as f64 / count,
        decided: decided_total as f64 / TRACES as f64,
    }
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    println!(
        "tail sampling memory: {TRACES} buffered traces per row; SpanData is {} bytes inline",
        size_of::<SpanData>()
    );
    println!("\n### tail sampling memory (issue 7)\n");
    println!(
        "| spans per trace | heap per finished span, alone | heap per buffered span | stage overhead per buffered span | remembered decision per trace |"
    );
    println!("|---|---|---|---|---|");
    for spans_per_trace in [1, 5, 20] {
        let m = measure(spans_per_trace);
        println!(
            "| {spans_per_trace} | {:.0} B | {:.0} B | {:.0} B | {:.0} B |",
            m.own,
            m.buffered,
            m.buffered - m.own,
            m.decided
        );
    }
}
