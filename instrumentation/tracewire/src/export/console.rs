//! A human-readable exporter for development: one indented tree per trace.

use std::io::Write;
use std::sync::{Arc, Mutex};

use super::{ExportError, ExportFuture, SpanExporter};
use crate::{SpanData, SpanKind, Status};

/// Prints each exported batch as one tree per trace, with durations, kinds
/// and error statuses:
///
/// ```text
/// trace 4bf92f3577b34da6a3ce929d0e0e4736
///   GET /profile [server] 23.10 ms
///     GET [client] 18.02 ms
///       GET /users/{id} [server] 16.57 ms
///         SELECT users [client] 15.08 ms  ERROR: no such table
/// ```
///
/// Spans of one trace that arrive in different batches are printed with
/// their batch; a span whose parent is not in the batch is shown as a root.
///
/// ```
/// use tracewire::export::ConsoleExporter;
///
/// let exporter = ConsoleExporter::stdout();
/// let to_buffer = ConsoleExporter::new(Vec::<u8>::new());
/// # let _ = (exporter, to_buffer);
/// ```
#[derive(Clone)]
pub struct ConsoleExporter {
    out: Arc<Mutex<dyn Write + Send>>,
}

impl std::fmt::Debug for ConsoleExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleExporter").finish_non_exhaustive()
    }
}

impl ConsoleExporter {
    /// An exporter writing to `out`.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        ConsoleExporter {
            out: Arc::new(Mutex::new(out)),
        }
    }

    /// An exporter writing to standard output.
    pub fn stdout() -> Self {
        Self::new(std::io::stdout())
    }
}

/// Renders spans as one tree per trace.
pub(crate) fn render_trees(spans: &[SpanData]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let mut traces = Vec::new();
    for span in spans {
        if !traces.contains(&span.span_context.trace_id()) {
            traces.push(span.span_context.trace_id());
        }
    }
    for trace in traces {
        let _ = writeln!(out, "trace {trace}");
        let in_trace: Vec<&SpanData> = spans
            .iter()
            .filter(|s| s.span_context.trace_id() == trace)
            .collect();
        let mut roots: Vec<&SpanData> = in_trace
            .iter()
            .copied()
            .filter(|s| {
                !in_trace
                    .iter()
                    .any(|p| p.span_context.span_id() == s.parent_span_id)
            })
            .collect();
        roots.sort_by_key(|s| s.start_time);
        for root in roots {
            render(&in_trace, root, 1, &mut out);
        }
    }
    out
}

fn render(all: &[&SpanData], span: &SpanData, depth: usize, out: &mut String) {
    use std::fmt::Write as _;
    let _ = write!(out, "{:indent$}{}", "", span.name, indent = depth * 2);
    if span.kind != SpanKind::Internal {
        let _ = write!(out, " [{}]", span.kind.as_str());
    }
    let _ = write!(out, " {:.2} ms", span.duration().as_secs_f64() * 1e3);
    if let Status::Error { message } = &span.status {
        let _ = write!(out, "  ERROR: {message}");
    }
    out.push('\n');
    let mut children: Vec<&SpanData> = all
        .iter()
        .copied()
        .filter(|c| c.parent_span_id == span.span_context.span_id())
        .collect();
    children.sort_by_key(|s| s.start_time);
    for child in children {
        render(all, child, depth + 1, out);
    }
}

impl SpanExporter for ConsoleExporter {
    fn export(&mut self, batch: Vec<SpanData>) -> ExportFuture<'_> {
        let text = render_trees(&batch);
        let result = self
            .out
            .lock()
            .map_err(|_| ExportError::Io("console writer poisoned".into()))
            .and_then(|mut out| {
                out.write_all(text.as_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| ExportError::Io(e.to_string()))
            });
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{InstrumentationScope, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use std::time::{Duration, SystemTime};

    fn span(name: &'static str, id: u64, parent: u64, ms: u64, status: Status) -> SpanData {
        let start =
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(id);
        SpanData {
            span_context: SpanContext::new(
                TraceId::from_u128(1),
                SpanId::from_u64(id),
                TraceFlags::SAMPLED,
                false,
                TraceState::default(),
            ),
            parent_span_id: SpanId::from_u64(parent),
            parent_is_remote: false,
            name: name.into(),
            kind: if parent == 0 {
                SpanKind::Server
            } else {
                SpanKind::Internal
            },
            start_time: start,
            end_time: start + Duration::from_millis(ms),
            attributes: vec![],
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status,
            scope: InstrumentationScope::default(),
        }
    }

    #[test]
    fn renders_one_tree_per_trace() {
        let spans = vec![
            span(
                "child",
                2,
                1,
                5,
                Status::Error {
                    message: "boom".into(),
                },
            ),
            span("root", 1, 0, 12, Status::Unset),
        ];
        assert_eq!(
            render_trees(&spans),
            "trace 00000000000000000000000000000001\n  root [server] 12.00 ms\n    child 5.00 ms  ERROR: boom\n"
        );
    }
}
