//! The small API instrumentation uses to read and set context: the context
//! of a span, and creating a span under a remote parent.

use std::cell::{Cell, RefCell};

use tracing::Span;
use tracing_core::span::Id;
use tracing_subscriber::Registry;
use tracing_subscriber::registry::LookupSpan;

use super::{SpanState, TracewireLayer};
use crate::span_data::{KeyValue, Str, Value};
use crate::{Context, SpanContext};

/// A remote parent waiting for the next span created under the span that
/// was current when [`with_remote_parent`] was called.
struct Pending {
    cx: Context,
    current: Option<Id>,
    /// Whether the last span that took `cx` is recorded (set by the layer).
    recording: bool,
}

thread_local! {
    static PENDING: RefCell<Option<Pending>> = const { RefCell::new(None) };
    /// How many [`with_remote_parent`] calls are running on this thread.
    /// Every new span checks it: a `Cell` with no destructor is read
    /// without the registration check `PENDING` needs, so spans created
    /// outside `with_remote_parent` (nearly all) skip `PENDING`.
    static ACTIVE: Cell<u32> = const { Cell::new(0) };
}

/// Restores the previous pending parent when `with_remote_parent` returns
/// or unwinds.
struct Restore(Option<Pending>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        let _ = PENDING.try_with(|p| *p.borrow_mut() = previous);
        let _ = ACTIVE.try_with(|a| a.set(a.get().saturating_sub(1)));
    }
}

/// Runs `make_span` so that the spans it creates continue the trace in `cx`
/// (typically extracted from an incoming request or message) instead of
/// the current span's trace. An empty `cx` (nothing extracted, or invalid
/// input) makes them roots of new traces. The baggage of `cx` is attached
/// to them.
///
/// Only spans created directly under the span that was current at the call
/// take `cx` as parent; spans created inside them (if `make_span` enters
/// one) are their ordinary children.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use tracewire::propagation::{Propagator, TraceContextPropagator};
/// use tracewire::{testing::InMemoryExporter, with_remote_parent, TracewireLayer};
///
/// let exporter = InMemoryExporter::new();
/// let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone()));
/// tracing::subscriber::with_default(subscriber, || {
///     let mut headers = http::HeaderMap::new();
///     headers.insert(
///         "traceparent",
///         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap(),
///     );
///     let cx = TraceContextPropagator::new().extract(&headers);
///     let span = with_remote_parent(&cx, || tracing::info_span!("GET /users/{id}"));
///     drop(span);
/// });
/// let span = exporter.span("GET /users/{id}");
/// assert_eq!(span.span_context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
/// assert!(span.parent_is_remote);
/// ```
pub fn with_remote_parent<R>(cx: &Context, make_span: impl FnOnce() -> R) -> R {
    with_remote_parent_recording(cx, make_span).0
}

/// [`with_remote_parent`], and whether the span `make_span` created under
/// `cx` is recorded (what [`SpanExt::is_recording`] says of it), told by
/// the layer as it creates the span, so that instrumentation can skip the
/// work an unsampled span does not need without looking the span up
/// again. `false` when no span took `cx` (disabled, or no tracewire
/// layer); when several did, the last one's.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use tracewire::sampling::AlwaysOff;
/// use tracewire::{Context, SpanExt as _, TracewireLayer, with_remote_parent_recording};
///
/// let layer = TracewireLayer::builder().sampler(AlwaysOff).build();
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     let (span, recording) =
///         with_remote_parent_recording(&Context::new(), || tracing::info_span!("GET /"));
///     assert!(!recording);
///     assert_eq!(recording, span.is_recording());
/// });
/// ```
pub fn with_remote_parent_recording<R>(cx: &Context, make_span: impl FnOnce() -> R) -> (R, bool) {
    let pending = Pending {
        cx: cx.clone(),
        current: Span::current().id(),
        recording: false,
    };
    let previous = PENDING.with(|p| p.borrow_mut().replace(pending));
    ACTIVE.with(|a| a.set(a.get() + 1));
    let restore = Restore(previous);
    let made = make_span();
    let recording = PENDING
        .try_with(|p| p.borrow().as_ref().is_some_and(|p| p.recording))
        .unwrap_or(false);
    drop(restore);
    (made, recording)
}

/// The remote parent for a contextual span whose `tracing` parent is
/// `parent`, if one is pending for it.
pub(super) fn pending_parent(parent: Option<Id>) -> Option<Context> {
    if ACTIVE.with(Cell::get) == 0 {
        return None;
    }
    PENDING
        .try_with(|p| match &*p.borrow() {
            Some(pending) if pending.current == parent => Some(pending.cx.clone()),
            _ => None,
        })
        .ok()
        .flatten()
}

/// Tells the pending remote parent whether the span that just took it is
/// recorded (see [`with_remote_parent_recording`]).
pub(super) fn note_recording(recording: bool) {
    let _ = PENDING.try_with(|p| {
        if let Some(pending) = p.borrow_mut().as_mut() {
            pending.recording = recording;
        }
    });
}

/// Why [`SpanExt::set_parent`] did nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SetParentError {
    /// The span is disabled, or no [`TracewireLayer`] over a
    /// `tracing_subscriber::Registry` is installed.
    #[error("the span is not traced by a tracewire layer")]
    NotTraced,
    /// Children already took the span's old context.
    #[error("the span already has children; set the parent before creating any")]
    HasChildren,
}

/// Reads the state tracewire keeps for `span`.
fn with_state<R>(span: &Span, f: impl FnOnce(&SpanState) -> R) -> Option<R> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let span = registry.span(id)?;
        let ext = span.extensions();
        ext.get::<SpanState>().map(f)
    })
    .flatten()
}

