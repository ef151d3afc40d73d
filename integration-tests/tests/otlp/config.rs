//! Start-up settings from `OTEL_*` variables.

use std::time::Duration;

use tracewire::SpanExt;
use tracewire::propagation::Propagator;
use tracing_subscriber::prelude::*;

use crate::delivery::from_vars;
use crate::support::Receiver;

#[test]
fn every_bad_value_is_named_in_a_warning() {
    let settings = from_vars(&[
        ("OTEL_TRACES_SAMPLER", "sometimes".into()),
        ("OTEL_TRACES_SAMPLER_ARG", "2".into()),
        ("OTEL_PROPAGATORS", "tracecontext,xray".into()),
        ("OTEL_TRACES_EXPORTER", "zipkin".into()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "udp".into()),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon".into()),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "-1".into()),
        ("OTEL_RESOURCE_ATTRIBUTES", "a=%zz".into()),
        ("TRACEWIRE_LOG_FORMAT", "xml".into()),
    ]);
    let named: Vec<(&str, &str)> = settings
        .warnings()
        .iter()
        .map(|w| (w.variable, w.value.as_str()))
        .collect();
    for expected in [
        ("OTEL_TRACES_SAMPLER", "sometimes"),
        ("OTEL_PROPAGATORS", "xray"),
        ("OTEL_TRACES_EXPORTER", "zipkin"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "udp"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "-1"),
        ("OTEL_RESOURCE_ATTRIBUTES", "a=%zz"),
        ("TRACEWIRE_LOG_FORMAT", "xml"),
    ] {
        assert!(named.contains(&expected), "{expected:?} not in {named:?}");
    }
    // Defaults stand in: the pipeline still builds.
    assert!(settings.build_layer().is_ok());
}

#[test]
fn sdk_disabled_exports_nothing_and_passes_the_context_on() {
    let rx = Receiver::http(vec![]);
    let settings = from_vars(&[
        ("OTEL_SDK_DISABLED", "TRUE".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.url()),
    ]);
    let propagator = settings.propagator_ref().clone();
    let (layer, guard) = settings.build_layer().unwrap();
    let mut incoming = http::HeaderMap::new();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    incoming.insert("traceparent", traceparent.parse().unwrap());
    let (continued, root) =
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            let cx = propagator.extract(&incoming);
            let span = tracewire::with_remote_parent(&cx, || tracing::info_span!("server"));
            let child = span.in_scope(|| tracing::info_span!("child"));
            let mut continued = http::HeaderMap::new();
            propagator.inject(&child.context(), &mut continued);
            let mut root = http::HeaderMap::new();
            propagator.inject(&tracing::info_span!("new root").context(), &mut root);
            (continued, root)
        });
    assert_eq!(continued["traceparent"], traceparent, "passed on unchanged");
    assert!(!root.contains_key("traceparent"), "no new trace is started");
    guard.force_flush(Duration::from_secs(1)).unwrap();
    assert!(guard.stats().is_empty());
    assert!(rx.received().is_empty());
}

#[test]
fn sampler_and_propagators_from_the_environment() {
    let settings = from_vars(&[
        ("OTEL_TRACES_SAMPLER", "always_off".into()),
        ("OTEL_PROPAGATORS", "b3multi".into()),
        ("OTEL_TRACES_EXPORTER", "none".into()),
    ]);
    assert!(settings.warnings().is_empty(), "{:?}", settings.warnings());
    let propagator = settings.propagator_ref().clone();
    let (layer, _guard) = settings.build_layer().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let span = tracing::info_span!("root");
        let cx = span.context();
        assert!(!cx.span_context().unwrap().is_sampled());
        let mut headers = http::HeaderMap::new();
        propagator.inject(&cx, &mut headers);
        assert_eq!(headers["x-b3-sampled"], "0");
        assert!(!headers.contains_key("traceparent"));
    });
}

#[test]
fn code_settings_override_the_environment() {
    let rx = Receiver::http(vec![]);
    let settings = from_vars(&[
        ("OTEL_SERVICE_NAME", "from-env".into()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.url()),
    ])
    .service_name("from-code");
    let (layer, guard) = settings.build_layer().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info_span!("x").in_scope(|| {});
    });
    guard.force_flush(Duration::from_secs(5)).unwrap();
    let request = rx.received()[0].request.clone().unwrap();
    let resource = request.resource_spans[0].resource.clone().unwrap();
    assert_eq!(
        crate::support::attr(&resource.attributes, "service.name"),
        Some(
            &opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(
                "from-code".into()
            )
        )
    );
}

