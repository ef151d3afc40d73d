//! Servers on real sockets, traced clients, and a per-test runtime whose
//! threads all report to the test's own in-memory exporter.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tracewire::testing::InMemoryExporter;
use tracewire::{SpanData, TraceId, TracewireLayer, Value};
use tracewire_tower::{Client as ClientMode, Trace, TraceLayer};
use tracing_subscriber::prelude::*;

/// Runs `test` on a multi-thread runtime whose worker and blocking threads
/// all use a subscriber sending spans to a fresh exporter (no global state
/// is shared with other tests).
pub(crate) fn run<F, Fut>(test: F)
where
    F: FnOnce(InMemoryExporter) -> Fut,
    Fut: Future<Output = ()>,
{
    let exporter = InMemoryExporter::new();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone())),
    );
    let for_threads = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .on_thread_start(move || {
            // The runtime's threads live as long as the runtime, which this
            // test owns: the guard may stay set until they exit.
            std::mem::forget(tracing::dispatcher::set_default(&for_threads));
        })
        .build()
        .expect("runtime");
    let _guard = tracing::dispatcher::set_default(&dispatch);
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), test(exporter))
            .await
            .expect("test timed out");
    });
}

#[path = "../common/http.rs"]
mod http_common;
pub(crate) use http_common::{reqwest_client, serve};

/// A hyper-util legacy client wrapped in the client layer.
pub(crate) type HyperClient = Trace<Client<HttpConnector, Full<Bytes>>, ClientMode>;

pub(crate) fn hyper_client() -> HyperClient {
    tower::ServiceBuilder::new()
        .layer(TraceLayer::client())
        .service(Client::builder(TokioExecutor::new()).build_http())
}

/// Waits until the exporter holds at least `n` spans (server spans end when
/// their body has been written, which may be just after the client has
/// read it). Panics with the spans present after 10 s.
pub(crate) async fn wait_for_spans(exporter: &InMemoryExporter, n: usize) -> Vec<SpanData> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let spans = exporter.spans();
        if spans.len() >= n {
            return spans;
        }
        if tokio::time::Instant::now() > deadline {
            panic!(
                "expected {n} spans, got {}:\n{}",
                spans.len(),
                exporter.tree()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The one span of `trace` named `name`.
pub(crate) fn one<'a>(spans: &'a [SpanData], trace: TraceId, name: &str) -> &'a SpanData {
    let found: Vec<_> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace && s.name == name)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one span {name:?} in trace {trace}; found {}: {:#?}",
        found.len(),
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    found[0]
}

/// A string attribute, or a panic naming what is there.
pub(crate) fn str_attr<'a>(span: &'a SpanData, key: &str) -> &'a str {
    span.attribute(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{}: no string {key}: {:?}", span.name, span.attributes))
}

/// An integer attribute, or a panic naming what is there.
pub(crate) fn int_attr(span: &SpanData, key: &str) -> i64 {
    span.attribute(key)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("{}: no integer {key}: {:?}", span.name, span.attributes))
}
