//! Spans and traces as the viewer sees them: plain data read from OTLP, and
//! a [`Trace`] that knows its tree.

use std::collections::HashMap;
use std::time::Duration;

use tracewire::{KeyValue, SpanId, SpanKind, Status, TraceId, Value};

/// The service name used when a resource has no `service.name`.
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// One finished span, as read from an OTLP/JSON file.
///
/// Times are nanoseconds since the Unix epoch, as OTLP writes them. A span
/// whose end is before its start has a zero [`duration`](Self::duration).
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    /// The trace it belongs to.
    pub trace_id: TraceId,
    /// Its own id.
    pub span_id: SpanId,
    /// Its parent's id; `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// The `service.name` of the resource that exported it.
    pub service: String,
    /// The span name (the operation).
    pub name: String,
    /// Server, client, producer, consumer or internal.
    pub kind: SpanKind,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End, in nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,
    /// Unset, Ok or Error (with its message).
    pub status: Status,
    /// The span's attributes, in the order they were written.
    pub attributes: Vec<KeyValue>,
    /// The span's events (log lines, exceptions), in the order they were
    /// written.
    pub events: Vec<Event>,
}

/// Something that happened during a span.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The event name (`exception` for recorded errors).
    pub name: String,
    /// When it happened, in nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// Its attributes.
    pub attributes: Vec<KeyValue>,
}

impl Span {
    /// End minus start in nanoseconds, zero when the end is before the start.
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }

    /// End minus start, zero when the end is before the start.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.duration_nanos())
    }

    /// Whether the span's status is Error.
    pub fn is_error(&self) -> bool {
        self.status.is_error()
    }

    /// Why the span failed: the status message, else the `exception.message`
    /// of its first `exception` event. `None` for spans without an error
    /// status or without any message.
    pub fn error_message(&self) -> Option<&str> {
        let Status::Error { message } = &self.status else {
            return None;
        };
        if !message.is_empty() {
            return Some(message);
        }
        self.events
            .iter()
            .filter(|e| e.name == "exception")
            .find_map(|e| {
                e.attributes
                    .iter()
                    .find(|kv| kv.key == "exception.message")
                    .and_then(|kv| kv.value.as_str())
            })
    }

    /// The value of the attribute `key`, if present.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| &kv.value)
    }
}

/// Why spans could not form a [`Trace`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// No span was given.
    #[error("a trace needs at least one span")]
    Empty,
    /// The spans belong to different traces.
    #[error("spans of two traces were mixed: {first} and {other}")]
    MixedTraces {
        /// The trace id of the first span.
        first: TraceId,
        /// A different trace id found among the others.
        other: TraceId,
    },
}

/// All the spans of one trace, arranged as a tree.
///
/// Spans are kept in start order and addressed by their index in
/// [`spans`](Self::spans). The tree tolerates what real files contain:
///
/// - a span whose parent is not in the trace (its service's file was not
///   loaded, or the parent was not sampled or not exported yet) is an
///   *orphan*: it is shown at the top level and [`is_orphan`](Self::is_orphan)
///   says so;
/// - a span id seen twice keeps its first occurrence;
/// - parent links that form a cycle are cut at the earliest span of the
///   cycle, which becomes an orphan.
///
/// ```
/// use tracewire::{SpanId, SpanKind, Status, TraceId};
/// use tracewire_cli::{Span, Trace};
///
/// let span = |id: u64, parent: Option<u64>, name: &str, start: u64, end: u64| Span {
///     trace_id: TraceId::from_u128(1),
///     span_id: SpanId::from_u64(id),
///     parent_span_id: parent.map(SpanId::from_u64),
///     service: "shop".into(),
///     name: name.into(),
///     kind: SpanKind::Internal,
///     start_unix_nano: start,
///     end_unix_nano: end,
///     status: Status::Unset,
///     attributes: Vec::new(),
///     events: Vec::new(),
/// };
/// let trace = Trace::from_spans(vec![
///     span(2, Some(1), "load", 10, 30),
///     span(1, None, "GET /", 0, 50),
/// ])
/// .unwrap();
/// let root = trace.root();
/// assert_eq!(trace.spans()[root].name, "GET /");
/// assert_eq!(trace.children(root).len(), 1);
/// assert_eq!(trace.duration_nanos(), 50);
/// ```
#[derive(Clone, Debug)]
pub struct Trace {
    id: TraceId,
    spans: Vec<Span>,
    by_id: HashMap<SpanId, usize>,
    parents: Vec<Option<usize>>,
    children: Vec<Vec<usize>>,
    orphans: Vec<bool>,
    top_level: Vec<usize>,
    root: usize,
    order: Vec<(usize, usize)>,
}

