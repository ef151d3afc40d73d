//! Test support: a processor and exporter that keeps finished spans in memory, with
//! helpers to find spans, walk the tree and check attributes.
//!
//! ```
//! use tracing_subscriber::prelude::*;
//! use tracewire::testing::InMemoryExporter;
//! use tracewire::TracewireLayer;
//!
//! let exporter = InMemoryExporter::new();
//! let subscriber = tracing_subscriber::registry()
//!     .with(TracewireLayer::builder().processor(exporter.clone()).build());
//! tracing::subscriber::with_default(subscriber, || {
//!     let _outer = tracing::info_span!("outer").entered();
//!     tracing::info_span!("inner", answer = 42).in_scope(|| {});
//! });
//! let inner = exporter.span("inner");
//! assert_eq!(exporter.parent_of(&inner).unwrap().name, "outer");
//! assert_eq!(inner.attribute("answer").and_then(|v| v.as_i64()), Some(42));
//! assert_eq!(exporter.tree(), "outer\n  inner\n");
//! ```

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::processor::SpanProcessor;
use crate::{SpanData, SpanKind, TraceId};

/// Keeps every finished span in memory. Clones share the same store, so a
/// test keeps one clone and gives another to the layer.
///
/// It is both a [`SpanProcessor`] (given to the layer, it keeps each span as
/// it ends) and, with the `export` feature, a
/// [`SpanExporter`](crate::export::SpanExporter) (behind a
/// [`BatchSpanProcessor`](crate::export::BatchSpanProcessor), it keeps what
/// the pipeline delivers), as OpenTelemetry SDKs' in-memory exporters are.
///
/// ```
/// # #[cfg(feature = "export")] {
/// use tracewire::export::{BatchConfig, BatchSpanProcessor};
/// use tracewire::processor::SpanProcessor as _;
/// use tracewire::testing::InMemoryExporter;
/// use tracewire::TracewireLayer;
/// use tracing_subscriber::prelude::*;
///
/// let exporter = InMemoryExporter::new();
/// let pipeline = std::sync::Arc::new(BatchSpanProcessor::new(exporter.clone(), BatchConfig::default()));
/// let layer = TracewireLayer::builder().shared_processor(pipeline.clone()).build();
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     tracing::info_span!("batched").in_scope(|| {});
/// });
/// pipeline.force_flush(std::time::Duration::from_secs(5)).unwrap();
/// assert_eq!(exporter.span("batched").name, "batched");
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct InMemoryExporter {
    spans: Arc<Mutex<Vec<SpanData>>>,
}

impl InMemoryExporter {
    /// An empty exporter.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Vec<SpanData>> {
        self.spans.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every span received so far, in the order they ended.
    pub fn spans(&self) -> Vec<SpanData> {
        self.lock().clone()
    }

    /// How many spans were received.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no span was received.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Forgets every span.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// Every span named `name`.
    pub fn spans_named(&self, name: &str) -> Vec<SpanData> {
        self.lock()
            .iter()
            .filter(|s| s.name == name)
            .cloned()
            .collect()
    }

    /// The one span named `name`, if exactly one exists.
    pub fn find(&self, name: &str) -> Option<SpanData> {
        let mut found = self.spans_named(name);
        (found.len() == 1).then(|| found.remove(0))
    }

    /// The one span named `name`.
    ///
    /// # Panics
    /// When there is none or more than one, listing the names present.
    pub fn span(&self, name: &str) -> SpanData {
        self.find(name).unwrap_or_else(|| {
            let names: Vec<_> = self.lock().iter().map(|s| s.name.to_string()).collect();
            panic!("expected exactly one span named {name:?}; spans: {names:?}")
        })
    }

    /// The spans of one trace, by start time.
    pub fn trace(&self, trace_id: TraceId) -> Vec<SpanData> {
        let mut spans: Vec<_> = self
            .lock()
            .iter()
            .filter(|s| s.span_context.trace_id() == trace_id)
            .cloned()
            .collect();
        spans.sort_by_key(|s| s.start_time);
        spans
    }

    /// The recorded parent of `span`, if it was exported here too.
    pub fn parent_of(&self, span: &SpanData) -> Option<SpanData> {
        self.lock()
            .iter()
            .find(|p| {
                p.span_context.trace_id() == span.span_context.trace_id()
                    && p.span_context.span_id() == span.parent_span_id
            })
            .cloned()
    }

    /// The recorded children of `span`, by start time.
    pub fn children_of(&self, span: &SpanData) -> Vec<SpanData> {
        let mut children: Vec<_> = self
            .lock()
            .iter()
            .filter(|c| {
                c.span_context.trace_id() == span.span_context.trace_id()
                    && c.parent_span_id == span.span_context.span_id()
            })
            .cloned()
            .collect();
        children.sort_by_key(|s| s.start_time);
        children
    }

    /// Every trace as an indented tree of span names (with the kind when not
    /// internal), roots and siblings by start time: a readable whole-trace
    /// assertion.
    pub fn tree(&self) -> String {
        let spans = self.lock().clone();
        let mut roots: Vec<&SpanData> = spans
            .iter()
            .filter(|s| {
                !spans.iter().any(|p| {
                    p.span_context.trace_id() == s.span_context.trace_id()
                        && p.span_context.span_id() == s.parent_span_id
                })
            })
            .collect();
        roots.sort_by_key(|s| s.start_time);
        let mut out = String::new();
        for root in roots {
            render(&spans, root, 0, &mut out);
        }
        out
    }
}

fn render(all: &[SpanData], span: &SpanData, depth: usize, out: &mut String) {
    let _ = write!(out, "{:indent$}{}", "", span.name, indent = depth * 2);
    if span.kind != SpanKind::Internal {
        let _ = write!(out, " [{}]", span.kind.as_str());
    }
    out.push('\n');
    let mut children: Vec<&SpanData> = all
        .iter()
        .filter(|c| {
            c.span_context.trace_id() == span.span_context.trace_id()
                && c.parent_span_id == span.span_context.span_id()
        })
        .collect();
    children.sort_by_key(|s| s.start_time);
    for child in children {
        render(all, child, depth + 1, out);
    }
}

impl SpanProcessor for InMemoryExporter {
    fn on_end(&self, span: SpanData) {
        self.lock().push(span);
    }
}

#[cfg(feature = "export")]
impl crate::export::SpanExporter for InMemoryExporter {
    fn export(&mut self, batch: Vec<SpanData>) -> crate::export::ExportFuture<'_> {
        self.lock().extend(batch);
        Box::pin(async { Ok(()) })
    }
}