#[test]
fn tail_sampling_policies_from_a_file() {
    let rx = Receiver::http(vec![]);
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.json");
    std::fs::write(
        &policies,
        r#"{"decision_wait_ms": 10, "policies": [
            {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}}
        ]}"#,
    )
    .unwrap();
    let settings = from_vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.url()),
        ("TRACEWIRE_TAIL_POLICIES", policies.display().to_string()),
    ]);
    assert!(settings.warnings().is_empty(), "{:?}", settings.warnings());
    let (layer, guard) = settings.build_layer().unwrap();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        tracing::info_span!("fine").in_scope(|| tracing::info_span!("child").in_scope(|| {}));
        tracing::info_span!("failing").in_scope(|| {
            tracing::info_span!("db", otel.status_code = "error").in_scope(|| {});
        });
    });
    guard.force_flush(Duration::from_secs(5)).unwrap();
    let names: Vec<String> = rx
        .received()
        .iter()
        .filter_map(|r| r.request.clone())
        .flat_map(|r| r.resource_spans)
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .map(|s| s.name)
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(
        names,
        ["db", "failing"],
        "only the trace with an error is exported"
    );

    let missing = from_vars(&[(
        "TRACEWIRE_TAIL_POLICIES",
        "/nonexistent/policies.json".into(),
    )]);
    assert_eq!(missing.warnings()[0].variable, "TRACEWIRE_TAIL_POLICIES");
}

/// Ends `n` spans through `settings` and flushes: (exported, failed).
fn export_through(settings: tracewire::Tracewire, n: usize) -> (u64, u64) {
    let (layer, guard) = settings.build_layer().expect("pipeline");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..n {
            tracing::info_span!("work", i).in_scope(|| {});
        }
    });
    let _ = guard.force_flush(Duration::from_secs(10));
    let stats = guard.stats()[0].clone();
    (stats.exported(), stats.failed())
}

#[test]
fn zero_negative_or_huge_timeouts_still_export() {
    for (variable, value) in [
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "0"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "-1"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "18446744073709551615"),
        (
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "99999999999999999999999",
        ),
    ] {
        let rx = Receiver::http(vec![]);
        let settings = from_vars(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.url()),
            (variable, value.into()),
        ]);
        let named: Vec<&str> = settings.warnings().iter().map(|w| w.variable).collect();
        assert_eq!(named, [variable], "{value}");
        assert_eq!(export_through(settings, 5), (5, 0), "{variable}={value}");
        assert_eq!(rx.received().len(), 1, "{variable}={value}");
    }
}

#[test]
fn hostile_endpoints_protocols_and_compressions_warn_and_keep_defaults() {
    let huge = format!("http://{}", "a".repeat(10 * 1024));
    let garbage = "\u{1}\u{7f}%%::://".repeat(1000);
    for (variable, value) in [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://collector:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "collector:4318"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", huge.as_str()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", garbage.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "carrier-pigeon"),
        ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "zstd"),
    ] {
        let settings = from_vars(&[(variable, value.into())]);
        let warnings = settings.warnings();
        assert_eq!(warnings.len(), 1, "{variable}");
        assert_eq!(warnings[0].variable, variable);
        assert!(warnings[0].to_string().len() < 512, "bounded message");
        assert!(
            format!("{settings:?}").contains("http://localhost:4318/v1/traces"),
            "{variable}: the default endpoint stands"
        );
        assert!(settings.build_layer().is_ok(), "{variable}");
    }
}

#[test]
fn header_secrets_stay_out_of_warnings_and_debug() {
    // Valid headers: used, but their values never printed.
    let rx = Receiver::http(vec![]);
    let settings = from_vars(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", rx.url()),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key=sk-live-12345".into()),
    ]);
    assert!(settings.warnings().is_empty());
    let debug = format!("{settings:?}");
    assert!(debug.contains("api-key"), "{debug}");
    assert!(!debug.contains("sk-live-12345"), "{debug}");
    assert_eq!(export_through(settings, 1), (1, 0));
    assert_eq!(rx.received()[0].headers["api-key"], "sk-live-12345");

    // Invalid: the warning names the variable and at most the key.
    for (raw, key) in [
        ("api-key=sk-live-12345%0A", "api-key"),
        ("Authorization: Bearer sk-live-12345", ""),
        (
            "ok=1,Authorization=Bearer sk-live-12345%zz",
            "authorization",
        ),
    ] {
        let settings = from_vars(&[("OTEL_EXPORTER_OTLP_TRACES_HEADERS", raw.into())]);
        let warnings = settings.warnings();
        assert_eq!(warnings.len(), 1, "{raw}");
        assert_eq!(warnings[0].variable, "OTEL_EXPORTER_OTLP_TRACES_HEADERS");
        assert!(warnings[0].value.eq_ignore_ascii_case(key), "{raw}");
        let shown = format!("{} {:?} {settings:?}", warnings[0], warnings);
        assert!(!shown.contains("sk-live"), "{shown}");
    }

    // Bounded: too many pairs or bytes are refused as a whole.
    let many: Vec<String> = (0..65).map(|i| format!("h{i}=v")).collect();
    let long = format!("api-key={}", "s".repeat(9000));
    for raw in [many.join(","), long] {
        let settings = from_vars(&[("OTEL_EXPORTER_OTLP_HEADERS", raw)]);
        assert_eq!(settings.warnings().len(), 1);
        assert_eq!(
            settings.warnings()[0].variable,
            "OTEL_EXPORTER_OTLP_HEADERS"
        );
        assert!(!settings.warnings()[0].to_string().contains("sss"));
    }
}
