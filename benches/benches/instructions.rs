//! The per-span and per-event bars of issue 12, in instructions (valgrind's
//! callgrind; see [`tracewire_benches::callgrind`]), all in one run:
//!
//! - one span = `info_span!` with three fields and one empty one, entered,
//!   given the late field with `record`, exited and closed; as a root
//!   (every span a new trace) and as a child of an entered span;
//! - one event = `info!` with two fields and a message inside an entered
//!   span; sampled, the cost of a span with 8 events less that of the span,
//!   over 8 (a span keeps at most 128 events, so events are not all put in
//!   one long span);
//! - tracewire sampled: `AlwaysOn`, the batch processor, OTLP/protobuf
//!   encoding through an HTTP client that answers 200 without sending (so
//!   the all-threads count is the process's whole cost of a span short of
//!   the network);
//! - tracewire unsampled: `AlwaysOff` (also for a request whose
//!   `traceparent` says sampled: the HTTP bench's 0%);
//! - the floor: a bare `tracing_subscriber::Registry`, and the Registry
//!   with a layer that does nothing (what any layer pays);
//! - tracing-opentelemetry 0.34 with `opentelemetry_sdk` 0.33's batch
//!   processor into an exporter that drops the batch, with its defaults
//!   (location, thread and inactivity tracking on) and tuned (all three
//!   off), `AlwaysOn` and `AlwaysOff`.
//!
//! - an HTTP request to an axum hello world, in process (`oneshot`, no
//!   socket), untraced and behind `tracewire_tower::TraceLayer::server()`.
//!
//! Needs valgrind (`apt install valgrind`); without it, says so and
//! measures nothing.

use std::hint::black_box;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{BatchConfigBuilder, Sampler as OtelSampler, SdkTracerProvider};
use tracewire::TracewireLayer;
use tracewire::export::otlp::{HttpClient, HttpFuture, OtlpConfig, OtlpExporter, Protocol};
use tracewire::export::{BatchConfig, BatchSpanProcessor, Resource};
use tracewire::processor::SpanProcessor as _;
use tracewire::sampling::{AlwaysOff, AlwaysOn};
use tracewire_benches::callgrind::{self, PerIteration};
use tracewire_benches::{one_span, report};
use tracing::Subscriber;
use tracing_subscriber::prelude::*;

/// Iterations of the two runs whose difference is measured: multiples of
/// the export batch size (512), so both runs end on whole batches.
const N1: u64 = 2048;
const N2: u64 = 4096;
/// Events per span in the event scenarios.
const EVENTS: u64 = 8;

#[inline(never)]
fn one_event(i: u64) {
    tracing::info!(attempt = i, cache = "miss", "loading user");
}

#[inline(never)]
fn span_with_events(i: u64) {
    let span = tracing::info_span!("load user", user.id = i);
    let _entered = span.enter();
    for _ in 0..EVENTS {
        one_event(black_box(i));
    }
}

#[inline(never)]
fn span_without_events(i: u64) {
    let span = tracing::info_span!("load user", user.id = i);
    let _entered = span.enter();
}

/// What one iteration does.
#[derive(Clone, Copy)]
enum Unit {
    RootSpan,
    ChildSpan,
    /// An event inside one long-lived span (unsampled or bare Registry).
    Event,
    SpanWithEvents,
    SpanWithoutEvents,
    /// One request to an axum hello world, in process (no socket), with a
    /// sampled `traceparent`; `traced`: behind `tracewire_tower`'s server
    /// layer.
    Http {
        traced: bool,
    },
}

impl Unit {
    fn run(self, n: u64) {
        let run = |f: fn(u64)| {
            for i in 0..n {
                f(black_box(i));
            }
        };
        match self {
            Unit::RootSpan => run(one_span),
            Unit::ChildSpan | Unit::Event => {
                let parent = tracing::info_span!("parent");
                let _entered = parent.enter();
                run(if matches!(self, Unit::Event) {
                    one_event
                } else {
                    one_span
                });
            }
            Unit::SpanWithEvents => run(span_with_events),
            Unit::SpanWithoutEvents => run(span_without_events),
            Unit::Http { traced } => http_requests(traced, n),
        }
    }
}

