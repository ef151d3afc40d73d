//! A log level never changes which traces exist, and `OTEL_SDK_DISABLED`
//! passes the caller's context on unchanged.

use std::ffi::OsString;

use crate::support::{CALLER_SPAN_ID, INCOMING, TRACE_ID, ids, probe};

#[test]
fn rust_log_error_still_continues_exports_and_propagates_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let run = probe(
        dir.path(),
        Some(INCOMING),
        &[("RUST_LOG", OsString::from("error"))],
    );
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.status(), 200);

    // The server span continues the caller's trace and is exported.
    let server = run.span("GET /work").expect("the server span is exported");
    assert_eq!(server["traceId"], TRACE_ID);
    assert_eq!(server["parentSpanId"], CALLER_SPAN_ID);
    // Its client span is exported too, and its id went downstream.
    let client = run.span("GET").expect("the client span is exported");
    assert_eq!(client["parentSpanId"], server["spanId"]);
    let downstream = run.downstream_traceparent().expect("traceparent sent on");
    assert_eq!(
        ids(downstream),
        (TRACE_ID, client["spanId"].as_str().unwrap())
    );

    // RUST_LOG still filters the log output.
    assert!(
        !run.stdout.contains("handling the request"),
        "{}",
        run.stdout
    );
    let error_line = run
        .stdout
        .lines()
        .find(|l| l.contains("a logged error"))
        .expect("ERROR lines are logged");
    assert!(
        error_line.contains(&format!("trace_id={TRACE_ID}")),
        "{error_line}"
    );

    // A logged error with a 200 answer is not a failed request.
    assert!(
        server
            .get("status")
            .and_then(|s| s.get("code"))
            .is_none_or(|c| c == 0)
    );
}

#[test]
fn the_traces_filter_decides_the_applications_spans_but_never_the_instrumentations() {
    let dir = tempfile::tempdir().unwrap();
    let run = probe(
        dir.path(),
        Some(INCOMING),
        &[("TRACEWIRE_TRACES_FILTER", OsString::from("off"))],
    );
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    let server = run
        .span("GET /work")
        .expect("instrumentation spans are always traced");
    assert!(run.span("GET").is_some());
    let downstream = run.downstream_traceparent().expect("traceparent sent on");
    assert_eq!(ids(downstream).0, TRACE_ID);
    // The application's events are not traced under `off`.
    let events = server["events"].as_array().map_or(0, Vec::len);
    assert_eq!(events, 0, "{server}");
}

#[test]
fn sdk_disabled_passes_the_incoming_context_on_unchanged_and_exports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let disabled = [("OTEL_SDK_DISABLED", OsString::from("true"))];
    let run = probe(dir.path(), Some(INCOMING), &disabled);
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.status(), 200);
    assert_eq!(run.downstream_traceparent(), Some(INCOMING));
    assert!(run.spans.is_empty(), "nothing is exported: {:?}", run.spans);
    let error_line = run
        .stdout
        .lines()
        .find(|l| l.contains("a logged error"))
        .unwrap();
    assert!(
        error_line.contains(&format!("trace_id={TRACE_ID} span_id={CALLER_SPAN_ID}")),
        "log lines carry the context as it came in: {error_line}"
    );

    // Without an incoming context no trace is started.
    let run = probe(dir.path(), None, &disabled);
    assert!(run.success);
    assert_eq!(run.status(), 200);
    assert_eq!(run.downstream_traceparent(), None);
}

#[test]
fn spans_enabled_for_log_output_only_still_belong_to_the_trace() {
    // RUST_LOG=debug shows the handler's DEBUG span in the logs; the traces
    // filter (default info) does not trace it: its context, its log lines
    // and its outgoing calls are its traced parent's.
    let dir = tempfile::tempdir().unwrap();
    let run = probe(
        dir.path(),
        Some(INCOMING),
        &[("RUST_LOG", OsString::from("debug"))],
    );
    assert!(run.success, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(run.result["handler_trace_id"], TRACE_ID);
    let server = run.span("GET /work").expect("the server span is exported");
    assert!(
        run.span("handler work").is_none(),
        "DEBUG spans are not traced"
    );
    let client = run.span("GET").expect("the client span is exported");
    assert_eq!(client["parentSpanId"], server["spanId"]);
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("handling the request"))
        .expect("INFO lines are logged");
    let span_id = server["spanId"].as_str().unwrap();
    assert!(line.contains(&format!("span_id={span_id}")), "{line}");

    // TRACEWIRE_TRACES_FILTER=debug traces it.
    let dir = tempfile::tempdir().unwrap();
    let run = probe(
        dir.path(),
        Some(INCOMING),
        &[("TRACEWIRE_TRACES_FILTER", OsString::from("debug"))],
    );
    let work = run.span("handler work").expect("traced at debug");
    assert_eq!(
        work["parentSpanId"],
        run.span("GET /work").unwrap()["spanId"]
    );
}
