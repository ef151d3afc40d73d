//! The core's hot paths next to their baselines, in one run:
//!
//! - a span (create, enter, one late `record`, exit, close; three
//!   attributes at creation) through `TracewireLayer` into a no-op
//!   processor, sampled and unsampled; the same through
//!   `tracing-opentelemetry` 0.34 + `opentelemetry_sdk` 0.33 (AlwaysOn /
//!   AlwaysOff, a no-op span processor) with its default settings; and
//!   through a bare `tracing_subscriber::Registry`;
//! - `traceparent` parsing, formatting, extraction and injection, beside
//!   `opentelemetry_sdk`'s W3C propagator;
//! - one JSON log line inside a span, written by `tracing-subscriber`'s
//!   JSON format with and without tracewire's stamping
//!   (`tracewire::fmt::CorrelatedFormat`), to `std::io::sink`.
//!
//! Everything here runs on one thread, so it is measured in that thread's
//! CPU time ([`ThreadCpuTime`]): on a shared machine, wall time would also
//! count the waits while other processes hold the core.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkGroup, Criterion};
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracewire::processor::NoopProcessor;
use tracewire::propagation::{
    Propagator as _, TraceContextPropagator, format_traceparent, parse_traceparent,
};
use tracewire::sampling::{AlwaysOff, AlwaysOn};
use tracewire::{Context, TracewireLayer};
use tracewire_benches::report::{self, Bar, Check};
use tracewire_benches::{ThreadCpuTime, one_span};
use tracing::Subscriber;
use tracing_subscriber::prelude::*;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// An `opentelemetry_sdk` span processor that drops every span.
#[derive(Debug)]
struct NoopOtelProcessor;

impl opentelemetry_sdk::trace::SpanProcessor for NoopOtelProcessor {
    fn on_start(&self, _: &mut opentelemetry_sdk::trace::Span, _: &opentelemetry::Context) {}
    fn on_end(&self, span: opentelemetry_sdk::trace::SpanData) {
        drop(black_box(span));
    }
    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
    fn shutdown_with_timeout(&self, _: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        Ok(())
    }
}

fn otel_provider(sampler: Sampler) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(NoopOtelProcessor)
        .build()
}

fn bench_spans_under<S>(g: &mut BenchmarkGroup<'_, ThreadCpuTime>, name: &str, subscriber: S)
where
    S: Subscriber + Send + Sync + 'static,
{
    tracing::subscriber::with_default(subscriber, || {
        let mut i = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                one_span(black_box(i));
            });
        });
    });
}

fn spans(c: &mut Criterion<ThreadCpuTime>) {
    let mut g = c.benchmark_group("span");
    let c = &mut g;
    bench_spans_under(c, "registry", tracing_subscriber::registry());
    bench_spans_under(
        c,
        "tracewire_sampled",
        tracing_subscriber::registry().with(
            TracewireLayer::builder()
                .sampler(AlwaysOn)
                .processor(NoopProcessor)
                .build(),
        ),
    );
    bench_spans_under(
        c,
        "tracewire_unsampled",
        tracing_subscriber::registry().with(
            TracewireLayer::builder()
                .sampler(AlwaysOff)
                .processor(NoopProcessor)
                .build(),
        ),
    );
    let on = otel_provider(Sampler::AlwaysOn);
    bench_spans_under(
        c,
        "otel_sampled",
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(on.tracer("bench"))),
    );
    let off = otel_provider(Sampler::AlwaysOff);
    bench_spans_under(
        c,
        "otel_unsampled",
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(off.tracer("bench"))),
    );
    g.finish();
}

fn propagation(c: &mut Criterion<ThreadCpuTime>) {
    let mut g = c.benchmark_group("propagation");
    g.bench_function("tracewire_parse", |b| {
        b.iter(|| parse_traceparent(black_box(TRACEPARENT.as_bytes())));
    });

    let tracewire = TraceContextPropagator::new();
    let incoming = HashMap::from([("traceparent".to_owned(), TRACEPARENT.to_owned())]);
    let cx: Context = tracewire.extract(&incoming);
    let span_cx = cx.span_context().cloned().expect("a valid traceparent");
    g.bench_function("tracewire_format", |b| {
        b.iter(|| format_traceparent(black_box(&span_cx)));
    });
    g.bench_function("tracewire_extract_map", |b| {
        b.iter(|| tracewire.extract(black_box(&incoming)));
    });
    let mut outgoing: HashMap<String, String> = HashMap::with_capacity(4);
    g.bench_function("tracewire_inject_map", |b| {
        b.iter(|| tracewire.inject(black_box(&cx), &mut outgoing));
    });
    let mut headers = http::HeaderMap::new();
    headers.insert("traceparent", TRACEPARENT.parse().expect("a header value"));
    g.bench_function("tracewire_extract_headers", |b| {
        b.iter(|| tracewire.extract(black_box(&headers)));
    });
    let mut out_headers = http::HeaderMap::with_capacity(4);
    g.bench_function("tracewire_inject_headers", |b| {
        b.iter(|| tracewire.inject(black_box(&cx), &mut out_headers));
    });

    let otel = opentelemetry_sdk::propagation::TraceContextPropagator::new();
    let otel_cx = otel.extract(&incoming);
    assert!(otel_cx.span().span_context().is_valid());
    g.bench_function("otel_extract_map", |b| {
        b.iter(|| otel.extract(black_box(&incoming)));
    });
    let mut otel_out: HashMap<String, String> = HashMap::with_capacity(4);
    g.bench_function("otel_inject_map", |b| {
        b.iter(|| otel.inject_context(black_box(&otel_cx), &mut otel_out));
    });
    g.finish();
}