impl Trace {
    /// Builds the tree of `spans`, which must all have the same trace id.
    ///
    /// # Errors
    /// [`TraceError::Empty`] without spans, [`TraceError::MixedTraces`] when
    /// the trace ids differ.
    pub fn from_spans(mut spans: Vec<Span>) -> Result<Self, TraceError> {
        let first = spans.first().ok_or(TraceError::Empty)?.trace_id;
        if let Some(other) = spans.iter().find(|s| s.trace_id != first) {
            return Err(TraceError::MixedTraces {
                first,
                other: other.trace_id,
            });
        }
        // Deduplicate by span id (first occurrence wins), then order by start.
        let mut seen = HashMap::with_capacity(spans.len());
        let mut keep = Vec::with_capacity(spans.len());
        for span in spans.drain(..) {
            if seen.insert(span.span_id, ()).is_none() {
                keep.push(span);
            }
        }
        let mut spans = keep;
        spans.sort_by(|a, b| {
            (a.start_unix_nano, b.end_unix_nano, a.span_id).cmp(&(
                b.start_unix_nano,
                a.end_unix_nano,
                b.span_id,
            ))
        });
        let by_id: HashMap<SpanId, usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();

        let n = spans.len();
        let mut parents = vec![None; n];
        let mut orphans = vec![false; n];
        for (i, span) in spans.iter().enumerate() {
            if let Some(parent) = span.parent_span_id {
                match by_id.get(&parent) {
                    Some(&p) if p != i => parents[i] = Some(p),
                    _ => orphans[i] = true,
                }
            }
        }

        // Walk from the top-level spans; whatever is not reached sits on a
        // cycle of parent links: cut the cycle at its earliest span.
        let mut trace = Trace {
            id: first,
            spans,
            by_id,
            parents,
            children: vec![Vec::new(); n],
            orphans,
            top_level: Vec::new(),
            root: 0,
            order: Vec::with_capacity(n),
        };
        trace.link_children();
        let mut reached = vec![false; n];
        trace.top_level = (0..n).filter(|&i| trace.parents[i].is_none()).collect();
        for &top in &trace.top_level {
            mark_reached(&trace.children, top, &mut reached);
        }
        // Every span walked to find a cycle is reached once the cycle is
        // cut, so each span is walked at most once over all cycles.
        let mut walked = vec![false; n];
        let mut from = 0;
        while let Some(unreached) = (from..n).find(|&i| !reached[i]) {
            from = unreached;
            let cut = earliest_on_cycle(&trace.parents, unreached, &mut walked);
            if let Some(old) = trace.parents[cut].take() {
                trace.children[old].retain(|&c| c != cut);
            }
            trace.orphans[cut] = true;
            trace.top_level.push(cut);
            mark_reached(&trace.children, cut, &mut reached);
        }
        trace.top_level.sort_unstable();

        trace.root = trace
            .top_level
            .iter()
            .copied()
            .find(|&i| trace.spans[i].parent_span_id.is_none())
            .or_else(|| trace.top_level.first().copied())
            .unwrap_or(0);
        trace.order = trace.walk();
        Ok(trace)
    }

    fn link_children(&mut self) {
        for list in &mut self.children {
            list.clear();
        }
        // Indices ascend in start order, so children come out in start order.
        for i in 0..self.spans.len() {
            if let Some(p) = self.parents[i] {
                self.children[p].push(i);
            }
        }
    }

    fn walk(&self) -> Vec<(usize, usize)> {
        let mut order = Vec::with_capacity(self.spans.len());
        let mut stack: Vec<(usize, usize)> = self.top_level.iter().rev().map(|&i| (i, 0)).collect();
        while let Some((i, depth)) = stack.pop() {
            order.push((i, depth));
            stack.extend(self.children[i].iter().rev().map(|&c| (c, depth + 1)));
        }
        order
    }

    /// The trace id.
    pub fn id(&self) -> TraceId {
        self.id
    }

    /// Every span, in start order.
    pub fn spans(&self) -> &[Span] {
        &self.spans
    }

    /// The span at `index` (an index into [`spans`](Self::spans)).
    ///
    /// # Panics
    /// When `index` is out of range.
    pub fn span(&self, index: usize) -> &Span {
        &self.spans[index]
    }

    /// The index of the span with id `span_id`.
    pub fn index_of(&self, span_id: SpanId) -> Option<usize> {
        self.by_id.get(&span_id).copied()
    }

