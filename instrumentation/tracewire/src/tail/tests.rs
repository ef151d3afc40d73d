use std::time::{Duration, Instant, SystemTime};

use super::*;
use crate::testing::InMemoryExporter;
use crate::{
    InstrumentationScope, KeyValue, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceState,
};

/// A span of trace `trace` lasting `ms`, under `parent` (invalid: a root).
pub(super) fn span(trace: u128, id: u64, parent: u64, ms: u64) -> SpanData {
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_u128(trace),
            SpanId::from_u64(id),
            TraceFlags::SAMPLED,
            false,
            TraceState::new(),
        ),
        parent_span_id: SpanId::from_u64(parent),
        parent_is_remote: false,
        name: format!("span-{id}").into(),
        kind: SpanKind::Internal,
        start_time: start,
        end_time: start + Duration::from_millis(ms),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status: Status::Unset,
        scope: InstrumentationScope {
            name: "test".into(),
            version: None,
        },
    }
}

fn seed_policies() -> Vec<Policy> {
    vec![
        Policy::StatusCode(vec![StatusMatch::Error]),
        Policy::Latency {
            threshold: Duration::from_secs(2),
            upper: None,
        },
        Policy::Probabilistic(0.01),
    ]
}

fn stage(policies: Vec<Policy>, config: TailConfig) -> (TailSamplingProcessor, InMemoryExporter) {
    let exporter = InMemoryExporter::new();
    (
        TailSamplingProcessor::without_worker(policies, config, exporter.clone()),
        exporter,
    )
}

fn kept_traces(exporter: &InMemoryExporter) -> std::collections::BTreeSet<u128> {
    exporter
        .spans()
        .iter()
        .map(|s| s.span_context.trace_id().to_u128())
        .collect()
}

#[test]
fn keeps_errors_slow_traces_and_one_percent_of_the_rest() {
    let (tail, exporter) = stage(seed_policies(), TailConfig::default());
    let t0 = Instant::now();
    let mut error = span(1, 11, 0, 10);
    error.status = Status::Error {
        message: "boom".into(),
    };
    tail.on_end_at(span(1, 12, 11, 5), t0);
    tail.on_end_at(error, t0);
    tail.on_end_at(span(2, 21, 0, 3_000), t0);
    let mut expected = std::collections::BTreeSet::from([1, 2]);
    for i in 0..2_000u128 {
        let trace = (i << 64) | u128::from(fastrand::u64(..));
        tail.on_end_at(span(trace, 100, 0, 10), t0);
        if Probabilistic::new(1.0, "").samples(TraceId::from_u128(trace)) {
            expected.insert(trace);
        }
    }
    tail.decide_ready(t0 + Duration::from_millis(999));
    assert!(exporter.is_empty(), "decided before decision_wait");
    tail.decide_ready(t0 + Duration::from_secs(1));
    assert_eq!(kept_traces(&exporter), expected);
    assert_eq!(
        exporter.trace(TraceId::from_u128(1)).len(),
        2,
        "the whole error trace"
    );
    let fraction = (expected.len() - 2) as f64 / 2_000.0;
    assert!((0.002..0.03).contains(&fraction), "{fraction}");
    let stats = tail.stats();
    assert_eq!(stats.sampled_traces() as usize, expected.len());
    assert_eq!(stats.sampled_traces() + stats.not_sampled_traces(), 2_002);
}

#[test]
fn late_children_within_the_wait_join_and_later_ones_follow_the_decision() {
    let (tail, exporter) = stage(vec![Policy::AlwaysSample], TailConfig::default());
    let t0 = Instant::now();
    tail.on_end_at(span(7, 1, 0, 10), t0);
    tail.on_end_at(span(7, 2, 1, 10), t0 + Duration::from_millis(500));
    tail.decide_ready(t0 + Duration::from_secs(1));
    assert_eq!(exporter.len(), 2);
    tail.on_end_at(span(7, 3, 1, 10), t0 + Duration::from_secs(5));
    assert_eq!(exporter.len(), 3, "late span of a kept trace is forwarded");
    assert_eq!(tail.stats().late_spans(), 1);
    assert_eq!(tail.buffered_traces(), 0);

    let (tail, exporter) = stage(vec![], TailConfig::default());
    tail.on_end_at(span(8, 1, 0, 10), t0);
    tail.decide_ready(t0 + Duration::from_secs(1));
    tail.on_end_at(span(8, 2, 1, 10), t0 + Duration::from_secs(2));
    assert!(
        exporter.is_empty(),
        "late span of a dropped trace is dropped"
    );
}

