//! Hostile and broken receivers: refused connections, rejections, huge or
//! malformed `Retry-After`, servers that never answer, bodies cut mid-way
//! or far too large. Each export ends by itself within its timeout, never
//! panics, and comes to the documented outcome, asserted by the exporter's
//! result, the pipeline's counts and the requests the receiver got (never
//! by timing).

use std::time::{Duration, SystemTime};

use tracewire::export::otlp::{OtlpConfig, OtlpExporter, Protocol, RetryPolicy};
use tracewire::export::{BatchConfig, ExportError, Resource, SpanExporter as _};
use tracewire::{
    InstrumentationScope, SpanContext, SpanData, SpanId, SpanKind, Status, TraceFlags, TraceId,
    TraceState, Tracewire,
};
use tracing_subscriber::prelude::*;

use crate::support::{Receiver, Reply, Silent};

/// The export timeout of most cases: long enough for every retry the
/// cases expect, so an export that ends early ended by its own decision.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The timeout of the cases that wait for it to run out.
const SHORT: Duration = Duration::from_millis(400);
/// Attempts per export.
const ATTEMPTS: u32 = 3;
/// A Retry-After of about 31,700 years.
const HUGE_SECONDS: &str = "1000000000000";
/// A Retry-After date as far in the future as HTTP dates go.
const FAR_DATE: &str = "Fri, 31 Dec 9999 23:59:59 GMT";
const ONE_MB: usize = 1024 * 1024;

fn spans(n: u64) -> Vec<SpanData> {
    let start = SystemTime::now();
    (1..=n)
        .map(|i| SpanData {
            span_context: SpanContext::new(
                TraceId::from_u128(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736 ^ u128::from(i)),
                SpanId::from_u64(i),
                TraceFlags::SAMPLED,
                false,
                TraceState::new(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_is_remote: false,
            name: "hostile".into(),
            kind: SpanKind::Internal,
            start_time: start,
            end_time: start + Duration::from_millis(1),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status: Status::Unset,
            scope: InstrumentationScope {
                name: "hostile".into(),
                version: None,
            },
        })
        .collect()
}

fn config(protocol: Protocol, base: &str, timeout: Duration) -> OtlpConfig {
    let endpoint = match protocol {
        Protocol::Grpc => base.to_owned(),
        _ => format!("{base}/v1/traces"),
    };
    let mut config = OtlpConfig::new(protocol, endpoint);
    config.timeout = timeout;
    config.retry = RetryPolicy {
        max_attempts: ATTEMPTS,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    };
    config
}

/// Exports 3 spans once, straight through the exporter, and returns its
/// result. The export must end by itself: a generous outer bound only
/// turns a hang into a failure instead of a stuck test.
fn export_once(protocol: Protocol, base: &str, timeout: Duration) -> Result<(), ExportError> {
    let mut exporter =
        OtlpExporter::new(Resource::new("hostile"), config(protocol, base, timeout)).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(timeout * 4, exporter.export(spans(3)))
            .await
            .expect("the export ended by itself")
    })
}

/// One HTTP/protobuf export against a receiver answering `script`: the
/// result and how many requests it got.
fn http_case(script: Vec<Reply>, timeout: Duration) -> (Result<(), ExportError>, usize) {
    let rx = Receiver::http(script);
    let result = export_once(Protocol::HttpProtobuf, &rx.url(), timeout);
    (result, rx.received().len())
}

fn is_unavailable(r: &Result<(), ExportError>) -> bool {
    matches!(r, Err(ExportError::Unavailable(_)))
}

fn is_rejected(r: &Result<(), ExportError>) -> bool {
    matches!(r, Err(ExportError::Rejected(_)))
}

