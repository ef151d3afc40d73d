//! Trace comparison: which spans are new, missing or slower in one trace
//! than in another.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use tracewire::{SpanId, TraceId};

use crate::model::Trace;

/// One level of a span's position: its service, its operation and which
/// occurrence it is among its siblings with the same service and operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyPart {
    /// The span's service.
    pub service: String,
    /// The span's name.
    pub name: String,
    /// 1 for the first sibling with this service and name (in start order),
    /// 2 for the second, ….
    pub occurrence: usize,
}

impl fmt::Display for KeyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.service, self.name)?;
        if self.occurrence > 1 {
            write!(f, " #{}", self.occurrence)?;
        }
        Ok(())
    }
}

/// Where a span sits in its trace: the [`KeyPart`]s of its ancestors from
/// the top level down, then its own. Spans of two traces are the same
/// operation when their keys are equal.
#[derive(Clone)]
pub struct SpanKey(Arc<KeyNode>);

struct KeyNode {
    part: KeyPart,
    parent: Option<Arc<KeyNode>>,
    depth: usize,
}

impl Drop for KeyNode {
    // Iterative, so that the key of a very deep span does not overflow the
    // stack when dropped.
    fn drop(&mut self) {
        let mut next = self.parent.take();
        while let Some(node) = next {
            next = match Arc::try_unwrap(node) {
                Ok(mut node) => node.parent.take(),
                Err(_) => None,
            };
        }
    }
}

impl SpanKey {
    fn top(part: KeyPart) -> Self {
        SpanKey(Arc::new(KeyNode {
            part,
            parent: None,
            depth: 0,
        }))
    }

    fn child(&self, part: KeyPart) -> Self {
        SpanKey(Arc::new(KeyNode {
            part,
            parent: Some(Arc::clone(&self.0)),
            depth: self.0.depth + 1,
        }))
    }

    /// The span's own service, operation and occurrence.
    pub fn part(&self) -> &KeyPart {
        &self.0.part
    }

    /// How many ancestors the span has (0 at the top level).
    pub fn depth(&self) -> usize {
        self.0.depth
    }

    /// The ancestors' parts, from the top level down (without the span's
    /// own part).
    pub fn ancestors(&self) -> Vec<&KeyPart> {
        let mut out = Vec::with_capacity(self.0.depth);
        let mut at = self.0.parent.as_deref();
        while let Some(node) = at {
            out.push(&node.part);
            at = node.parent.as_deref();
        }
        out.reverse();
        out
    }
}

impl PartialEq for SpanKey {
    fn eq(&self, other: &Self) -> bool {
        let (mut a, mut b) = (Some(&*self.0), Some(&*other.0));
        loop {
            match (a, b) {
                (None, None) => return true,
                (Some(x), Some(y)) if std::ptr::eq(x, y) => return true,
                (Some(x), Some(y)) if x.depth == y.depth && x.part == y.part => {
                    a = x.parent.as_deref();
                    b = y.parent.as_deref();
                }
                _ => return false,
            }
        }
    }
}

impl Eq for SpanKey {}

impl fmt::Display for SpanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in self.ancestors() {
            write!(f, "{part} › ")?;
        }
        write!(f, "{}", self.part())
    }
}

impl fmt::Debug for SpanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanKey({self})")
    }
}

/// A span found in only one of the two traces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unmatched {
    /// Its position.
    pub key: SpanKey,
    /// Its index in its trace's [`spans`](Trace::spans).
    pub index: usize,
    /// Its span id.
    pub span_id: SpanId,
    /// Its duration in nanoseconds.
    pub duration_nanos: u64,
    /// Whether its status is Error.
    pub error: bool,
}

/// A span present in both traces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matched {
    /// Its position (the same in both traces).
    pub key: SpanKey,
    /// Its index in trace A.
    pub a_index: usize,
    /// Its index in trace B.
    pub b_index: usize,
    /// Its span id in trace A.
    pub a_span_id: SpanId,
    /// Its span id in trace B.
    pub b_span_id: SpanId,
    /// Its duration in trace A, in nanoseconds.
    pub a_duration_nanos: u64,
    /// Its duration in trace B, in nanoseconds.
    pub b_duration_nanos: u64,
    /// Whether it failed in trace A.
    pub a_error: bool,
    /// Whether it failed in trace B.
    pub b_error: bool,
}

impl Matched {
    /// B's duration minus A's, in nanoseconds (positive: slower in B).
    pub fn delta_nanos(&self) -> i64 {
        delta(self.a_duration_nanos, self.b_duration_nanos)
    }

