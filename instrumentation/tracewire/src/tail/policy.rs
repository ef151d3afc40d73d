//! Tail sampling policies, as the OpenTelemetry Collector's
//! `tail_sampling` processor defines them.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::composite::Composite;
use super::probabilistic::{Probabilistic, default_salt_samples};
use crate::{SpanData, Status, TraceId, Value};

/// What one policy says about a whole trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the trace (unless another policy drops it).
    Sample,
    /// This policy does not ask to keep it.
    NotSample,
    /// Drop the trace, whatever the other policies say.
    Drop,
}

/// Which span status a [`Policy::StatusCode`] looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusMatch {
    /// Status Error.
    Error,
    /// Status Ok.
    Ok,
    /// Status Unset.
    Unset,
}

/// One rule over a finished (local part of a) trace.
///
/// The combination rule is the Collector's: a [`Verdict::Drop`] from any
/// policy wins, then any [`Verdict::Sample`] keeps the trace; otherwise it
/// is not sampled.
#[derive(Debug)]
#[non_exhaustive]
pub enum Policy {
    /// Keep every trace.
    AlwaysSample,
    /// Keep traces lasting at least `threshold` (first span start to last
    /// span end); with `upper`, as the Collector does: more than
    /// `threshold` and at most `upper`, in whole milliseconds.
    Latency {
        /// The shortest duration kept (without `upper`); the longest not
        /// kept (with it).
        threshold: Duration,
        /// The longest duration kept.
        upper: Option<Duration>,
    },
    /// Keep traces with a span whose status is one of these.
    StatusCode(Vec<StatusMatch>),
    /// Keep this fraction of traces (a number in `[0, 1]`; the percentage
    /// over 100), deciding on the trace id exactly as the Collector's
    /// `probabilistic` policy with the default `hash_salt` does (see
    /// [`Probabilistic`]): the same trace id gets the same answer in every
    /// process and in a Collector tier.
    Probabilistic(f64),
    /// The Collector's `probabilistic` policy with its `hash_salt` (what a
    /// policy file's `probabilistic` gives).
    SaltedProbabilistic(Probabilistic),
    /// Keep traces with a span whose string attribute `key` is one of
    /// `values` (or, with `invert`, none of them).
    StringAttribute {
        /// The attribute.
        key: String,
        /// The values that match.
        values: Vec<String>,
        /// Keep traces that do not match instead.
        invert: bool,
    },
    /// Keep traces with a span whose numeric attribute `key` is within
    /// `[min, max]`.
    NumericAttribute {
        /// The attribute.
        key: String,
        /// The smallest value that matches.
        min: f64,
        /// The largest value that matches.
        max: f64,
    },
    /// Keep traces with a span whose boolean attribute `key` is `value`.
    BooleanAttribute {
        /// The attribute.
        key: String,
        /// The value that matches.
        value: bool,
    },
    /// Keep traces with between `min` and `max` spans.
    SpanCount {
        /// The fewest spans.
        min: usize,
        /// The most spans.
        max: usize,
    },
    /// Keep traces while their spans stay under `spans_per_second`.
    RateLimiting(RateLimit),
    /// Keep a trace only when every sub-policy keeps it.
    And(Vec<Policy>),
    /// Drop traces the sub-policy would keep (the Collector's `drop`).
    Drop(Box<Policy>),
    /// Sub-policies sharing a spans-per-second budget (the Collector's
    /// `composite`).
    Composite(Composite),
}

/// A token bucket over spans per second, for [`Policy::RateLimiting`].
#[derive(Debug)]
pub struct RateLimit {
    spans_per_second: f64,
    bucket: Mutex<(f64, Option<Instant>)>,
}

impl RateLimit {
    /// A limit of `spans_per_second`, with a burst of one second's worth.
    /// Negative values and NaN count as 0 (keep nothing), infinity as
    /// `f64::MAX`.
    pub fn new(spans_per_second: f64) -> Self {
        let rate = if spans_per_second.is_nan() {
            0.0
        } else {
            spans_per_second.clamp(0.0, f64::MAX)
        };
        RateLimit {
            spans_per_second: rate,
            bucket: Mutex::new((rate, None)),
        }
    }

