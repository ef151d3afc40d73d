//! A runtime per test whose threads report to an in-memory exporter,
//! servers on real sockets, traced clients, the switch for the Kafka
//! broker, and span lookups.

use std::future::Future;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use rdkafka::ClientConfig;
use tracewire::testing::InMemoryExporter;
use tracewire::{SpanData, TracewireLayer, Value};
use tracewire_test_support::KafkaPeer;
pub(crate) use tracewire_test_support::{env_or, unique};
use tracing_subscriber::filter::{FilterFn, filter_fn};
use tracing_subscriber::prelude::*;

/// The longest a test may take: a real broker's consumer group join alone
/// takes a few seconds.
const TEST_TIMEOUT: Duration = Duration::from_secs(180);

/// Where a test's spans are collected.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Subscriber {
    /// A subscriber of the test's own, the default on every thread of its
    /// runtime: tests run side by side without seeing each other's spans.
    PerTest,
    /// The process-wide subscriber, held by one test at a time (its exporter
    /// is cleared when a test takes its turn). For sqlx's SQLite driver,
    /// whose worker thread (not a runtime thread) ends query spans and,
    /// through `tracing-subscriber`'s registry, their parents; a
    /// thread-local default is not seen there (tokio-rs/tracing#1656).
    /// nextest runs every test in a process of its own; `cargo test` runs
    /// these tests one after another.
    ProcessWide,
}

/// Runs `test` on a multi-thread runtime whose spans go to a fresh (or, for
/// [`Subscriber::ProcessWide`], freshly cleared) exporter. Fails the test
/// after [`TEST_TIMEOUT`].
pub(crate) fn run<F, Fut>(subscriber: Subscriber, test: F)
where
    F: FnOnce(InMemoryExporter) -> Fut,
    Fut: Future<Output = ()>,
{
    static GLOBAL: OnceLock<InMemoryExporter> = OnceLock::new();
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(4).enable_all();
    // Declared before the runtime so that it is released after the runtime
    // (and every span its tasks still held) is gone.
    let _turn;
    let _default;
    let exporter = match subscriber {
        Subscriber::PerTest => {
            let exporter = InMemoryExporter::new();
            let dispatch = tracing::Dispatch::new(
                tracing_subscriber::registry()
                    .with(TracewireLayer::new(exporter.clone()).with_filter(not_h2())),
            );
            let for_threads = dispatch.clone();
            builder.on_thread_start(move || {
                // The runtime's threads live as long as the runtime, which
                // this test owns: the guard may stay set until they exit.
                std::mem::forget(tracing::dispatcher::set_default(&for_threads));
            });
            _default = Some(tracing::dispatcher::set_default(&dispatch));
            exporter
        }
        Subscriber::ProcessWide => {
            let exporter = GLOBAL.get_or_init(|| {
                let exporter = InMemoryExporter::new();
                tracing_subscriber::registry()
                    .with(TracewireLayer::new(exporter.clone()).with_filter(not_h2()))
                    .try_init()
                    .expect("no other global subscriber in this test binary");
                exporter
            });
            _turn = ONE_AT_A_TIME.lock().unwrap_or_else(PoisonError::into_inner);
            _default = None;
            exporter.clear();
            exporter.clone()
        }
    };
    let runtime = builder.build().expect("runtime");
    runtime.block_on(async {
        tokio::time::timeout(TEST_TIMEOUT, test(exporter))
            .await
            .expect("test timed out");
    });
}

/// Leaves out h2's own spans (`trace`-level, one per frame written or
/// read): the HTTP/2 transport under tonic, not calls a user traces.
fn not_h2() -> FilterFn<fn(&tracing::Metadata<'_>) -> bool> {
    filter_fn(|metadata| {
        let target = metadata.target();
        target != "h2" && !target.starts_with("h2::")
    })
}

#[path = "../common/http.rs"]
mod http_common;
pub(crate) use http_common::{reqwest_client, serve};

/// The traced tonic server and client.
#[path = "../common/grpc.rs"]
pub(crate) mod grpc;

/// Waits until the exporter holds at least `n` spans: a server span ends
/// when its body has been written, a SQLite query span on sqlx's worker
/// thread, a process span when the consumer is done with the message, all
/// a moment after the caller got its answer. Panics with the spans present
/// and `context()` after `within`.
pub(crate) async fn wait_for_spans(
    exporter: &InMemoryExporter,
    n: usize,
    within: Duration,
    context: impl Fn() -> String,
) -> Vec<SpanData> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let spans = exporter.spans();
        if spans.len() >= n {
            return spans;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "expected {n} spans within {within:?}, got {}:\n{}\n{}",
            spans.len(),
            exporter.tree(),
            context()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The one child of `parent` named `name`, or a panic showing the tree.
#[track_caller]
pub(crate) fn child(exporter: &InMemoryExporter, parent: &SpanData, name: &str) -> SpanData {
    let found: Vec<SpanData> = exporter
        .children_of(parent)
        .into_iter()
        .filter(|c| c.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {name:?} under {:?}:\n{}",
        parent.name,
        exporter.tree()
    );
    found.into_iter().next().expect("one child")
}

/// A span tree as `InMemoryExporter::tree` draws it, one line per span
/// (indented two spaces per level, with the kind when not internal).
pub(crate) fn tree<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> String {
    lines
        .into_iter()
        .map(|line| format!("{}\n", line.as_ref()))
        .collect()
}

/// A string attribute, or a panic naming what is there.
#[track_caller]
pub(crate) fn str_attr<'a>(span: &'a SpanData, key: &str) -> &'a str {
    span.attribute(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{}: no string {key}: {:?}", span.name, span.attributes))
}

/// An integer attribute, or a panic naming what is there.
#[track_caller]
pub(crate) fn int_attr(span: &SpanData, key: &str) -> i64 {
    span.attribute(key)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("{}: no integer {key}: {:?}", span.name, span.attributes))
}

/// The test's Kafka protocol peer (`KAFKA_BROKERS` when set, else a mock
/// cluster), with the client settings these tests use.
pub(crate) struct Broker(KafkaPeer);

impl std::ops::Deref for Broker {
    type Target = KafkaPeer;

    fn deref(&self) -> &KafkaPeer {
        &self.0
    }
}

impl Broker {
    pub(crate) fn start() -> Self {
        Broker(KafkaPeer::start())
    }

    /// The first bootstrap server as `(host, port)`, as the spans record it.
    pub(crate) fn address(&self) -> (String, i64) {
        let first = self.servers().split(',').next().unwrap_or_default().trim();
        let (host, port) = first.rsplit_once(':').expect("host:port");
        (host.to_owned(), port.parse().expect("port"))
    }

    pub(crate) fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.servers())
            .set("client.id", "orders-api")
            .set("linger.ms", "1")
            .set("message.timeout.ms", "30000");
        config
    }

    /// A consumer in a group of its own, reading the topic from its start
    /// (so messages sent before the group has formed are read too).
    pub(crate) fn consumer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.servers())
            .set("group.id", unique("notifier"))
            .set("client.id", "notifier")
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("session.timeout.ms", "6000")
            .set("fetch.wait.max.ms", "50");
        config
    }
}
