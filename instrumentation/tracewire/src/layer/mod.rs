//! The `tracing-subscriber` layer that turns `tracing` spans into W3C spans.

mod clock;
mod fields;
mod remote;
mod state;

use std::fmt;
use std::sync::Arc;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Subscriber};
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

pub use remote::{
    SetParentError, SpanExt, current_context, current_span_context, with_remote_parent,
    with_remote_parent_recording,
};
pub(crate) use state::SpanState;

use crate::processor::{NoopProcessor, SpanProcessor};
use crate::sampling::{ParentBased, Sampler, SamplingInput, SamplingResult};
use crate::{Baggage, Context, SpanContext, SpanId, TraceFlags, TraceId};
use fields::{EventVisitor, SpanVisitor};
use state::Recording;

/// Most attributes, events and links a span keeps (OpenTelemetry's default
/// span limits); more are counted as dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanLimits {
    /// Most attributes per span.
    pub max_attributes: u32,
    /// Most events per span.
    pub max_events: u32,
    /// Most links per span.
    pub max_links: u32,
    /// Most attributes per event or link.
    pub max_attributes_per_event: u32,
}

impl Default for SpanLimits {
    fn default() -> Self {
        SpanLimits {
            max_attributes: 128,
            max_events: 128,
            max_links: 128,
            max_attributes_per_event: 128,
        }
    }
}

/// A `tracing-subscriber` layer that gives spans W3C trace and span ids,
/// applies head sampling, records sampled spans and hands them to a
/// [`SpanProcessor`] when they close.
///
/// - A child inherits its parent's trace id and flags; a span created in
///   [`with_remote_parent`] continues a trace from another process.
/// - `otel.name`, `otel.kind`, `otel.status_code` and `otel.status_message`
///   fields mean what they mean in `tracing-opentelemetry`.
/// - Only sampled spans record fields and events. Every trace has ids, so an
///   unsampled one propagates and its log lines correlate; an unsampled
///   span under a local parent keeps no state of its own: its context is
///   its nearest ancestor's (for its children, `context()` and its log
///   lines), since its own span id would name a span exported nowhere.
/// - An error field of the span itself (`error = %e`, or any `&dyn Error`
///   value) sets its status to Error and adds an `exception` event. Events
///   inside a span (log lines, even at `ERROR` level or carrying an error)
///   are recorded but leave the status alone unless
///   [`error_events_set_status`](TracewireLayerBuilder::error_events_set_status)
///   is on: a handler that logs an error and answers 200 is not a failed
///   request; the instrumentation sets the status by the protocol's rules.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// use tracewire::sampling::{ParentBased, TraceIdRatio};
/// use tracewire::testing::InMemoryExporter;
/// use tracewire::TracewireLayer;
///
/// let exporter = InMemoryExporter::new();
/// let layer = TracewireLayer::builder()
///     .sampler(ParentBased::new(TraceIdRatio::new(1.0)))
///     .processor(exporter.clone())
///     .build();
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     let span = tracing::info_span!("checkout", otel.kind = "server", items = 3);
///     span.in_scope(|| tracing::info!("reserving stock"));
/// });
/// let span = exporter.span("checkout");
/// assert_eq!(span.kind, tracewire::SpanKind::Server);
/// assert_eq!(span.events[0].name, "reserving stock");
/// ```
#[derive(Clone)]
pub struct TracewireLayer {
    sampler: Arc<dyn Sampler>,
    processor: Arc<dyn SpanProcessor>,
    limits: SpanLimits,
    error_events_set_status: bool,
    pass_through: bool,
}

impl fmt::Debug for TracewireLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracewireLayer")
            .field("sampler", &self.sampler)
            .field("processor", &self.processor)
            .field("limits", &self.limits)
            .field("error_events_set_status", &self.error_events_set_status)
            .field("pass_through", &self.pass_through)
            .finish()
    }
}

