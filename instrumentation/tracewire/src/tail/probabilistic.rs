//! The `probabilistic` policy, deciding exactly as the OpenTelemetry
//! Collector's `tail_sampling` processor does, so that a trace kept here and
//! one kept by a Collector tier with the same `hash_salt` and
//! `sampling_percentage` are the same traces.

use crate::TraceId;

/// The salt the Collector uses when `hash_salt` is empty or absent.
pub const DEFAULT_HASH_SALT: &str = "default-hash-seed";

const FNV64_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV64_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv1a64(hash: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(hash, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV64_PRIME))
}

/// The Collector's hash of a trace id: 64-bit FNV-1a over the salt's bytes,
/// then the trace id's 16 bytes (in their hex order). An empty salt is not
/// replaced here; [`Probabilistic::new`] does that.
///
/// ```
/// use tracewire::TraceId;
/// use tracewire::tail::collector_trace_hash;
///
/// let id = TraceId::from_hex("0af7651916cd43dd8448eb211c80319c").unwrap();
/// assert_eq!(collector_trace_hash("default-hash-seed", id), 0x33bf_83d4_5f51_634c);
/// ```
pub fn collector_trace_hash(salt: &str, trace_id: TraceId) -> u64 {
    fnv1a64(fnv1a64(FNV64_OFFSET, salt.as_bytes()), &trace_id.to_bytes())
}

/// The Collector's threshold for a sampling `ratio` (a percentage over
/// 100): `u64::MAX × ratio` computed with 64 bits of precision, rounded to
/// nearest (ties to even), then truncated to an integer; 0 for ratios at or
/// below 0 (and NaN, where the Collector would panic), `u64::MAX` at or
/// above 1. A trace is kept when its hash is at most the threshold.
///
/// ```
/// use tracewire::tail::collector_threshold;
///
/// assert_eq!(collector_threshold(0.5), u64::MAX / 2);
/// assert_eq!(collector_threshold(1.0), u64::MAX);
/// assert_eq!(collector_threshold(-1.0), 0);
/// ```
pub fn collector_threshold(ratio: f64) -> u64 {
    if ratio.is_nan() || ratio <= 0.0 {
        return 0;
    }
    if ratio >= 1.0 {
        return u64::MAX;
    }
    // ratio = mantissa × 2^exponent, exactly.
    let bits = ratio.to_bits();
    let fraction = bits & ((1u64 << 52) - 1);
    let biased = i32::try_from((bits >> 52) & 0x7ff).unwrap_or(0);
    let (mantissa, mut exponent) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | (1u64 << 52), biased - 1075)
    };
    // The exact product (at most 117 bits), then rounded to 64 significant
    // bits as Go's big.Float with the receiver's precision of 64 does.
    let mut product = u128::from(u64::MAX) * u128::from(mantissa);
    let length = 128 - product.leading_zeros();
    if length > 64 {
        let shift = length - 64;
        let kept = product >> shift;
        let rest = product & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        let round_up = rest > half || (rest == half && kept & 1 == 1);
        product = kept + u128::from(round_up);
        exponent += i32::try_from(shift).unwrap_or(0);
    }
    // Truncate toward zero (ratio < 1, so the value is below 2^64).
    let value = if exponent >= 0 {
        u32::try_from(exponent)
            .ok()
            .and_then(|e| product.checked_shl(e))
            .unwrap_or(u128::MAX)
    } else {
        u32::try_from(-exponent)
            .ok()
            .and_then(|e| product.checked_shr(e))
            .unwrap_or(0)
    };
    u64::try_from(value).unwrap_or(u64::MAX)
}

/// The Collector's `probabilistic` policy: keeps a trace when
/// [`collector_trace_hash`]`(hash_salt, trace_id)` is at most
/// [`collector_threshold`]`(sampling_percentage / 100)`.
///
/// ```
/// use tracewire::TraceId;
/// use tracewire::tail::Probabilistic;
///
/// let one_percent = Probabilistic::new(1.0, "");
/// assert_eq!(one_percent.hash_salt(), "default-hash-seed");
/// let id = TraceId::from_hex("5b8efff798038103d269b633813fc60c").unwrap();
/// assert!(!one_percent.samples(id));
/// assert!(Probabilistic::new(1.0, "tier-2").samples(id));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Probabilistic {
    percentage: f64,
    hash_salt: String,
    threshold: u64,
}

impl Probabilistic {
    /// Keeps `sampling_percentage` percent of traces (clamped to
    /// `[0, 100]`; NaN counts as 0), hashed with `hash_salt` (empty: the
    /// Collector's default, [`DEFAULT_HASH_SALT`]).
    pub fn new(sampling_percentage: f64, hash_salt: impl Into<String>) -> Self {
        let percentage = if sampling_percentage.is_nan() {
            0.0
        } else {
            sampling_percentage.clamp(0.0, 100.0)
        };
        let mut hash_salt = hash_salt.into();
        if hash_salt.is_empty() {
            DEFAULT_HASH_SALT.clone_into(&mut hash_salt);
        }
        Probabilistic {
            percentage,
            hash_salt,
            threshold: collector_threshold(percentage / 100.0),
        }
    }

    /// The percentage kept, after clamping.
    pub fn sampling_percentage(&self) -> f64 {
        self.percentage
    }

    /// The salt hashed before the trace id.
    pub fn hash_salt(&self) -> &str {
        &self.hash_salt
    }

    /// The largest hash kept.
    pub fn threshold(&self) -> u64 {
        self.threshold
    }

    /// Whether the Collector keeps `trace_id` with these settings.
    pub fn samples(&self, trace_id: TraceId) -> bool {
        collector_trace_hash(&self.hash_salt, trace_id) <= self.threshold
    }
}

/// Whether the Collector's `probabilistic` policy with the default salt
/// keeps `trace_id` at `fraction` (a percentage over 100).
pub(crate) fn default_salt_samples(trace_id: TraceId, fraction: f64) -> bool {
    collector_trace_hash(DEFAULT_HASH_SALT, trace_id) <= collector_threshold(fraction)
}
