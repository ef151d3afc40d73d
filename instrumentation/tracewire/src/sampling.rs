//! Head sampling: the decision, made when a span starts, whether it is
//! recorded and exported.
//!
//! Samplers decide at every span; [`ParentBased`] (the default) makes
//! children follow their parent so that only local roots consult the root
//! sampler.
//!
//! ```
//! use tracewire::sampling::{ParentBased, Sampler, TraceIdRatio};
//!
//! // Keep 10% of new traces; follow the caller's decision otherwise.
//! let sampler = ParentBased::new(TraceIdRatio::new(0.1));
//! # let _ = sampler;
//! ```

mod adaptive;

pub use adaptive::{AdaptiveSampler, Clock, ManualClock, RateLimitingSampler, SystemClock};

use std::fmt;
use std::sync::Arc;

use tracing_core::Metadata;
use tracing_core::field::{Field, Visit};
use tracing_core::span::Attributes;

use crate::{SpanContext, SpanKind, TraceId, TraceState};

/// What a sampler knows about a span that is starting.
#[derive(Clone, Copy)]
pub struct SamplingInput<'a> {
    /// The trace id the span will have.
    pub trace_id: TraceId,
    /// The parent's context: `None` for a new trace.
    pub parent: Option<&'a SpanContext>,
    /// The `tracing` metadata of the span.
    pub metadata: &'static Metadata<'static>,
    /// The fields given when the span was created, when available.
    pub attributes: Option<&'a Attributes<'a>>,
}

impl SamplingInput<'_> {
    /// The span name: `otel.name` when given at creation, else the `tracing`
    /// span name.
    pub fn name(&self) -> String {
        self.field_str("otel.name")
            .unwrap_or_else(|| self.metadata.name().to_owned())
    }

    /// The span kind from an `otel.kind` field given at creation.
    pub fn kind(&self) -> SpanKind {
        self.field_str("otel.kind")
            .and_then(|k| SpanKind::parse(&k))
            .unwrap_or_default()
    }

    /// The value of field `name` given at creation, as a string.
    pub fn field_str(&self, name: &str) -> Option<String> {
        struct Find<'n> {
            name: &'n str,
            found: Option<String>,
        }
        impl Visit for Find<'_> {
            fn record_str(&mut self, field: &Field, value: &str) {
                if field.name() == self.name {
                    self.found = Some(value.to_owned());
                }
            }
            fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
                if field.name() == self.name {
                    self.found = Some(format!("{value:?}"));
                }
            }
        }
        let mut find = Find { name, found: None };
        self.attributes?.record(&mut find);
        find.found
    }
}

impl fmt::Debug for SamplingInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SamplingInput")
            .field("trace_id", &self.trace_id)
            .field("parent", &self.parent)
            .field("name", &self.metadata.name())
            .finish()
    }
}

/// Whether a span is recorded and exported.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SamplingDecision {
    /// Not recorded; the span still has ids so that it propagates and its
    /// log lines correlate.
    Drop,
    /// Recorded, exported and flagged sampled.
    RecordAndSample,
}

/// A sampler's answer.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SamplingResult {
    /// The decision.
    pub decision: SamplingDecision,
    /// A new trace state for the span, or `None` to keep the parent's.
    pub trace_state: Option<TraceState>,
}

impl SamplingResult {
    /// Sample, keeping the parent's trace state.
    pub const SAMPLE: SamplingResult = SamplingResult {
        decision: SamplingDecision::RecordAndSample,
        trace_state: None,
    };
    /// Drop, keeping the parent's trace state.
    pub const DROP: SamplingResult = SamplingResult {
        decision: SamplingDecision::Drop,
        trace_state: None,
    };

    /// `SAMPLE` when `sampled`, else `DROP`.
    pub const fn from_bool(sampled: bool) -> Self {
        if sampled { Self::SAMPLE } else { Self::DROP }
    }

    /// Whether the decision is to sample.
    pub fn is_sampled(&self) -> bool {
        self.decision == SamplingDecision::RecordAndSample
    }
}

/// Decides whether a starting span is sampled.
pub trait Sampler: Send + Sync + fmt::Debug + 'static {
    /// The decision for the span described by `input`.
    fn should_sample(&self, input: &SamplingInput<'_>) -> SamplingResult;
}

impl<S: Sampler + ?Sized> Sampler for Arc<S> {
    fn should_sample(&self, input: &SamplingInput<'_>) -> SamplingResult {
        (**self).should_sample(input)
    }
}

impl<S: Sampler + ?Sized> Sampler for Box<S> {
    fn should_sample(&self, input: &SamplingInput<'_>) -> SamplingResult {
        (**self).should_sample(input)
    }
}

