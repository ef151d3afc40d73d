//! Throughput runs that alternate between the variants compared.
//!
//! The pipeline benchmarks (export, tail sampling) run several threads each
//! and take milliseconds per round. On a shared machine the load from other
//! processes drifts over seconds, so measuring one variant for a few
//! seconds and then the other (as criterion does) compares them under
//! different loads. Here every variant runs one round in turn, many times
//! over: a drift hits all of them alike, and the ratio of each pair of
//! neighbouring rounds is taken before the median.

use std::time::{Duration, Instant};

use crate::report::{Bar, format_ns, row};

/// Settings: `BENCH_ROUNDS` (default 40) and `BENCH_WARM_UP_ROUNDS`
/// (default 5) from the environment, so that the same command line works
/// for criterion's bench targets; the first bare word on the command line
/// is a filter on benchmark names, as for criterion.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Measured rounds per variant.
    pub rounds: usize,
    /// Unmeasured rounds per variant first.
    pub warm_up_rounds: usize,
    /// Run only benchmarks whose name contains this.
    pub filter: Option<String>,
}

impl Settings {
    /// The settings given to this process.
    pub fn from_args() -> Self {
        let env = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        let mut filter = None;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                // Criterion options that take a value.
                "--warm-up-time" | "--measurement-time" | "--sample-size" | "--save-baseline"
                | "--baseline" | "--profile-time" | "--noise-threshold" => {
                    let _ = args.next();
                }
                other if other.starts_with('-') => {}
                other => {
                    filter.get_or_insert_with(|| other.to_owned());
                }
            }
        }
        Settings {
            rounds: env("BENCH_ROUNDS", 40),
            warm_up_rounds: env("BENCH_WARM_UP_ROUNDS", 5),
            filter,
        }
    }

    /// Whether the benchmark `name` runs.
    pub fn wants(&self, name: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| name.contains(f))
    }
}

/// One variant: a name and a closure running one round.
pub struct Variant<'a> {
    /// The variant's name in the output.
    pub name: &'static str,
    /// Runs a round; returns its time when the round measures it itself,
    /// and the round's other measurements (see [`Variant::metered`]).
    round: Box<dyn FnMut() -> (Option<Duration>, Vec<f64>) + 'a>,
    times: Vec<Duration>,
    metrics: Vec<Vec<f64>>,
}

impl std::fmt::Debug for Variant<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Variant")
            .field("name", &self.name)
            .field("rounds", &self.times.len())
            .finish_non_exhaustive()
    }
}

impl<'a> Variant<'a> {
    /// A variant running `round` once per round, timed in wall time.
    pub fn new(name: &'static str, mut round: impl FnMut() + 'a) -> Self {
        Variant {
            name,
            round: Box::new(move || {
                round();
                (None, Vec::new())
            }),
            times: Vec::new(),
            metrics: Vec::new(),
        }
    }

    /// A variant whose rounds report their own time per element (a load
    /// test running for a fixed duration returns duration / requests).
    pub fn measured(name: &'static str, mut round: impl FnMut() -> Duration + 'a) -> Self {
        Variant {
            name,
            round: Box::new(move || (Some(round()), Vec::new())),
            times: Vec::new(),
            metrics: Vec::new(),
        }
    }

    /// A variant whose rounds report their own time per element and other
    /// measurements per element as well (a load test reports the server's
    /// CPU time and context switches per request): `round` returns the time
    /// and the measurements, the same number in the same order every round.
    pub fn metered(
        name: &'static str,
        mut round: impl FnMut() -> (Duration, Vec<f64>) + 'a,
    ) -> Self {
        Variant {
            name,
            round: Box::new(move || {
                let (time, metrics) = round();
                (Some(time), metrics)
            }),
            times: Vec::new(),
            metrics: Vec::new(),
        }
    }

    /// Measurement `index` of each measured round (see [`Variant::metered`]).
    pub fn metric(&self, index: usize) -> Vec<f64> {
        self.metrics
            .iter()
            .map(|m| m.get(index).copied().unwrap_or(f64::NAN))
            .collect()
    }

    /// The measured wall time of each round.
    pub fn times(&self) -> &[Duration] {
        &self.times
    }

