//! Text renderings of traces, critical paths and diffs, as `String`s, with or
//! without terminal colours.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use anstyle::{AnsiColor, Style};

use crate::critical_path::{CriticalPath, critical_path as compute_critical_path};
use crate::diff::{KeyPart, Matched, SpanKey, TraceDiff, Unmatched};
use crate::load::Traces;
use crate::model::Trace;

/// How to render: colours, bar width, diff threshold.
///
/// ```
/// use std::time::Duration;
/// use tracewire_cli::RenderOptions;
///
/// let options = RenderOptions::new()
///     .with_color(true)
///     .with_width(60)
///     .with_min_delta(Duration::from_millis(1));
/// assert!(options.color);
/// assert_eq!(RenderOptions::default(), RenderOptions::new());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// Whether to use ANSI colours (a colour per service, errors in red,
    /// the bottleneck in bold).
    pub color: bool,
    /// The width of the timeline bars in columns (kept within 10 to 500).
    pub width: usize,
    /// Diffs list changes of at least this many nanoseconds only.
    pub min_delta_nanos: u64,
}

impl RenderOptions {
    /// Plain text, 40-column bars, every change shown.
    pub const fn new() -> Self {
        RenderOptions {
            color: false,
            width: 40,
            min_delta_nanos: 0,
        }
    }

    /// Turns colours on or off.
    pub const fn with_color(mut self, color: bool) -> Self {
        self.color = color;
        self
    }

    /// Sets the bar width in columns.
    pub const fn with_width(mut self, width: usize) -> Self {
        self.width = width;
        self
    }

    /// Hides diff changes smaller than `min_delta`.
    pub fn with_min_delta(mut self, min_delta: Duration) -> Self {
        self.min_delta_nanos = u64::try_from(min_delta.as_nanos()).unwrap_or(u64::MAX);
        self
    }

    fn bar_width(&self) -> usize {
        self.width.clamp(10, 500)
    }
}

