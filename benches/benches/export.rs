//! Export throughput: finished spans handed to a batch processor until the
//! local OTLP receiver has acknowledged every one of them, for
//!
//! - tracewire's `BatchSpanProcessor` + `OtlpExporter` (HTTP/protobuf,
//!   its hyper client), and
//! - `opentelemetry_sdk`'s `BatchSpanProcessor` + `opentelemetry-otlp`'s
//!   HTTP/protobuf exporter (its default client, reqwest's blocking one),
//!
//! both to the same [`Receiver`] in the same run. One iteration ends
//! [`SPANS`] spans (clones of one four-attribute server span) and then
//! force-flushes, which returns once every batch got its `200 OK`. Both
//! processors use the OpenTelemetry default batch size (512) with a queue
//! large enough for an iteration, so nothing is dropped (checked before the
//! timed runs by decoding what the receiver got).
//!
//! For context, the same through each stack's `tracing` layer (tracewire's
//! layer; tracing-opentelemetry), from span creation to acknowledgement.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use criterion::{BenchmarkGroup, Throughput, measurement::WallTime};
use opentelemetry::trace::{TraceFlags, TraceState, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SpanProcessor as _;
use tracewire::export::otlp::{OtlpConfig, OtlpExporter, Protocol};
use tracewire::export::{BatchConfig, BatchSpanProcessor, Resource};
use tracewire::processor::SpanProcessor as _;
use tracewire::{KeyValue, SpanContext, SpanId, SpanKind, TraceId, TracewireLayer};
use tracewire_benches::Receiver;
use tracewire_benches::report::{self, Bar, Check};
use tracing_subscriber::prelude::*;

/// Spans per iteration.
const SPANS: u64 = 8192;
/// Queue size of both processors: an iteration never drops.
const QUEUE: usize = 2 * SPANS as usize;
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

fn tracewire_span(i: u64) -> tracewire::SpanData {
    let start = SystemTime::now();
    tracewire::SpanData {
        span_context: SpanContext::new(
            TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736 ^ u128::from(i)),
            SpanId::from_u64(0x00f0_67aa_0ba9_02b7 ^ i),
            tracewire::TraceFlags::SAMPLED,
            false,
            tracewire::TraceState::new(),
        ),
        parent_span_id: SpanId::INVALID,
        parent_is_remote: false,
        name: "GET /users/{id}".into(),
        kind: SpanKind::Server,
        start_time: start,
        end_time: start + Duration::from_micros(350),
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("url.path", "/users/42"),
            KeyValue::new("user.id", 42),
            KeyValue::new("http.response.status_code", 200),
        ],
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status: tracewire::Status::Unset,
        scope: tracewire::InstrumentationScope {
            name: "bench".into(),
            version: None,
        },
    }
}

fn otel_span(i: u64) -> opentelemetry_sdk::trace::SpanData {
    use opentelemetry::KeyValue;
    let start = SystemTime::now();
    opentelemetry_sdk::trace::SpanData {
        span_context: opentelemetry::trace::SpanContext::new(
            opentelemetry::trace::TraceId::from(
                0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736 ^ u128::from(i),
            ),
            opentelemetry::trace::SpanId::from(0x00f0_67aa_0ba9_02b7 ^ i),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ),
        parent_span_id: opentelemetry::trace::SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: opentelemetry::trace::SpanKind::Server,
        name: "GET /users/{id}".into(),
        start_time: start,
        end_time: start + Duration::from_micros(350),
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("url.path", "/users/42"),
            KeyValue::new("user.id", 42),
            KeyValue::new("http.response.status_code", 200),
        ],
        dropped_attributes_count: 0,
        events: opentelemetry_sdk::trace::SpanEvents::default(),
        links: opentelemetry_sdk::trace::SpanLinks::default(),
        status: opentelemetry::trace::Status::Unset,
        instrumentation_scope: opentelemetry::InstrumentationScope::builder("bench").build(),
    }
}

fn tracewire_processor(receiver: &Receiver) -> BatchSpanProcessor {
    let config = OtlpConfig::new(Protocol::HttpProtobuf, receiver.endpoint());
    let exporter =
        OtlpExporter::new(Resource::new("bench"), config).expect("a valid OTLP configuration");
    BatchSpanProcessor::new(
        exporter,
        BatchConfig {
            max_queue_size: QUEUE,
            ..BatchConfig::default()
        },
    )
}

fn otel_processor(receiver: &Receiver) -> opentelemetry_sdk::trace::BatchSpanProcessor {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(receiver.endpoint())
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("a valid OTLP configuration");
    // The thread-based processor, the SDK's default, with the exporter's
    // default client for it (reqwest's blocking client).
    let mut processor = opentelemetry_sdk::trace::BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            opentelemetry_sdk::trace::BatchConfigBuilder::default()
                .with_max_queue_size(QUEUE)
                .build(),
        )
        .build();
    processor.set_resource(
        &opentelemetry_sdk::Resource::builder()
            .with_service_name("bench")
            .build(),
    );
    processor
}