#[test]
fn traces_whose_root_never_ends_here_are_decided_at_the_timeout() {
    let config = TailConfig {
        trace_timeout: Duration::from_secs(30),
        ..TailConfig::default()
    };
    let (tail, exporter) = stage(vec![Policy::AlwaysSample], config);
    let t0 = Instant::now();
    tail.on_end_at(span(9, 2, 1, 10), t0); // parent 1 is local and still open
    tail.decide_ready(t0 + Duration::from_secs(29));
    assert!(exporter.is_empty());
    tail.decide_ready(t0 + Duration::from_secs(30));
    assert_eq!(exporter.len(), 1);
}

#[test]
fn a_flood_of_ten_times_the_bound_keeps_memory_flat() {
    let config = TailConfig {
        max_traces: 100,
        max_spans_per_trace: 5,
        ..TailConfig::default()
    };
    let (tail, exporter) = stage(vec![Policy::AlwaysSample], config);
    let t0 = Instant::now();
    let mut peak = (0, 0);
    for trace in 1..=1_000u128 {
        for id in 1..=8u64 {
            // Children only: no trace is ready on its own.
            tail.on_end_at(span(trace, id + 1, 1, 1), t0);
        }
        peak = (
            peak.0.max(tail.buffered_traces()),
            peak.1.max(tail.buffered_spans()),
        );
    }
    assert_eq!(
        peak,
        (100, 500),
        "traces and spans stay within their bounds"
    );
    let stats = tail.stats();
    assert_eq!(stats.evicted_traces(), 900);
    assert_eq!(
        stats.dropped_spans(),
        1_000 * 3,
        "3 spans over the per-trace bound each"
    );
    assert_eq!(exporter.len(), 900 * 5, "evicted traces are decided early");
}

#[test]
fn evicted_traces_can_be_dropped_instead() {
    let config = TailConfig {
        max_traces: 10,
        decide_early: false,
        ..TailConfig::default()
    };
    let (tail, exporter) = stage(vec![Policy::AlwaysSample], config);
    let t0 = Instant::now();
    for trace in 1..=20u128 {
        tail.on_end_at(span(trace, 2, 1, 1), t0);
    }
    assert!(exporter.is_empty());
    assert_eq!(tail.stats().evicted_traces(), 10);
    assert_eq!(tail.stats().dropped_spans(), 10);
}

#[test]
fn a_drop_wins_over_any_sample_and_and_needs_all() {
    let health = |trace: u128, route: &str| {
        let mut s = span(trace, 1, 0, 5);
        s.attributes
            .push(KeyValue::new("http.route", route.to_owned()));
        s
    };
    let policies = vec![
        Policy::AlwaysSample,
        Policy::Drop(Box::new(Policy::StringAttribute {
            key: "http.route".into(),
            values: vec!["/health".into()],
            invert: false,
        })),
    ];
    let (tail, exporter) = stage(policies, TailConfig::default());
    let t0 = Instant::now();
    tail.on_end_at(health(1, "/health"), t0);
    tail.on_end_at(health(2, "/orders"), t0);
    tail.decide_ready(t0 + Duration::from_secs(1));
    assert_eq!(kept_traces(&exporter), [2].into());

    let both = Policy::And(vec![
        Policy::Latency {
            threshold: Duration::from_millis(100),
            upper: None,
        },
        Policy::NumericAttribute {
            key: "http.response.status_code".into(),
            min: 500.0,
            max: 599.0,
        },
    ]);
    let (tail, exporter) = stage(vec![both], TailConfig::default());
    for (trace, ms, status) in [(1, 200, 503), (2, 50, 503), (3, 200, 200)] {
        let mut s = span(trace, 1, 0, ms);
        s.attributes
            .push(KeyValue::new("http.response.status_code", status));
        tail.on_end_at(s, t0);
    }
    tail.decide_ready(t0 + Duration::from_secs(1));
    assert_eq!(kept_traces(&exporter), [1].into());
}

#[test]
fn attribute_span_count_and_rate_limit_policies() {
    let t0 = Instant::now();
    let mut flagged = span(1, 1, 0, 1);
    flagged.attributes.push(KeyValue::new("debug", true));
    assert_eq!(
        Policy::BooleanAttribute {
            key: "debug".into(),
            value: true
        }
        .evaluate(TraceId::from_u128(1), &[flagged.clone()], t0),
        Verdict::Sample
    );
    let inverted = Policy::StringAttribute {
        key: "tenant".into(),
        values: vec!["test".into()],
        invert: true,
    };
    assert_eq!(
        inverted.evaluate(TraceId::from_u128(1), &[flagged.clone()], t0),
        Verdict::Sample
    );
    let count = Policy::SpanCount { min: 2, max: 3 };
    assert_eq!(
        count.evaluate(TraceId::from_u128(1), &[flagged.clone()], t0),
        Verdict::NotSample
    );
    assert_eq!(
        count.evaluate(
            TraceId::from_u128(1),
            &[flagged.clone(), flagged.clone()],
            t0
        ),
        Verdict::Sample
    );
    let limit = Policy::RateLimiting(RateLimit::new(10.0));
    let spans = vec![flagged; 4];
    let decisions: Vec<_> = (0..4)
        .map(|_| limit.evaluate(TraceId::from_u128(1), &spans, t0))
        .collect();
    assert_eq!(
        decisions,
        [
            Verdict::Sample,
            Verdict::Sample,
            Verdict::NotSample,
            Verdict::NotSample
        ]
    );
    assert_eq!(
        limit.evaluate(TraceId::from_u128(1), &spans, t0 + Duration::from_secs(1)),
        Verdict::Sample
    );
}

