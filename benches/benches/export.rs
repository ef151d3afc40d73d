//! Export throughput: finished spans handed to a batch processor until the
//! local OTLP receiver has acknowledged every one of them, for
//!
//! - tracewire's `BatchSpanProcessor` + `OtlpExporter` (HTTP/protobuf,
//!   its hyper client), and
//! - `opentelemetry_sdk`'s `BatchSpanProcessor` + `opentelemetry-otlp`'s
//!   HTTP/protobuf exporter (its default client, reqwest's blocking one),
//!
//! both to the same [`Receiver`] in the same run. One round ends [`SPANS`]
//! spans (clones of one four-attribute server span) and then force-flushes,
//! which returns once every batch got its `200 OK`. Both processors use the
//! OpenTelemetry default batch size (512) with a queue large enough for a
//! round, so nothing is dropped (checked first by decoding what the
//! receiver got). The variants take turns, round by round
//! ([`tracewire_benches::alternate`]).
//!
//! For context, the same through each stack's `tracing` layer (tracewire's
//! layer; tracing-opentelemetry), from span creation to acknowledgement.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{TraceFlags, TraceState, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SpanProcessor as _;
use tracewire::export::otlp::{OtlpConfig, OtlpExporter, Protocol};
use tracewire::export::{BatchConfig, BatchSpanProcessor, Resource};
use tracewire::processor::SpanProcessor as _;
use tracewire::{KeyValue, SpanContext, SpanId, SpanKind, TraceId, TracewireLayer};
use tracewire_benches::Receiver;
use tracewire_benches::alternate::{self, Settings, Variant};
use tracewire_benches::report::{self, Bar};
use tracing::Dispatch;
use tracing_subscriber::prelude::*;

/// Spans per round.
const SPANS: u64 = 8192;
/// Queue size of both processors: a round never drops.
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

/// Span end to acknowledged batch, processor against processor.
fn pipeline(settings: &Settings, receiver: &Receiver) -> String {
    let tracewire = tracewire_processor(receiver);
    let tracewire_span = tracewire_span(1);
    let tracewire_round = || {
        for _ in 0..SPANS {
            tracewire.on_end(tracewire_span.clone());
        }
        tracewire
            .force_flush(FLUSH_TIMEOUT)
            .expect("the flush completes");
    };
    check_delivery(receiver, "tracewire", tracewire_round);

    let otel = otel_processor(receiver);
    let otel_span = otel_span(1);
    let otel_round = || {
        for _ in 0..SPANS {
            otel.on_end(otel_span.clone());
        }
        otel.force_flush().expect("the flush completes");
    };
    check_delivery(receiver, "opentelemetry_sdk", otel_round);

    let mut variants = [
        Variant::new("tracewire", tracewire_round),
        Variant::new("otel_sdk", otel_round),
    ];
    alternate::run(settings, "export", SPANS, &mut variants);
    let stats = tracewire.stats();
    assert_eq!(stats.dropped() + stats.failed(), 0, "tracewire lost spans");
    let row = alternate::throughput_row(
        "export throughput (span end to acknowledged batch): tracewire / opentelemetry_sdk + opentelemetry-otlp",
        &variants[0],
        &variants[1],
        Bar::ThroughputAtLeast(2.0),
    );
    drop(variants);
    let _ = tracewire.shutdown(FLUSH_TIMEOUT);
    let _ = otel.shutdown();
    row
}

/// Span creation to acknowledged batch, `tracing` layer against layer.
fn end_to_end(settings: &Settings, receiver: &Receiver) -> String {
    let processor = Arc::new(tracewire_processor(receiver));
    let tracewire = Dispatch::new(
        tracing_subscriber::registry().with(
            TracewireLayer::builder()
                .shared_processor(processor.clone())
                .build(),
        ),
    );
    let tracewire_round = || {
        tracing::dispatcher::with_default(&tracewire, || {
            for i in 0..SPANS {
                one_span(black_box(i));
            }
        });
        processor
            .force_flush(FLUSH_TIMEOUT)
            .expect("the flush completes");
    };
    check_delivery(receiver, "tracewire layer", tracewire_round);

    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_span_processor(otel_processor(receiver))
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name("bench")
                .build(),
        )
        .build();
    let otel = Dispatch::new(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"))),
    );
    let otel_round = || {
        tracing::dispatcher::with_default(&otel, || {
            for i in 0..SPANS {
                one_span(black_box(i));
            }
        });
        provider.force_flush().expect("the flush completes");
    };
    check_delivery(receiver, "tracing-opentelemetry", otel_round);

    let mut variants = [
        Variant::new("tracewire_layer", tracewire_round),
        Variant::new("otel_layer", otel_round),
    ];
    alternate::run(settings, "export_end_to_end", SPANS, &mut variants);
    let row = alternate::throughput_row(
        "span creation to acknowledged batch: tracewire layer / tracing-opentelemetry",
        &variants[0],
        &variants[1],
        Bar::Info,
    );
    drop(variants);
    let _ = processor.shutdown(FLUSH_TIMEOUT);
    let _ = provider.shutdown();
    row
}

fn main() {
    let settings = Settings::from_args();
    let receiver = Receiver::start().expect("the local receiver starts");
    let mut rows = String::new();
    if settings.wants("export/") {
        rows.push_str(&pipeline(&settings, &receiver));
    }
    if settings.wants("export_end_to_end/") {
        rows.push_str(&end_to_end(&settings, &receiver));
    }
    report::print_rows("export (issue 3)", &rows);
}
