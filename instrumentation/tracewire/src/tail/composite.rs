//! The `composite` policy: sub-policies in order, each with a share of a
//! spans-per-second budget, as the OpenTelemetry Collector's
//! `tail_sampling` processor defines it.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use super::{Policy, Verdict};
use crate::{SpanData, TraceId};

/// One `rate_allocation` entry of a [`Composite`]: the sub-policy named
/// `policy` gets `percent` % of `max_total_spans_per_second` (0: an equal
/// share, the total divided by the number of sub-policies).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateAllocation {
    /// The sub-policy's name.
    pub policy: String,
    /// Its share of the total, in percent.
    pub percent: u64,
}

#[derive(Debug)]
struct Sub {
    name: String,
    policy: Policy,
    allocated: u64,
}

#[derive(Debug, Default)]
struct Window {
    origin: Option<Instant>,
    second: u64,
    sampled: Vec<u64>,
}

/// The Collector's `composite` policy.
///
/// Sub-policies are evaluated in the order given (the Collector's
/// `composite_sub_policy` order; it does not apply `policy_order`). The
/// first one that samples decides: the trace is kept when the spans that
/// sub-policy has kept in the current second plus this trace's spans stay
/// within both its allocation and `max_total_spans_per_second`, and not
/// kept otherwise (later sub-policies are not asked). A sub-policy without
/// a `rate_allocation` entry is allocated 0 spans per second. Seconds are
/// counted from the first evaluation, on the clock passed to
/// [`Policy::evaluate`].
///
/// ```
/// use std::time::Instant;
/// use tracewire::TraceId;
/// use tracewire::tail::{Composite, Policy, RateAllocation, StatusMatch, Verdict};
///
/// let composite = Composite::new(
///     100,
///     vec![
///         ("errors".into(), Policy::StatusCode(vec![StatusMatch::Error])),
///         ("rest".into(), Policy::AlwaysSample),
///     ],
///     &[
///         RateAllocation { policy: "errors".into(), percent: 80 },
///         RateAllocation { policy: "rest".into(), percent: 20 },
///     ],
/// );
/// assert_eq!(composite.allocations(), vec![("errors", 80), ("rest", 20)]);
/// let policy = Policy::Composite(composite);
/// let verdict = policy.evaluate(TraceId::from_u128(1), &[], Instant::now());
/// assert_eq!(verdict, Verdict::Sample);
/// ```
#[derive(Debug)]
pub struct Composite {
    max_total_spans_per_second: u64,
    subs: Vec<Sub>,
    window: Mutex<Window>,
}

impl Composite {
    /// A composite of `sub_policies` (name, policy) sharing
    /// `max_total_spans_per_second` as `rate_allocation` says (percentages
    /// above 100 count as 100; when a name has several entries, the last
    /// one counts).
    pub fn new(
        max_total_spans_per_second: u64,
        sub_policies: Vec<(String, Policy)>,
        rate_allocation: &[RateAllocation],
    ) -> Self {
        #[allow(clippy::cast_precision_loss)]
        let total = max_total_spans_per_second as f64;
        #[allow(clippy::cast_precision_loss)]
        let equal_share = total / sub_policies.len().max(1) as f64;
        let allocated = |name: &str| -> u64 {
            let Some(entry) = rate_allocation.iter().rev().find(|r| r.policy == name) else {
                return 0;
            };
            #[allow(clippy::cast_precision_loss)]
            let share = if entry.percent > 0 {
                (entry.percent.min(100) as f64 / 100.0) * total
            } else {
                equal_share
            };
            // Truncated toward zero, as the Collector's int64 conversion.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let share = share as u64;
            share
        };
        let subs: Vec<Sub> = sub_policies
            .into_iter()
            .map(|(name, policy)| Sub {
                allocated: allocated(&name),
                name,
                policy,
            })
            .collect();
        Composite {
            max_total_spans_per_second,
            window: Mutex::new(Window {
                sampled: vec![0; subs.len()],
                ..Window::default()
            }),
            subs,
        }
    }

    /// The total budget in spans per second.
    pub fn max_total_spans_per_second(&self) -> u64 {
        self.max_total_spans_per_second
    }

    /// Each sub-policy's name and allocated spans per second, in
    /// evaluation order.
    pub fn allocations(&self) -> Vec<(&str, u64)> {
        self.subs
            .iter()
            .map(|s| (s.name.as_str(), s.allocated))
            .collect()
    }

    /// The sub-policies, in evaluation order.
    pub fn sub_policies(&self) -> impl Iterator<Item = (&str, &Policy)> {
        self.subs.iter().map(|s| (s.name.as_str(), &s.policy))
    }

    pub(crate) fn evaluate(&self, trace_id: TraceId, spans: &[SpanData], now: Instant) -> Verdict {
        let Some(index) = self
            .subs
            .iter()
            .position(|s| s.policy.evaluate(trace_id, spans, now) == Verdict::Sample)
        else {
            return Verdict::NotSample;
        };
        let sub = &self.subs[index];
        let mut window = self.window.lock().unwrap_or_else(PoisonError::into_inner);
        let origin = *window.origin.get_or_insert(now);
        let second = now.saturating_duration_since(origin).as_secs();
        if second != window.second {
            window.second = second;
            window.sampled.iter_mut().for_each(|n| *n = 0);
        }
        let if_sampled = window.sampled[index].saturating_add(spans.len() as u64);
        if if_sampled <= sub.allocated && if_sampled <= self.max_total_spans_per_second {
            window.sampled[index] = if_sampled;
            Verdict::Sample
        } else {
            Verdict::NotSample
        }
    }
}