#[test]
fn policy_files_in_the_collectors_shape() {
    let text = r#"{"num_traces": 500, "policies": [
        {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
        {"name": "slow", "type": "latency", "latency": {"threshold_ms": 2000, "upper_threshold_ms": 0}},
        {"name": "no-health", "type": "drop", "drop": {"drop_sub_policy": [
            {"name": "health", "type": "string_attribute", "string_attribute": {"key": "http.route", "values": ["/health"]}}
        ]}},
        {"name": "both", "type": "and", "and": {"and_sub_policy": [
            {"name": "a", "type": "span_count", "span_count": {"min_spans": 2}},
            {"name": "b", "type": "rate_limiting", "rate_limiting": {"spans_per_second": 100}}
        ]}}
    ]}"#;
    let (policies, config) = policies_from_json(text, TailConfig::default()).unwrap();
    assert_eq!(policies.len(), 4);
    assert_eq!(config.max_traces, 500);
    assert!(matches!(&policies[1], Policy::Latency { upper: None, .. }));
    for (bad, policy) in [
        (r#"{"policies": [{"name": "x", "type": "sometimes"}]}"#, "x"),
        (
            r#"{"policies": [{"name": "y", "type": "latency", "latency": {}}]}"#,
            "y",
        ),
        (
            r#"{"policies": [{"type": "status_code", "status_code": {"status_codes": ["BAD"]}}]}"#,
            "#0",
        ),
    ] {
        match policies_from_json(bad, TailConfig::default()) {
            Err(PolicyConfigError::Policy { policy: named, .. }) => assert_eq!(named, policy),
            other => panic!("{bad}: {other:?}"),
        }
    }
    assert!(matches!(
        policies_from_json("{", TailConfig::default()),
        Err(PolicyConfigError::Json(_))
    ));
}

#[test]
fn the_worker_decides_traces_from_the_layer() {
    use tracing_subscriber::prelude::*;
    let exporter = InMemoryExporter::new();
    let config = TailConfig {
        decision_wait: Duration::from_millis(50),
        ..TailConfig::default()
    };
    let tail = Arc::new(TailSamplingProcessor::new(
        vec![Policy::StatusCode(vec![StatusMatch::Error])],
        config,
        exporter.clone(),
    ));
    let stats = tail.stats();
    let layer = crate::TracewireLayer::builder()
        .shared_processor(tail.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(layer);
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!("fine").in_scope(|| tracing::info_span!("child").in_scope(|| {}));
        tracing::info_span!("failing").in_scope(|| {
            tracing::info_span!("db", otel.status_code = "error").in_scope(|| {});
        });
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while stats.sampled_traces() + stats.not_sampled_traces() < 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(10));
    }
    let names: std::collections::BTreeSet<String> = exporter
        .spans()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    assert_eq!(names, ["db".to_owned(), "failing".to_owned()].into());
    assert_eq!(
        tail.buffered_traces(),
        0,
        "decided by the worker, not by a flush"
    );
}

#[test]
fn the_repositorys_policy_file_keeps_errors_slow_traces_and_one_percent() {
    let text = include_str!("../../../../deploy/tail-policies.json");
    let (policies, config) = policies_from_json(text, TailConfig::default()).unwrap();
    assert_eq!(config.decision_wait, Duration::from_secs(2));
    let (tail, exporter) = stage(policies, config);
    let t0 = Instant::now();
    let mut failed = span(1, 1, 0, 10);
    failed.status = Status::Error {
        message: "x".into(),
    };
    tail.on_end_at(failed, t0);
    tail.on_end_at(span(2, 1, 0, 2_500), t0);
    // The Collector's hash of this id with the default salt is 0xe0bc…,
    // 88% of the range: far above 1%.
    let unlucky = (1u128 << 64) | u128::from(u64::MAX);
    tail.on_end_at(span(unlucky, 1, 0, 10), t0);
    tail.decide_ready(t0 + Duration::from_secs(2));
    assert_eq!(kept_traces(&exporter), [1, 2].into());
}
