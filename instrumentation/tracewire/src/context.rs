//! The identity of a span as it travels: ids, flags, trace state, baggage.

use std::fmt;

use crate::{Baggage, SpanId, TraceId, TraceState};

/// The 8 bits of W3C trace flags.
///
/// ```
/// use tracewire::TraceFlags;
///
/// let flags = TraceFlags::SAMPLED | TraceFlags::RANDOM;
/// assert!(flags.is_sampled() && flags.is_random());
/// assert_eq!(flags.to_string(), "03");
/// assert_eq!(TraceFlags::from_bits(0xff).known(), flags);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TraceFlags(u8);

impl TraceFlags {
    /// No flag set.
    pub const NONE: TraceFlags = TraceFlags(0);
    /// Bit 0: the caller may have recorded this trace.
    pub const SAMPLED: TraceFlags = TraceFlags(0x01);
    /// Bit 1 (Level 2): at least the low 56 bits of the trace id are random.
    pub const RANDOM: TraceFlags = TraceFlags(0x02);

    /// Flags from their byte, unknown bits included.
    pub const fn from_bits(bits: u8) -> Self {
        TraceFlags(bits)
    }

    /// The byte, unknown bits included.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Only the bits this implementation knows (sampled and random): what is
    /// sent onward.
    pub const fn known(self) -> Self {
        TraceFlags(self.0 & (Self::SAMPLED.0 | Self::RANDOM.0))
    }

    /// Whether the sampled bit is set.
    pub const fn is_sampled(self) -> bool {
        self.0 & Self::SAMPLED.0 != 0
    }

    /// Whether the random bit is set.
    pub const fn is_random(self) -> bool {
        self.0 & Self::RANDOM.0 != 0
    }

    /// These flags with the sampled bit set to `sampled`.
    pub const fn with_sampled(self, sampled: bool) -> Self {
        if sampled {
            TraceFlags(self.0 | Self::SAMPLED.0)
        } else {
            TraceFlags(self.0 & !Self::SAMPLED.0)
        }
    }

    /// The two lowercase hex digits of the flags byte.
    pub fn to_hex(self) -> crate::id::HexBuf<2> {
        let mut buf = [0u8; 2];
        crate::id::encode_hex(&[self.0], &mut buf);
        crate::id::HexBuf::from_raw(buf)
    }
}

impl std::ops::BitOr for TraceFlags {
    type Output = TraceFlags;
    fn bitor(self, rhs: Self) -> Self {
        TraceFlags(self.0 | rhs.0)
    }
}

impl fmt::Display for TraceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_hex().as_str())
    }
}

impl fmt::Debug for TraceFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceFlags({self})")
    }
}

/// The part of a span that crosses process boundaries: trace id, span id,
/// flags, trace state, and whether it came from another process.
///
/// ```
/// use tracewire::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
///
/// let cx = SpanContext::new(
///     TraceId::from_u128(1),
///     SpanId::from_u64(2),
///     TraceFlags::SAMPLED,
///     true,
///     TraceState::default(),
/// );
/// assert!(cx.is_valid() && cx.is_sampled() && cx.is_remote());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SpanContext {
    trace_id: TraceId,
    span_id: SpanId,
    flags: TraceFlags,
    is_remote: bool,
    trace_state: TraceState,
}

impl SpanContext {
    /// A span context from its parts.
    pub const fn new(
        trace_id: TraceId,
        span_id: SpanId,
        flags: TraceFlags,
        is_remote: bool,
        trace_state: TraceState,
    ) -> Self {
        SpanContext {
            trace_id,
            span_id,
            flags,
            is_remote,
            trace_state,
        }
    }

    /// The invalid context: all-zero ids, no flags.
    pub const INVALID: SpanContext = SpanContext::new(
        TraceId::INVALID,
        SpanId::INVALID,
        TraceFlags::NONE,
        false,
        TraceState::new(),
    );

    /// The trace id.
    pub const fn trace_id(&self) -> TraceId {
        self.trace_id
    }
    /// The span id.
    pub const fn span_id(&self) -> SpanId {
        self.span_id
    }
    /// The trace flags.
    pub const fn flags(&self) -> TraceFlags {
        self.flags
    }
    /// Whether the sampled flag is set.
    pub const fn is_sampled(&self) -> bool {
        self.flags.is_sampled()
    }
    /// Whether this context was extracted from another process.
    pub const fn is_remote(&self) -> bool {
        self.is_remote
    }
    /// The W3C trace state.
    pub const fn trace_state(&self) -> &TraceState {
        &self.trace_state
    }
    /// Whether both ids are valid (non-zero).
    pub const fn is_valid(&self) -> bool {
        self.trace_id.is_valid() && self.span_id.is_valid()
    }