/// Logs one event per iteration inside a span of `subscriber`.
fn bench_log_under<S>(g: &mut BenchmarkGroup<'_, ThreadCpuTime>, name: &str, subscriber: S)
where
    S: Subscriber + Send + Sync + 'static,
{
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("GET /users/{id}", user.id = 42);
        let _entered = span.enter();
        let mut i = 0u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                tracing::info!(attempt = i, cache = "miss", "loading user");
            });
        });
    });
}

fn logs(c: &mut Criterion<ThreadCpuTime>) {
    let mut g = c.benchmark_group("log");
    let c = &mut g;
    // Both subscribers carry the same unsampled TracewireLayer (ids, no
    // recording): the two differ only in the event format.
    let layer = || {
        TracewireLayer::builder()
            .sampler(AlwaysOff)
            .processor(NoopProcessor)
            .build()
    };
    bench_log_under(
        c,
        "json_plain",
        tracing_subscriber::registry().with(layer()).with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::sink),
        ),
    );
    bench_log_under(
        c,
        "json_stamped",
        tracing_subscriber::registry().with(layer()).with(
            tracing_subscriber::fmt::layer()
                .json()
                .event_format(tracewire::fmt::CorrelatedFormat::json())
                .with_writer(std::io::sink),
        ),
    );
    // For context: plain JSON with no tracewire layer at all.
    bench_log_under(
        c,
        "json_plain_no_tracewire",
        tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::sink),
        ),
    );
    g.finish();
}

const CHECKS: &[Check] = &[
    Check::ratio(
        "sampled span: tracewire / tracing-opentelemetry (AlwaysOn)",
        "span/tracewire_sampled",
        "span/otel_sampled",
        Bar::TimeAtMost(0.25),
    ),
    Check::ratio(
        "unsampled span: tracewire / bare Registry",
        "span/tracewire_unsampled",
        "span/registry",
        Bar::TimeAtMost(1.2),
    ),
    Check::ratio(
        "unsampled span: tracewire / tracing-opentelemetry (AlwaysOff)",
        "span/tracewire_unsampled",
        "span/otel_unsampled",
        Bar::Info,
    ),
    Check::ratio(
        "sampled span: tracewire / bare Registry",
        "span/tracewire_sampled",
        "span/registry",
        Bar::Info,
    ),
    Check::absolute(
        "`traceparent` parse",
        "propagation/tracewire_parse",
        Bar::NanosUnder(50.0),
    ),
    Check::absolute(
        "`traceparent` format (stack buffer)",
        "propagation/tracewire_format",
        Bar::Info,
    ),
    Check::ratio(
        "extract from a map: tracewire / opentelemetry_sdk",
        "propagation/tracewire_extract_map",
        "propagation/otel_extract_map",
        Bar::Info,
    ),
    Check::ratio(
        "inject into a map: tracewire / opentelemetry_sdk",
        "propagation/tracewire_inject_map",
        "propagation/otel_inject_map",
        Bar::Info,
    ),
    Check::absolute(
        "extract from an `http::HeaderMap`",
        "propagation/tracewire_extract_headers",
        Bar::Info,
    ),
    Check::absolute(
        "inject into an `http::HeaderMap`",
        "propagation/tracewire_inject_headers",
        Bar::Info,
    ),
    Check::ratio(
        "JSON log line: stamped / plain",
        "log/json_stamped",
        "log/json_plain",
        Bar::TimeAtMost(1.2),
    ),
    Check::ratio(
        "JSON log line: stamped / plain without tracewire's layer",
        "log/json_stamped",
        "log/json_plain_no_tracewire",
        Bar::Info,
    ),
];

fn main() {
    report::start();
    let mut c = tracewire_benches::criterion_cpu();
    spans(&mut c);
    propagation(&mut c);
    logs(&mut c);
    c.final_summary();
    report::print("core (issue 2)", CHECKS);
}