    /// The change relative to A's duration (0.5 is 50% slower); `None` when
    /// the span took no time in A.
    pub fn relative(&self) -> Option<f64> {
        (self.a_duration_nanos > 0)
            .then(|| self.delta_nanos() as f64 / self.a_duration_nanos as f64)
    }
}

fn delta(a: u64, b: u64) -> i64 {
    let d = i128::from(b) - i128::from(a);
    i64::try_from(d).unwrap_or(if d < 0 { i64::MIN } else { i64::MAX })
}

/// How trace B differs from trace A, from [`diff`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceDiff {
    /// Trace A's id.
    pub a_trace_id: TraceId,
    /// Trace B's id.
    pub b_trace_id: TraceId,
    /// Trace A's duration (earliest start to latest end), in nanoseconds.
    pub a_duration_nanos: u64,
    /// Trace B's duration, in nanoseconds.
    pub b_duration_nanos: u64,
    /// How many spans trace A has.
    pub a_span_count: usize,
    /// How many spans trace B has.
    pub b_span_count: usize,
    /// Spans only in A (missing from B), in A's tree order.
    pub missing: Vec<Unmatched>,
    /// Spans only in B (new in B), in B's tree order.
    pub new: Vec<Unmatched>,
    /// Spans in both, the largest slowdown first (speedups last); equal
    /// changes in A's tree order.
    pub matched: Vec<Matched>,
}

impl TraceDiff {
    /// B's duration minus A's, in nanoseconds.
    pub fn duration_delta_nanos(&self) -> i64 {
        delta(self.a_duration_nanos, self.b_duration_nanos)
    }

    /// Matched spans slower in B by at least `min_delta_nanos` (and by more
    /// than zero), the largest slowdown first.
    pub fn slower(&self, min_delta_nanos: u64) -> impl Iterator<Item = &Matched> {
        let min = i64::try_from(min_delta_nanos.max(1)).unwrap_or(i64::MAX);
        self.matched.iter().filter(move |m| m.delta_nanos() >= min)
    }

    /// Matched spans faster in B by at least `min_delta_nanos` (and by more
    /// than zero), the largest speedup first; equal changes in A's tree
    /// order.
    pub fn faster(&self, min_delta_nanos: u64) -> impl Iterator<Item = &Matched> {
        let min = i64::try_from(min_delta_nanos.max(1)).unwrap_or(i64::MAX);
        let mut faster: Vec<&Matched> = self
            .matched
            .iter()
            .filter(|m| m.delta_nanos() <= -min)
            .collect();
        // Stable: ties keep the tree order of `matched`.
        faster.sort_by_key(|m| m.delta_nanos());
        faster.into_iter()
    }
}

