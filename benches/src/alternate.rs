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
    /// Runs a round; returns its time when the round measures it itself.
    round: Box<dyn FnMut() -> Option<Duration> + 'a>,
    times: Vec<Duration>,
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
                None
            }),
            times: Vec::new(),
        }
    }

    /// A variant whose rounds report their own time per element (a load
    /// test running for a fixed duration returns duration / requests).
    pub fn measured(name: &'static str, mut round: impl FnMut() -> Duration + 'a) -> Self {
        Variant {
            name,
            round: Box::new(move || Some(round())),
            times: Vec::new(),
        }
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
            let measured = (v.round)();
            v.times.push(measured.unwrap_or_else(|| start.elapsed()));
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
    let mut ratios: Vec<f64> = subject
        .times
        .iter()
        .zip(&baseline.times)
        .map(|(s, b)| {
            let (s, b) = (s.as_secs_f64(), b.as_secs_f64());
            if as_time { s / b } else { b / s }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    let r = median(ratios.clone());
    let quartile = |q: f64| {
        ratios
            .get(((ratios.len().saturating_sub(1)) as f64 * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    let measured = format!(
        "{r:.3}x {} (rounds: median {} vs {}; per-round ratio IQR {:.3}–{:.3}, {} rounds)",
        if as_time { "time" } else { "throughput" },
        format_ns(subject.median_ns()),
        format_ns(baseline.median_ns()),
        quartile(0.25),
        quartile(0.75),
        ratios.len()
    );
    let (bar_text, met) = match bar {
        Bar::ThroughputAtLeast(min) => (format!(">= {min}x throughput"), Some(r >= min)),
        Bar::TimeAtMost(max) => (format!("<= {max}x time"), Some(r <= max)),
        Bar::NanosUnder(_) | Bar::Info => ("(context)".to_owned(), None),
    };
    row(label, &measured, &bar_text, met)
}
