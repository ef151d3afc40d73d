//! The critical path: the spans that determine a trace's end-to-end latency.

use std::cmp::Reverse;

use tracewire::TraceId;

use crate::model::Trace;

/// A stretch of time on the critical path during which `span` itself (not
/// one of its children) was the one being waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Section {
    /// The span's index in [`Trace::spans`].
    pub span: usize,
    /// Start, in nanoseconds since the Unix epoch.
    pub start_unix_nano: u64,
    /// End, in nanoseconds since the Unix epoch.
    pub end_unix_nano: u64,
}

impl Section {
    /// The section's length in nanoseconds.
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano - self.start_unix_nano
    }
}

/// A span on the critical path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// The span's index in [`Trace::spans`].
    pub span: usize,
    /// Its depth below the root (the root is 0).
    pub depth: usize,
    /// Its time on the path not covered by its children on the path, in
    /// nanoseconds.
    pub self_nanos: u64,
}

/// The chain of spans that determines a trace's end-to-end latency, from
/// [`critical_path`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CriticalPath {
    trace_id: TraceId,
    span_count: usize,
    root: usize,
    total_nanos: u64,
    sections: Vec<Section>,
    steps: Vec<Step>,
    bottleneck: usize,
}

impl CriticalPath {
    /// Whether this path was computed for `trace` (the same trace id and
    /// number of spans, so that span indices mean the same spans).
    pub fn is_for(&self, trace: &Trace) -> bool {
        self.trace_id == trace.id() && self.span_count == trace.spans().len()
    }

    /// The index of the root span the path was computed for.
    pub fn root(&self) -> usize {
        self.root
    }

    /// The root's duration in nanoseconds: the sum of every self-time on the
    /// path.
    pub fn total_nanos(&self) -> u64 {
        self.total_nanos
    }

    /// The sections of the path in time order; together they cover the
    /// root's duration exactly once.
    pub fn sections(&self) -> &[Section] {
        &self.sections
    }

    /// The spans on the path in tree order: every span with self-time on the
    /// path and the spans between it and the root.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The step with the largest self-time (the first one in tree order on a
    /// tie).
    pub fn bottleneck(&self) -> &Step {
        &self.steps[self.bottleneck]
    }

    /// The step of span `index`, if the span is on the path.
    pub fn step(&self, index: usize) -> Option<&Step> {
        self.steps.iter().find(|s| s.span == index)
    }

    /// `step`'s self-time as a fraction of the total (0 when the total is 0).
    pub fn share(&self, step: &Step) -> f64 {
        if self.total_nanos == 0 {
            0.0
        } else {
            step.self_nanos as f64 / self.total_nanos as f64
        }
    }
}