impl Default for RenderOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// The table of `tracewire list`: one row per trace with its id, start,
/// duration, span and error counts, root and services.
pub fn list(traces: &Traces, options: &RenderOptions) -> String {
    let paint = Paint(options.color);
    if traces.is_empty() {
        return "no traces found\n".to_owned();
    }
    let rows: Vec<[String; 7]> = traces
        .iter()
        .map(|t| {
            let root = t.span(t.root());
            let mut root_text = format!("{}: {}", clean(&root.service), clean(&root.name));
            if t.is_orphan(t.root()) {
                root_text.push_str(" (parent not loaded)");
            }
            [
                t.id().to_string(),
                format_time(t.start_unix_nano()),
                format_duration(t.duration_nanos()),
                t.spans().len().to_string(),
                t.error_count().to_string(),
                root_text,
                t.services()
                    .iter()
                    .map(|s| clean(s))
                    .collect::<Vec<_>>()
                    .join(", "),
            ]
        })
        .collect();
    let headers = [
        "TRACE ID",
        "START (UTC)",
        "DURATION",
        "SPANS",
        "ERRORS",
        "ROOT",
        "SERVICES",
    ];
    let right = [false, false, true, true, true, false, false];
    let widths: Vec<usize> = (0..7)
        .map(|c| column_width(&rows, |r| &r[c], headers[c].len()))
        .collect();
    let mut out = String::new();
    let header: Vec<String> = (0..7)
        .map(|c| align(headers[c], widths[c], right[c]))
        .collect();
    let _ = writeln!(out, "{}", paint.bold(header.join("  ").trim_end()));
    for (row, trace) in rows.iter().zip(traces.iter()) {
        let cells: Vec<String> = (0..7)
            .map(|c| {
                let text = align(&row[c], widths[c], right[c]);
                match c {
                    4 if trace.error_count() > 0 => paint.red(&text),
                    _ => text,
                }
            })
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// The waterfall of `tracewire view`: one row per span in tree order with
/// its service, operation (indented by depth), offset from the trace start,
/// duration and a bar over the trace's time; errors, orphans, clock skew
/// and the bottleneck (largest self-time on the critical path) are marked.
pub fn view(trace: &Trace, options: &RenderOptions) -> String {
    let paint = Paint(options.color);
    let services = trace.services();
    let path = compute_critical_path(trace);
    let bottleneck = path.bottleneck();
    let bar_width = options.bar_width();
    let start = trace.start_unix_nano();
    let total = trace.duration_nanos();

    // Display times: a child never starts before its parent.
    let mut shown = vec![(0u64, 0u64); trace.spans().len()];
    for &(i, _) in trace.tree_order() {
        let s = trace.span(i);
        let from = match trace.parent(i) {
            Some(p) => s.start_unix_nano.max(shown[p].0),
            None => s.start_unix_nano,
        };
        shown[i] = (from, s.end_unix_nano.max(from));
    }

    let rows: Vec<(usize, String, String, String, String)> = trace
        .tree_order()
        .iter()
        .map(|&(i, depth)| {
            let s = trace.span(i);
            (
                i,
                clean(&s.service).into_owned(),
                format!(
                    "{}{}",
                    "  ".repeat(depth.min(30)),
                    truncate(&clean(&s.name), 60)
                ),
                format_duration(s.start_unix_nano - start),
                format_duration(s.duration_nanos()),
            )
        })
        .collect();
    let w_service = column_width(&rows, |r| &r.1, 7);
    let w_name = column_width(&rows, |r| &r.2, 9);
    let w_start = column_width(&rows, |r| &r.3, 5);
    let w_duration = column_width(&rows, |r| &r.4, 8);

    let mut out = String::new();
    let _ = writeln!(out, "{}", paint.bold(&summary(trace)));
    let header = format!(
        "{}  {}  {}  {}  TIMELINE",
        align("SERVICE", w_service, false),
        align("OPERATION", w_name, false),
        align("START", w_start, true),
        align("DURATION", w_duration, true),
    );
    let _ = writeln!(out, "{}", paint.bold(&header));
    for (i, service, name, offset, duration) in &rows {
        let i = *i;
        let s = trace.span(i);
        let colour = service_colour(&services, &s.service);
        let bar = bar(shown[i], start, total, bar_width);
        let bar = if s.is_error() {
            paint.red(&bar)
        } else {
            paint.style(colour, &bar)
        };
        let mut marks = Vec::new();
        if i == bottleneck.span {
            marks.push(paint.bold(&format!(
                "◀ bottleneck (self {})",
                format_duration(bottleneck.self_nanos)
            )));
        }
        if s.is_error() {
            marks.push(paint.red(&match s.error_message() {
                Some(m) => format!("✗ error: {}", truncate(&clean(m), 80)),
                None => "✗ error".to_owned(),
            }));
        }
        if trace.is_orphan(i) {
            let parent = s.parent_span_id.map(|p| p.to_string()).unwrap_or_default();
            marks.push(paint.yellow(&format!("? parent {parent} not in trace")));
        }
        if let Some(p) = trace.parent(i) {
            let early = trace
                .span(p)
                .start_unix_nano
                .saturating_sub(s.start_unix_nano);
            if early > 0 {
                marks.push(paint.yellow(&format!(
                    "~ starts {} before its parent (clock skew?)",
                    format_duration(early)
                )));
            }
        }
        let line = format!(
            "{}  {}  {}  {}  |{}|  {}",
            paint.style(colour, &align(service, w_service, false)),
            align(name, w_name, false),
            align(offset, w_start, true),
            align(duration, w_duration, true),
            bar,
            marks.join("  "),
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let b = trace.span(bottleneck.span);
    let _ = writeln!(
        out,
        "critical path {}; bottleneck {}: {} (self {}, {})",
        format_duration(path.total_nanos()),
        clean(&b.service),
        clean(&b.name),
        format_duration(bottleneck.self_nanos),
        format_share(path.share(bottleneck)),
    );
    let orphans = trace.orphan_count();
    if orphans > 0 {
        let _ = writeln!(
            out,
            "{orphans} span{} whose parent is not in the loaded input, shown at the top level",
            if orphans == 1 { "" } else { "s" }
        );
    }
    out
}

/// The table of `tracewire critical-path`: the spans on the critical path
/// in tree order with their self-time, its share of the total, and their
/// duration; the bottleneck is marked.
///
/// `path` is the one [`critical_path()`](crate::critical_path()) computed
/// for `trace`; a path computed for another trace is recomputed.
pub fn critical_path(trace: &Trace, path: &CriticalPath, options: &RenderOptions) -> String {
    let recomputed;
    let path = if path.is_for(trace) {
        path
    } else {
        recomputed = compute_critical_path(trace);
        &recomputed
    };
    let paint = Paint(options.color);
    let services = trace.services();
    let root = trace.span(path.root());
    let bottleneck = path.bottleneck();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        paint.bold(&format!(
            "critical path of trace {}: {}: {}, {}",
            trace.id(),
            clean(&root.service),
            clean(&root.name),
            format_duration(path.total_nanos())
        ))
    );
    let rows: Vec<(String, String, String)> = path
        .steps()
        .iter()
        .map(|step| {
            (
                format_duration(step.self_nanos),
                format_share(path.share(step)),
                format_duration(trace.span(step.span).duration_nanos()),
            )
        })
        .collect();
    let w_self = column_width(&rows, |r| &r.0, 4);
    let w_share = column_width(&rows, |r| &r.1, 5);
    let w_dur = column_width(&rows, |r| &r.2, 8);
    let _ = writeln!(
        out,
        "{}",
        paint.bold(&format!(
            "{}  {}  {}  SPAN",
            align("SELF", w_self, true),
            align("SHARE", w_share, true),
            align("DURATION", w_dur, true)
        ))
    );
    for (step, (self_time, share, duration)) in path.steps().iter().zip(&rows) {
        let s = trace.span(step.span);
        let name = format!(
            "{}{}: {}",
            "  ".repeat(step.depth.min(30)),
            paint.style(service_colour(&services, &s.service), &clean(&s.service)),
            truncate(&clean(&s.name), 60)
        );
        let mut marks = String::new();
        if step.span == bottleneck.span {
            marks.push_str(&paint.bold("  ◀ bottleneck"));
        }
        if s.is_error() {
            marks.push_str(&paint.red("  ✗ error"));
        }
        let _ = writeln!(
            out,
            "{}  {}  {}  {name}{marks}",
            align(self_time, w_self, true),
            align(share, w_share, true),
            align(duration, w_dur, true),
        );
    }
    let b = trace.span(bottleneck.span);
    let _ = writeln!(
        out,
        "bottleneck: {}: {}, {} of {} ({})",
        clean(&b.service),
        clean(&b.name),
        format_duration(bottleneck.self_nanos),
        format_duration(path.total_nanos()),
        format_share(path.share(bottleneck)),
    );
    out
}

/// The report of `tracewire diff`: durations and counts, then spans slower
/// and faster in B (by at least [`RenderOptions::min_delta_nanos`]),
/// missing from B and new in B.
pub fn diff(diff: &TraceDiff, options: &RenderOptions) -> String {
    let paint = Paint(options.color);
    let min = options.min_delta_nanos;
    let slower: Vec<&Matched> = diff.slower(min).collect();
    let faster: Vec<&Matched> = diff.faster(min).collect();
    let unchanged = diff.matched.len() - slower.len() - faster.len();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        paint.bold(&format!(
            "diff A {} → B {}",
            diff.a_trace_id, diff.b_trace_id
        ))
    );
    let _ = writeln!(
        out,
        "duration: {} → {} ({})",
        format_duration(diff.a_duration_nanos),
        format_duration(diff.b_duration_nanos),
        format_change(diff.duration_delta_nanos(), diff.a_duration_nanos),
    );
    let _ = writeln!(
        out,
        "spans: {} → {}; matched {}: {} slower, {} faster, {} unchanged; {} missing from B, {} new in B",
        diff.a_span_count,
        diff.b_span_count,
        diff.matched.len(),
        slower.len(),
        faster.len(),
        unchanged,
        diff.missing.len(),
        diff.new.len(),
    );
    let threshold = if min > 0 {
        format!(" by {} or more", format_duration(min))
    } else {
        String::new()
    };
    changes(
        &mut out,
        &paint,
        &format!("slower in B{threshold}, largest first:"),
        &slower,
    );
    changes(
        &mut out,
        &paint,
        &format!("faster in B{threshold}, largest first:"),
        &faster,
    );
    unmatched(
        &mut out,
        &paint,
        "missing from B (only in A):",
        &diff.missing,
    );
    unmatched(&mut out, &paint, "new in B (only in B):", &diff.new);
    out
}

fn changes(out: &mut String, paint: &Paint, title: &str, list: &[&Matched]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{}", paint.bold(title));
    let rows: Vec<(String, String, String)> = list
        .iter()
        .map(|m| {
            let relative = m
                .relative()
                .map_or_else(|| "new time".to_owned(), format_signed_share);
            (
                format_signed(m.delta_nanos()),
                relative,
                format!(
                    "{} → {}",
                    format_duration(m.a_duration_nanos),
                    format_duration(m.b_duration_nanos)
                ),
            )
        })
        .collect();
    let w0 = rows.iter().map(|r| width(&r.0)).max().unwrap_or(0);
    let w1 = rows.iter().map(|r| width(&r.1)).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| width(&r.2)).max().unwrap_or(0);
    for (m, (delta, relative, durations)) in list.iter().zip(&rows) {
        let delta = align(delta, w0, true);
        let delta = if m.delta_nanos() > 0 {
            paint.red(&delta)
        } else {
            paint.green(&delta)
        };
        let mut line = format!(
            "  {delta}  {}  {}  {}{}",
            align(relative, w1, true),
            align(durations, w2, false),
            key_part(m.key.part()),
            context(paint, &m.key),
        );
        if m.b_error && !m.a_error {
            line.push_str(&paint.red("  ✗ fails in B"));
        } else if m.a_error && !m.b_error {
            line.push_str(&paint.green("  ✓ no longer fails"));
        }
        let _ = writeln!(out, "{line}");
    }
}

fn unmatched(out: &mut String, paint: &Paint, title: &str, list: &[Unmatched]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{}", paint.bold(title));
    let durations: Vec<String> = list
        .iter()
        .map(|u| format_duration(u.duration_nanos))
        .collect();
    let w = durations.iter().map(|d| width(d)).max().unwrap_or(0);
    for (u, d) in list.iter().zip(&durations) {
        let mut line = format!(
            "  {}  {}{}",
            align(d, w, true),
            key_part(u.key.part()),
            context(paint, &u.key)
        );
        if u.error {
            line.push_str(&paint.red("  ✗ error"));
        }
        let _ = writeln!(out, "{line}");
    }
}

fn key_part(part: &KeyPart) -> String {
    let mut text = format!("{}: {}", clean(&part.service), clean(&part.name));
    if part.occurrence > 1 {
        let _ = write!(text, " #{}", part.occurrence);
    }
    text
}

/// `  (in a › b › c)`, eliding the middle of deep paths.
fn context(paint: &Paint, key: &SpanKey) -> String {
    let ancestors = key.ancestors();
    if ancestors.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = if ancestors.len() > 6 {
        let mut parts: Vec<String> = ancestors[..2].iter().map(|p| key_part(p)).collect();
        parts.push(format!("… {} more …", ancestors.len() - 4));
        parts.extend(ancestors[ancestors.len() - 2..].iter().map(|p| key_part(p)));
        parts
    } else {
        ancestors.iter().map(|p| key_part(p)).collect()
    };
    paint.dim(&format!("  (in {})", parts.join(" › ")))
}

/// `trace 4bf9… · 2024-… UTC · 120.0ms · 7 spans · 3 services · 1 error`.
fn summary(trace: &Trace) -> String {
    let spans = trace.spans().len();
    let services = trace.services().len();
    let errors = trace.error_count();
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "trace {} · {} UTC · {} · {} · {} · {}",
        trace.id(),
        format_time(trace.start_unix_nano()),
        format_duration(trace.duration_nanos()),
        plural(spans, "span"),
        plural(services, "service"),
        plural(errors, "error"),
    )
}

