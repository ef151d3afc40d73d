use tracewire::fmt::CorrelatedFormat;
use tracewire::sampling::{AlwaysOff, ParentBased};
use tracewire::testing::InMemoryExporter;
use tracewire::{SpanExt, TracewireLayer};
use tracing::info_span;
use tracing_subscriber::prelude::*;

use crate::support::Captured;

fn run_json(sampled: bool, f: impl FnOnce()) -> (Vec<serde_json::Value>, InMemoryExporter) {
    let out = Captured::default();
    let exporter = InMemoryExporter::new();
    let mut builder = TracewireLayer::builder().processor(exporter.clone());
    if !sampled {
        builder = builder.sampler(ParentBased::new(AlwaysOff));
    }
    let subscriber = tracing_subscriber::registry()
        .with(builder.build())
        .with(tracewire::fmt::json_layer().with_writer(out.clone()));
    tracing::subscriber::with_default(subscriber, f);
    let lines = out
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    (lines, exporter)
}

#[test]
fn json_lines_carry_top_level_ids_of_the_exported_span() {
    let (lines, exporter) = run_json(true, || {
        info_span!("request", user = 7).in_scope(|| {
            tracing::info!(items = 3, "handled");
            info_span!("db").in_scope(|| tracing::warn!("slow query"));
        });
    });
    let request = exporter.span("request");
    let db = exporter.span("db");
    assert_eq!(lines.len(), 2);
    let trace_id = request.span_context.trace_id().to_string();
    assert_eq!(lines[0]["trace_id"], trace_id.as_str());
    assert_eq!(
        lines[0]["span_id"],
        request.span_context.span_id().to_string().as_str()
    );
    assert_eq!(lines[0]["trace_flags"], "03");
    assert_eq!(lines[0]["fields"]["message"], "handled");
    assert_eq!(lines[0]["fields"]["items"], 3);
    assert_eq!(lines[1]["trace_id"], trace_id.as_str());
    assert_eq!(
        lines[1]["span_id"],
        db.span_context.span_id().to_string().as_str()
    );
}

#[test]
fn unsampled_spans_are_stamped_too() {
    let (lines, exporter) = run_json(false, || {
        info_span!("request").in_scope(|| tracing::info!("handled"));
    });
    assert!(exporter.is_empty());
    let trace_id = lines[0]["trace_id"].as_str().unwrap();
    assert_eq!(trace_id.len(), 32);
    assert!(
        trace_id
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    assert_ne!(trace_id, "00000000000000000000000000000000");
    assert_eq!(lines[0]["span_id"].as_str().unwrap().len(), 16);
    assert_eq!(lines[0]["trace_flags"], "02");
}

#[test]
fn events_outside_spans_carry_no_ids() {
    let (lines, _) = run_json(true, || tracing::info!("starting"));
    let object = lines[0].as_object().unwrap();
    assert!(!object.contains_key("trace_id") && !object.contains_key("span_id"));
    assert_eq!(lines[0]["fields"]["message"], "starting");
}

#[test]
fn explicit_parent_events_use_that_spans_ids() {
    let mut expected = None;
    let (lines, _) = run_json(true, || {
        let a = info_span!("a");
        expected = a.span_context();
        info_span!("b").in_scope(|| tracing::info!(parent: &a, "for a"));
    });
    assert_eq!(
        lines[0]["span_id"],
        expected.unwrap().span_id().to_string().as_str()
    );
}

#[test]
fn text_lines_end_with_the_ids() {
    let out = Captured::default();
    let subscriber = tracing_subscriber::registry()
        .with(TracewireLayer::default())
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(CorrelatedFormat::text())
                .with_ansi(false)
                .with_writer(out.clone()),
        );
    let mut cx = None;
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("outside");
        let span = info_span!("request");
        cx = span.span_context();
        span.in_scope(|| tracing::info!(user = 7, "inside"));
    });
    let cx = cx.unwrap();
    let lines = out.lines();
    assert!(lines[0].ends_with("outside"), "{}", lines[0]);
    assert!(!lines[0].contains("trace_id"));
    let suffix = format!(
        "inside user=7 trace_id={} span_id={} trace_flags=03",
        cx.trace_id(),
        cx.span_id()
    );
    assert!(lines[1].ends_with(&suffix), "{}", lines[1]);
    assert!(lines[1].contains(" INFO request: "), "{}", lines[1]);
}

#[test]
fn log_crate_records_bridged_by_tracing_log_are_stamped() {
    let (lines, exporter) = run_json(true, || {
        info_span!("request").in_scope(|| {
            let record = log::Record::builder()
                .args(format_args!("from the log crate"))
                .level(log::Level::Info)
                .target("legacy")
                .build();
            tracing_log::format_trace(&record).unwrap();
        });
    });
    let request = exporter.span("request");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["fields"]["message"], "from the log crate");
    assert_eq!(
        lines[0]["span_id"],
        request.span_context.span_id().to_string().as_str()
    );
}