    /// This context with another trace state.
    pub fn with_trace_state(mut self, trace_state: TraceState) -> Self {
        self.trace_state = trace_state;
        self
    }

    /// This context with other flags.
    pub const fn with_flags(mut self, flags: TraceFlags) -> Self {
        self.flags = flags;
        self
    }
}

impl Default for SpanContext {
    fn default() -> Self {
        Self::INVALID
    }
}

impl fmt::Debug for SpanContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpanContext")
            .field("trace_id", &format_args!("{}", self.trace_id))
            .field("span_id", &format_args!("{}", self.span_id))
            .field("flags", &format_args!("{}", self.flags))
            .field("is_remote", &self.is_remote)
            .field("trace_state", &self.trace_state)
            .finish()
    }
}

/// What a propagator reads from or writes to a carrier: the span context
/// (if any) and the baggage.
///
/// ```
/// use tracewire::{Baggage, Context};
///
/// let cx = Context::new().with_baggage(Baggage::new().insert("user", "alice").unwrap());
/// assert!(cx.span_context().is_none());
/// assert_eq!(cx.baggage().get("user"), Some("alice"));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Context {
    span_context: Option<SpanContext>,
    baggage: Baggage,
    sampling_hint: Option<bool>,
    resample: bool,
}

impl Context {
    /// An empty context: no span, no baggage.
    pub const fn new() -> Self {
        Context {
            span_context: None,
            baggage: Baggage::new(),
            sampling_hint: None,
            resample: false,
        }
    }

    /// A context holding a span context.
    pub fn from_span_context(span_context: SpanContext) -> Self {
        Context::new().with_span_context(span_context)
    }

    /// The span context, if a valid one is present.
    pub fn span_context(&self) -> Option<&SpanContext> {
        self.span_context.as_ref()
    }

    /// The baggage (possibly empty).
    pub fn baggage(&self) -> &Baggage {
        &self.baggage
    }

    /// This context with `span_context` (an invalid one is stored as none).
    pub fn with_span_context(mut self, span_context: SpanContext) -> Self {
        self.span_context = span_context.is_valid().then_some(span_context);
        self
    }

    /// This context without a span context.
    pub fn without_span_context(mut self) -> Self {
        self.span_context = None;
        self
    }

    /// This context with `baggage`.
    pub fn with_baggage(mut self, baggage: Baggage) -> Self {
        self.baggage = baggage;
        self
    }

    /// A sampling decision received without a span context (B3's `b3: 0`
    /// says "do not sample" without ids). A span started under such a
    /// context begins a new trace and follows the decision instead of asking
    /// the sampler.
    pub fn sampling_hint(&self) -> Option<bool> {
        self.sampling_hint
    }

    /// This context with a sampling decision that has no span context.
    pub fn with_sampling_hint(mut self, sampled: bool) -> Self {
        self.sampling_hint = Some(sampled);
        self
    }

    /// Whether a span started under this context ignores the sampled flag
    /// of its (remote) parent: see [`Context::with_resampling`].
    pub fn resamples(&self) -> bool {
        self.resample
    }

    /// This context with the parent's sampled flag ignored: a span started
    /// under it keeps the parent's trace id and parent id, but the sampler
    /// decides for it as for the root of a new trace (`ParentBased` asks its
    /// root sampler). A trust boundary uses it so that callers cannot force
    /// or suppress recording.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// use tracewire::sampling::{AlwaysOff, ParentBased};
    /// use tracewire::{Context, SpanContext, SpanExt, SpanId, TraceFlags, TraceId, TraceState};
    ///
    /// let layer = tracewire::TracewireLayer::builder().sampler(ParentBased::new(AlwaysOff)).build();
    /// let subscriber = tracing_subscriber::registry().with(layer);
    /// tracing::subscriber::with_default(subscriber, || {
    ///     let caller = SpanContext::new(
    ///         TraceId::from_u128(42),
    ///         SpanId::from_u64(7),
    ///         TraceFlags::SAMPLED,
    ///         true,
    ///         TraceState::default(),
    ///     );
    ///     let cx = Context::from_span_context(caller).with_resampling();
    ///     let span = tracewire::with_remote_parent(&cx, || tracing::info_span!("GET /"));
    ///     let own = span.span_context().unwrap();
    ///     assert_eq!(own.trace_id(), TraceId::from_u128(42));
    ///     assert!(!own.is_sampled()); // the root sampler said no
    /// });
    /// ```
    pub fn with_resampling(mut self) -> Self {
        self.resample = true;
        self
    }

    /// Splits the context into its parts.
    pub fn into_parts(self) -> (Option<SpanContext>, Baggage) {
        (self.span_context, self.baggage)
    }
}