async fn user(axum::extract::Path(id): axum::extract::Path<u32>) -> String {
    format!("Hello, user {id}!")
}

/// `n` requests to an axum hello world, each run to the end of its body
/// on a current-thread runtime.
fn http_requests(traced: bool, n: u64) {
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    let mut app = axum::Router::new().route("/users/{id}", axum::routing::get(user));
    if traced {
        app = app.layer(tracewire_tower::TraceLayer::server());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        for i in 0..n {
            let request = http::Request::get(format!("/users/{}", i % 1000))
                .header("host", "127.0.0.1:8080")
                .header(
                    "traceparent",
                    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                )
                .body(axum::body::Body::empty())
                .expect("a request");
            let response = app.clone().oneshot(request).await.expect("a response");
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.expect("a body");
            black_box(body.to_bytes());
        }
    });
}

/// The stacks under test.
#[derive(Clone, Copy)]
enum Stack {
    Registry,
    /// The Registry with a layer that does nothing: what any layer costs.
    EmptyLayer,
    TracewireUnsampled,
    TracewireSampled,
    OtelSampled {
        tuned: bool,
    },
    OtelUnsampled {
        tuned: bool,
    },
}

/// A layer that does nothing.
struct EmptyLayer;

impl<S: Subscriber> tracing_subscriber::Layer<S> for EmptyLayer {}

/// An OTLP/HTTP client that answers 200 to every request without sending it.
#[derive(Debug)]
struct Discard;

impl HttpClient for Discard {
    fn send(&self, request: http::Request<bytes::Bytes>) -> HttpFuture<'_> {
        drop(black_box(request));
        Box::pin(async { Ok(http::Response::new(bytes::Bytes::new())) })
    }
}

/// An `opentelemetry_sdk` exporter that drops every batch.
#[derive(Debug)]
struct DiscardOtel;

impl opentelemetry_sdk::trace::SpanExporter for DiscardOtel {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        drop(black_box(batch));
        Ok(())
    }
}

fn run_under<S: Subscriber + Send + Sync + 'static>(subscriber: S, unit: Unit, n: u64) {
    tracing::subscriber::with_default(subscriber, || {
        unit.run(64);
        unit.run(n);
    });
}

fn otel_layer<S>(
    sampler: OtelSampler,
    tuned: bool,
) -> (
    SdkTracerProvider,
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
)
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let processor = opentelemetry_sdk::trace::BatchSpanProcessor::builder(DiscardOtel)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(65_536)
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_sampler(sampler)
        .with_span_processor(processor)
        .build();
    let mut layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
    if tuned {
        layer = layer
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false);
    }
    (provider, layer)
}

