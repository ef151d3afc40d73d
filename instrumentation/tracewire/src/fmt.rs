//! Log correlation: `trace_id`, `span_id` and `trace_flags` on every log
//! line written inside a span, sampled or not.
//!
//! [`CorrelatedFormat`] wraps `tracing-subscriber`'s text or JSON format.
//! It reads the ids the [`TracewireLayer`](crate::TracewireLayer) stored
//! for the event's span, so the ids in a log line are the ids of the
//! exported span. Events outside any span get no ids (not zeros). `log`
//! records bridged by `tracing-log` are stamped the same way.
//!
//! ```
//! use tracing_subscriber::prelude::*;
//!
//! let subscriber = tracing_subscriber::registry()
//!     .with(tracewire::TracewireLayer::default())
//!     .with(tracewire::fmt::json_layer()); // or text_layer()
//! tracing::subscriber::with_default(subscriber, || {
//!     let _span = tracing::info_span!("request").entered();
//!     // {"trace_id":"…","span_id":"…","trace_flags":"03","timestamp":…}
//!     tracing::info!("handled");
//! });
//! ```

use std::cell::RefCell;
use std::fmt;

use tracing_core::{Event, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Format, Full, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::SpanContext;
use crate::layer::with_nearest_state;

/// The field names, as the OpenTelemetry logs data model spells them.
const TRACE_ID: &str = "trace_id";
const SPAN_ID: &str = "span_id";
const TRACE_FLAGS: &str = "trace_flags";

thread_local! {
    static BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A fmt layer writing text lines stamped with the trace context.
pub fn text_layer<S>()
-> tracing_subscriber::fmt::Layer<S, DefaultFields, CorrelatedFormat<Format<Full>>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer().event_format(CorrelatedFormat::text())
}

/// A fmt layer writing one JSON object per line with top-level
/// `trace_id`, `span_id` and `trace_flags`.
pub fn json_layer<S>()
-> tracing_subscriber::fmt::Layer<S, JsonFields, CorrelatedFormat<Format<Json>>>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer()
        .json()
        .event_format(CorrelatedFormat::json())
}

/// The context of the span an event belongs to (its explicit parent, or the
/// current span), or of that span's nearest traced ancestor.
fn event_context<S, N>(ctx: &FmtContext<'_, S, N>) -> Option<SpanContext>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    with_nearest_state(ctx.parent_span()?, |state| state.cx.clone())
}

/// Which shape of output is being stamped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shape {
    /// ` trace_id=… span_id=… trace_flags=…` before the line end.
    Text,
    /// `"trace_id":"…","span_id":"…","trace_flags":"…"` as the first
    /// top-level fields of the object.
    Json,
}

/// A [`FormatEvent`] that writes an event with the inner format and adds the
/// trace context of its span.
///
/// Text lines end with `trace_id=… span_id=… trace_flags=…`; JSON objects
/// get top-level `"trace_id"`, `"span_id"` and `"trace_flags"` fields.
#[derive(Clone, Debug)]
pub struct CorrelatedFormat<F> {
    plain: F,
    ansi: F,
    shape: Shape,
}

impl CorrelatedFormat<Format<Full>> {
    /// The default text format, stamped.
    pub fn text() -> Self {
        Self::text_with(Format::default())
    }
}

impl CorrelatedFormat<Format<Json>> {
    /// The default JSON format (one object per line), stamped. The fmt
    /// layer must format span fields as JSON too (`fmt::layer().json()`,
    /// or use [`json_layer`]).
    pub fn json() -> Self {
        Self::json_with(Format::default().json())
    }
}

impl<L, T: Clone> CorrelatedFormat<Format<L, T>>
where
    L: Clone,
{
    /// A text format configured by the caller (e.g. `format().compact()`),
    /// stamped. Colours follow the fmt layer's ANSI setting.
    pub fn text_with(format: Format<L, T>) -> Self {
        CorrelatedFormat {
            plain: format.clone().with_ansi(false),
            ansi: format.with_ansi(true),
            shape: Shape::Text,
        }
    }
}

impl<T: Clone> CorrelatedFormat<Format<Json, T>> {
    /// A JSON format configured by the caller (e.g. with
    /// `flatten_event(true)`), stamped.
    pub fn json_with(format: Format<Json, T>) -> Self {
        CorrelatedFormat {
            plain: format.clone(),
            ansi: format,
            shape: Shape::Json,
        }
    }
}

impl<S, N, F> FormatEvent<S, N> for CorrelatedFormat<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let inner = if writer.has_ansi_escapes() {
            &self.ansi
        } else {
            &self.plain
        };
        let Some(cx) = event_context(ctx) else {
            return inner.format_event(ctx, writer, event);
        };
        with_buffer(|buf| {
            inner.format_event(ctx, Writer::new(buf), event)?;
            write_stamped(self.shape, buf, &cx, &mut writer)
        })
    }
}

/// Runs `f` with this thread's cleared line buffer, or with a new one when
/// the buffer is in use (an event formatted while formatting another).
fn with_buffer<R>(f: impl FnOnce(&mut String) -> R) -> R {
    let mut f = Some(f);
    let done = BUFFER.try_with(|cell| {
        let mut buf = cell.try_borrow_mut().ok()?;
        buf.clear();
        let result = f.take().map(|f| f(&mut buf));
        if buf.capacity() > 64 * 1024 {
            *buf = String::new();
        }
        result
    });
    match (done, f) {
        (Ok(Some(result)), _) => result,
        (_, Some(f)) => f(&mut String::new()),
        (_, None) => unreachable!("the closure ran but returned nothing"),
    }
}

/// Writes the formatted event in `line` to `out` with the context added.
fn write_stamped(shape: Shape, line: &str, cx: &SpanContext, out: &mut Writer<'_>) -> fmt::Result {
    let (trace_id, span_id, flags) = (
        cx.trace_id().to_hex(),
        cx.span_id().to_hex(),
        cx.flags().to_hex(),
    );
    // Plain `write_str`s: `write!` would run the formatting machinery for
    // every log line.
    let (trace_id, span_id, flags) = (trace_id.as_str(), span_id.as_str(), flags.as_str());
    match shape {
        Shape::Json => match line.strip_prefix('{') {
            Some(rest) => {
                for piece in [
                    "{\"",
                    TRACE_ID,
                    "\":\"",
                    trace_id,
                    "\",\"",
                    SPAN_ID,
                    "\":\"",
                    span_id,
                    "\",\"",
                    TRACE_FLAGS,
                    "\":\"",
                    flags,
                    "\"",
                ] {
                    out.write_str(piece)?;
                }
                if !rest.starts_with('}') {
                    out.write_char(',')?;
                }
                out.write_str(rest)
            }
            None => out.write_str(line),
        },
        Shape::Text => {
            let (body, newline) = match line.strip_suffix('\n') {
                Some(body) => (body, "\n"),
                None => (line, ""),
            };
            for piece in [
                body,
                " ",
                TRACE_ID,
                "=",
                trace_id,
                " ",
                SPAN_ID,
                "=",
                span_id,
                " ",
                TRACE_FLAGS,
                "=",
                flags,
                newline,
            ] {
                out.write_str(piece)?;
            }
            Ok(())
        }
    }
}