    /// The index of the root span: the earliest span without a parent id,
    /// else (when only part of the trace was loaded) the earliest orphan.
    pub fn root(&self) -> usize {
        self.root
    }

    /// The spans shown at the top level, in start order: roots and orphans.
    pub fn top_level(&self) -> &[usize] {
        &self.top_level
    }

    /// The parent of span `index`, if it is in the trace.
    pub fn parent(&self, index: usize) -> Option<usize> {
        self.parents.get(index).copied().flatten()
    }

    /// The children of span `index`, in start order.
    pub fn children(&self, index: usize) -> &[usize] {
        self.children.get(index).map_or(&[], Vec::as_slice)
    }

    /// Whether span `index` names a parent that is not in the trace (or that
    /// would close a cycle).
    pub fn is_orphan(&self, index: usize) -> bool {
        self.orphans.get(index).copied().unwrap_or(false)
    }

    /// How many spans are orphans.
    pub fn orphan_count(&self) -> usize {
        self.orphans.iter().filter(|&&o| o).count()
    }

    /// Every span index with its depth, in tree order: each span followed by
    /// its subtree, siblings in start order, top-level spans in start order.
    pub fn tree_order(&self) -> &[(usize, usize)] {
        &self.order
    }

    /// The services of the trace, in tree order of their first span.
    pub fn services(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for &(i, _) in &self.order {
            let service = self.spans[i].service.as_str();
            if !out.contains(&service) {
                out.push(service);
            }
        }
        out
    }

    /// How many spans have an error status.
    pub fn error_count(&self) -> usize {
        self.spans.iter().filter(|s| s.is_error()).count()
    }

    /// The earliest start of any span (nanoseconds since the Unix epoch).
    pub fn start_unix_nano(&self) -> u64 {
        self.spans
            .iter()
            .map(|s| s.start_unix_nano)
            .min()
            .unwrap_or(0)
    }

    /// The latest end of any span (nanoseconds since the Unix epoch).
    pub fn end_unix_nano(&self) -> u64 {
        self.spans
            .iter()
            .map(|s| s.end_unix_nano.max(s.start_unix_nano))
            .max()
            .unwrap_or(0)
    }

    /// From the earliest start to the latest end, in nanoseconds.
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano().saturating_sub(self.start_unix_nano())
    }

    /// From the earliest start to the latest end.
    pub fn duration(&self) -> Duration {
        Duration::from_nanos(self.duration_nanos())
    }
}

/// Following parent links from `from` (which is not reachable from any
/// top-level span) must close a cycle: the earliest span on that cycle.
fn earliest_on_cycle(parents: &[Option<usize>], from: usize, walked: &mut [bool]) -> usize {
    let mut at = from;
    while !std::mem::replace(&mut walked[at], true) {
        match parents[at] {
            Some(p) => at = p,
            None => return from,
        }
    }
    let mut earliest = at;
    let mut next = parents[at];
    while let Some(p) = next {
        if p == at {
            break;
        }
        earliest = earliest.min(p);
        next = parents[p];
    }
    earliest
}