/// Samples every span.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysOn;

impl Sampler for AlwaysOn {
    fn should_sample(&self, _: &SamplingInput<'_>) -> SamplingResult {
        SamplingResult::SAMPLE
    }
}

/// Samples no span.
#[derive(Clone, Copy, Debug, Default)]
pub struct AlwaysOff;

impl Sampler for AlwaysOff {
    fn should_sample(&self, _: &SamplingInput<'_>) -> SamplingResult {
        SamplingResult::DROP
    }
}

/// Samples a fixed share of traces, deterministically on the trace id, with
/// the algorithm the Go, Java and Rust OpenTelemetry SDKs use: sample when
/// the low 8 bytes of the trace id, big-endian, shifted right by one, are
/// below `ratio · 2^63`. A higher ratio samples a superset of a lower one.
///
/// ```
/// use tracewire::sampling::TraceIdRatio;
/// use tracewire::TraceId;
///
/// let half = TraceIdRatio::new(0.5);
/// assert!(half.samples(TraceId::from_u128(0x0000_0000_0000_0000_3fff_ffff_ffff_ffff)));
/// assert!(!half.samples(TraceId::from_u128(0x0000_0000_0000_0000_8000_0000_0000_0000)));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct TraceIdRatio {
    ratio: f64,
    threshold: u64,
}

impl TraceIdRatio {
    /// A sampler keeping `ratio` of traces; values outside `[0, 1]` are
    /// clamped and NaN counts as 0.
    pub fn new(ratio: f64) -> Self {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        // 2^63 fits in u64; the cast saturates, as the other SDKs' casts do.
        let threshold = (ratio * (1u64 << 63) as f64) as u64;
        TraceIdRatio { ratio, threshold }
    }

    /// The configured ratio.
    pub fn ratio(&self) -> f64 {
        self.ratio
    }

    /// Whether a trace with this id is sampled.
    pub fn samples(&self, trace_id: TraceId) -> bool {
        let low = trace_id.to_u128() as u64;
        (low >> 1) < self.threshold
    }
}

impl Sampler for TraceIdRatio {
    fn should_sample(&self, input: &SamplingInput<'_>) -> SamplingResult {
        SamplingResult::from_bool(self.samples(input.trace_id))
    }
}

/// Follows the parent's decision and asks a root sampler for new traces.
/// Each of the five cases can have its own sampler.
///
/// ```
/// use tracewire::sampling::{AlwaysOff, AlwaysOn, ParentBased, TraceIdRatio};
///
/// // An edge service: ignore callers that ask not to sample.
/// let sampler = ParentBased::new(TraceIdRatio::new(0.01))
///     .remote_parent_not_sampled(AlwaysOn);
/// # let _ = (sampler, AlwaysOff);
/// ```
#[derive(Clone, Debug)]
pub struct ParentBased {
    root: Arc<dyn Sampler>,
    remote_parent_sampled: Arc<dyn Sampler>,
    remote_parent_not_sampled: Arc<dyn Sampler>,
    local_parent_sampled: Arc<dyn Sampler>,
    local_parent_not_sampled: Arc<dyn Sampler>,
}

impl ParentBased {
    /// Parent-based sampling with `root` for spans without a parent; the
    /// parent's sampled flag decides otherwise.
    pub fn new(root: impl Sampler) -> Self {
        ParentBased {
            root: Arc::new(root),
            remote_parent_sampled: Arc::new(AlwaysOn),
            remote_parent_not_sampled: Arc::new(AlwaysOff),
            local_parent_sampled: Arc::new(AlwaysOn),
            local_parent_not_sampled: Arc::new(AlwaysOff),
        }
    }

    /// The sampler for spans whose remote parent is sampled.
    pub fn remote_parent_sampled(mut self, sampler: impl Sampler) -> Self {
        self.remote_parent_sampled = Arc::new(sampler);
        self
    }

    /// The sampler for spans whose remote parent is not sampled.
    pub fn remote_parent_not_sampled(mut self, sampler: impl Sampler) -> Self {
        self.remote_parent_not_sampled = Arc::new(sampler);
        self
    }

    /// The sampler for spans whose local parent is sampled.
    pub fn local_parent_sampled(mut self, sampler: impl Sampler) -> Self {
        self.local_parent_sampled = Arc::new(sampler);
        self
    }

    /// The sampler for spans whose local parent is not sampled.
    pub fn local_parent_not_sampled(mut self, sampler: impl Sampler) -> Self {
        self.local_parent_not_sampled = Arc::new(sampler);
        self
    }
}

