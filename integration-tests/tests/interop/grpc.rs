//! Rust ↔ Python over gRPC: one trace id, and each side's server span is
//! the child of the other side's client span.

use std::time::Duration;

use tracewire::testing::InMemoryExporter;
use tracewire::{SpanData, SpanKind, TracewireLayer};
use tracing::Instrument as _;
use tracing_subscriber::prelude::*;

use crate::echo::{SAY, client_of, say, start_server};
use crate::peer::{Peer, PySpan};

fn traced() -> (InMemoryExporter, tracing::subscriber::DefaultGuard) {
    let exporter = InMemoryExporter::new();
    let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone()));
    (exporter, tracing::subscriber::set_default(subscriber))
}

/// The Rust span `SAY` of `kind`, once it has ended (a server span ends
/// when the response body is done, possibly after the caller has its reply).
async fn ended(exporter: &InMemoryExporter, kind: SpanKind) -> SpanData {
    for _ in 0..1000 {
        let spans: Vec<_> = exporter
            .spans_named(SAY)
            .into_iter()
            .filter(|s| s.kind == kind)
            .collect();
        match spans.as_slice() {
            [span] => return span.clone(),
            [] => tokio::time::sleep(Duration::from_millis(10)).await,
            _ => panic!("more than one {kind:?} span {SAY}: {}", exporter.tree()),
        }
    }
    panic!("no {kind:?} span {SAY} after 10s: {}", exporter.tree());
}

fn trace_id(span: &SpanData) -> String {
    span.span_context.trace_id().to_string()
}

fn span_id(span: &SpanData) -> String {
    span.span_context.span_id().to_string()
}

/// The Python instrumentation names its spans `/interop.Echo/Say`.
fn assert_python_say(span: &PySpan) {
    assert_eq!(
        span.name.trim_start_matches('/'),
        SAY,
        "Python span name: {span:?}"
    );
}

/// (a) A traced tonic client calls the Python server: the Python server span
/// continues the Rust client span's trace, as its remote child.
#[tokio::test]
#[ignore = "needs the Python gRPC peer (.ci/run installs it)"]
async fn rust_client_python_server_one_trace() {
    let (exporter, _guard) = traced();
    let (peer, port) = Peer::serve().await;
    let mut client = client_of(([127, 0, 0, 1], port).into());

    let caller = tracing::info_span!("caller");
    let reply = say(&mut client, "a", "")
        .instrument(caller.clone())
        .await
        .expect("the Python server answers");
    assert_eq!(reply, "python(a)");
    drop(caller);

    let client_span = ended(&exporter, SpanKind::Client).await;
    let caller = exporter.span("caller");
    assert_eq!(client_span.parent_span_id, caller.span_context.span_id());
    assert_eq!(trace_id(&client_span), trace_id(&caller));

    let server = peer.span("SERVER").await;
    assert_python_say(&server);
    assert_eq!(server.trace_id, trace_id(&client_span), "one trace id");
    assert_eq!(
        server.parent_id.as_deref(),
        Some(span_id(&client_span).as_str()),
        "the Rust client span is the Python server span's parent"
    );
    assert!(server.parent_is_remote, "{server:?}");
    assert!(
        peer.spans().iter().all(|s| s.kind == "SERVER"),
        "the Python server made no other span: {:?}",
        peer.spans()
    );
}

/// (b) The Python client calls a traced tonic server: the Rust server span
/// continues the Python client span's trace, as its remote child.
#[tokio::test]
#[ignore = "needs the Python gRPC peer (.ci/run installs it)"]
async fn python_client_rust_server_one_trace() {
    let (exporter, _guard) = traced();
    let addr = start_server();

    let (peer, reply) = Peer::call(&addr.to_string(), "b").await;
    assert_eq!(reply, "rust(b)");

    let client = peer.span("CLIENT").await;
    assert_python_say(&client);
    assert_eq!(client.parent_id, None, "the Python client span is a root");

    let server = ended(&exporter, SpanKind::Server).await;
    assert_eq!(trace_id(&server), client.trace_id, "one trace id");
    assert_eq!(
        span_id_of_parent(&server),
        client.span_id,
        "the Python client span is the Rust server span's parent"
    );
    assert!(server.parent_is_remote);
    assert_eq!(
        exporter.spans_named(SAY).len(),
        1,
        "one Rust span: {}",
        exporter.tree()
    );
}

/// (c) Rust → Python → Rust in one call chain: a traced tonic client calls
/// the Python server, whose handler calls a traced tonic server through the
/// Python client. Four RPC spans, one trace, each the parent of the next.
#[tokio::test]
#[ignore = "needs the Python gRPC peer (.ci/run installs it)"]
async fn rust_python_rust_chain_one_trace() {
    let (exporter, _guard) = traced();
    let rust_server_addr = start_server();
    let (peer, port) = Peer::serve().await;
    let mut client = client_of(([127, 0, 0, 1], port).into());

    let caller = tracing::info_span!("caller");
    let reply = say(&mut client, "c", &rust_server_addr.to_string())
        .instrument(caller.clone())
        .await
        .expect("the chain answers");
    assert_eq!(reply, "python(rust(c))");
    drop(caller);

    let caller = exporter.span("caller");
    let rust_client = ended(&exporter, SpanKind::Client).await;
    let rust_server = ended(&exporter, SpanKind::Server).await;
    let py_server = peer.span("SERVER").await;
    let py_client = peer.span("CLIENT").await;
    assert_python_say(&py_server);
    assert_python_say(&py_client);

    let trace = trace_id(&caller);
    for (side, id) in [
        ("Rust client", trace_id(&rust_client)),
        ("Python server", py_server.trace_id.clone()),
        ("Python client", py_client.trace_id.clone()),
        ("Rust server", trace_id(&rust_server)),
    ] {
        assert_eq!(id, trace, "{side}: one trace id");
    }

    assert_eq!(rust_client.parent_span_id, caller.span_context.span_id());
    assert_eq!(
        py_server.parent_id.as_deref(),
        Some(span_id(&rust_client).as_str()),
        "Rust client → Python server"
    );
    assert!(py_server.parent_is_remote);
    assert_eq!(
        py_client.parent_id.as_deref(),
        Some(py_server.span_id.as_str()),
        "Python server → Python client (in the handler)"
    );
    assert!(!py_client.parent_is_remote);
    assert_eq!(
        span_id_of_parent(&rust_server),
        py_client.span_id,
        "Python client → Rust server"
    );
    assert!(rust_server.parent_is_remote);
}

fn span_id_of_parent(span: &SpanData) -> String {
    span.parent_span_id.to_string()
}