/// Runs `unit` `n` times under `stack`, exporting everything before it
/// returns.
fn child(stack: Stack, unit: Unit, n: u64) {
    match stack {
        Stack::Registry => run_under(tracing_subscriber::registry(), unit, n),
        Stack::EmptyLayer => run_under(tracing_subscriber::registry().with(EmptyLayer), unit, n),
        Stack::TracewireUnsampled => run_under(
            tracing_subscriber::registry()
                .with(TracewireLayer::builder().sampler(AlwaysOff).build()),
            unit,
            n,
        ),
        Stack::TracewireSampled => {
            let exporter = OtlpExporter::with_http_client(
                Resource::new("bench"),
                OtlpConfig::new(Protocol::HttpProtobuf, "http://127.0.0.1:4318/v1/traces"),
                Discard,
            )
            .expect("a valid OTLP configuration");
            let processor = std::sync::Arc::new(BatchSpanProcessor::new(
                exporter,
                BatchConfig {
                    max_queue_size: BatchConfig::MAX_QUEUE_SIZE,
                    ..BatchConfig::default()
                },
            ));
            let stats = processor.stats();
            run_under(
                tracing_subscriber::registry().with(
                    TracewireLayer::builder()
                        .sampler(AlwaysOn)
                        .shared_processor(processor.clone())
                        .build(),
                ),
                unit,
                n,
            );
            processor
                .shutdown(Duration::from_secs(600))
                .expect("the batch processor shuts down");
            assert_eq!(stats.dropped(), 0, "no span may be dropped");
            assert_eq!(stats.failed(), 0, "no export may fail");
        }
        Stack::OtelSampled { tuned } | Stack::OtelUnsampled { tuned } => {
            let sampler = match stack {
                Stack::OtelSampled { .. } => OtelSampler::AlwaysOn,
                _ => OtelSampler::ParentBased(Box::new(OtelSampler::AlwaysOff)),
            };
            let (provider, layer) = otel_layer(sampler, tuned);
            run_under(tracing_subscriber::registry().with(layer), unit, n);
            provider.shutdown().expect("the SDK's provider shuts down");
        }
    }
}

/// Every scenario: (name, stack, unit).
const SCENARIOS: &[(&str, Stack, Unit)] = &[
    ("registry/root_span", Stack::Registry, Unit::RootSpan),
    ("registry/child_span", Stack::Registry, Unit::ChildSpan),
    ("registry/event", Stack::Registry, Unit::Event),
    ("empty_layer/root_span", Stack::EmptyLayer, Unit::RootSpan),
    ("empty_layer/child_span", Stack::EmptyLayer, Unit::ChildSpan),
    ("empty_layer/event", Stack::EmptyLayer, Unit::Event),
    (
        "tracewire_unsampled/root_span",
        Stack::TracewireUnsampled,
        Unit::RootSpan,
    ),
    (
        "tracewire_unsampled/child_span",
        Stack::TracewireUnsampled,
        Unit::ChildSpan,
    ),
    (
        "tracewire_unsampled/event",
        Stack::TracewireUnsampled,
        Unit::Event,
    ),
    (
        "tracewire_sampled/root_span",
        Stack::TracewireSampled,
        Unit::RootSpan,
    ),
    (
        "tracewire_sampled/span_with_events",
        Stack::TracewireSampled,
        Unit::SpanWithEvents,
    ),
    (
        "tracewire_sampled/span_without_events",
        Stack::TracewireSampled,
        Unit::SpanWithoutEvents,
    ),
    (
        "otel_sampled/root_span",
        Stack::OtelSampled { tuned: false },
        Unit::RootSpan,
    ),
    (
        "otel_sampled_tuned/root_span",
        Stack::OtelSampled { tuned: true },
        Unit::RootSpan,
    ),
    (
        "otel_sampled/span_with_events",
        Stack::OtelSampled { tuned: false },
        Unit::SpanWithEvents,
    ),
    (
        "otel_sampled/span_without_events",
        Stack::OtelSampled { tuned: false },
        Unit::SpanWithoutEvents,
    ),
    (
        "otel_unsampled_tuned/root_span",
        Stack::OtelUnsampled { tuned: true },
        Unit::RootSpan,
    ),
    (
        "http/untraced",
        Stack::Registry,
        Unit::Http { traced: false },
    ),
    (
        "http/tracewire_unsampled",
        Stack::TracewireUnsampled,
        Unit::Http { traced: true },
    ),
    (
        "http/tracewire_sampled",
        Stack::TracewireSampled,
        Unit::Http { traced: true },
    ),
];