/// Configures a [`TracewireLayer`].
#[derive(Debug, Clone)]
pub struct TracewireLayerBuilder {
    layer: TracewireLayer,
}

impl TracewireLayerBuilder {
    /// The head sampler (default: `ParentBased(AlwaysOn)`).
    pub fn sampler(mut self, sampler: impl Sampler) -> Self {
        self.layer.sampler = Arc::new(sampler);
        self
    }

    /// The head sampler, shared.
    pub fn shared_sampler(mut self, sampler: Arc<dyn Sampler>) -> Self {
        self.layer.sampler = sampler;
        self
    }

    /// Where finished sampled spans go (default: dropped).
    pub fn processor(mut self, processor: impl SpanProcessor) -> Self {
        self.layer.processor = Arc::new(processor);
        self
    }

    /// Where finished sampled spans go, shared.
    pub fn shared_processor(mut self, processor: Arc<dyn SpanProcessor>) -> Self {
        self.layer.processor = processor;
        self
    }

    /// Span limits (default: 128 attributes, events and links).
    pub fn limits(mut self, limits: SpanLimits) -> Self {
        self.layer.limits = limits;
        self
    }

    /// Whether an event inside a span sets the span's status to Error when
    /// it is at `ERROR` level or carries an error value, as
    /// `tracing-opentelemetry` does (default: false: the span's own fields
    /// and `otel.status_code` decide its status).
    pub fn error_events_set_status(mut self, enabled: bool) -> Self {
        self.layer.error_events_set_status = enabled;
        self
    }

    /// Tracing off, context passed on (`OTEL_SDK_DISABLED=true`; default:
    /// false). Nothing is sampled, recorded or exported, and no new trace
    /// is started: a span under a remote or local parent carries that
    /// parent's context unchanged (trace id, span id, flags, trace state),
    /// so an incoming trace reaches the next service as it came in, and a
    /// span without one has no context (nothing is injected).
    ///
    /// ```
    /// use tracewire::propagation::{Propagator, TraceContextPropagator};
    /// use tracewire::{SpanExt, TracewireLayer, with_remote_parent};
    /// use tracing_subscriber::prelude::*;
    ///
    /// let layer = TracewireLayer::builder().pass_through(true).build();
    /// let incoming = vec![(
    ///     "traceparent".to_owned(),
    ///     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned(),
    /// )];
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     let cx = TraceContextPropagator::new().extract(&incoming);
    ///     let span = with_remote_parent(&cx, || tracing::info_span!("GET /"));
    ///     let mut outgoing = Vec::<(String, String)>::new();
    ///     TraceContextPropagator::new().inject(&span.context(), &mut outgoing);
    ///     assert_eq!(outgoing, incoming);
    ///     assert!(tracing::info_span!("a new root").context().span_context().is_none());
    /// });
    /// ```
    pub fn pass_through(mut self, enabled: bool) -> Self {
        self.layer.pass_through = enabled;
        self
    }

    /// The layer.
    pub fn build(self) -> TracewireLayer {
        self.layer
    }
}

impl Default for TracewireLayer {
    fn default() -> Self {
        TracewireLayer {
            sampler: Arc::new(ParentBased::default()),
            processor: Arc::new(NoopProcessor),
            limits: SpanLimits::default(),
            error_events_set_status: false,
            pass_through: false,
        }
    }
}

impl TracewireLayer {
    /// A layer with the default sampler sending spans to `processor`.
    pub fn new(processor: impl SpanProcessor) -> Self {
        Self::builder().processor(processor).build()
    }

    /// A builder starting from the defaults.
    pub fn builder() -> TracewireLayerBuilder {
        TracewireLayerBuilder {
            layer: Self::default(),
        }
    }

    /// The processor finished spans go to.
    pub fn processor(&self) -> &Arc<dyn SpanProcessor> {
        &self.processor
    }

