//! Pipeline throughput with in-process tail sampling on and off.
//!
//! The pipeline: `tracing` spans through `TracewireLayer` (AlwaysOn) into a
//! `BatchSpanProcessor` whose exporter counts and discards, with or without
//! a `TailSamplingProcessor` in between. One round creates [`TRACES`]
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
//!
//! The three pipelines take turns, round by round
//! ([`tracewire_benches::alternate`]).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tracewire::SpanData;
use tracewire::TracewireLayer;
use tracewire::export::{
    BatchConfig, BatchSpanProcessor, ExportFuture, PipelineStats, SpanExporter,
};
use tracewire::processor::SpanProcessor;
use tracewire::sampling::AlwaysOn;
use tracewire::tail::{Policy, StatusMatch, TailConfig, TailSamplingProcessor};
use tracewire_benches::alternate::{self, Settings, Variant};
use tracewire_benches::report::{self, Bar};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// Traces per round.
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

/// A pipeline: the layer into `build(batch processor)`, and the counter
/// of what reached the exporter.
struct Pipeline {
    dispatch: Dispatch,
    processor: Arc<dyn SpanProcessor>,
    exported: CountingExporter,
    stats: Arc<PipelineStats>,
}

impl Pipeline {
    fn new(build: impl FnOnce(BatchSpanProcessor) -> Arc<dyn SpanProcessor>) -> Self {
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
        Pipeline {
            dispatch: Dispatch::new(tracing_subscriber::registry().with(layer)),
            processor,
            exported,
            stats,
        }
    }

    /// One round: [`TRACES`] traces, then a flush.
    fn round(&self) {
        tracing::dispatcher::with_default(&self.dispatch, || {
            for i in 0..TRACES {
                one_trace(black_box(i));
            }
        });
        self.processor
            .force_flush(FLUSH_TIMEOUT)
            .expect("the flush completes");
    }

    /// Spans the exporter received during one round.
    fn delivered_in_a_round(&self) -> u64 {
        let before = self.exported.0.load(Ordering::Relaxed);
        self.round();
        self.exported.0.load(Ordering::Relaxed) - before
    }
}

fn main() {
    let settings = Settings::from_args();
    if !settings.wants("tail/") {
        return;
    }
    let off = Pipeline::new(|batch| Arc::new(batch));
    let keep_all = Pipeline::new(|batch| {
        Arc::new(TailSamplingProcessor::new(
            vec![Policy::AlwaysSample],
            TailConfig::default(),
            batch,
        ))
    });
    let readme = Pipeline::new(|batch| {
        Arc::new(TailSamplingProcessor::new(
            readme_policies(),
            TailConfig::default(),
            batch,
        ))
    });
    // The pipelines deliver what they should.
    let all = TRACES * SPANS_PER_TRACE;
    assert_eq!(
        off.delivered_in_a_round(),
        all,
        "no tail sampling: spans lost"
    );
    assert_eq!(
        keep_all.delivered_in_a_round(),
        all,
        "keep-all tail sampling: spans lost"
    );
    assert!(
        readme.delivered_in_a_round() < all / 10,
        "README policies kept too much"
    );

    let mut variants = [
        Variant::new("off", || off.round()),
        Variant::new("on_always_sample", || keep_all.round()),
        Variant::new("on_readme_policies", || readme.round()),
    ];
    alternate::run(&settings, "tail", all, &mut variants);
    let mut rows = alternate::throughput_row(
        "pipeline throughput, tail sampling on (keep all) / off",
        &variants[1],
        &variants[0],
        Bar::ThroughputAtLeast(0.8),
    );
    rows.push_str(&alternate::throughput_row(
        "pipeline throughput, tail sampling on (README policies: errors, > 2 s, 1%) / off",
        &variants[2],
        &variants[0],
        Bar::Info,
    ));
    drop(variants);
    for pipeline in [&off, &keep_all, &readme] {
        assert_eq!(pipeline.stats.dropped(), 0, "the batch queue dropped spans");
        let _ = pipeline.processor.shutdown(FLUSH_TIMEOUT);
    }
    report::print_rows("tail sampling (issue 7)", &rows);
}