#[test]
fn refused_connection_is_retried_then_unavailable() {
    let url = format!("http://{}", Receiver::closed_address());
    let result = export_once(Protocol::HttpProtobuf, &url, TIMEOUT);
    assert!(is_unavailable(&result), "{result:?}");
    let ExportError::Unavailable(reason) = result.unwrap_err() else {
        unreachable!()
    };
    assert!(
        reason.contains(&format!("after {ATTEMPTS} attempts")),
        "{reason}"
    );
}

#[test]
fn bad_request_is_rejected_without_a_retry() {
    let (result, requests) = http_case(vec![Reply::Status(400, None)], TIMEOUT);
    assert!(is_rejected(&result), "{result:?}");
    assert_eq!(requests, 1);
}

#[test]
fn internal_server_error_is_rejected_without_a_retry() {
    // 500 is not among OTLP/HTTP's retryable statuses (429, 502, 503, 504).
    let (result, requests) = http_case(vec![Reply::Status(500, None)], TIMEOUT);
    assert!(is_rejected(&result), "{result:?}");
    assert_eq!(requests, 1);
}

#[test]
fn huge_retry_after_ends_the_export_at_once() {
    for after in [
        HUGE_SECONDS,
        "18446744073709551615",
        "18446744073709551616",
        FAR_DATE,
    ] {
        let (result, requests) = http_case(vec![Reply::Status(429, Some(after))], TIMEOUT);
        assert!(is_unavailable(&result), "{after}: {result:?}");
        assert_eq!(
            requests, 1,
            "{after}: no retry the receiver asked not to get"
        );
    }
}

#[test]
fn malformed_retry_after_falls_back_to_the_backoff() {
    for after in ["soon", "-5", "1.5", "Fri, 31 Dec 99999 23:59:59 GMT"] {
        let (result, requests) = http_case(vec![Reply::Status(429, Some(after))], TIMEOUT);
        assert_eq!(result, Ok(()), "{after}");
        assert_eq!(requests, 2, "{after}");
    }
}

#[test]
fn unavailable_is_retried_until_delivered_or_out_of_attempts() {
    let (result, requests) = http_case(
        vec![Reply::Status(503, None), Reply::Status(503, None)],
        TIMEOUT,
    );
    assert_eq!(result, Ok(()));
    assert_eq!(requests, 3);

    let (result, requests) = http_case(vec![Reply::Status(503, None); 3], TIMEOUT);
    assert!(is_unavailable(&result), "{result:?}");
    assert_eq!(requests, ATTEMPTS as usize);
}

#[test]
fn server_that_never_answers_ends_at_the_export_timeout() {
    let hang = Reply::Slow(Duration::from_secs(3600), Box::new(Reply::Ok));
    let (result, requests) = http_case(vec![hang], SHORT);
    assert_eq!(result, Err(ExportError::Timeout));
    assert_eq!(requests, 1, "no retry past the timeout");

    // A peer that accepts the connection and never reads a byte.
    let silent = Silent::start();
    let result = export_once(Protocol::HttpProtobuf, &silent.url(), SHORT);
    assert_eq!(result, Err(ExportError::Timeout));
    assert_eq!(silent.accepted(), 1);
}

#[test]
fn success_cut_mid_body_is_delivered_once() {
    let (result, requests) = http_case(vec![Reply::CutMidBody(200)], TIMEOUT);
    assert_eq!(result, Ok(()), "the status is the answer");
    assert_eq!(requests, 1, "a delivered batch is not sent again");
}

#[test]
fn failure_cut_mid_body_keeps_its_status() {
    let (result, requests) = http_case(vec![Reply::CutMidBody(503)], TIMEOUT);
    assert_eq!(result, Ok(()), "retried as a 503, then delivered");
    assert_eq!(requests, 2);
    let (result, requests) = http_case(vec![Reply::CutMidBody(400)], TIMEOUT);
    assert!(is_rejected(&result), "{result:?}");
    assert_eq!(requests, 1);
}

#[test]
fn success_with_a_stalled_body_is_delivered_once() {
    let (result, requests) = http_case(vec![Reply::StalledBody(200)], TIMEOUT);
    assert_eq!(result, Ok(()));
    assert_eq!(requests, 1);
}