    /// The state of a new span under `parent` (`None`: a new trace), which
    /// came from `origin`.
    ///
    /// None when the span needs no state of its own: a span under a local
    /// parent ([`Origin::Local`]) that is not recorded, and, passing through,
    /// any span under a local parent or without a parent. Such a span's
    /// context is its nearest ancestor's: children, [`SpanExt::context`]
    /// and log lines find it by walking up, so the ids, the map insert and
    /// the free that most unsampled spans never need are not made.
    pub(crate) fn start_state(
        &self,
        parent: Option<&SpanContext>,
        origin: Origin,
        baggage: Baggage,
        attrs: Option<&Attributes<'_>>,
        metadata: &'static tracing_core::Metadata<'static>,
    ) -> Option<SpanState> {
        let (local_parent, sampling_hint, resample) = match origin {
            Origin::Local => (true, None, false),
            Origin::Remote { hint, resample } => (false, hint, resample),
        };
        if self.pass_through {
            return parent
                .filter(|_| !local_parent)
                .map(|p| SpanState::new(p.clone(), baggage, None));
        }
        let trace_id = parent.map_or_else(TraceId::random, SpanContext::trace_id);
        let result = match (parent, sampling_hint) {
            (None, Some(true)) => SamplingResult::SAMPLE,
            (None, Some(false)) => SamplingResult::DROP,
            _ => self.sampler.should_sample(&SamplingInput {
                trace_id,
                parent: if resample { None } else { parent },
                metadata,
                attributes: attrs,
            }),
        };
        let sampled = result.is_sampled();
        if !sampled && local_parent && parent.is_some() {
            return None;
        }
        let base_flags = parent.map_or(TraceFlags::RANDOM, |p| p.flags().known());
        let trace_state = match result.trace_state {
            Some(state) => state,
            None => parent.map(|p| p.trace_state().clone()).unwrap_or_default(),
        };
        let cx = SpanContext::new(
            trace_id,
            SpanId::random(),
            base_flags.with_sampled(sampled),
            false,
            trace_state,
        );
        let recording = sampled.then(|| {
            let mut rec = Box::new(Recording::start(
                metadata,
                parent,
                attrs.map_or(0, |a| a.fields().len()),
            ));
            if let Some(attrs) = attrs {
                attrs.record(&mut SpanVisitor::new(&mut rec, &self.limits, false));
            }
            rec
        });
        Some(SpanState::new(cx, baggage, recording))
    }
}

/// Where a new span's parent context comes from.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Origin {
    /// A span of this process (or none: a new trace).
    Local,
    /// Another process (or code setting a parent explicitly): `hint` is a
    /// sampling decision sent without a context (`b3: 0`), `resample` asks
    /// the sampler to decide as for a new trace (a trust boundary).
    Remote { hint: Option<bool>, resample: bool },
}

/// `f` of the state of `span` or of its nearest ancestor that has one (an
/// unsampled span under a local parent has none of its own; a span the
/// traces filter left out is not the layer's).
///
/// Walks up with [`SpanRef::parent`], one lookup per level: `scope()`
/// would look `span` itself up again.
pub(crate) fn with_nearest_state<S, R>(
    span: SpanRef<'_, S>,
    f: impl FnOnce(&SpanState) -> R,
) -> Option<R>
where
    S: for<'a> LookupSpan<'a>,
{
    let mut next = Some(span);
    while let Some(span) = next {
        if let Some(state) = span.extensions().get::<SpanState>() {
            return Some(f(state));
        }
        next = span.parent();
    }
    None
}

