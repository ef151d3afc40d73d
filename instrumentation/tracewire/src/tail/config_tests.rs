//! Policy file hardening, the Collector's `probabilistic` decision and the
//! `composite` policy.

use std::time::{Duration, Instant};

use super::config::{MAX_DEPTH, MAX_FILE_BYTES, MAX_LIST_ITEMS, MAX_NAME_BYTES, MAX_POLICIES};
use super::tests::span;
use super::*;
use crate::TraceId;

fn parse(text: &str) -> PolicyFile {
    match policy_file_from_json(text, TailConfig::default()) {
        Ok(file) => file,
        Err(e) => panic!("{text}: {e}"),
    }
}

fn one_policy(kind: &str, body: &str) -> String {
    format!(r#"{{"policies": [{{"name": "p", "type": "{kind}", "{kind}": {body}}}]}}"#)
}

fn fields(file: &PolicyFile) -> Vec<(&str, &str)> {
    file.warnings
        .iter()
        .map(|w| (w.policy.as_str(), w.field.as_str()))
        .collect()
}

fn error_of(text: &str) -> (String, String) {
    match policy_file_from_json(text, TailConfig::default()) {
        Err(PolicyConfigError::Policy { policy, reason }) => (policy, reason),
        other => panic!("{text}: expected a policy error, got {other:?}"),
    }
}

// ---- Task 1: every value checked, clamped or refused, never a panic ----

#[test]
fn out_of_range_numbers_are_clamped_with_a_warning_naming_policy_and_field() {
    let file = parse(&one_policy(
        "latency",
        r#"{"threshold_ms": 1e300, "upper_threshold_ms": -5}"#,
    ));
    assert!(matches!(
        &file.policies[0],
        Policy::Latency { threshold, upper: None } if *threshold == Duration::from_secs(86_400)
    ));
    assert_eq!(
        fields(&file),
        [
            ("p", "latency.threshold_ms"),
            ("p", "latency.upper_threshold_ms")
        ]
    );
    assert!(
        file.warnings[0].to_string().contains("using 86400000"),
        "{}",
        file.warnings[0]
    );

    let file = parse(&one_policy("latency", r#"{"threshold_ms": -1}"#));
    assert!(matches!(&file.policies[0], Policy::Latency { threshold, .. } if threshold.is_zero()));
    assert_eq!(fields(&file), [("p", "latency.threshold_ms")]);

    // The file's own settings.
    let file = parse(r#"{"decision_wait_ms": 1e300, "num_traces": 1e300, "policies": []}"#);
    assert_eq!(file.config.decision_wait, Duration::from_secs(3_600));
    assert_eq!(file.config.max_traces, 1_000_000, "no huge preallocation");
    // decision_wait clamped, longer than trace_timeout, num_traces clamped.
    assert_eq!(
        fields(&file),
        [
            ("", "decision_wait_ms"),
            ("", "decision_wait_ms"),
            ("", "num_traces")
        ]
    );
    let file = parse(r#"{"decision_wait_ms": -3, "num_traces": -1, "policies": []}"#);
    assert_eq!(file.config.decision_wait, Duration::ZERO);
    assert_eq!(file.config.max_traces, 1);
    let file = parse(r#"{"num_traces": 0, "policies": []}"#);
    assert_eq!(file.config.max_traces, 1);
    let file = parse(r#"{"num_traces": 99999999999999999999999999, "policies": []}"#);
    assert_eq!(file.config.max_traces, 1_000_000);
    let file = parse(r#"{"num_traces": 10.7, "policies": []}"#);
    assert_eq!(file.config.max_traces, 10);
    assert_eq!(
        file.warnings.len(),
        1,
        "a fraction is truncated, with a warning"
    );

    for (percentage, kept) in [("-50", 0.0), ("150", 100.0), ("1e308", 100.0), ("-0", 0.0)] {
        let file = parse(&one_policy(
            "probabilistic",
            &format!(r#"{{"sampling_percentage": {percentage}}}"#),
        ));
        let Policy::SaltedProbabilistic(p) = &file.policies[0] else {
            panic!("{:?}", file.policies[0])
        };
        assert_eq!(p.sampling_percentage(), kept, "{percentage}");
    }

    let file = parse(&one_policy("rate_limiting", r#"{"spans_per_second": -10}"#));
    assert_eq!(fields(&file), [("p", "rate_limiting.spans_per_second")]);
    let file = parse(&one_policy(
        "rate_limiting",
        r#"{"spans_per_second": 1e300}"#,
    ));
    assert_eq!(fields(&file), [("p", "rate_limiting.spans_per_second")]);

    let file = parse(&one_policy(
        "span_count",
        r#"{"min_spans": -4, "max_spans": 1e20}"#,
    ));
    assert!(matches!(
        file.policies[0],
        Policy::SpanCount {
            min: 0,
            max: 2_147_483_647
        }
    ));
    assert_eq!(
        fields(&file),
        [("p", "span_count.min_spans"), ("p", "span_count.max_spans")]
    );
}

#[test]
fn span_count_max_zero_means_no_upper_bound_as_in_the_collector() {
    let file = parse(&one_policy(
        "span_count",
        r#"{"min_spans": 3, "max_spans": 0}"#,
    ));
    assert!(matches!(
        file.policies[0],
        Policy::SpanCount {
            min: 3,
            max: usize::MAX
        }
    ));
    assert!(file.warnings.is_empty());
    let file = parse(&one_policy(
        "span_count",
        r#"{"min_spans": 5, "max_spans": 2}"#,
    ));
    assert_eq!(
        fields(&file),
        [("p", "span_count.max_spans")],
        "never samples"
    );
}

#[test]
fn wrong_types_and_missing_fields_are_errors_naming_policy_and_field() {
    for (kind, body, field) in [
        (
            "latency",
            r#"{"threshold_ms": "2000"}"#,
            "latency.threshold_ms",
        ),
        (
            "latency",
            r#"{"threshold_ms": [1]}"#,
            "latency.threshold_ms",
        ),
        ("latency", r#"{}"#, "latency.threshold_ms"),
        (
            "latency",
            r#"{"threshold_ms": null}"#,
            "latency.threshold_ms",
        ),
        (
            "probabilistic",
            r#"{"sampling_percentage": true}"#,
            "probabilistic.sampling_percentage",
        ),
        (
            "probabilistic",
            r#"{"sampling_percentage": 1, "hash_salt": 7}"#,
            "probabilistic.hash_salt",
        ),
        (
            "rate_limiting",
            r#"{"spans_per_second": {}}"#,
            "rate_limiting.spans_per_second",
        ),
        (
            "span_count",
            r#"{"min_spans": "2"}"#,
            "span_count.min_spans",
        ),
        (
            "string_attribute",
            r#"{"key": "k", "values": "v"}"#,
            "string_attribute.values",
        ),
        (
            "string_attribute",
            r#"{"key": "k", "values": [1]}"#,
            "string_attribute.values",
        ),
        ("string_attribute", r#"{"key": 3}"#, "string_attribute.key"),
        (
            "string_attribute",
            r#"{"key": "k", "invert_match": "yes"}"#,
            "string_attribute.invert_match",
        ),
        (
            "numeric_attribute",
            r#"{"key": "k", "min_value": "1"}"#,
            "numeric_attribute.min_value",
        ),
        (
            "boolean_attribute",
            r#"{"key": "k", "value": "true"}"#,
            "boolean_attribute.value",
        ),
        (
            "boolean_attribute",
            r#"{"key": "k"}"#,
            "boolean_attribute.value",
        ),
        (
            "status_code",
            r#"{"status_codes": "ERROR"}"#,
            "status_code.status_codes",
        ),
        ("and", r#"{"and_sub_policy": {}}"#, "and.and_sub_policy"),
        ("drop", r#"{}"#, "drop.drop_sub_policy"),
        (
            "composite",
            r#"{"composite_sub_policy": []}"#,
            "composite.max_total_spans_per_second",
        ),
        (
            "composite",
            r#"{"max_total_spans_per_second": 10}"#,
            "composite.composite_sub_policy",
        ),
        (
            "composite",
            r#"{"max_total_spans_per_second": 10, "composite_sub_policy": [], "rate_allocation": [{"policy": "a", "percent": "50"}]}"#,
            "composite.rate_allocation.percent",
        ),
    ] {
        let text = one_policy(kind, body);
        let (policy, reason) = error_of(&text);
        assert_eq!(policy, "p", "{text}");
        assert!(reason.starts_with(field), "{text}: {reason}");
    }
    // The body itself, the name and the type.
    let (_, reason) = error_of(r#"{"policies": [{"name": "p", "type": "latency", "latency": 5}]}"#);
    assert!(reason.contains("expected an object"), "{reason}");
    let (policy, reason) = error_of(r#"{"policies": [{"name": 5, "type": "always_sample"}]}"#);
    assert_eq!(policy, "#0");
    assert!(
        reason.starts_with("name: ") && reason.contains("expected a string"),
        "{reason}"
    );
    let (policy, _) = error_of(r#"{"policies": [{"name": "q"}]}"#);
    assert_eq!(policy, "q");
    let (_, reason) = error_of(r#"{"policies": [7]}"#);
    assert!(reason.contains("expected a policy object"), "{reason}");
    let (_, reason) = error_of(r#"{"policies": {}}"#);
    assert!(reason.contains("policies"), "{reason}");
    let (_, reason) = error_of(r#"[1, 2]"#);
    assert!(reason.contains("JSON object"), "{reason}");
    let (_, reason) = error_of(r#"{"decision_wait_ms": "2s", "policies": []}"#);
    assert!(
        reason.starts_with("decision_wait_ms: ") && reason.contains("string"),
        "{reason}"
    );
    // Features not supported here are refused rather than half-applied.
    for (kind, body) in [
        (
            "string_attribute",
            r#"{"key": "k", "values": ["a.*"], "enabled_regex_matching": true}"#,
        ),
        ("numeric_attribute", r#"{"key": "k", "invert_match": true}"#),
        (
            "boolean_attribute",
            r#"{"key": "k", "value": true, "invert_match": true}"#,
        ),
        ("trace_state", r#"{"key": "k", "values": ["v"]}"#),
        ("ottl_condition", r#"{}"#),
    ] {
        assert_eq!(error_of(&one_policy(kind, body)).0, "p", "{kind}");
    }
}

#[test]
fn numbers_json_cannot_hold_and_malformed_text_are_json_errors() {
    for text in [
        r#"{"num_traces": 1e400, "policies": []}"#,
        r#"{"num_traces": NaN, "policies": []}"#,
        r#"{"num_traces": Infinity, "policies": []}"#,
        "",
        "{",
    ] {
        assert!(
            matches!(
                policy_file_from_json(text, TailConfig::default()),
                Err(PolicyConfigError::Json(_))
            ),
            "{text}"
        );
    }
    // Deeper than serde_json's recursion limit: an error, not a stack overflow.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(
        policy_file_from_json(&deep, TailConfig::default()),
        Err(PolicyConfigError::Json(_))
    ));
}

#[test]
fn unknown_fields_are_ignored_with_a_warning() {
    let file = parse(
        r#"{"decision_wait": "2s", "expected_new_traces_per_sec": 10, "extra": 1, "policies": [
            {"name": "p", "type": "latency", "latency": {"threshold_ms": 5, "threshhold": 1}, "probabilistic": {}},
            {"name": "s", "type": "string_attribute", "string_attribute": {"key": "k", "values": ["v"], "cache_max_size": 10}}
        ]}"#,
    );
    assert_eq!(
        fields(&file),
        [
            ("", "decision_wait"),
            ("", "extra"),
            ("p", "probabilistic"),
            ("p", "latency.threshhold")
        ]
    );
}

#[test]
fn the_file_is_bounded_in_size_count_depth_and_string_lengths() {
    // Size.
    let big = format!(
        r#"{{"policies": [], "pad": "{}"}}"#,
        "x".repeat(MAX_FILE_BYTES)
    );
    let (policy, reason) = error_of(&big);
    assert!(policy.is_empty() && reason.contains("bytes"), "{reason}");

    // Count, nested ones included.
    let many = |n: usize| {
        let list = vec![r#"{"type": "always_sample"}"#; n].join(",");
        format!(r#"{{"policies": [{list}]}}"#)
    };
    assert_eq!(parse(&many(MAX_POLICIES)).policies.len(), MAX_POLICIES);
    let (_, reason) = error_of(&many(MAX_POLICIES + 1));
    assert!(reason.contains("more than 1000 policies"), "{reason}");
    let half = vec![r#"{"type": "always_sample"}"#; MAX_POLICIES / 2].join(",");
    let nested = format!(
        r#"{{"policies": [{half}, {{"name": "a", "type": "and", "and": {{"and_sub_policy": [{half}]}}}}]}}"#
    );
    assert!(error_of(&nested).1.contains("more than 1000 policies"));

    // Depth.
    let nest = |levels: usize| {
        let mut p = r#"{"type": "always_sample"}"#.to_owned();
        for _ in 1..levels {
            p = format!(r#"{{"type": "and", "and": {{"and_sub_policy": [{p}]}}}}"#);
        }
        format!(r#"{{"policies": [{p}]}}"#)
    };
    assert_eq!(parse(&nest(MAX_DEPTH)).policies.len(), 1);
    let (policy, reason) = error_of(&nest(MAX_DEPTH + 1));
    assert_eq!(policy, "#0/#0/#0/#0/#0/#0/#0/#0/#0");
    assert!(reason.contains("nested more than 8 levels"), "{reason}");

    // Strings and lists.
    let long_name = format!(
        r#"{{"policies": [{{"name": "{}", "type": "always_sample"}}]}}"#,
        "n".repeat(MAX_NAME_BYTES + 1)
    );
    assert!(error_of(&long_name).1.starts_with("name: 257 bytes"));
    let long_salt = one_policy(
        "probabilistic",
        &format!(
            r#"{{"sampling_percentage": 1, "hash_salt": "{}"}}"#,
            "s".repeat(4_097)
        ),
    );
    assert!(
        error_of(&long_salt)
            .1
            .starts_with("probabilistic.hash_salt")
    );
    let values = vec!["\"v\""; MAX_LIST_ITEMS + 1].join(",");
    let long_list = one_policy(
        "string_attribute",
        &format!(r#"{{"key": "k", "values": [{values}]}}"#),
    );
    assert!(error_of(&long_list).1.contains("1001 items"));
    let values = vec!["\"v\""; MAX_LIST_ITEMS].join(",");
    parse(&one_policy(
        "string_attribute",
        &format!(r#"{{"key": "k", "values": [{values}]}}"#),
    ));

    // Composite only at the top, drop never inside composite.
    let (policy, reason) = error_of(
        r#"{"policies": [{"name": "a", "type": "and", "and": {"and_sub_policy": [
            {"name": "c", "type": "composite", "composite": {"max_total_spans_per_second": 1, "composite_sub_policy": []}}
        ]}}]}"#,
    );
    assert_eq!(policy, "c");
    assert!(reason.contains("top-level"), "{reason}");
    let (policy, _) = error_of(
        r#"{"policies": [{"name": "c", "type": "composite", "composite": {"max_total_spans_per_second": 1, "composite_sub_policy": [
            {"name": "d", "type": "drop", "drop": {"drop_sub_policy": [{"type": "always_sample"}]}}
        ]}}]}"#,
    );
    assert_eq!(policy, "d");
}

#[test]
fn programmatic_values_never_panic() {
    let t0 = Instant::now();
    let id = TraceId::from_u128(1);
    for rate in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -1.0, f64::MAX] {
        let limit = Policy::RateLimiting(RateLimit::new(rate));
        limit.evaluate(id, &[], t0);
        limit.evaluate(id, &[], t0 + Duration::from_secs(3_600));
    }
    assert_eq!(
        Policy::RateLimiting(RateLimit::new(f64::NAN)).evaluate(id, &[], t0),
        Verdict::Sample,
        "zero spans fit any budget"
    );
    for fraction in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1.0,
        2.0,
        1e-320,
    ] {
        Policy::Probabilistic(fraction).evaluate(id, &[], t0);
        Probabilistic::new(fraction, "").samples(id);
    }
    assert_eq!(Probabilistic::new(f64::NAN, "").threshold(), 0);
    assert_eq!(Probabilistic::new(f64::INFINITY, "").threshold(), u64::MAX);
    let composite = Composite::new(u64::MAX, vec![("a".into(), Policy::AlwaysSample)], &[]);
    assert_eq!(composite.allocations(), [("a", 0)]);
    Composite::new(0, Vec::new(), &[]);
}

// ---- Task 3: probabilistic decides as the Collector does ----

/// Thresholds derived from the Collector's `calculateThreshold`
/// (`MaxUint64 × (percentage / 100)` in a 64-bit big.Float, rounded to
/// nearest even, then truncated), computed independently with exact
/// rational arithmetic.
#[test]
fn thresholds_match_the_collectors_calculation() {
    for (percentage, threshold) in [
        (0.0, 0u64),
        (1.0, 184_467_440_737_095_519),
        (10.0, 0x1999_9999_9999_99ff),
        (25.0, 0x3fff_ffff_ffff_ffff),
        (33.0, 0x547a_e147_ae14_7bff),
        (33.333, 0x5555_1d68_c692_f3ff),
        (50.0, 0x7fff_ffff_ffff_ffff),
        (75.0, 0xbfff_ffff_ffff_ffff),
        (90.0, 0xe666_6666_6666_67ff),
        (99.9, 0xffbe_76c8_b439_5fff),
        (100.0, u64::MAX),
        (150.0, u64::MAX),
        (-50.0, 0),
    ] {
        assert_eq!(
            collector_threshold(percentage / 100.0),
            threshold,
            "{percentage}%"
        );
        assert_eq!(Probabilistic::new(percentage, "").threshold(), threshold);
    }
}

/// Hashes and decisions derived from the Collector's probabilistic.go
/// (`fnv.New64a()`, salt bytes then the 16 trace id bytes, sampled when
/// `hash <= threshold`; empty salt = "default-hash-seed"), computed
/// independently of this implementation.
#[test]
fn decisions_match_the_collector_on_known_trace_ids() {
    const PERCENTAGES: [f64; 6] = [1.0, 10.0, 25.0, 50.0, 75.0, 99.9];
    let table: [(u128, &str, u64, [bool; 6]); 24] = [
        (
            0x0af7651916cd43dd8448eb211c80319c,
            "",
            0x33bf83d45f51634c,
            [false, false, true, true, true, true],
        ),
        (
            0x0af7651916cd43dd8448eb211c80319c,
            "test-salt",
            0xdf9caa2a9f0d52f1,
            [false, false, false, false, false, true],
        ),
        (
            0x0af7651916cd43dd8448eb211c80319c,
            "tier-2",
            0xdfcd23b5d5f26caf,
            [false, false, false, false, false, true],
        ),
        (
            0x4bf92f3577b34da6a3ce929d0e0e4736,
            "",
            0xa54533ba2e4970b5,
            [false, false, false, false, true, true],
        ),
        (
            0x4bf92f3577b34da6a3ce929d0e0e4736,
            "test-salt",
            0xabb7bd9f983cd93c,
            [false, false, false, false, true, true],
        ),
        (
            0x4bf92f3577b34da6a3ce929d0e0e4736,
            "tier-2",
            0xd070ae16919a9ca6,
            [false, false, false, false, false, true],
        ),
        (
            1,
            "",
            0xe19535eed1bbaa8a,
            [false, false, false, false, false, true],
        ),
        (
            1,
            "test-salt",
            0x8149721e69875e73,
            [false, false, false, false, true, true],
        ),
        (
            1,
            "tier-2",
            0xd70da59aa199ffad,
            [false, false, false, false, false, true],
        ),
        (
            u128::MAX,
            "",
            0x17bec3739634fe2d,
            [false, true, true, true, true, true],
        ),
        (
            u128::MAX,
            "test-salt",
            0x49f70bce284974b0,
            [false, false, false, true, true, true],
        ),
        (
            u128::MAX,
            "tier-2",
            0x4b7d29272a2d4dea,
            [false, false, false, true, true, true],
        ),
        (
            0x0000000000000001ffffffffffffffff,
            "",
            0xe0bc151b3bc524a2,
            [false, false, false, false, false, true],
        ),
        (
            0x0000000000000001ffffffffffffffff,
            "test-salt",
            0x98c1fe56f391d54b,
            [false, false, false, false, true, true],
        ),
        (
            0x0000000000000001ffffffffffffffff,
            "tier-2",
            0x760386d863c8d285,
            [false, false, false, true, true, true],
        ),
        (
            0x5b8efff798038103d269b633813fc60c,
            "",
            0x95f176d291b1d3f7,
            [false, false, false, false, true, true],
        ),
        (
            0x5b8efff798038103d269b633813fc60c,
            "test-salt",
            0x52bb8437f22984d2,
            [false, false, false, true, true, true],
        ),
        (
            0x5b8efff798038103d269b633813fc60c,
            "tier-2",
            0x01ff26eceb713a80,
            [true, true, true, true, true, true],
        ),
        (
            0x00000000000000010000000000000002,
            "",
            0x4e2adf913d20b2c4,
            [false, false, false, true, true, true],
        ),
        (
            0x00000000000000010000000000000002,
            "test-salt",
            0x14b3c87bfe225639,
            [false, true, true, true, true, true],
        ),
        (
            0x00000000000000010000000000000002,
            "tier-2",
            0x6a77f7f83634f0a7,
            [false, false, false, true, true, true],
        ),
        (
            0xfedcba98765432100123456789abcdef,
            "",
            0x3c6e35fe767ad8ad,
            [false, false, true, true, true, true],
        ),
        (
            0xfedcba98765432100123456789abcdef,
            "test-salt",
            0x25b85297277d1c80,
            [false, false, true, true, true, true],
        ),
        (
            0xfedcba98765432100123456789abcdef,
            "tier-2",
            0x0682ae0c3308709a,
            [false, true, true, true, true, true],
        ),
    ];
    let t0 = Instant::now();
    for (id, salt, hash, sampled) in table {
        let id = TraceId::from_u128(id);
        let hashed_salt = if salt.is_empty() {
            DEFAULT_HASH_SALT
        } else {
            salt
        };
        assert_eq!(collector_trace_hash(hashed_salt, id), hash, "{id} {salt:?}");
        for (percentage, expected) in PERCENTAGES.into_iter().zip(sampled) {
            let policy = Probabilistic::new(percentage, salt);
            assert_eq!(policy.samples(id), expected, "{id} {salt:?} {percentage}%");
            let verdict = if expected {
                Verdict::Sample
            } else {
                Verdict::NotSample
            };
            assert_eq!(
                Policy::SaltedProbabilistic(policy).evaluate(id, &[], t0),
                verdict
            );
            if salt.is_empty() {
                assert_eq!(
                    Policy::Probabilistic(percentage / 100.0).evaluate(id, &[], t0),
                    verdict,
                    "the fraction form uses the default salt"
                );
            }
        }
    }
    // Plain FNV-1a 64 on the salt alone would be the standard vectors; with
    // the trace id appended, an all-zero id still hashes deterministically.
    assert_ne!(
        collector_trace_hash("a", TraceId::INVALID),
        collector_trace_hash("b", TraceId::INVALID)
    );
}

#[test]
fn the_policy_file_carries_hash_salt_and_a_higher_percentage_keeps_a_superset() {
    let file = parse(&one_policy(
        "probabilistic",
        r#"{"sampling_percentage": 10, "hash_salt": "tier-2"}"#,
    ));
    let Policy::SaltedProbabilistic(p) = &file.policies[0] else {
        panic!("{:?}", file.policies[0])
    };
    assert_eq!((p.hash_salt(), p.sampling_percentage()), ("tier-2", 10.0));
    let file = parse(&one_policy(
        "probabilistic",
        r#"{"sampling_percentage": 10}"#,
    ));
    let Policy::SaltedProbabilistic(p) = &file.policies[0] else {
        panic!()
    };
    assert_eq!(p.hash_salt(), DEFAULT_HASH_SALT);

    let low = Probabilistic::new(5.0, "x");
    let high = Probabilistic::new(20.0, "x");
    let mut kept = (0, 0);
    for i in 0..5_000u128 {
        let id = TraceId::from_u128(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835));
        if low.samples(id) {
            kept.0 += 1;
            assert!(high.samples(id), "superset");
        }
        kept.1 += usize::from(high.samples(id));
    }
    assert!(kept.0 > 0 && kept.1 > kept.0, "{kept:?}");
}

// ---- Task 2: composite ----

fn spans(n: usize) -> Vec<SpanData> {
    let template = span(1, 1, 0, 1);
    vec![template; n]
}

fn errored(n: usize) -> Vec<SpanData> {
    let mut spans = spans(n);
    spans[0].status = crate::Status::Error {
        message: "x".into(),
    };
    spans
}

#[test]
fn composite_allocations_follow_the_collectors_rate_allocation_map() {
    let subs = || {
        vec![
            ("a".to_owned(), Policy::AlwaysSample),
            ("b".to_owned(), Policy::AlwaysSample),
            ("c".to_owned(), Policy::AlwaysSample),
            ("d".to_owned(), Policy::AlwaysSample),
        ]
    };
    let alloc = |policy: &str, percent| RateAllocation {
        policy: policy.into(),
        percent,
    };
    let composite = Composite::new(
        1_000,
        subs(),
        &[
            alloc("a", 25),
            alloc("b", 0),
            alloc("c", 150),
            alloc("a", 10),
        ],
    );
    // a: the last entry (10%); b: 0 means an equal share (1000 / 4);
    // c: capped at 100%; d: no entry, nothing.
    assert_eq!(
        composite.allocations(),
        [("a", 100), ("b", 250), ("c", 1_000), ("d", 0)]
    );
    // Shares are truncated: 33% of 10 is 3.3 -> 3; 10 / 3 = 3.33 -> 3.
    let composite = Composite::new(
        10,
        subs().into_iter().take(3).collect(),
        &[alloc("a", 33), alloc("b", 0)],
    );
    assert_eq!(composite.allocations(), [("a", 3), ("b", 3), ("c", 0)]);
}

#[test]
fn composite_the_first_sampling_sub_policy_decides_within_its_budget() {
    let composite = Policy::Composite(Composite::new(
        10,
        vec![
            (
                "errors".into(),
                Policy::StatusCode(vec![StatusMatch::Error]),
            ),
            ("rest".into(), Policy::AlwaysSample),
        ],
        &[
            RateAllocation {
                policy: "errors".into(),
                percent: 60,
            },
            RateAllocation {
                policy: "rest".into(),
                percent: 40,
            },
        ],
    ));
    let id = TraceId::from_u128(9);
    let t0 = Instant::now();
    let run = |trace: &[SpanData], at: Instant| composite.evaluate(id, trace, at);
    // errors: 6 spans a second, rest: 4.
    assert_eq!(run(&errored(4), t0), Verdict::Sample);
    assert_eq!(run(&errored(2), t0), Verdict::Sample, "4 + 2 = 6 fits");
    assert_eq!(
        run(&errored(1), t0),
        Verdict::NotSample,
        "errors is full; rest is not asked although it would sample"
    );
    assert_eq!(run(&spans(3), t0), Verdict::Sample);
    assert_eq!(run(&spans(2), t0), Verdict::NotSample, "3 + 2 > 4");
    assert_eq!(
        run(&spans(1), t0 + Duration::from_millis(999)),
        Verdict::Sample,
        "a rejected trace does not use the budget"
    );
    assert_eq!(run(&spans(1), t0), Verdict::NotSample);
    // The next second starts from zero.
    assert_eq!(
        run(&errored(6), t0 + Duration::from_secs(1)),
        Verdict::Sample
    );
    assert_eq!(run(&spans(4), t0 + Duration::from_secs(1)), Verdict::Sample);
    // No sub-policy samples: not sampled.
    let none = Policy::Composite(Composite::new(
        10,
        vec![("n".into(), Policy::SpanCount { min: 50, max: 60 })],
        &[],
    ));
    assert_eq!(none.evaluate(id, &spans(1), t0), Verdict::NotSample);
}

#[test]
fn composite_max_total_caps_each_sub_policy() {
    let composite = Policy::Composite(Composite::new(
        5,
        vec![("a".into(), Policy::AlwaysSample)],
        &[RateAllocation {
            policy: "a".into(),
            percent: 100,
        }],
    ));
    let t0 = Instant::now();
    let id = TraceId::from_u128(1);
    assert_eq!(composite.evaluate(id, &spans(6), t0), Verdict::NotSample);
    assert_eq!(composite.evaluate(id, &spans(5), t0), Verdict::Sample);
}

#[test]
fn composite_from_a_policy_file_in_the_collectors_shape() {
    let file = parse(
        r#"{"policies": [{"name": "budget", "type": "composite", "composite": {
            "max_total_spans_per_second": 100,
            "policy_order": ["slow-errors", "errors", "everything", "ghost"],
            "composite_sub_policy": [
                {"name": "slow-errors", "type": "and", "and": {"and_sub_policy": [
                    {"name": "slow", "type": "latency", "latency": {"threshold_ms": 1000}},
                    {"name": "err", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}}
                ]}},
                {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
                {"name": "everything", "type": "always_sample"},
                {"name": "unfunded", "type": "always_sample"}
            ],
            "rate_allocation": [
                {"policy": "slow-errors", "percent": 50},
                {"policy": "errors", "percent": 30},
                {"policy": "everything", "percent": 20},
                {"policy": "ghost", "percent": 1e9}
            ]
        }}]}"#,
    );
    let Policy::Composite(composite) = &file.policies[0] else {
        panic!("{:?}", file.policies[0])
    };
    assert_eq!(composite.max_total_spans_per_second(), 100);
    assert_eq!(
        composite.allocations(),
        [
            ("slow-errors", 50),
            ("errors", 30),
            ("everything", 20),
            ("unfunded", 0)
        ]
    );
    let names: Vec<&str> = composite.sub_policies().map(|(n, _)| n).collect();
    assert_eq!(names, ["slow-errors", "errors", "everything", "unfunded"]);
    let messages: Vec<String> = file.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), 5, "{messages:#?}");
    for expected in [
        "percent: 1000000000 is outside",
        "no sub-policy is named \"ghost\"",
        "add up to 200",
        "\"unfunded\" has no allocation",
        "policy_order: differs",
    ] {
        assert!(
            messages.iter().any(|m| m.contains(expected)),
            "{expected}: {messages:#?}"
        );
    }
    assert!(file.warnings.iter().all(|w| w.policy == "budget"));
}

#[test]
fn a_composite_in_the_stage_keeps_traces_within_its_budget() {
    let file = parse(
        r#"{"policies": [{"name": "budget", "type": "composite", "composite": {
            "max_total_spans_per_second": 4,
            "composite_sub_policy": [{"name": "all", "type": "always_sample"}],
            "rate_allocation": [{"policy": "all", "percent": 100}]
        }}]}"#,
    );
    let exporter = crate::testing::InMemoryExporter::new();
    let tail = TailSamplingProcessor::without_worker(file.policies, file.config, exporter.clone());
    let t0 = Instant::now();
    for trace in 1..=3u128 {
        // Two spans each: the first two traces fit in 4 spans a second.
        let root = span(trace, 1, 0, 1);
        let child = span(trace, 2, 1, 1);
        tail.on_end_at(child, t0);
        tail.on_end_at(root, t0);
    }
    tail.decide_ready(t0 + Duration::from_secs(1));
    assert_eq!(exporter.len(), 4);
    let stats = tail.stats();
    assert_eq!((stats.sampled_traces(), stats.not_sampled_traces()), (2, 1));
}

#[test]
fn latency_with_an_upper_bound_uses_the_collectors_bounds() {
    let policy = Policy::Latency {
        threshold: Duration::from_millis(100),
        upper: Some(Duration::from_millis(200)),
    };
    let lower_only = Policy::Latency {
        threshold: Duration::from_millis(100),
        upper: None,
    };
    let t0 = Instant::now();
    let id = TraceId::from_u128(1);
    let lasting = |micros: u64| {
        let mut s = span(1, 1, 0, 0);
        s.end_time = s.start_time + Duration::from_micros(micros);
        vec![s]
    };
    for (micros, with_upper, without) in [
        (99_999, false, false),
        (100_000, false, true),
        (100_900, false, true),
        (101_000, true, true),
        (200_000, true, true),
        (200_900, true, true),
        (201_000, false, true),
    ] {
        let verdict = |yes: bool| {
            if yes {
                Verdict::Sample
            } else {
                Verdict::NotSample
            }
        };
        assert_eq!(
            policy.evaluate(id, &lasting(micros), t0),
            verdict(with_upper),
            "{micros}"
        );
        assert_eq!(
            lower_only.evaluate(id, &lasting(micros), t0),
            verdict(without),
            "{micros}"
        );
    }
}