/// Compares trace `b` with trace `a`.
///
/// Spans are aligned by service, operation (span name) and the path of
/// their ancestors' services and operations; siblings with the same service
/// and operation are matched in start order (the second `SELECT orders`
/// under a span in A with the second one in B). A span whose parent is
/// unmatched is unmatched too.
///
/// ```
/// # use tracewire::{SpanId, SpanKind, Status, TraceId};
/// # use tracewire_cli::{Span, Trace};
/// # let span = |trace: u128, id: u64, parent: Option<u64>, name: &str, start: u64, end: u64| Span {
/// #     trace_id: TraceId::from_u128(trace),
/// #     span_id: SpanId::from_u64(id),
/// #     parent_span_id: parent.map(SpanId::from_u64),
/// #     service: "shop".into(),
/// #     name: name.into(),
/// #     kind: SpanKind::Internal,
/// #     start_unix_nano: start,
/// #     end_unix_nano: end,
/// #     status: Status::Unset,
/// #     attributes: Vec::new(),
/// #     events: Vec::new(),
/// # };
/// let a = Trace::from_spans(vec![
///     span(1, 1, None, "GET /cart", 0, 100),
///     span(1, 2, Some(1), "SELECT cart", 10, 40),
///     span(1, 3, Some(1), "cache get", 40, 45),
/// ])?;
/// let b = Trace::from_spans(vec![
///     span(2, 1, None, "GET /cart", 0, 150),
///     span(2, 2, Some(1), "SELECT cart", 10, 100),
///     span(2, 3, Some(1), "SELECT prices", 100, 150),
/// ])?;
/// let diff = tracewire_cli::diff(&a, &b);
/// assert_eq!(diff.missing[0].key.to_string(), "shop: GET /cart › shop: cache get");
/// assert_eq!(diff.new[0].key.part().name, "SELECT prices");
/// let slowest = &diff.matched[0];
/// assert_eq!((slowest.key.part().name.as_str(), slowest.delta_nanos()), ("SELECT cart", 60));
/// assert_eq!(slowest.relative(), Some(2.0));
/// # Ok::<(), tracewire_cli::TraceError>(())
/// ```
pub fn diff(a: &Trace, b: &Trace) -> TraceDiff {
    let mut missing = Vec::new();
    let mut new = Vec::new();
    let mut matched = Vec::new();

    let mut work: Vec<(Option<SpanKey>, Vec<usize>, Vec<usize>)> =
        vec![(None, a.top_level().to_vec(), b.top_level().to_vec())];
    while let Some((parent, a_siblings, b_siblings)) = work.pop() {
        let a_keyed = keyed(a, &parent, &a_siblings);
        let mut b_keyed: HashMap<KeyPart, (usize, SpanKey)> = keyed(b, &parent, &b_siblings)
            .into_iter()
            .map(|(i, key)| (key.part().clone(), (i, key)))
            .collect();
        for (ai, key) in a_keyed {
            match b_keyed.remove(key.part()) {
                Some((bi, _)) => {
                    let (sa, sb) = (a.span(ai), b.span(bi));
                    matched.push(Matched {
                        key: key.clone(),
                        a_index: ai,
                        b_index: bi,
                        a_span_id: sa.span_id,
                        b_span_id: sb.span_id,
                        a_duration_nanos: sa.duration_nanos(),
                        b_duration_nanos: sb.duration_nanos(),
                        a_error: sa.is_error(),
                        b_error: sb.is_error(),
                    });
                    work.push((Some(key), a.children(ai).to_vec(), b.children(bi).to_vec()));
                }
                None => subtree(a, ai, key, &mut missing),
            }
        }
        for (bi, key) in b_keyed.into_values() {
            subtree(b, bi, key, &mut new);
        }
    }

    let a_position = positions(a);
    let b_position = positions(b);
    missing.sort_by_key(|u| a_position[u.index]);
    new.sort_by_key(|u| b_position[u.index]);
    matched.sort_by_key(|m| (std::cmp::Reverse(m.delta_nanos()), a_position[m.a_index]));

    TraceDiff {
        a_trace_id: a.id(),
        b_trace_id: b.id(),
        a_duration_nanos: a.duration_nanos(),
        b_duration_nanos: b.duration_nanos(),
        a_span_count: a.spans().len(),
        b_span_count: b.spans().len(),
        missing,
        new,
        matched,
    }
}

/// Each sibling (in start order) with its key.
fn keyed(trace: &Trace, parent: &Option<SpanKey>, siblings: &[usize]) -> Vec<(usize, SpanKey)> {
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    siblings
        .iter()
        .map(|&i| {
            let span = trace.span(i);
            let count = seen
                .entry((span.service.as_str(), span.name.as_str()))
                .or_insert(0);
            *count += 1;
            let part = KeyPart {
                service: span.service.clone(),
                name: span.name.clone(),
                occurrence: *count,
            };
            let key = match parent {
                Some(p) => p.child(part),
                None => SpanKey::top(part),
            };
            (i, key)
        })
        .collect()
}

/// `top` and everything below it, as unmatched spans.
fn subtree(trace: &Trace, top: usize, key: SpanKey, out: &mut Vec<Unmatched>) {
    let mut stack = vec![(top, key)];
    while let Some((i, key)) = stack.pop() {
        let span = trace.span(i);
        out.push(Unmatched {
            key: key.clone(),
            index: i,
            span_id: span.span_id,
            duration_nanos: span.duration_nanos(),
            error: span.is_error(),
        });
        stack.extend(keyed(trace, &Some(key), trace.children(i)));
    }
}

