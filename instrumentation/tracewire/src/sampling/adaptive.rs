//! Samplers that hold a rate: a token bucket, and an adaptive ratio that
//! follows the traffic.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{Sampler, SamplingDecision, SamplingInput, SamplingResult};
use crate::{TraceId, TraceState};

/// A source of monotonic time, replaceable in tests.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to, for tests.
///
/// ```
/// use std::time::Duration;
/// use tracewire::sampling::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(clock.now() - t0, Duration::from_secs(1));
/// ```
#[derive(Debug)]
pub struct ManualClock(Mutex<Instant>);

impl ManualClock {
    /// A clock stopped at the current instant.
    pub fn new() -> Self {
        ManualClock(Mutex::new(Instant::now()))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<C: Clock> Clock for Arc<C> {
    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// Samples at most `per_second` new traces per second (a token bucket
/// with a burst of one second's worth). Use it as the root of
/// [`ParentBased`](super::ParentBased).
///
/// ```
/// use tracewire::sampling::{ParentBased, RateLimitingSampler};
///
/// let sampler = ParentBased::new(RateLimitingSampler::new(50.0));
/// # let _ = sampler;
/// ```
#[derive(Debug)]
pub struct RateLimitingSampler {
    per_second: f64,
    bucket: Mutex<(f64, Option<Instant>)>,
    clock: Box<dyn Clock>,
}

impl RateLimitingSampler {
    /// At most `per_second` traces per second.
    pub fn new(per_second: f64) -> Self {
        Self::with_clock(per_second, SystemClock)
    }

    /// The same, reading time from `clock`.
    pub fn with_clock(per_second: f64, clock: impl Clock) -> Self {
        let per_second = per_second.max(0.0);
        RateLimitingSampler {
            per_second,
            bucket: Mutex::new((per_second, None)),
            clock: Box::new(clock),
        }
    }
}

impl Sampler for RateLimitingSampler {
    fn should_sample(&self, _input: &SamplingInput<'_>) -> SamplingResult {
        let now = self.clock.now();
        let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, last) = &mut *bucket;
        if let Some(last) = *last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.per_second;
            *tokens = (*tokens + refill).min(self.per_second.max(1.0));
        }
        *last = Some(now);
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            SamplingResult::SAMPLE
        } else {
            SamplingResult::DROP
        }
    }
}

/// 2^56: the range of OpenTelemetry's sampling randomness and thresholds.
const MAX_THRESHOLD: u64 = 1 << 56;

/// The rejection threshold for `ratio` (OpenTelemetry consistent
/// probability sampling: sample when randomness ≥ threshold).
fn threshold(ratio: f64) -> u64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let kept = (ratio.clamp(0.0, 1.0) * MAX_THRESHOLD as f64) as u64;
    MAX_THRESHOLD - kept.min(MAX_THRESHOLD)
}

/// The 56 random low bits of a W3C Level 2 trace id.
fn randomness(trace_id: TraceId) -> u64 {
    #[allow(clippy::cast_possible_truncation)]
    let low = trace_id.to_u128() as u64;
    low & (MAX_THRESHOLD - 1)
}

/// `th` as OpenTelemetry writes it in `tracestate`: 14 hex digits with
/// trailing zeros removed (`0` for "always").
fn encode_threshold(th: u64) -> String {
    if th == 0 {
        return "0".to_owned();
    }
    let hex = format!("{th:014x}");
    hex.trim_end_matches('0').to_owned()
}

/// `state` with `th:{threshold}` set in its `ot` member, keeping the
/// member's other sub-keys.
fn with_threshold(state: &TraceState, th: u64) -> TraceState {
    let th = format!("th:{}", encode_threshold(th));
    let value = match state.get("ot") {
        Some(existing) => {
            let mut parts: Vec<&str> = existing
                .split(';')
                .filter(|p| !p.is_empty() && !p.starts_with("th:"))
                .collect();
            parts.insert(0, &th);
            parts.join(";")
        }
        None => th,
    };
    state.insert("ot", &value).unwrap_or_else(|_| state.clone())
}

/// A key's share of the sampler: the current ratio and the window's count.
#[derive(Debug)]
struct Budget {
    ratio: f64,
    window_start: Instant,
    seen: u64,
}