/// Runs `round` once with the receiver decoding, and checks that exactly
/// [`SPANS`] spans arrived.
fn check_delivery(receiver: &Receiver, what: &str, round: impl FnOnce()) {
    receiver.set_decode(true);
    let before = receiver.spans();
    round();
    let got = receiver.spans() - before;
    receiver.set_decode(false);
    assert_eq!(
        got, SPANS,
        "{what}: the receiver got {got} of {SPANS} spans"
    );
}

/// Times `iters` rounds of `round`.
fn timed(iters: u64, mut round: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        round();
    }
    start.elapsed()
}

fn bench_pipeline(g: &mut BenchmarkGroup<'_, WallTime>, receiver: &Receiver) {
    let processor = tracewire_processor(receiver);
    let template = tracewire_span(1);
    let round = || {
        for _ in 0..SPANS {
            processor.on_end(template.clone());
        }
        processor
            .force_flush(FLUSH_TIMEOUT)
            .expect("the flush completes");
    };
    check_delivery(receiver, "tracewire", round);
    g.bench_function("tracewire", |b| b.iter_custom(|iters| timed(iters, round)));
    let stats = processor.stats();
    assert_eq!(stats.dropped() + stats.failed(), 0, "tracewire lost spans");
    let _ = processor.shutdown(FLUSH_TIMEOUT);

    let processor = otel_processor(receiver);
    let template = otel_span(1);
    let round = || {
        for _ in 0..SPANS {
            processor.on_end(template.clone());
        }
        processor.force_flush().expect("the flush completes");
    };
    check_delivery(receiver, "opentelemetry_sdk", round);
    g.bench_function("otel_sdk", |b| b.iter_custom(|iters| timed(iters, round)));
    let _ = processor.shutdown();
}

fn one_span(i: u64) {
    let span = tracing::info_span!(
        "GET /users/{id}",
        otel.kind = "server",
        http.request.method = "GET",
        url.path = "/users/42",
        user.id = i,
        http.response.status_code = tracing::field::Empty,
    );
    let entered = span.enter();
    span.record("http.response.status_code", 200);
    drop(entered);
}

fn bench_end_to_end(g: &mut BenchmarkGroup<'_, WallTime>, receiver: &Receiver) {
    let processor = Arc::new(tracewire_processor(receiver));
    let layer = TracewireLayer::builder()
        .shared_processor(processor.clone())
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let round = || {
            for i in 0..SPANS {
                one_span(black_box(i));
            }
            processor
                .force_flush(FLUSH_TIMEOUT)
                .expect("the flush completes");
        };
        check_delivery(receiver, "tracewire layer", round);
        g.bench_function("tracewire_layer", |b| {
            b.iter_custom(|iters| timed(iters, round));
        });
    });
    let _ = processor.shutdown(FLUSH_TIMEOUT);

    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_span_processor(otel_processor(receiver))
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("bench")
                .build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let round = || {
            for i in 0..SPANS {
                one_span(black_box(i));
            }
            provider.force_flush().expect("the flush completes");
        };
        check_delivery(receiver, "tracing-opentelemetry", round);
        g.bench_function("otel_layer", |b| b.iter_custom(|iters| timed(iters, round)));
    });
    let _ = provider.shutdown();
}

const CHECKS: &[Check] = &[
    Check::ratio(
        "export throughput (span end to acknowledged batch): tracewire / opentelemetry_sdk + opentelemetry-otlp",
        "export/tracewire",
        "export/otel_sdk",
        Bar::ThroughputAtLeast(2.0),
    ),
    Check::ratio(
        "span creation to acknowledged batch: tracewire layer / tracing-opentelemetry",
        "export_end_to_end/tracewire_layer",
        "export_end_to_end/otel_layer",
        Bar::Info,
    ),
];

fn main() {
    report::start();
    let mut c = tracewire_benches::criterion();
    let receiver = Receiver::start().expect("the local receiver starts");
    {
        let mut g = c.benchmark_group("export");
        g.throughput(Throughput::Elements(SPANS));
        g.sample_size(10);
        bench_pipeline(&mut g, &receiver);
        g.finish();
    }
    {
        let mut g = c.benchmark_group("export_end_to_end");
        g.throughput(Throughput::Elements(SPANS));
        g.sample_size(10);
        bench_end_to_end(&mut g, &receiver);
        g.finish();
    }
    c.final_summary();
    report::print("export (issue 3)", CHECKS);
}