impl Default for ParentBased {
    fn default() -> Self {
        ParentBased::new(AlwaysOn)
    }
}

impl Sampler for ParentBased {
    fn should_sample(&self, input: &SamplingInput<'_>) -> SamplingResult {
        let delegate = match input.parent {
            None => &self.root,
            Some(p) => match (p.is_remote(), p.is_sampled()) {
                (true, true) => &self.remote_parent_sampled,
                (true, false) => &self.remote_parent_not_sampled,
                (false, true) => &self.local_parent_sampled,
                (false, false) => &self.local_parent_not_sampled,
            },
        };
        delegate.should_sample(input)
    }
}

/// A configuration problem found while reading settings; `reason` says
/// what was used instead (the default, or the nearest value in range).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("invalid value {value:?} for {variable}: {reason}")]
pub struct ConfigWarning {
    /// The variable, e.g. `OTEL_TRACES_SAMPLER`.
    pub variable: &'static str,
    /// The value found.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Builds the sampler named by `OTEL_TRACES_SAMPLER` and
/// `OTEL_TRACES_SAMPLER_ARG` (pass the variables' values). Empty values
/// count as unset; names are case-insensitive; invalid values give a
/// warning and the default (`parentbased_always_on`, ratio 1.0).
///
/// ```
/// use tracewire::sampling::sampler_from_otel;
///
/// let (sampler, warnings) = sampler_from_otel(Some("parentbased_traceidratio"), Some("0.25"));
/// assert!(warnings.is_empty());
/// let (_, warnings) = sampler_from_otel(Some("traceidratio"), Some("2"));
/// assert_eq!(warnings[0].variable, "OTEL_TRACES_SAMPLER_ARG");
/// # let _ = sampler;
/// ```
pub fn sampler_from_otel(
    sampler: Option<&str>,
    arg: Option<&str>,
) -> (Arc<dyn Sampler>, Vec<ConfigWarning>) {
    let mut warnings = Vec::new();
    let sampler = sampler.map(str::trim).filter(|s| !s.is_empty());
    let arg = arg.map(str::trim).filter(|s| !s.is_empty());
    let mut ratio = || -> f64 {
        let Some(raw) = arg else { return 1.0 };
        match raw.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => {
                warnings.push(ConfigWarning {
                    variable: "OTEL_TRACES_SAMPLER_ARG",
                    value: raw.to_owned(),
                    reason: "expected a number from 0 to 1; using 1.0",
                });
                1.0
            }
        }
    };
    let name = sampler.map(str::to_ascii_lowercase);
    let chosen: Arc<dyn Sampler> = match name.as_deref() {
        None | Some("parentbased_always_on") => Arc::new(ParentBased::new(AlwaysOn)),
        Some("always_on") => Arc::new(AlwaysOn),
        Some("always_off") => Arc::new(AlwaysOff),
        Some("traceidratio") => Arc::new(TraceIdRatio::new(ratio())),
        Some("parentbased_always_off") => Arc::new(ParentBased::new(AlwaysOff)),
        Some("parentbased_traceidratio") => Arc::new(ParentBased::new(TraceIdRatio::new(ratio()))),
        Some(_) => {
            warnings.push(ConfigWarning {
                variable: "OTEL_TRACES_SAMPLER",
                value: sampler.unwrap_or_default().to_owned(),
                reason: "unknown sampler; using parentbased_always_on",
            });
            Arc::new(ParentBased::new(AlwaysOn))
        }
    };
    (chosen, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SpanId, TraceFlags};

