//! Per-test subscribers, unique table names and span assertions.

use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use tracewire::testing::InMemoryExporter;
use tracewire::{SpanData, SpanKind, Status, TracewireLayer};
use tracing::dispatcher::DefaultGuard;
use tracing_subscriber::prelude::*;

/// Keeps a test's subscriber in place until the test ends.
#[allow(dead_code, reason = "held for its drop")]
pub(crate) enum Capture {
    /// A subscriber that is the default on this thread only.
    ThisThread(DefaultGuard),
    /// The process-wide subscriber, held by one test at a time.
    Global(MutexGuard<'static, ()>),
}

/// Installs a per-test subscriber on this thread (tests run on a
/// current-thread runtime) and returns the exporter.
pub(crate) fn capture() -> (InMemoryExporter, Capture) {
    let exporter = InMemoryExporter::new();
    let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone()));
    let guard = tracing::dispatcher::set_default(&subscriber.into());
    (exporter, Capture::ThisThread(guard))
}

/// Captures through a process-wide subscriber, for drivers that finish a
/// query on a thread of their own: sqlx's SQLite worker thread drops the
/// last handle of a query span there, and `tracing-subscriber`'s registry
/// then closes the parent through that thread's default subscriber
/// (tokio-rs/tracing#1656), which a thread-local test subscriber is not.
/// Applications install their subscriber globally, as `tracewire::init()`
/// does, so they are not affected. Tests using it run one at a time in a
/// process (nextest runs each test in its own process anyway) and start
/// with an empty exporter.
pub(crate) fn capture_global() -> (InMemoryExporter, Capture) {
    static EXPORTER: OnceLock<InMemoryExporter> = OnceLock::new();
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let exporter = EXPORTER.get_or_init(|| {
        let exporter = InMemoryExporter::new();
        tracing_subscriber::registry()
            .with(TracewireLayer::new(exporter.clone()))
            .try_init()
            .expect("no other global subscriber in this test binary");
        exporter
    });
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
    exporter.clear();
    (exporter.clone(), Capture::Global(turn))
}

pub(crate) use tracewire_test_support::{env_or, unique as unique_table};

pub(crate) fn str_attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a str> {
    span.attribute(key).and_then(|v| v.as_str())
}

pub(crate) fn i64_attr(span: &SpanData, key: &str) -> Option<i64> {
    span.attribute(key).and_then(|v| v.as_i64())
}

/// The one span named `name` that is a CLIENT span and a child of `parent`.
#[track_caller]
pub(crate) fn client_child(exporter: &InMemoryExporter, parent: &str, name: &str) -> SpanData {
    let parent = exporter.span(parent);
    let children: Vec<SpanData> = exporter
        .children_of(&parent)
        .into_iter()
        .filter(|c| c.name == name)
        .collect();
    assert_eq!(children.len(), 1, "one {name:?} under the parent");
    let span = children.into_iter().next().unwrap();
    assert_eq!(span.kind, SpanKind::Client, "{name} kind");
    assert_eq!(
        span.parent_span_id,
        parent.span_context.span_id(),
        "{name} parent"
    );
    assert_eq!(span.span_context.trace_id(), parent.span_context.trace_id());
    span
}

pub(crate) fn is_error(span: &SpanData) -> bool {
    matches!(span.status, Status::Error { .. })
}

/// Waits until `count` spans named `name` were exported. A span can end a
/// moment after the awaited query returns: SQLite's worker thread holds a
/// handle to the current span until it has finished the command, and
/// sqlx returns a connection to its pool in a task of its own.
pub(crate) async fn wait_for(exporter: &InMemoryExporter, name: &str, count: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while exporter.spans_named(name).len() < count {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {count} spans named {name:?}; have {:?}",
            exporter
                .spans()
                .iter()
                .map(|s| s.name.to_string())
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}
