//! Every variable tracewire reads, set to empty, zero, negative, huge,
//! non-numeric and non-UTF-8 values: start-up succeeds, the bad value is
//! reported by name, and the service runs and traces.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use crate::support::{INCOMING, TRACE_ID, ids, probe};

/// Every variable `init()` reads.
const VARIABLES: &[&str] = tracewire::CONFIGURATION_VARIABLES;

/// The bad values: `(label, value)`.
fn bad_values() -> Vec<(&'static str, OsString)> {
    vec![
        ("empty", OsString::new()),
        ("zero", OsString::from("0")),
        ("negative", OsString::from("-1")),
        ("huge", OsString::from("9".repeat(40))),
        ("non-numeric", OsString::from("not-a-value")),
        ("non-UTF-8", OsString::from_vec(vec![b'x', 0xff, 0xfe])),
    ]
}

/// Whether `value` (labelled `label`) is one that `variable` must report.
/// Empty counts as unset; a few variables take any text.
fn must_warn(variable: &str, label: &str) -> bool {
    match label {
        "empty" => false,
        "non-UTF-8" => true,
        _ => match variable {
            // Any text is a name or a path.
            "OTEL_SERVICE_NAME" | "TRACEWIRE_TRACES_FILE" => false,
            // Filter directives: a bare word is a target.
            "RUST_LOG" | "TRACEWIRE_TRACES_FILTER" => false,
            // 0 is a valid ratio.
            "OTEL_TRACES_SAMPLER_ARG" => label != "zero",
            _ => true,
        },
    }
}

#[test]
fn every_variable_with_every_bad_value_starts_warns_and_traces() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = 0;
    for variable in VARIABLES {
        for (label, value) in bad_values() {
            let case = format!("{variable} {label}");
            let mut vars = vec![(*variable, value)];
            if *variable == "OTEL_TRACES_SAMPLER_ARG" {
                // The argument is read only for a ratio sampler.
                vars.push(("OTEL_TRACES_SAMPLER", "parentbased_traceidratio".into()));
            }
            let run = probe(dir.path(), Some(INCOMING), &vars);
            assert!(
                run.success,
                "{case}: start-up failed\n{}\n{}",
                run.stdout, run.stderr
            );
            assert!(!run.stderr.contains("panicked"), "{case}: {}", run.stderr);
            assert_eq!(run.status(), 200, "{case}: {}", run.stdout);
            let downstream = run
                .downstream_traceparent()
                .unwrap_or_else(|| panic!("{case}: nothing propagated\n{}", run.stdout));
            assert_eq!(ids(downstream).0, TRACE_ID, "{case}");
            if must_warn(variable, label) {
                assert!(
                    run.warns_about(variable),
                    "{case}: no warning\n{}",
                    run.stdout
                );
            }
            if label == "non-UTF-8" {
                assert!(
                    !run.stdout.contains('\u{fffd}'),
                    "{case}: a value that is not UTF-8 is not echoed"
                );
            }
            let exports_to_file =
                !matches!(*variable, "OTEL_TRACES_EXPORTER" | "TRACEWIRE_TRACES_FILE");
            if exports_to_file {
                let server = run.span("GET /work").unwrap_or_else(|| {
                    panic!("{case}: the server span was not exported\n{}", run.stdout)
                });
                assert_eq!(server["traceId"], TRACE_ID, "{case}");
            }
            std::fs::remove_file(dir.path().join("traces.jsonl")).ok();
            cases += 1;
        }
    }
    assert_eq!(cases, VARIABLES.len() * 6);
    assert!(
        VARIABLES.len() >= 26,
        "the list covers what the README documents"
    );
}

#[test]
fn header_values_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let run = probe(
        dir.path(),
        Some(INCOMING),
        &[(
            "OTEL_EXPORTER_OTLP_HEADERS",
            OsString::from("api-key=sk-live-0123456789,broken"),
        )],
    );
    assert!(run.success);
    assert!(
        run.warns_about("OTEL_EXPORTER_OTLP_HEADERS"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("sk-live"), "{}", run.stdout);
    assert!(!run.stderr.contains("sk-live"), "{}", run.stderr);
}

#[test]
fn a_tail_policy_file_with_absurd_values_is_clamped_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.json");
    std::fs::write(
        &policies,
        r#"{"decision_wait": -5, "num_traces": 1e300, "policies": [
            {"name": "slow", "type": "latency", "latency": {"threshold_ms": 1e300}},
            {"name": "some", "type": "probabilistic", "probabilistic": {"sampling_percentage": 1e300}}
        ]}"#,
    )
    .unwrap();
    let run = probe(
        dir.path(),
        Some(INCOMING),
        &[("TRACEWIRE_TAIL_POLICIES", policies.into_os_string())],
    );
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    assert!(run.warns_about("TRACEWIRE_TAIL_POLICIES"), "{}", run.stdout);
    assert!(
        run.stdout.contains("threshold_ms"),
        "the clamped field is named"
    );
    assert_eq!(run.status(), 200);
}