fn bar(shown: (u64, u64), start: u64, total: u64, width: usize) -> String {
    let (from, to) = (shown.0.saturating_sub(start), shown.1.saturating_sub(start));
    let (first, last) = if total == 0 {
        (0, 1)
    } else {
        // The nearest cell boundary, rounding halves up.
        let scale = |t: u64| {
            let twice = 2 * u128::from(t.min(total)) * width as u128;
            let cells = (twice + u128::from(total)) / (2 * u128::from(total));
            usize::try_from(cells).unwrap_or(width)
        };
        let first = scale(from).min(width - 1);
        (first, scale(to).clamp(first + 1, width))
    };
    let fill = if shown.1 > shown.0 { "█" } else { "▏" };
    let mut out = String::with_capacity(width * 3);
    out.push_str(&" ".repeat(first));
    out.push_str(&fill.repeat(last - first));
    out.push_str(&" ".repeat(width - last));
    out
}

/// Colours for services, by order of first appearance in the trace.
const PALETTE: [AnsiColor; 8] = [
    AnsiColor::Cyan,
    AnsiColor::Green,
    AnsiColor::Yellow,
    AnsiColor::Blue,
    AnsiColor::Magenta,
    AnsiColor::BrightCyan,
    AnsiColor::BrightGreen,
    AnsiColor::BrightBlue,
];