    static META: Metadata<'static> = {
        struct Cs;
        impl tracing_core::Callsite for Cs {
            fn set_interest(&self, _: tracing_core::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                &META
            }
        }
        static CS: Cs = Cs;
        Metadata::new(
            "test",
            "test",
            tracing_core::Level::INFO,
            None,
            None,
            None,
            tracing_core::field::FieldSet::new(&[], tracing_core::callsite::Identifier(&CS)),
            tracing_core::metadata::Kind::SPAN,
        )
    };

    fn input(trace_id: TraceId, parent: Option<&SpanContext>) -> SamplingInput<'_> {
        SamplingInput {
            trace_id,
            parent,
            metadata: &META,
            attributes: None,
        }
    }

    fn parent(remote: bool, sampled: bool) -> SpanContext {
        SpanContext::new(
            TraceId::from_u128(1),
            SpanId::from_u64(1),
            TraceFlags::NONE.with_sampled(sampled),
            remote,
            TraceState::default(),
        )
    }

    #[test]
    fn ratio_matches_other_sdks() {
        // low 8 bytes = 0x7fff..fe: >> 1 = 0x3fff..ff, just below 0.5 · 2^63.
        let below = TraceId::from_u128(0xffff_ffff_ffff_ffff_7fff_ffff_ffff_fffe);
        let at = TraceId::from_u128(0x0000_0000_0000_0000_8000_0000_0000_0000);
        let half = TraceIdRatio::new(0.5);
        assert!(half.samples(below));
        assert!(!half.samples(at));
        // The high bytes play no part.
        assert!(half.samples(TraceId::from_u128(0x7fff_ffff_ffff_fffe)));
        assert!(TraceIdRatio::new(1.0).samples(TraceId::from_u128(u128::MAX)));
        assert!(!TraceIdRatio::new(0.0).samples(TraceId::from_u128(1)));
        assert!(!TraceIdRatio::new(f64::NAN).samples(TraceId::from_u128(1)));
    }

    #[test]
    fn higher_ratio_samples_a_superset() {
        let low = TraceIdRatio::new(0.1);
        let high = TraceIdRatio::new(0.3);
        let mut kept = 0;
        for _ in 0..10_000 {
            let id = TraceId::random();
            if low.samples(id) {
                assert!(high.samples(id));
            }
            kept += usize::from(high.samples(id));
        }
        assert!((2_500..3_500).contains(&kept), "{kept}");
    }

    #[test]
    fn parent_based_follows_each_parent_kind() {
        let s = ParentBased::new(AlwaysOff);
        let id = TraceId::from_u128(7);
        assert!(!s.should_sample(&input(id, None)).is_sampled());
        assert!(
            s.should_sample(&input(id, Some(&parent(true, true))))
                .is_sampled()
        );
        assert!(
            !s.should_sample(&input(id, Some(&parent(true, false))))
                .is_sampled()
        );
        assert!(
            s.should_sample(&input(id, Some(&parent(false, true))))
                .is_sampled()
        );
        assert!(
            !s.should_sample(&input(id, Some(&parent(false, false))))
                .is_sampled()
        );

        let edge = ParentBased::new(AlwaysOn)
            .remote_parent_sampled(AlwaysOff)
            .remote_parent_not_sampled(AlwaysOn)
            .local_parent_sampled(AlwaysOff)
            .local_parent_not_sampled(AlwaysOn);
        assert!(
            !edge
                .should_sample(&input(id, Some(&parent(true, true))))
                .is_sampled()
        );
        assert!(
            edge.should_sample(&input(id, Some(&parent(true, false))))
                .is_sampled()
        );
        assert!(
            !edge
                .should_sample(&input(id, Some(&parent(false, true))))
                .is_sampled()
        );
        assert!(
            edge.should_sample(&input(id, Some(&parent(false, false))))
                .is_sampled()
        );
    }

    #[test]
    fn otel_sampler_variables() {
        let id = TraceId::from_u128(u128::MAX);
        let sampled = |name: Option<&str>, arg: Option<&str>, parent: Option<&SpanContext>| {
            let (s, w) = sampler_from_otel(name, arg);
            (s.should_sample(&input(id, parent)).is_sampled(), w.len())
        };
        assert_eq!(sampled(None, None, None), (true, 0));
        assert_eq!(sampled(Some(""), Some(""), None), (true, 0));
        assert_eq!(sampled(Some("ALWAYS_OFF"), None, None), (false, 0));
        assert_eq!(
            sampled(Some("always_off"), None, Some(&parent(true, true))),
            (false, 0)
        );
        assert_eq!(
            sampled(Some("always_on"), None, Some(&parent(true, false))),
            (true, 0)
        );
        assert_eq!(sampled(Some("traceidratio"), Some("0"), None), (false, 0));
        assert_eq!(sampled(Some("traceidratio"), None, None), (true, 0));
        assert_eq!(
            sampled(Some("parentbased_always_off"), None, None),
            (false, 0)
        );
        assert_eq!(
            sampled(
                Some("parentbased_always_off"),
                None,
                Some(&parent(false, true))
            ),
            (true, 0)
        );
        assert_eq!(
            sampled(
                Some("parentbased_traceidratio"),
                Some("0"),
                Some(&parent(true, true))
            ),
            (true, 0)
        );
        // Bad values: a warning and the default.
        assert_eq!(sampled(Some("sometimes"), None, None), (true, 1));
        assert_eq!(sampled(Some("traceidratio"), Some("1.5"), None), (true, 1));
        assert_eq!(sampled(Some("traceidratio"), Some("-0.1"), None), (true, 1));
        assert_eq!(sampled(Some("traceidratio"), Some("half"), None), (true, 1));
    }
}