    fn take(&self, spans: usize, now: Instant) -> bool {
        let mut bucket = self
            .bucket
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (tokens, last) = &mut *bucket;
        if let Some(last) = *last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.spans_per_second;
            *tokens = (*tokens + refill).min(self.spans_per_second);
        }
        *last = Some(now);
        #[allow(clippy::cast_precision_loss)]
        let needed = spans as f64;
        if *tokens >= needed {
            *tokens -= needed;
            true
        } else {
            false
        }
    }
}

fn any_attribute(spans: &[SpanData], key: &str, matches: impl Fn(&Value) -> bool) -> bool {
    spans.iter().any(|s| {
        s.attributes
            .iter()
            .any(|kv| kv.key == key && matches(&kv.value))
    })
}

/// First span start to last span end.
pub(crate) fn trace_duration(spans: &[SpanData]) -> Duration {
    let start = spans.iter().map(|s| s.start_time).min();
    let end = spans.iter().map(|s| s.end_time).max();
    match (start, end) {
        (Some(start), Some(end)) => end.duration_since(start).unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

impl Policy {
    /// This policy's verdict on `spans`, the trace `trace_id`'s spans.
    pub fn evaluate(&self, trace_id: TraceId, spans: &[SpanData], now: Instant) -> Verdict {
        let keep = |yes: bool| {
            if yes {
                Verdict::Sample
            } else {
                Verdict::NotSample
            }
        };
        match self {
            Policy::AlwaysSample => Verdict::Sample,
            Policy::Latency { threshold, upper } => {
                let d = trace_duration(spans);
                keep(match upper {
                    None => d >= *threshold,
                    Some(upper) => {
                        let ms = d.as_millis();
                        ms > threshold.as_millis() && ms <= upper.as_millis()
                    }
                })
            }
            Policy::StatusCode(codes) => keep(spans.iter().any(|s| {
                codes.iter().any(|c| {
                    matches!(
                        (c, &s.status),
                        (StatusMatch::Error, Status::Error { .. })
                            | (StatusMatch::Ok, Status::Ok)
                            | (StatusMatch::Unset, Status::Unset)
                    )
                })
            })),
            Policy::Probabilistic(fraction) => keep(default_salt_samples(trace_id, *fraction)),
            Policy::SaltedProbabilistic(p) => keep(p.samples(trace_id)),
            Policy::StringAttribute {
                key,
                values,
                invert,
            } => {
                let found = any_attribute(spans, key, |v| {
                    v.as_str().is_some_and(|s| values.iter().any(|x| x == s))
                });
                keep(found != *invert)
            }
            Policy::NumericAttribute { key, min, max } => keep(any_attribute(spans, key, |v| {
                #[allow(clippy::cast_precision_loss)]
                let n = v.as_i64().map(|i| i as f64).or_else(|| v.as_f64());
                n.is_some_and(|n| n >= *min && n <= *max)
            })),
            Policy::BooleanAttribute { key, value } => {
                keep(any_attribute(spans, key, |v| v.as_bool() == Some(*value)))
            }
            Policy::SpanCount { min, max } => keep(spans.len() >= *min && spans.len() <= *max),
            Policy::RateLimiting(limit) => keep(limit.take(spans.len(), now)),
            Policy::And(policies) => keep(
                !policies.is_empty()
                    && policies
                        .iter()
                        .all(|p| p.evaluate(trace_id, spans, now) == Verdict::Sample),
            ),
            Policy::Drop(inner) => match inner.evaluate(trace_id, spans, now) {
                Verdict::Sample => Verdict::Drop,
                _ => Verdict::NotSample,
            },
            Policy::Composite(composite) => composite.evaluate(trace_id, spans, now),
        }
    }
}

/// The combined decision of `policies`: a drop wins, then any sample.
pub(crate) fn decide(
    policies: &[Policy],
    trace_id: TraceId,
    spans: &[SpanData],
    now: Instant,
) -> bool {
    let mut sampled = false;
    for policy in policies {
        match policy.evaluate(trace_id, spans, now) {
            Verdict::Drop => return false,
            Verdict::Sample => sampled = true,
            Verdict::NotSample => {}
        }
    }
    sampled
}