#[test]
fn huge_success_body_is_delivered_once() {
    for protocol in [Protocol::HttpProtobuf, Protocol::HttpJson] {
        let rx = Receiver::http(vec![Reply::Body(200, ONE_MB)]);
        let result = export_once(protocol, &rx.url(), TIMEOUT);
        assert_eq!(result, Ok(()), "{protocol:?}");
        assert_eq!(rx.received().len(), 1, "{protocol:?}");
    }
}

#[test]
fn huge_error_bodies_keep_their_status() {
    let (result, requests) = http_case(vec![Reply::Body(400, ONE_MB)], TIMEOUT);
    let Err(ExportError::Rejected(reason)) = result else {
        panic!("{result:?}")
    };
    assert!(
        reason.len() < 1024,
        "the message is bounded: {}",
        reason.len()
    );
    assert_eq!(requests, 1);

    let (result, requests) = http_case(vec![Reply::Body(503, ONE_MB)], TIMEOUT);
    assert_eq!(result, Ok(()));
    assert_eq!(requests, 2);
}

#[test]
fn grpc_huge_success_is_delivered_once() {
    let rx = Receiver::grpc(vec![Reply::Body(200, ONE_MB)]);
    let result = export_once(Protocol::Grpc, &rx.url(), TIMEOUT);
    assert_eq!(result, Ok(()));
    assert_eq!(rx.received().len(), 1);
}

#[test]
fn grpc_server_that_never_answers_ends_at_the_export_timeout() {
    let hang = Reply::Slow(Duration::from_secs(3600), Box::new(Reply::Ok));
    let rx = Receiver::grpc(vec![hang]);
    let result = export_once(Protocol::Grpc, &rx.url(), SHORT);
    // The outer timeout or tonic's own deadline (then no time is left for
    // a retry): either way one request and a failure.
    assert!(
        matches!(
            result,
            Err(ExportError::Timeout | ExportError::Unavailable(_))
        ),
        "{result:?}"
    );
    assert_eq!(rx.received().len(), 1);
}

/// Ends `n` spans through a pipeline exporting to `base`, flushes, and
/// returns the pipeline's (exported, failed, dropped) counts.
fn through_pipeline(base: &str, n: usize) -> (u64, u64, u64) {
    let (layer, guard) = Tracewire::from_otel(|_| None)
        .service_name("hostile")
        .otlp(config(Protocol::HttpProtobuf, base, TIMEOUT))
        .batch(BatchConfig {
            scheduled_delay: Duration::from_millis(20),
            ..BatchConfig::default()
        })
        .shutdown_timeout(Duration::from_secs(2))
        .build_layer()
        .expect("pipeline");
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..n {
            tracing::info_span!("work", i).in_scope(|| {});
        }
    });
    let _ = guard.force_flush(TIMEOUT * 2);
    let stats = guard.stats()[0].clone();
    (stats.exported(), stats.failed(), stats.dropped())
}

#[test]
fn pipeline_counts_each_hostile_answer() {
    for (script, exported, requests) in [
        (vec![Reply::Body(200, ONE_MB)], true, 1),
        (vec![Reply::CutMidBody(200)], true, 1),
        (vec![Reply::Status(503, None)], true, 2),
        (vec![Reply::Status(400, None)], false, 1),
        (vec![Reply::Status(429, Some(HUGE_SECONDS))], false, 1),
        (vec![Reply::Status(429, Some(FAR_DATE))], false, 1),
    ] {
        let rx = Receiver::http(script.clone());
        let counts = through_pipeline(&rx.url(), 10);
        let expected = if exported { (10, 0, 0) } else { (0, 10, 0) };
        assert_eq!(counts, expected, "{script:?}");
        assert_eq!(rx.received().len(), requests, "{script:?}");
    }
}