fn mark_reached(children: &[Vec<usize>], from: usize, reached: &mut [bool]) {
    let mut stack = vec![from];
    while let Some(i) = stack.pop() {
        if !std::mem::replace(&mut reached[i], true) {
            stack.extend(&children[i]);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A span of trace 1 in service `service`, with times in milliseconds.
    pub(crate) fn span(
        id: u64,
        parent: Option<u64>,
        service: &str,
        name: &str,
        start_ms: u64,
        end_ms: u64,
    ) -> Span {
        Span {
            trace_id: TraceId::from_u128(1),
            span_id: SpanId::from_u64(id),
            parent_span_id: parent.map(SpanId::from_u64),
            service: service.into(),
            name: name.into(),
            kind: SpanKind::Internal,
            start_unix_nano: 1_000_000_000_000 + start_ms * 1_000_000,
            end_unix_nano: 1_000_000_000_000 + end_ms * 1_000_000,
            status: Status::Unset,
            attributes: Vec::new(),
            events: Vec::new(),
        }
    }

    fn names(trace: &Trace) -> Vec<(String, usize)> {
        trace
            .tree_order()
            .iter()
            .map(|&(i, d)| (trace.span(i).name.clone(), d))
            .collect()
    }

    #[test]
    fn builds_the_tree_in_start_order() {
        let trace = Trace::from_spans(vec![
            span(3, Some(1), "a", "second", 20, 30),
            span(2, Some(1), "a", "first", 10, 20),
            span(4, Some(2), "b", "nested", 12, 18),
            span(1, None, "a", "root", 0, 40),
        ])
        .unwrap();
        assert_eq!(
            names(&trace),
            [
                ("root".into(), 0),
                ("first".into(), 1),
                ("nested".into(), 2),
                ("second".into(), 1)
            ]
        );
        assert_eq!(trace.services(), ["a", "b"]);
        assert_eq!(trace.duration(), Duration::from_millis(40));
        assert_eq!(trace.orphan_count(), 0);
    }

    #[test]
    fn missing_parents_make_orphans_at_the_top_level() {
        let trace = Trace::from_spans(vec![
            span(1, None, "a", "root", 0, 40),
            span(5, Some(99), "b", "lost", 5, 10),
        ])
        .unwrap();
        let lost = trace.index_of(SpanId::from_u64(5)).unwrap();
        assert!(trace.is_orphan(lost));
        assert_eq!(trace.top_level().len(), 2);
        assert_eq!(trace.span(trace.root()).name, "root");
    }

    #[test]
    fn without_a_true_root_the_earliest_orphan_is_the_root() {
        let trace = Trace::from_spans(vec![
            span(6, Some(99), "b", "later", 8, 10),
            span(5, Some(99), "b", "server", 5, 20),
        ])
        .unwrap();
        assert_eq!(trace.span(trace.root()).name, "server");
    }

    #[test]
    fn cycles_and_self_parents_are_cut_without_looping() {
        let trace = Trace::from_spans(vec![
            span(1, Some(2), "a", "x", 0, 10),
            span(2, Some(1), "a", "y", 1, 5),
            span(3, Some(3), "a", "self", 2, 3),
        ])
        .unwrap();
        assert_eq!(
            names(&trace),
            [("x".into(), 0), ("y".into(), 1), ("self".into(), 0)]
        );
        assert_eq!(trace.orphan_count(), 2);
    }

    #[test]
    fn a_span_hanging_off_a_cycle_stays_attached() {
        // x and y are each other's parent; z, a child of y, starts first.
        let trace = Trace::from_spans(vec![
            span(1, Some(2), "a", "x", 5, 10),
            span(2, Some(1), "a", "y", 6, 9),
            span(3, Some(2), "a", "z", 0, 20),
        ])
        .unwrap();
        assert_eq!(
            names(&trace),
            [("x".into(), 0), ("y".into(), 1), ("z".into(), 2)]
        );
        assert_eq!(trace.orphan_count(), 1);
    }

    #[test]
    fn many_cycles_are_cut_quickly() {
        let spans = (0..100_000u64)
            .map(|i| span(i + 1, Some((i ^ 1) + 1), "a", "n", i, i + 1))
            .collect();
        let started = std::time::Instant::now();
        let trace = Trace::from_spans(spans).unwrap();
        assert_eq!(trace.top_level().len(), 50_000);
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn duplicate_span_ids_keep_the_first() {
        let trace = Trace::from_spans(vec![
            span(1, None, "a", "root", 0, 10),
            span(1, None, "a", "again", 0, 10),
        ])
        .unwrap();
        assert_eq!(trace.spans().len(), 1);
        assert_eq!(trace.span(0).name, "root");
    }

    #[test]
    fn rejects_empty_and_mixed_input() {
        assert_eq!(
            Trace::from_spans(Vec::new()).unwrap_err(),
            TraceError::Empty
        );
        let mut other = span(2, None, "a", "b", 0, 1);
        other.trace_id = TraceId::from_u128(2);
        assert!(matches!(
            Trace::from_spans(vec![span(1, None, "a", "a", 0, 1), other]),
            Err(TraceError::MixedTraces { .. })
        ));
    }

    #[test]
    fn error_message_falls_back_to_the_exception_event() {
        let mut s = span(1, None, "a", "x", 0, 1);
        assert_eq!(s.error_message(), None);
        s.status = Status::Error { message: "".into() };
        s.events.push(Event {
            name: "exception".into(),
            time_unix_nano: 0,
            attributes: vec![KeyValue::new("exception.message", "card declined")],
        });
        assert_eq!(s.error_message(), Some("card declined"));
        s.status = Status::Error {
            message: "timeout".into(),
        };
        assert_eq!(s.error_message(), Some("timeout"));
    }

    #[test]
    fn end_before_start_is_a_zero_duration() {
        let s = span(1, None, "a", "x", 10, 5);
        assert_eq!(s.duration_nanos(), 0);
    }
}
