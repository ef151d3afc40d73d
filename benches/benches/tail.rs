//! Pipeline throughput with in-process tail sampling on and off.
//!
//! The pipeline: `tracing` spans through `TracewireLayer` (AlwaysOn) into a
//! `BatchSpanProcessor` whose exporter counts and discards, with or without
//! a `TailSamplingProcessor` in between. One iteration creates [`TRACES`]
//! traces of a root and four children (nested two deep, four attributes on
//! each span, one late `record`) and flushes: with tail sampling, the flush
//! decides every buffered trace and forwards the kept ones.
//!
//! Tail sampling is measured with two policy sets:
//! - `always_sample`: every trace is kept, so every span is buffered,
//!   decided and forwarded: the stage's whole cost, the case the bar is
//!   about;
//! - `readme_policies`: the README's set (all errors, traces over 2 s, 1%
//!   of the rest), where the stage also spares the exporter most spans.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, Throughput, measurement::WallTime};
use tracewire::SpanData;
use tracewire::TracewireLayer;
use tracewire::export::{BatchConfig, BatchSpanProcessor, ExportFuture, SpanExporter};
use tracewire::processor::SpanProcessor;
use tracewire::sampling::AlwaysOn;
use tracewire::tail::{Policy, StatusMatch, TailConfig, TailSamplingProcessor};
use tracewire_benches::report::{self, Bar, Check};
use tracing_subscriber::prelude::*;

/// Traces per iteration.
const TRACES: u64 = 1000;
/// Spans per trace.
const SPANS_PER_TRACE: u64 = 5;
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// Counts the spans it is given and drops them.
#[derive(Debug, Clone, Default)]
struct CountingExporter(Arc<AtomicU64>);

impl SpanExporter for CountingExporter {
    fn export(&mut self, batch: Vec<SpanData>) -> ExportFuture<'_> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        drop(batch);
        Box::pin(async { Ok(()) })
    }
}

fn span_fields(name: &'static str, i: u64) -> tracing::Span {
    match name {
        "root" => tracing::info_span!(
            "GET /orders/{id}",
            otel.kind = "server",
            http.request.method = "GET",
            url.path = "/orders/7",
            order.id = i,
            http.response.status_code = tracing::field::Empty,
        ),
        _ => tracing::info_span!(
            "load",
            db.system.name = "postgresql",
            db.operation.name = "SELECT",
            row = i,
            db.response.returned_rows = tracing::field::Empty,
        ),
    }
}

/// One trace: a root, two children, each with one child of its own.
fn one_trace(i: u64) {
    let root = span_fields("root", i);
    let _root = root.enter();
    for j in 0..2 {
        let child = span_fields("child", j);
        let _child = child.enter();
        let grandchild = span_fields("child", j + 10);
        grandchild.in_scope(|| {
            grandchild.record("db.response.returned_rows", 1);
        });
        child.record("db.response.returned_rows", 2);
    }
    root.record("http.response.status_code", 200);
}

fn readme_policies() -> Vec<Policy> {
    vec![
        Policy::StatusCode(vec![StatusMatch::Error]),
        Policy::Latency {
            threshold: Duration::from_secs(2),
            upper: None,
        },
        Policy::Probabilistic(0.01),
    ]
}

fn bench_variant(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    build: impl FnOnce(BatchSpanProcessor) -> Arc<dyn SpanProcessor>,
    expect_all: bool,
) {
    let exported = CountingExporter::default();
    let batch = BatchSpanProcessor::new(
        exported.clone(),
        BatchConfig {
            max_queue_size: 2 * (TRACES * SPANS_PER_TRACE) as usize,
            ..BatchConfig::default()
        },
    );
    let stats = batch.stats();
    let processor = build(batch);
    let layer = TracewireLayer::builder()
        .sampler(AlwaysOn)
        .shared_processor(Arc::clone(&processor))
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let round = || {
            for i in 0..TRACES {
                one_trace(black_box(i));
            }
            processor
                .force_flush(FLUSH_TIMEOUT)
                .expect("the flush completes");
        };
        // One checked round first: the pipeline delivers what it should.
        let before = exported.0.load(Ordering::Relaxed);
        round();
        let delivered = exported.0.load(Ordering::Relaxed) - before;
        if expect_all {
            assert_eq!(delivered, TRACES * SPANS_PER_TRACE, "{name} lost spans");
        }
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    round();
                }
                start.elapsed()
            });
        });
    });
    assert_eq!(stats.dropped(), 0, "{name}: the batch queue dropped spans");
    let _ = processor.shutdown(FLUSH_TIMEOUT);
}

const CHECKS: &[Check] = &[
    Check::ratio(
        "pipeline throughput, tail sampling on (keep all) / off",
        "tail/on_always_sample",
        "tail/off",
        Bar::ThroughputAtLeast(0.8),
    ),
    Check::ratio(
        "pipeline throughput, tail sampling on (README policies) / off",
        "tail/on_readme_policies",
        "tail/off",
        Bar::Info,
    ),
];

fn main() {
    report::start();
    let mut c = tracewire_benches::criterion();
    {
        let mut g = c.benchmark_group("tail");
        g.throughput(Throughput::Elements(TRACES * SPANS_PER_TRACE));
        g.sample_size(20);
        bench_variant(&mut g, "off", |batch| Arc::new(batch), true);
        bench_variant(
            &mut g,
            "on_always_sample",
            |batch| {
                Arc::new(TailSamplingProcessor::new(
                    vec![Policy::AlwaysSample],
                    TailConfig::default(),
                    batch,
                ))
            },
            true,
        );
        bench_variant(
            &mut g,
            "on_readme_policies",
            |batch| {
                Arc::new(TailSamplingProcessor::new(
                    readme_policies(),
                    TailConfig::default(),
                    batch,
                ))
            },
            false,
        );
        g.finish();
    }
    c.final_summary();
    report::print("tail sampling (issue 7)", CHECKS);
}