/// `f` of the state of `span` or, when the tracewire layer does not trace
/// it (a span only the log output's filter enabled), of its nearest traced
/// ancestor: the context its work belongs to.
fn with_nearest_state<R>(span: &Span, f: impl FnOnce(&SpanState) -> R) -> Option<R> {
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        super::with_nearest_state(registry.span(id)?, f)
    })
    .flatten()
}

/// Trace context for `tracing` spans.
pub trait SpanExt {
    /// The span's W3C context (ids, flags, trace state), or `None` when the
    /// span is disabled or no tracewire layer is installed. A span the
    /// traces filter left out (enabled for log output only) gives its
    /// nearest traced ancestor's.
    fn span_context(&self) -> Option<SpanContext>;

    /// The span's context and baggage, ready to inject into an outgoing
    /// request. Empty when the span has no context.
    fn context(&self) -> Context;

    /// Makes `cx` the parent of this span: its trace id, parent and sampling
    /// decision are taken again from `cx` (an empty `cx` makes it a new
    /// root). Call it before the span has children and before it is entered,
    /// or log lines already written keep the old ids. Fields given when the
    /// span was created are kept only if it was sampled then;
    /// [`with_remote_parent`] has no such limits.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// use tracewire::{Context, SpanContext, SpanExt, SpanId, TraceFlags, TraceId, TraceState};
    ///
    /// let subscriber = tracing_subscriber::registry().with(tracewire::TracewireLayer::default());
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let remote = SpanContext::new(
    ///         TraceId::from_u128(42),
    ///         SpanId::from_u64(7),
    ///         TraceFlags::SAMPLED,
    ///         true,
    ///         TraceState::default(),
    ///     );
    ///     let span = tracing::info_span!("consume");
    ///     span.set_parent(&Context::from_span_context(remote)).unwrap();
    ///     assert_eq!(span.span_context().unwrap().trace_id(), TraceId::from_u128(42));
    /// });
    /// ```
    fn set_parent(&self, cx: &Context) -> Result<(), SetParentError>;

    /// Adds a link from this span to `cx` (recorded when the span is
    /// sampled).
    fn add_link(&self, cx: &SpanContext);

    /// Whether the span is being recorded (it is sampled and a tracewire
    /// layer keeps its data). Instrumentation checks it before building
    /// attribute values that cost something.
    fn is_recording(&self) -> bool;

    /// Sets attribute `key` to `value` (replacing an earlier value of
    /// `key`), for attributes whose names are only known at run time, such
    /// as `http.request.header.<name>`. Does nothing when the span is not
    /// recorded. Fields known up front are better declared in the span
    /// macro and set with `Span::record`.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// use tracewire::{SpanExt, testing::InMemoryExporter};
    ///
    /// let exporter = InMemoryExporter::new();
    /// let subscriber = tracing_subscriber::registry().with(tracewire::TracewireLayer::new(exporter.clone()));
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let span = tracing::info_span!("GET /");
    ///     assert!(span.is_recording());
    ///     span.set_attribute("http.request.header.x-request-id", "abc".to_owned());
    /// });
    /// let span = exporter.span("GET /");
    /// assert_eq!(span.attribute("http.request.header.x-request-id").unwrap().as_str(), Some("abc"));
    /// ```
    fn set_attribute(&self, key: impl Into<Str>, value: impl Into<Value>)
    where
        Self: Sized;
}

impl SpanExt for Span {
    fn span_context(&self) -> Option<SpanContext> {
        with_nearest_state(self, |s| s.cx.clone())
    }

    fn context(&self) -> Context {
        with_nearest_state(self, |s| {
            Context::from_span_context(s.cx.clone()).with_baggage(s.baggage.clone())
        })
        .unwrap_or_default()
    }

    fn set_parent(&self, cx: &Context) -> Result<(), SetParentError> {
        self.with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            let layer = dispatch.downcast_ref::<TracewireLayer>()?;
            let span = registry.span(id)?;
            Some(super::reparent(layer, &span, cx))
        })
        .flatten()
        .unwrap_or(Err(SetParentError::NotTraced))
    }

    fn add_link(&self, cx: &SpanContext) {
        self.with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            let layer = dispatch.downcast_ref::<TracewireLayer>()?;
            let span = registry.span(id)?;
            let mut ext = span.extensions_mut();
            let rec = ext.get_mut::<SpanState>()?.recording.as_deref_mut()?;
            rec.add_link(cx.clone(), &layer.limits);
            Some(())
        });
    }

    fn is_recording(&self) -> bool {
        with_state(self, |s| s.recording.is_some()).unwrap_or(false)
    }

    fn set_attribute(&self, key: impl Into<Str>, value: impl Into<Value>) {
        self.with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            let layer = dispatch.downcast_ref::<TracewireLayer>()?;
            let span = registry.span(id)?;
            let mut ext = span.extensions_mut();
            let rec = ext.get_mut::<SpanState>()?.recording.as_deref_mut()?;
            let kv = KeyValue {
                key: key.into(),
                value: value.into(),
            };
            rec.set_attribute(kv, true, &layer.limits);
            Some(())
        });
    }
}

/// The context of the current span (see [`SpanExt::context`]): what a
/// client injects into an outgoing request.
pub fn current_context() -> Context {
    Span::current().context()
}

/// The W3C context of the current span, if any.
pub fn current_span_context() -> Option<SpanContext> {
    Span::current().span_context()
}