/// Computes the critical path of the trace's [root](Trace::root) span, the
/// way Jaeger does.
///
/// Starting at the root's end, the walk goes to the child that finished last
/// before the current point, and recursively into it; when a span has no
/// child left that ends before the point, the time from its start to the
/// point is its own, and the walk returns to its parent at its start. A
/// span's self-time is its time on the path not covered by its children on
/// the path; the bottleneck is the span with the largest self-time.
///
/// Child times are clamped into their parent's (a child that starts before
/// its parent, through clock skew between machines, counts from the
/// parent's start; time a child runs after its parent ended does not count).
/// Orphan spans are not below the root and so not on the path.
///
/// ```
/// # use tracewire::{SpanId, SpanKind, Status, TraceId};
/// # use tracewire_cli::{Span, Trace};
/// # let span = |id: u64, parent: Option<u64>, name: &str, start: u64, end: u64| Span {
/// #     trace_id: TraceId::from_u128(1),
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
/// // checkout [0, 100] calls auth [10, 30] and, in parallel, stock [10, 20]
/// // and payment [15, 90].
/// let trace = Trace::from_spans(vec![
///     span(1, None, "checkout", 0, 100),
///     span(2, Some(1), "auth", 10, 30),
///     span(3, Some(1), "stock", 10, 20),
///     span(4, Some(1), "payment", 15, 90),
/// ])?;
/// let path = tracewire_cli::critical_path(&trace);
/// let chain: Vec<(&str, u64)> = path
///     .steps()
///     .iter()
///     .map(|s| (trace.span(s.span).name.as_str(), s.self_nanos))
///     .collect();
/// assert_eq!(chain, [("checkout", 25), ("payment", 75)]);
/// assert_eq!(trace.span(path.bottleneck().span).name, "payment");
/// # Ok::<(), tracewire_cli::TraceError>(())
/// ```
pub fn critical_path(trace: &Trace) -> CriticalPath {
    let root = trace.root();
    let n = trace.spans().len();

    // Clamped times, and children by end (latest first; on a tie the one
    // that started first, which covers more of the parent).
    let mut times = vec![(0u64, 0u64); n];
    let mut by_end: Vec<Vec<usize>> = vec![Vec::new(); n];
    let r = trace.span(root);
    times[root] = (r.start_unix_nano, r.end_unix_nano.max(r.start_unix_nano));
    let mut stack = vec![root];
    while let Some(i) = stack.pop() {
        let (start, end) = times[i];
        for &c in trace.children(i) {
            let s = trace.span(c);
            let cs = s.start_unix_nano.clamp(start, end);
            let ce = s.end_unix_nano.clamp(cs, end);
            times[c] = (cs, ce);
            stack.push(c);
        }
        let mut kids = trace.children(i).to_vec();
        kids.sort_by_key(|&c| (Reverse(times[c].1), times[c].0, c));
        by_end[i] = kids;
    }

    // The walk back from the root's end. Per span, the point only moves
    // back, so children passed over stay passed over: a cursor suffices.
    let mut cursor = vec![0usize; n];
    let mut self_nanos = vec![0u64; n];
    let mut sections = Vec::new();
    let mut push = |span: usize, start: u64, end: u64| {
        if end > start {
            self_nanos[span] += end - start;
            sections.push(Section {
                span,
                start_unix_nano: start,
                end_unix_nano: end,
            });
        }
    };
    let mut current = root;
    let mut point = times[root].1;
    loop {
        let kids = &by_end[current];
        let at = &mut cursor[current];
        while *at < kids.len() && times[kids[*at]].1 > point {
            *at += 1;
        }
        if let Some(&child) = kids.get(*at) {
            *at += 1;
            push(current, times[child].1, point);
            current = child;
            point = times[child].1;
        } else {
            push(current, times[current].0, point);
            match trace.parent(current) {
                Some(parent) if current != root => {
                    point = times[current].0;
                    current = parent;
                }
                _ => break,
            }
        }
    }
    sections.reverse();

    // The path: spans with self-time and their ancestors up to the root.
    let mut on_path = vec![false; n];
    on_path[root] = true;
    for i in (0..n).filter(|&i| self_nanos[i] > 0) {
        let mut at = Some(i);
        while let Some(a) = at {
            if std::mem::replace(&mut on_path[a], true) {
                break;
            }
            at = trace.parent(a);
        }
    }
    let root_depth = trace
        .tree_order()
        .iter()
        .find(|&&(i, _)| i == root)
        .map_or(0, |&(_, d)| d);
    let steps: Vec<Step> = trace
        .tree_order()
        .iter()
        .filter(|&&(i, _)| on_path[i])
        .map(|&(span, depth)| Step {
            span,
            depth: depth.saturating_sub(root_depth),
            self_nanos: self_nanos[span],
        })
        .collect();
    let bottleneck = steps
        .iter()
        .enumerate()
        .max_by_key(|&(i, s)| (s.self_nanos, Reverse(i)))
        .map_or(0, |(i, _)| i);
    CriticalPath {
        trace_id: trace.id(),
        span_count: n,
        root,
        total_nanos: times[root].1 - times[root].0,
        sections,
        steps,
        bottleneck,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::span;

    const MS: u64 = 1_000_000;

    fn chain(trace: &Trace, path: &CriticalPath) -> Vec<(String, usize, u64)> {
        path.steps()
            .iter()
            .map(|s| (trace.span(s.span).name.clone(), s.depth, s.self_nanos / MS))
            .collect()
    }

    fn owned(list: &[(&str, usize, u64)]) -> Vec<(String, usize, u64)> {
        list.iter().map(|&(n, d, t)| (n.to_owned(), d, t)).collect()
    }

    #[test]
    fn sequential_and_nested_children() {
        let trace = Trace::from_spans(vec![
            span(1, None, "gw", "root", 0, 100),
            span(2, Some(1), "auth", "a", 10, 40),
            span(3, Some(1), "orders", "b", 50, 90),
            span(4, Some(3), "db", "c", 55, 80),
        ])
        .unwrap();
        let path = critical_path(&trace);
        assert_eq!(
            chain(&trace, &path),
            owned(&[("root", 0, 30), ("a", 1, 30), ("b", 1, 15), ("c", 2, 25)])
        );
        assert_eq!(path.total_nanos(), 100 * MS);
        assert_eq!(trace.span(path.bottleneck().span).name, "root");
        let sections: Vec<(String, u64, u64)> = path
            .sections()
            .iter()
            .map(|s| {
                (
                    trace.span(s.span).name.clone(),
                    (s.start_unix_nano - trace.start_unix_nano()) / MS,
                    (s.end_unix_nano - trace.start_unix_nano()) / MS,
                )
            })
            .collect();
        let expected = [
            ("root", 0, 10),
            ("a", 10, 40),
            ("root", 40, 50),
            ("b", 50, 55),
            ("c", 55, 80),
            ("b", 80, 90),
            ("root", 90, 100),
        ];
        assert_eq!(
            sections,
            expected
                .iter()
                .map(|&(n, s, e)| (n.to_owned(), s, e))
                .collect::<Vec<_>>()
        );
        let covered: u64 = path.sections().iter().map(Section::duration_nanos).sum();
        assert_eq!(covered, path.total_nanos());
    }

    #[test]
    fn parallel_children_only_the_last_finishing_counts() {
        let trace = Trace::from_spans(vec![
            span(1, None, "gw", "root", 0, 100),
            span(2, Some(1), "a", "fast", 10, 60),
            span(3, Some(1), "b", "slow", 20, 90),
        ])
        .unwrap();
        let path = critical_path(&trace);
        assert_eq!(
            chain(&trace, &path),
            owned(&[("root", 0, 30), ("slow", 1, 70)])
        );
        assert_eq!(trace.span(path.bottleneck().span).name, "slow");
        assert!((path.share(path.bottleneck()) - 0.7).abs() < 1e-12);
    }

    #[test]
    fn a_child_ending_exactly_when_the_next_starts_is_on_the_path() {
        let trace = Trace::from_spans(vec![
            span(1, None, "gw", "root", 0, 100),
            span(2, Some(1), "a", "first", 0, 50),
            span(3, Some(1), "a", "second", 50, 100),
        ])
        .unwrap();
        let path = critical_path(&trace);
        assert_eq!(
            chain(&trace, &path),
            owned(&[("root", 0, 0), ("first", 1, 50), ("second", 1, 50)])
        );
        assert_eq!(trace.span(path.bottleneck().span).name, "first");
    }

    #[test]
    fn on_equal_ends_the_longer_child_covers_the_parent() {
        let trace = Trace::from_spans(vec![
            span(1, None, "gw", "root", 0, 100),
            span(2, Some(1), "a", "short", 90, 100),
            span(3, Some(1), "a", "long", 0, 100),
        ])
        .unwrap();
        let path = critical_path(&trace);
        assert_eq!(
            chain(&trace, &path),
            owned(&[("root", 0, 0), ("long", 1, 100)])
        );
    }

    #[test]
    fn skewed_children_are_clamped_into_their_parent() {
        let trace = Trace::from_spans(vec![
            span(1, None, "gw", "root", 100, 200),
            // Another machine's clock is 20 ms behind.
            span(2, Some(1), "b", "early", 80, 150),
            // Runs on after the root answered.
            span(3, Some(1), "b", "late", 170, 260),
        ])
        .unwrap();
        let path = critical_path(&trace);
        assert_eq!(
            chain(&trace, &path),
            owned(&[("root", 0, 20), ("early", 1, 50), ("late", 1, 30)])
        );
        assert_eq!(path.total_nanos(), 100 * MS);
    }

    #[test]
    fn zero_durations_and_lonely_roots() {
        let trace = Trace::from_spans(vec![
            span(1, None, "gw", "root", 0, 0),
            span(2, Some(1), "gw", "child", 0, 0),
        ])
        .unwrap();
        let path = critical_path(&trace);
        assert_eq!(chain(&trace, &path), owned(&[("root", 0, 0)]));
        assert_eq!(path.share(path.bottleneck()), 0.0);
        assert!(path.sections().is_empty());

        let trace = Trace::from_spans(vec![
            span(1, None, "gw", "root", 0, 30),
            span(2, Some(1), "gw", "instant", 30, 30),
        ])
        .unwrap();
        assert_eq!(
            chain(&trace, &critical_path(&trace)),
            owned(&[("root", 0, 30)])
        );
    }

    #[test]
    fn a_path_knows_its_trace() {
        let small = Trace::from_spans(vec![span(1, None, "gw", "root", 0, 50)]).unwrap();
        let big = Trace::from_spans(vec![
            span(1, None, "gw", "root", 0, 50),
            span(2, Some(1), "gw", "child", 0, 40),
        ])
        .unwrap();
        let path = critical_path(&big);
        assert!(path.is_for(&big));
        assert!(!path.is_for(&small));
        // Rendering a path with the wrong trace recomputes it.
        let text = crate::render::critical_path(&small, &path, &Default::default());
        assert!(text.contains("bottleneck: gw: root, 50.0ms"), "{text}");
        let json = crate::json::critical_path(&small, &path);
        assert_eq!(json["path"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn orphans_are_not_on_the_path() {
        let trace = Trace::from_spans(vec![
            span(1, None, "gw", "root", 0, 50),
            span(2, Some(99), "x", "orphan", 0, 100),
        ])
        .unwrap();
        let path = critical_path(&trace);
        assert_eq!(chain(&trace, &path), owned(&[("root", 0, 50)]));
    }

    #[test]
    fn a_deep_chain_does_not_overflow_the_stack() {
        let spans = (1..=50_000u64)
            .map(|i| span(i, (i > 1).then_some(i - 1), "s", "n", i, 200_000 - i))
            .collect();
        let trace = Trace::from_spans(spans).unwrap();
        let path = critical_path(&trace);
        assert_eq!(path.steps().len(), 50_000);
        assert_eq!(path.total_nanos(), (200_000 - 2) * MS);
    }
}