/// Each span's position in tree order.
fn positions(trace: &Trace) -> Vec<usize> {
    let mut position = vec![0; trace.spans().len()];
    for (at, &(i, _)) in trace.tree_order().iter().enumerate() {
        position[i] = at;
    }
    position
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::span;

    const MS: u64 = 1_000_000;

    fn trace(id: u128, spans: Vec<crate::Span>) -> Trace {
        Trace::from_spans(
            spans
                .into_iter()
                .map(|mut s| {
                    s.trace_id = TraceId::from_u128(id);
                    s
                })
                .collect(),
        )
        .unwrap()
    }

    fn keys(list: &[Unmatched]) -> Vec<String> {
        list.iter().map(|u| u.key.to_string()).collect()
    }

    #[test]
    fn repeated_siblings_match_in_order_and_extras_are_new() {
        let a = trace(
            1,
            vec![
                span(1, None, "gw", "GET /", 0, 100),
                span(2, Some(1), "db", "SELECT", 10, 20),
                span(3, Some(1), "db", "SELECT", 30, 40),
            ],
        );
        let b = trace(
            2,
            vec![
                span(1, None, "gw", "GET /", 0, 100),
                span(2, Some(1), "db", "SELECT", 10, 20),
                span(3, Some(1), "db", "SELECT", 30, 70),
                span(4, Some(1), "db", "SELECT", 70, 80),
            ],
        );
        let d = diff(&a, &b);
        assert!(d.missing.is_empty());
        assert_eq!(keys(&d.new), ["gw: GET / › db: SELECT #3"]);
        let changes: Vec<(String, i64)> = d
            .matched
            .iter()
            .map(|m| (m.key.to_string(), m.delta_nanos() / MS as i64))
            .collect();
        assert_eq!(
            changes,
            [
                ("gw: GET / › db: SELECT #2".to_owned(), 30),
                ("gw: GET /".to_owned(), 0),
                ("gw: GET / › db: SELECT".to_owned(), 0),
            ]
        );
        assert_eq!(d.slower(0).count(), 1);
        assert_eq!(d.slower(31 * MS).count(), 0);
        assert_eq!(d.faster(0).count(), 0);
        assert_eq!(d.matched[0].relative(), Some(3.0));
    }

    #[test]
    fn an_unmatched_span_takes_its_subtree_with_it() {
        let a = trace(
            1,
            vec![
                span(1, None, "gw", "GET /", 0, 100),
                span(2, Some(1), "auth", "verify", 10, 20),
                span(3, Some(2), "db", "SELECT users", 11, 19),
                span(4, Some(1), "orders", "list", 20, 90),
            ],
        );
        let b = trace(
            2,
            vec![
                span(1, None, "gw", "GET /", 0, 60),
                span(4, Some(1), "orders", "list", 5, 55),
                span(5, Some(4), "cache", "get", 6, 7),
            ],
        );
        let d = diff(&a, &b);
        assert_eq!(
            keys(&d.missing),
            [
                "gw: GET / › auth: verify",
                "gw: GET / › auth: verify › db: SELECT users"
            ]
        );
        assert_eq!(keys(&d.new), ["gw: GET / › orders: list › cache: get"]);
        let faster: Vec<String> = d.faster(0).map(|m| m.key.to_string()).collect();
        assert_eq!(faster, ["gw: GET /", "gw: GET / › orders: list"]);
        assert_eq!(d.duration_delta_nanos(), -40 * MS as i64);
        assert_eq!(d.missing[1].key.depth(), 2);
        assert_eq!(d.missing[1].key.ancestors().len(), 2);
    }

    #[test]
    fn different_roots_share_nothing() {
        let a = trace(1, vec![span(1, None, "gw", "GET /a", 0, 10)]);
        let b = trace(2, vec![span(1, None, "gw", "GET /b", 0, 10)]);
        let d = diff(&a, &b);
        assert_eq!((d.missing.len(), d.new.len(), d.matched.len()), (1, 1, 0));
    }

    #[test]
    fn a_trace_against_itself_changes_nothing() {
        let a = trace(
            1,
            vec![
                span(1, None, "gw", "GET /", 0, 100),
                span(2, Some(1), "db", "SELECT", 0, 0),
            ],
        );
        let d = diff(&a, &a);
        assert!(d.missing.is_empty() && d.new.is_empty());
        assert_eq!(d.slower(0).count() + d.faster(0).count(), 0);
        assert_eq!(d.matched[1].relative(), None, "zero duration in A");
    }

    #[test]
    fn deep_traces_diff_and_drop_without_overflow() {
        let deep = |id| {
            trace(
                id,
                (1..=20_000u64)
                    .map(|i| span(i, (i > 1).then_some(i - 1), "s", "n", i, 100_000 - i))
                    .collect(),
            )
        };
        let d = diff(&deep(1), &deep(2));
        assert_eq!(d.matched.len(), 20_000);
        assert_eq!(d.matched.last().unwrap().key.depth(), 19_999);
        drop(d);
    }
}
