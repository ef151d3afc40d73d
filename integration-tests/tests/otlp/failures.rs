//! A receiver that is down, slow, busy or refusing never slows the
//! service, never grows memory past the queue, and is counted.

use std::time::{Duration, Instant};

use tracewire::export::BatchConfig;
use tracewire::export::otlp::{OtlpConfig, Protocol};
use tracewire::{Tracewire, TracingGuard};
use tracing_subscriber::prelude::*;

use crate::support::{Receiver, Reply};

const QUEUE: usize = 256;
const BATCH: usize = 64;

fn pipeline(endpoint: String, timeout: Duration) -> (tracewire::TracewireLayer, TracingGuard) {
    let mut otlp = OtlpConfig::new(Protocol::HttpProtobuf, format!("{endpoint}/v1/traces"));
    otlp.timeout = timeout;
    otlp.retry.max_attempts = 3;
    otlp.retry.initial_backoff = Duration::from_millis(50);
    otlp.retry.max_backoff = Duration::from_millis(200);
    let batch = BatchConfig {
        max_queue_size: QUEUE,
        max_export_batch_size: BATCH,
        scheduled_delay: Duration::from_millis(20),
        export_timeout: Duration::from_secs(5),
        ..BatchConfig::default()
    };
    Tracewire::from_otel(|_| None)
        .service_name("failing")
        .otlp(otlp)
        .batch(batch)
        .shutdown_timeout(Duration::from_secs(2))
        .build_layer()
        .expect("pipeline")
}

/// Ends `n` spans and returns how long that took.
fn end_spans(layer: tracewire::TracewireLayer, n: usize) -> Duration {
    let started = Instant::now();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..n {
            tracing::info_span!("work", i).in_scope(|| {});
        }
    });
    started.elapsed()
}

/// Drops the guard and returns how long shutdown took.
fn shut_down(guard: TracingGuard) -> Duration {
    let started = Instant::now();
    drop(guard);
    started.elapsed()
}

#[test]
fn receiver_down_drops_and_counts_without_blocking() {
    let endpoint = format!("http://{}", Receiver::closed_address());
    let (layer, guard) = pipeline(endpoint, Duration::from_secs(1));
    let n = 20_000;
    let took = end_spans(layer, n);
    // Never waits on the exporter: far below one export attempt per span.
    assert!(took < Duration::from_secs(3), "ending spans took {took:?}");
    let stats = guard.stats()[0].clone();
    // The queue is the bound: everything beyond it (and the batches in
    // flight) was dropped rather than buffered.
    assert!(
        stats.dropped() as usize >= n - QUEUE - 4 * BATCH,
        "{stats:?}"
    );
    let shutdown = shut_down(guard);
    assert!(
        shutdown < Duration::from_secs(3),
        "shutdown took {shutdown:?}"
    );
    assert_eq!(stats.exported(), 0);
    assert_eq!((stats.dropped() + stats.failed()) as usize, n, "{stats:?}");
}

#[test]
fn slow_receiver_is_cut_off_at_the_export_timeout() {
    let rx = Receiver::http(vec![Reply::Slow(
        Duration::from_secs(3),
        Box::new(Reply::Ok),
    )]);
    let (layer, guard) = pipeline(rx.url(), Duration::from_millis(300));
    end_spans(layer, 10);
    let flushed = Instant::now();
    let result = guard.force_flush(Duration::from_secs(5));
    assert!(
        flushed.elapsed() < Duration::from_secs(2),
        "{:?}",
        flushed.elapsed()
    );
    assert!(result.is_err(), "the slow export failed");
    assert_eq!(guard.stats()[0].failed(), 10);
    assert_eq!(guard.stats()[0].exported(), 0);
    assert_eq!(
        rx.received().len(),
        1,
        "a timed-out export is not retried past its timeout"
    );
    let shutdown = shut_down(guard);
    assert!(
        shutdown < Duration::from_secs(3),
        "shutdown took {shutdown:?}"
    );
}

#[test]
fn busy_receiver_is_retried_after_retry_after() {
    let rx = Receiver::http(vec![Reply::Status(503, Some("1"))]);
    let (layer, guard) = pipeline(rx.url(), Duration::from_secs(5));
    end_spans(layer, 10);
    guard
        .force_flush(Duration::from_secs(8))
        .expect("delivered on retry");
    let received = rx.received();
    assert_eq!(received.len(), 2);
    let gap = received[1].at - received[0].at;
    assert!(
        gap >= Duration::from_millis(900),
        "Retry-After honoured: {gap:?}"
    );
    assert_eq!(
        received[0].request, received[1].request,
        "the same batch is resent"
    );
    assert_eq!(
        (guard.stats()[0].exported(), guard.stats()[0].failed()),
        (10, 0)
    );
}

#[test]
fn retryable_statuses_back_off_then_succeed() {
    let rx = Receiver::http(vec![
        Reply::Status(429, None),
        Reply::Status(502, None),
        Reply::Status(504, None),
    ]);
    let mut otlp = OtlpConfig::new(Protocol::HttpProtobuf, format!("{}/v1/traces", rx.url()));
    otlp.retry.initial_backoff = Duration::from_millis(20);
    let (layer, guard) = Tracewire::from_otel(|_| None)
        .otlp(otlp)
        .build_layer()
        .unwrap();
    end_spans(layer, 3);
    guard.force_flush(Duration::from_secs(8)).unwrap();
    assert_eq!(rx.received().len(), 4);
    assert_eq!(guard.stats()[0].exported(), 3);
}

#[test]
fn rejected_batch_is_not_retried() {
    let rx = Receiver::http(vec![Reply::Status(400, None)]);
    let (layer, guard) = pipeline(rx.url(), Duration::from_secs(5));
    end_spans(layer, 10);
    assert!(guard.force_flush(Duration::from_secs(5)).is_err());
    assert_eq!(rx.received().len(), 1);
    assert_eq!(
        (guard.stats()[0].exported(), guard.stats()[0].failed()),
        (0, 10)
    );
    assert_eq!(guard.stats()[0].dropped(), 0);
}