/// The measured costs, by scenario name.
struct Costs(Vec<(&'static str, PerIteration)>);

impl Costs {
    fn get(&self, name: &str) -> Option<PerIteration> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
    }

    /// The calling thread's cost of one event of a sampled span.
    fn sampled_event(&self, stack: &str) -> Option<f64> {
        let with = self.get(&format!("{stack}/span_with_events"))?;
        let without = self.get(&format!("{stack}/span_without_events"))?;
        Some((with.calling_thread - without.calling_thread) / EVENTS as f64)
    }
}

/// A number read from the measured costs.
#[derive(Clone, Copy)]
enum Count {
    /// The calling thread's count of a scenario.
    Calling(&'static str),
    /// The all-threads count of a scenario.
    All(&'static str),
    /// One event of a sampled span under a stack (calling thread).
    SampledEvent(&'static str),
    /// What a traced in-process HTTP scenario adds to the untraced one
    /// (all threads).
    HttpAdded(&'static str),
}

/// One row of the report.
enum Line {
    /// Subject over baseline, with the bar it must stay under, if any.
    Ratio(&'static str, Count, Count, Option<f64>),
    /// A count with the bar it must stay under.
    AtMost(&'static str, Count, f64),
    /// A count, for context.
    Info(&'static str, Count),
}

const LINES: &[Line] = &[
    Line::Ratio(
        "unsampled root span: tracewire / bare Registry",
        Count::Calling("tracewire_unsampled/root_span"),
        Count::Calling("registry/root_span"),
        Some(1.2),
    ),
    Line::Ratio(
        "unsampled child span: tracewire / bare Registry",
        Count::Calling("tracewire_unsampled/child_span"),
        Count::Calling("registry/child_span"),
        Some(1.2),
    ),
    Line::Ratio(
        "unsampled child span: tracewire / a layer that does nothing",
        Count::Calling("tracewire_unsampled/child_span"),
        Count::Calling("empty_layer/child_span"),
        None,
    ),
    Line::Ratio(
        "child span: a layer that does nothing / bare Registry",
        Count::Calling("empty_layer/child_span"),
        Count::Calling("registry/child_span"),
        None,
    ),
    Line::Ratio(
        "event: a layer that does nothing / bare Registry",
        Count::Calling("empty_layer/event"),
        Count::Calling("registry/event"),
        None,
    ),
    Line::Ratio(
        "event in an unsampled span: tracewire / bare Registry",
        Count::Calling("tracewire_unsampled/event"),
        Count::Calling("registry/event"),
        Some(1.5),
    ),
    Line::AtMost(
        "sampled span, calling thread",
        Count::Calling("tracewire_sampled/root_span"),
        2400.0,
    ),
    Line::Ratio(
        "sampled span, calling thread: tracewire / tracing-opentelemetry",
        Count::Calling("tracewire_sampled/root_span"),
        Count::Calling("otel_sampled/root_span"),
        Some(0.25),
    ),
    Line::Ratio(
        "sampled span, calling thread: tracewire / tracing-opentelemetry tuned",
        Count::Calling("tracewire_sampled/root_span"),
        Count::Calling("otel_sampled_tuned/root_span"),
        None,
    ),
    Line::AtMost(
        "sampled span, all threads, OTLP/protobuf encoding included",
        Count::All("tracewire_sampled/root_span"),
        4000.0,
    ),
    Line::Ratio(
        "sampled span, all threads: tracewire (with encoding) / tracing-opentelemetry (without)",
        Count::All("tracewire_sampled/root_span"),
        Count::All("otel_sampled/root_span"),
        None,
    ),
    Line::AtMost(
        "sampled event, calling thread",
        Count::SampledEvent("tracewire_sampled"),
        800.0,
    ),
    Line::Ratio(
        "sampled event: tracewire / tracing-opentelemetry",
        Count::SampledEvent("tracewire_sampled"),
        Count::SampledEvent("otel_sampled"),
        None,
    ),
    Line::Ratio(
        "unsampled root span: tracewire / tracing-opentelemetry tuned",
        Count::Calling("tracewire_unsampled/root_span"),
        Count::Calling("otel_unsampled_tuned/root_span"),
        None,
    ),
    Line::Ratio(
        "HTTP request in process, all threads: tracewire-tower unsampled / untraced",
        Count::All("http/tracewire_unsampled"),
        Count::All("http/untraced"),
        None,
    ),
    Line::Ratio(
        "HTTP request in process, all threads: tracewire-tower sampled / untraced",
        Count::All("http/tracewire_sampled"),
        Count::All("http/untraced"),
        None,
    ),
    Line::Info(
        "HTTP request: what tracewire-tower unsampled adds, all threads",
        Count::HttpAdded("http/tracewire_unsampled"),
    ),
    Line::Info(
        "HTTP request: what tracewire-tower sampled adds, all threads",
        Count::HttpAdded("http/tracewire_sampled"),
    ),
];

impl Costs {
    fn count(&self, count: Count) -> Option<f64> {
        match count {
            Count::Calling(name) => Some(self.get(name)?.calling_thread),
            Count::All(name) => Some(self.get(name)?.all_threads),
            Count::SampledEvent(stack) => self.sampled_event(stack),
            Count::HttpAdded(name) => {
                Some(self.get(name)?.all_threads - self.get("http/untraced")?.all_threads)
            }
        }
    }
}

/// The report's row for `line`, empty when a scenario it needs was not run.
fn row(costs: &Costs, line: &Line) -> Option<String> {
    Some(match *line {
        Line::Ratio(label, subject, baseline, max) => {
            let (s, b) = (costs.count(subject)?, costs.count(baseline)?);
            let r = s / b;
            report::row(
                label,
                &format!("{r:.2}x ({s:.0} vs {b:.0} instructions)"),
                &max.map_or_else(|| "(context)".to_owned(), |m| format!("<= {m}x")),
                max.map(|m| r <= m),
            )
        }
        Line::AtMost(label, subject, max) => {
            let s = costs.count(subject)?;
            report::row(
                label,
                &format!("{s:.0} instructions"),
                &format!("<= {max:.0}"),
                Some(s <= max),
            )
        }
        Line::Info(label, subject) => report::row(
            label,
            &format!("{:.0} instructions", costs.count(subject)?),
            "(context)",
            None,
        ),
    })
}

fn report(costs: &Costs) {
    let rows: String = LINES.iter().filter_map(|line| row(costs, line)).collect();
    report::print_rows("instructions (issue 12; callgrind)", &rows);

    println!("\n| scenario | calling thread | all threads |\n|---|---:|---:|");
    for (name, c) in &costs.0 {
        println!(
            "| {name} | {:.0} | {:.0} |",
            c.calling_thread, c.all_threads
        );
    }
}

fn main() {
    if let Some((name, n)) = callgrind::child_request() {
        let (_, stack, unit) = SCENARIOS
            .iter()
            .find(|(s, _, _)| *s == name)
            .expect("a known scenario");
        child(*stack, *unit, n);
        return;
    }
    if !callgrind::available() {
        println!("instructions: valgrind is not installed (apt install valgrind): skipped");
        return;
    }
    // `cargo bench -- <filter>` runs the scenarios whose name contains it;
    // criterion's options (which `benches/run.sh` passes to every target)
    // and their values are skipped.
    let mut filter = String::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg.starts_with("--") {
            if matches!(arg.as_str(), "--warm-up-time" | "--measurement-time") {
                args.next();
            }
        } else {
            filter = arg;
        }
    }
    let mut costs = Costs(Vec::new());
    for (name, _, _) in SCENARIOS.iter().filter(|(n, _, _)| n.contains(&filter)) {
        match callgrind::measure(name, N1, N2) {
            Ok(c) => {
                println!(
                    "{name}: {:.0} instructions on the calling thread, {:.0} on all",
                    c.calling_thread, c.all_threads
                );
                costs.0.push((name, c));
            }
            Err(e) => panic!("{name}: {e}"),
        }
    }
    report(&costs);
}