    /// The median round time, in nanoseconds.
    pub fn median_ns(&self) -> f64 {
        median(self.times.iter().map(|t| t.as_nanos() as f64).collect())
    }
}

/// Runs `variants` in turn, `settings.warm_up_rounds` unmeasured rounds
/// then `settings.rounds` measured ones each, and prints each variant's
/// median round time and throughput (`elements` per round).
pub fn run(settings: &Settings, group: &str, elements: u64, variants: &mut [Variant<'_>]) {
    for _ in 0..settings.warm_up_rounds {
        for v in variants.iter_mut() {
            let _ = (v.round)();
        }
    }
    for round in 0..settings.rounds {
        // Rotate who goes first, so no variant always follows the same one.
        let n = variants.len();
        for k in 0..n {
            let v = &mut variants[(round + k) % n];
            let start = Instant::now();
            let (measured, metrics) = (v.round)();
            v.times.push(measured.unwrap_or_else(|| start.elapsed()));
            v.metrics.push(metrics);
        }
    }
    for v in variants.iter() {
        let ns = v.median_ns();
        println!(
            "{group}/{:<24} median {:>10} per round, {:>10.0} elements/s ({} rounds)",
            v.name,
            format_ns(ns),
            elements as f64 * 1e9 / ns,
            v.times.len()
        );
    }
}

/// The median of `values` (0 when empty).
pub fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// A report row comparing `subject` with `baseline` round by round: the
/// median over rounds of the per-round ratio (baseline time / subject
/// time for a throughput bar, subject time / baseline time for a time
/// bar), with the interquartile range of those ratios.
pub fn throughput_row(
    label: &str,
    subject: &Variant<'_>,
    baseline: &Variant<'_>,
    bar: Bar,
) -> String {
    let as_time = matches!(bar, Bar::TimeAtMost(_));
    let secs =
        |v: &Variant<'_>| -> Vec<f64> { v.times.iter().map(Duration::as_secs_f64).collect() };
    let (subject_secs, baseline_secs) = (secs(subject), secs(baseline));
    let (numerator, denominator) = if as_time {
        (&subject_secs, &baseline_secs)
    } else {
        (&baseline_secs, &subject_secs)
    };
    let ratios = per_round_ratios(numerator, denominator);
    let details = format!(
        "rounds: median {} vs {}",
        format_ns(subject.median_ns()),
        format_ns(baseline.median_ns()),
    );
    ratio_row(
        label,
        if as_time { "time" } else { "throughput" },
        &details,
        ratios,
        bar,
    )
}

/// The ratios `numerator[k] / denominator[k]` of the rounds measured by
/// both (round `k` of two variants ran next to each other), non-finite
/// ones left out.
pub fn per_round_ratios(numerator: &[f64], denominator: &[f64]) -> Vec<f64> {
    numerator
        .iter()
        .zip(denominator)
        .map(|(n, d)| n / d)
        .filter(|r| r.is_finite())
        .collect()
}

/// A report row from per-round ratios (see [`per_round_ratios`]): their
/// median, named `what` (`"throughput"`, `"CPU per request"`…), with
/// `details` and the interquartile range of the ratios, checked against
/// `bar` ([`Bar::ThroughputAtLeast`]: the median at least that;
/// [`Bar::TimeAtMost`]: at most that).
pub fn ratio_row(label: &str, what: &str, details: &str, mut ratios: Vec<f64>, bar: Bar) -> String {
    ratios.sort_by(f64::total_cmp);
    let r = median(ratios.clone());
    let quartile = |q: f64| {
        ratios
            .get(((ratios.len().saturating_sub(1)) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let measured = format!(
        "{r:.3}x {what} ({details}; per-round ratio IQR {:.3}–{:.3}, {} rounds)",
        quartile(0.25),
        quartile(0.75),
        ratios.len()
    );
    let (bar_text, met) = match bar {
        Bar::ThroughputAtLeast(min) => (format!(">= {min}x {what}"), Some(r >= min)),
        Bar::TimeAtMost(max) => (format!("<= {max}x {what}"), Some(r <= max)),
        Bar::NanosUnder(_) | Bar::Info => ("(context)".to_owned(), None),
    };
    row(label, &measured, &bar_text, met)
}