fn service_colour(services: &[&str], service: &str) -> Style {
    let at = services.iter().position(|s| *s == service).unwrap_or(0);
    PALETTE[at % PALETTE.len()].on_default()
}

/// Styles text with ANSI escapes (from `anstyle`) when colours are on.
struct Paint(bool);

impl Paint {
    fn style(&self, style: Style, text: &str) -> String {
        if self.0 && !text.is_empty() {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }
    fn bold(&self, text: &str) -> String {
        self.style(Style::new().bold(), text)
    }
    fn dim(&self, text: &str) -> String {
        self.style(Style::new().dimmed(), text)
    }
    fn red(&self, text: &str) -> String {
        self.style(AnsiColor::Red.on_default(), text)
    }
    fn green(&self, text: &str) -> String {
        self.style(AnsiColor::Green.on_default(), text)
    }
    fn yellow(&self, text: &str) -> String {
        self.style(AnsiColor::Yellow.on_default(), text)
    }
}

/// Text from a file, safe to print: control characters (terminal escapes,
/// newlines) are shown escaped.
pub(crate) fn clean(text: &str) -> Cow<'_, str> {
    if text.chars().any(char::is_control) {
        Cow::Owned(
            text.chars()
                .map(|c| {
                    if c.is_control() {
                        c.escape_default().to_string()
                    } else {
                        c.to_string()
                    }
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(text)
    }
}

fn width(text: &str) -> usize {
    text.chars().count()
}

/// The width of a column: its widest cell (`cell` picks it from a row), at
/// least `min` (the header's width).
fn column_width<R>(rows: &[R], cell: impl Fn(&R) -> &String, min: usize) -> usize {
    rows.iter().map(|r| width(cell(r))).fold(min, usize::max)
}

fn align(text: &str, to: usize, right: bool) -> String {
    let pad = " ".repeat(to.saturating_sub(width(text)));
    if right {
        format!("{pad}{text}")
    } else {
        format!("{text}{pad}")
    }
}

fn truncate(text: &str, max: usize) -> Cow<'_, str> {
    if width(text) <= max {
        Cow::Borrowed(text)
    } else {
        let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        Cow::Owned(out)
    }
}

/// `850ns`, `12.3µs`, `45.0ms`, `1.234s`.
pub fn format_duration(nanos: u64) -> String {
    if nanos < 1_000 {
        format!("{nanos}ns")
    } else if nanos < 999_950 {
        format!("{:.1}µs", nanos as f64 / 1e3)
    } else if nanos < 999_950_000 {
        format!("{:.1}ms", nanos as f64 / 1e6)
    } else {
        format!("{:.3}s", nanos as f64 / 1e9)
    }
}

/// `+30.0ms`, `-1.5ms`, `0ns`.
fn format_signed(nanos: i64) -> String {
    match nanos {
        0 => "0ns".to_owned(),
        n if n > 0 => format!("+{}", format_duration(n.unsigned_abs())),
        n => format!("-{}", format_duration(n.unsigned_abs())),
    }
}

fn format_share(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn format_signed_share(share: f64) -> String {
    format!("{:+.1}%", share * 100.0)
}

/// `+60.0ms, +60.0%`.
fn format_change(delta: i64, base: u64) -> String {
    if base == 0 {
        format_signed(delta)
    } else {
        format!(
            "{}, {}",
            format_signed(delta),
            format_signed_share(delta as f64 / base as f64)
        )
    }
}

/// `2023-11-14 22:13:20.000` (UTC, milliseconds).
pub fn format_time(unix_nanos: u64) -> String {
    // `2023-11-14T22:13:20.000Z`, fixed width: a space for the `T`, no `Z`.
    let mut text = humantime::format_rfc3339_millis(system_time(unix_nanos)).to_string();
    text.pop();
    text.replace_range(10..11, " ");
    text
}

/// `2023-11-14T22:13:20.123456789Z` (RFC 3339, UTC, nanoseconds).
pub(crate) fn format_rfc3339(unix_nanos: u64) -> String {
    humantime::format_rfc3339_nanos(system_time(unix_nanos)).to_string()
}

/// A Unix time in nanoseconds (at most the year 2554, within what
/// `humantime` formats).
fn system_time(unix_nanos: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(unix_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::span;

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(format_duration(0), "0ns");
        assert_eq!(format_duration(850), "850ns");
        assert_eq!(format_duration(12_345), "12.3µs");
        assert_eq!(format_duration(999_949), "999.9µs");
        assert_eq!(format_duration(999_950), "1.0ms");
        assert_eq!(format_duration(120_000_000), "120.0ms");
        assert_eq!(format_duration(1_234_000_000), "1.234s");
        assert_eq!(format_duration(u64::MAX), "18446744073.710s");
        assert_eq!(format_signed(-1_500_000), "-1.5ms");
        assert_eq!(format_signed(i64::MIN), "-9223372036.855s");
        assert_eq!(format_change(60_000_000, 100_000_000), "+60.0ms, +60.0%");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00.000");
        assert_eq!(
            format_time(1_700_000_000_123_000_000),
            "2023-11-14 22:13:20.123"
        );
        assert_eq!(
            format_rfc3339(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
        assert_eq!(format_time(u64::MAX), "2554-07-21 23:34:33.709");
    }

    #[test]
    fn bars_are_proportional_and_never_empty() {
        assert_eq!(bar((0, 100), 0, 100, 10), "██████████");
        assert_eq!(bar((50, 60), 0, 100, 10), "     █    ");
        assert_eq!(bar((51, 52), 0, 100, 10), "     █    ");
        assert_eq!(bar((100, 100), 0, 100, 10), "         ▏");
        assert_eq!(bar((0, 0), 0, 0, 10), "▏         ");
        assert_eq!(bar((4, 500), 0, 100, 10), "██████████", "clamped");
        assert_eq!(bar((5, 15), 0, 100, 10), " █        ", "halves round up");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("GET /"), "GET /");
        assert_eq!(clean("a\x1b[31mb\n"), "a\\u{1b}[31mb\\n");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }

    #[test]
    fn colours_only_when_asked() {
        let trace = Trace::from_spans(vec![
            span(1, None, "gw", "root", 0, 100),
            span(2, Some(1), "db", "query", 10, 90),
        ])
        .unwrap();
        let plain = view(&trace, &RenderOptions::new());
        assert!(!plain.contains('\x1b'), "{plain}");
        let coloured = view(&trace, &RenderOptions::new().with_color(true));
        assert!(coloured.contains("\x1b[32m"), "{coloured}");
        assert_eq!(
            strip_ansi(&coloured),
            plain,
            "colours change nothing but colours"
        );
    }

    fn strip_ansi(text: &str) -> String {
        let mut out = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn view_marks_skew_orphans_errors_and_the_bottleneck() {
        let mut failing = span(3, Some(1), "db", "query", 20, 90);
        failing.status = tracewire::Status::Error {
            message: "deadlock".into(),
        };
        let trace = Trace::from_spans(vec![
            span(1, None, "gw", "GET /", 10, 110),
            span(2, Some(1), "auth", "verify", 0, 20),
            failing,
            span(4, Some(77), "mail", "send", 100, 100),
        ])
        .unwrap();
        let text = view(&trace, &RenderOptions::new().with_width(10));
        let expected = "\
trace 00000000000000000000000000000001 · 1970-01-01 00:16:40.000 UTC · 110.0ms · 4 spans · 4 services · 1 error
SERVICE  OPERATION    START  DURATION  TIMELINE
gw       GET /       10.0ms   100.0ms  | █████████|
auth       verify       0ns    20.0ms  | █        |  ~ starts 10.0ms before its parent (clock skew?)
db         query     20.0ms    70.0ms  |  ██████  |  ◀ bottleneck (self 70.0ms)  ✗ error: deadlock
mail     send       100.0ms       0ns  |         ▏|  ? parent 000000000000004d not in trace
critical path 100.0ms; bottleneck db: query (self 70.0ms, 70.0%)
1 span whose parent is not in the loaded input, shown at the top level
";
        assert_eq!(text, expected);
    }
}