/// The context of `span` or of its nearest ancestor that has one, for a
/// new child: the state notes that it has children.
fn nearest_context<S>(span: Option<SpanRef<'_, S>>) -> Option<(SpanContext, Baggage)>
where
    S: for<'a> LookupSpan<'a>,
{
    with_nearest_state(span?, |state| {
        state.note_child();
        (state.cx.clone(), state.baggage.clone())
    })
}

impl<S> tracing_subscriber::Layer<S> for TracewireLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let parent_span = span.parent();
        let remote = if attrs.is_contextual() {
            remote::pending_parent(parent_span.as_ref().map(SpanRef::id))
        } else {
            None
        };
        let from_remote = remote.is_some();
        let (parent, origin, baggage) = match remote {
            Some(cx) => {
                let origin = Origin::Remote {
                    hint: cx.sampling_hint(),
                    resample: cx.resamples(),
                };
                let (parent, baggage) = cx.into_parts();
                (parent, origin, baggage)
            }
            None => match nearest_context(parent_span) {
                Some((cx, baggage)) => (Some(cx), Origin::Local, baggage),
                None => (None, Origin::Local, Baggage::new()),
            },
        };
        let state = self.start_state(
            parent.as_ref(),
            origin,
            baggage,
            Some(attrs),
            attrs.metadata(),
        );
        if from_remote {
            remote::note_recording(state.as_ref().is_some_and(|s| s.recording.is_some()));
        }
        if let Some(state) = state {
            span.extensions_mut().insert(state);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(rec) = ext
            .get_mut::<SpanState>()
            .and_then(|s| s.recording.as_deref_mut())
        {
            values.record(&mut SpanVisitor::new(rec, &self.limits, true));
        }
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let Some(target) = ctx.span(follows) else {
            return;
        };
        // The target's context, or its nearest ancestor's when it has no
        // state of its own.
        let Some(cx) = with_nearest_state(target, |state| state.cx.clone()) else {
            return;
        };
        if let Some(rec) = span
            .extensions_mut()
            .get_mut::<SpanState>()
            .and_then(|s| s.recording.as_deref_mut())
        {
            rec.add_link(cx, &self.limits);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.event_span(event) else {
            return;
        };
        let mut ext = span.extensions_mut();
        let Some(rec) = ext
            .get_mut::<SpanState>()
            .and_then(|s| s.recording.as_deref_mut())
        else {
            return;
        };
        let mut visitor = EventVisitor::new(event.metadata(), &self.limits);
        event.record(&mut visitor);
        let error_level = *event.metadata().level() == tracing_core::Level::ERROR;
        rec.add_event(
            visitor,
            self.error_events_set_status,
            error_level,
            &self.limits,
        );
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let finished = {
            let mut ext = span.extensions_mut();
            ext.get_mut::<SpanState>().and_then(|state| {
                // Unsampled spans have no recording: nothing to clone.
                let rec = state.recording.take()?;
                Some(rec.finish(state.cx.clone()))
            })
        };
        if let Some(data) = finished {
            self.processor.on_end(data);
        }
    }
}

/// Re-parents the span `id` under `cx`, as [`SpanExt::set_parent`] does.
pub(crate) fn reparent<S>(
    layer: &TracewireLayer,
    span: &SpanRef<'_, S>,
    cx: &Context,
) -> Result<(), SetParentError>
where
    S: for<'a> LookupSpan<'a>,
{
    let origin = Origin::Remote {
        hint: cx.sampling_hint(),
        resample: cx.resamples(),
    };
    let state = layer.start_state(
        cx.span_context(),
        origin,
        cx.baggage().clone(),
        None,
        span.metadata(),
    );
    let mut ext = span.extensions_mut();
    let Some(old) = ext.get_mut::<SpanState>() else {
        // An unsampled span under a local parent has no state of its own
        // (its children, if any, took its ancestor's context): it gets one.
        if let Some(state) = state {
            ext.insert(state);
        }
        return Ok(());
    };
    if old.has_children() {
        return Err(SetParentError::HasChildren);
    }
    let Some(mut state) = state else {
        // Passing through with no parent: the span has no context.
        ext.remove::<SpanState>();
        return Ok(());
    };
    if let (Some(new), Some(previous)) = (state.recording.as_mut(), old.recording.take()) {
        new.adopt(*previous);
    }
    *old = state;
    Ok(())
}