/// How [`AdaptiveSampler`] splits its budget.
type KeyFn = dyn Fn(&SamplingInput<'_>) -> String + Send + Sync;

/// Keeps the number of sampled new traces near `target_per_second`,
/// whatever the traffic: each window it measures the rate of new traces and
/// moves its ratio (smoothly, never above 1 or below a floor) toward the
/// one that meets the target. Decisions are consistent on the trace id
/// (OpenTelemetry consistent probability sampling on its 56 random bits), so
/// every process with the same ratio agrees, and a sampled span records its
/// threshold in `tracestate` as `ot=th:…` for downstream samplers and
/// backends to compute counts. Optionally each key (for example the route)
/// gets its own budget.
///
/// ```
/// use std::time::Duration;
/// use tracewire::sampling::{AdaptiveSampler, ParentBased};
///
/// let sampler = AdaptiveSampler::new(100.0)
///     .window(Duration::from_secs(5))
///     .floor(0.001)
///     .per_key(|input| input.name());
/// let sampler = ParentBased::new(sampler);
/// # let _ = sampler;
/// ```
pub struct AdaptiveSampler {
    target_per_second: f64,
    window: Duration,
    floor: f64,
    max_keys: usize,
    key: Option<Box<KeyFn>>,
    clock: Box<dyn Clock>,
    budgets: Mutex<HashMap<String, Budget>>,
}

impl fmt::Debug for AdaptiveSampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveSampler")
            .field("target_per_second", &self.target_per_second)
            .field("window", &self.window)
            .field("floor", &self.floor)
            .field("per_key", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

/// The key used when budgets are not split, or when `max_keys` is reached.
const SHARED: &str = "";

impl AdaptiveSampler {
    /// Aims at `target_per_second` sampled new traces (window 10 s, floor
    /// 0.0001).
    pub fn new(target_per_second: f64) -> Self {
        AdaptiveSampler {
            target_per_second: target_per_second.max(0.0),
            window: Duration::from_secs(10),
            floor: 0.0001,
            max_keys: 1000,
            key: None,
            clock: Box::new(SystemClock),
            budgets: Mutex::new(HashMap::new()),
        }
    }

    /// How often the ratio is adjusted.
    #[must_use]
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_millis(1));
        self
    }

    /// The smallest ratio (so rare traffic is still seen).
    #[must_use]
    pub fn floor(mut self, floor: f64) -> Self {
        self.floor = floor.clamp(0.0, 1.0);
        self
    }

    /// A budget of `target_per_second` per key (at most 1000 keys; others
    /// share one budget).
    #[must_use]
    pub fn per_key(
        mut self,
        key: impl Fn(&SamplingInput<'_>) -> String + Send + Sync + 'static,
    ) -> Self {
        self.key = Some(Box::new(key));
        self
    }

    /// Reads time from `clock`.
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// The current ratio of `key` (the shared budget: `""`).
    pub fn ratio(&self, key: &str) -> Option<f64> {
        self.budgets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .map(|b| b.ratio)
    }

    /// Counts one new trace for `key` and returns its current ratio.
    fn ratio_for(&self, key: String, now: Instant) -> f64 {
        let mut budgets = self.budgets.lock().unwrap_or_else(PoisonError::into_inner);
        let key = if budgets.len() >= self.max_keys && !budgets.contains_key(&key) {
            SHARED.to_owned()
        } else {
            key
        };
        let budget = budgets.entry(key).or_insert(Budget {
            ratio: 1.0,
            window_start: now,
            seen: 0,
        });
        let elapsed = now.saturating_duration_since(budget.window_start);
        if elapsed >= self.window {
            #[allow(clippy::cast_precision_loss)]
            let rate = budget.seen as f64 / elapsed.as_secs_f64();
            let wanted = if rate > 0.0 {
                self.target_per_second / rate
            } else {
                1.0
            };
            let wanted = wanted.clamp(self.floor, 1.0);
            // Halfway each window: quick to follow, slow to oscillate.
            budget.ratio = (budget.ratio + wanted) / 2.0;
            budget.window_start = now;
            budget.seen = 0;
        }
        budget.seen += 1;
        budget.ratio
    }
}

impl Sampler for AdaptiveSampler {
    fn should_sample(&self, input: &SamplingInput<'_>) -> SamplingResult {
        let key = self
            .key
            .as_ref()
            .map_or_else(|| SHARED.to_owned(), |k| k(input));
        let ratio = self.ratio_for(key, self.clock.now());
        let th = threshold(ratio);
        if randomness(input.trace_id) < th {
            return SamplingResult::DROP;
        }
        let base = input
            .parent
            .map(|p| p.trace_state().clone())
            .unwrap_or_default();
        SamplingResult {
            decision: SamplingDecision::RecordAndSample,
            trace_state: Some(with_threshold(&base, th)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(trace_id: TraceId) -> SamplingInput<'static> {
        static CALLSITE: tracing_core::callsite::DefaultCallsite =
            tracing_core::callsite::DefaultCallsite::new(&META);
        static META: tracing_core::Metadata<'static> = tracing_core::metadata!(
            name: "test",
            target: "test",
            level: tracing_core::Level::INFO,
            fields: &[],
            callsite: &CALLSITE,
            kind: tracing_core::metadata::Kind::SPAN,
        );
        SamplingInput {
            trace_id,
            parent: None,
            metadata: &META,
            attributes: None,
        }
    }

    /// Feeds `per_second` new traces for `seconds` and returns how many were
    /// sampled in the last `measure` seconds.
    /// Trace ids are drawn from a seeded generator, so runs repeat exactly.
    fn drive(
        sampler: &AdaptiveSampler,
        clock: &ManualClock,
        per_second: u32,
        seconds: u32,
        measure: u32,
    ) -> f64 {
        let mut rng = fastrand::Rng::with_seed(u64::from(per_second) * 7919 + u64::from(seconds));
        let step = Duration::from_secs(1) / per_second;
        let mut sampled = 0u32;
        for second in 0..seconds {
            for _ in 0..per_second {
                clock.advance(step);
                let id = TraceId::from_u128(rng.u128(1..));
                if sampler.should_sample(&input(id)).is_sampled() && second >= seconds - measure {
                    sampled += 1;
                }
            }
        }
        f64::from(sampled) / f64::from(measure)
    }

    #[test]
    fn adaptive_rate_settles_within_ten_percent_of_the_target() {
        for (traffic, target) in [(1000, 100.0), (5000, 50.0), (200, 20.0)] {
            let clock = Arc::new(ManualClock::new());
            let sampler = AdaptiveSampler::new(target)
                .window(Duration::from_secs(1))
                .clock(clock.clone());
            // Settle for 20 s, then measure over 60 s (hundreds of samples,
            // so chance alone stays well inside the 10% band).
            let achieved = drive(&sampler, &clock, traffic, 80, 60);
            assert!(
                (achieved - target).abs() <= target * 0.1,
                "{traffic}/s → {achieved}/s, target {target}"
            );
        }
    }

    #[test]
    fn adaptive_ratio_follows_a_traffic_change_and_stays_bounded() {
        let clock = Arc::new(ManualClock::new());
        let sampler = AdaptiveSampler::new(100.0)
            .window(Duration::from_secs(1))
            .floor(0.05)
            .clock(clock.clone());
        drive(&sampler, &clock, 500, 20, 1);
        let achieved = drive(&sampler, &clock, 2000, 60, 40);
        assert!((achieved - 100.0).abs() <= 10.0, "{achieved}");
        // Under the target: everything is kept (ratio capped at 1).
        let achieved = drive(&sampler, &clock, 50, 20, 10);
        assert!((achieved - 50.0).abs() <= 1.0, "{achieved}");
        // Over the floor's reach: the floor holds.
        drive(&sampler, &clock, 10_000, 20, 1);
        assert!(sampler.ratio("").unwrap() >= 0.05);
    }

    #[test]
    fn decisions_are_consistent_on_the_trace_id() {
        let clock = Arc::new(ManualClock::new());
        let a = AdaptiveSampler::new(10.0)
            .window(Duration::from_secs(1))
            .clock(clock.clone());
        drive(&a, &clock, 1000, 5, 1);
        let ratio = a.ratio("").unwrap();
        for _ in 0..1000 {
            let id = TraceId::random();
            let first = a.should_sample(&input(id)).is_sampled();
            let second = a.should_sample(&input(id)).is_sampled();
            assert_eq!(first, second);
            assert_eq!(
                first,
                randomness(id) >= threshold(ratio),
                "agrees with any sampler at this ratio"
            );
        }
    }

    #[test]
    fn per_key_budgets_are_separate() {
        let clock = Arc::new(ManualClock::new());
        let sampler = AdaptiveSampler::new(10.0)
            .window(Duration::from_secs(1))
            .per_key(|i| {
                if i.trace_id.to_u128() % 2 == 0 {
                    "even".into()
                } else {
                    "odd".into()
                }
            })
            .clock(clock.clone());
        drive(&sampler, &clock, 1000, 10, 1);
        let (even, odd) = (
            sampler.ratio("even").unwrap(),
            sampler.ratio("odd").unwrap(),
        );
        assert!(
            (0.015..0.025).contains(&even) && (0.015..0.025).contains(&odd),
            "{even} {odd}"
        );
    }

    #[test]
    fn sampled_spans_carry_the_threshold_in_tracestate() {
        assert_eq!(encode_threshold(threshold(1.0)), "0");
        assert_eq!(encode_threshold(threshold(0.5)), "8");
        assert_eq!(encode_threshold(threshold(0.25)), "c");
        assert_eq!(encode_threshold(threshold(0.01)), "fd70a3d70a3d71");
        let state =
            TraceState::from_key_values([("ot", "rv:abcdefabcdefab;th:1"), ("x", "y")]).unwrap();
        assert_eq!(
            with_threshold(&state, threshold(0.5)).header(),
            "ot=th:8;rv:abcdefabcdefab,x=y"
        );

        let sampler = AdaptiveSampler::new(1000.0);
        let result = sampler.should_sample(&input(TraceId::random()));
        assert_eq!(result.trace_state.unwrap().get("ot"), Some("th:0"));
    }

    #[test]
    fn rate_limiting_sampler_is_a_token_bucket() {
        let clock = Arc::new(ManualClock::new());
        let sampler = RateLimitingSampler::with_clock(10.0, clock.clone());
        let mut sampled = 0;
        for _ in 0..1000 {
            clock.advance(Duration::from_millis(10)); // 100 per second offered
            if sampler
                .should_sample(&input(TraceId::random()))
                .is_sampled()
            {
                sampled += 1;
            }
        }
        // 10 s at 10/s, plus the initial burst of 10.
        assert!((100..=110).contains(&sampled), "{sampled}");
    }
}
