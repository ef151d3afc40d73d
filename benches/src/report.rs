//! Ratios between benchmarks of one run, checked against their bars.
//!
//! Criterion writes each benchmark's estimates to
//! `{criterion home}/{group}/{bench}/new/estimates.json`. After its
//! benchmarks ran, a bench target lists its [`Check`]s; [`print()`] reads the
//! medians written by this process (older files are ignored, so a filtered
//! run never reports stale numbers) and prints one Markdown table row per
//! check, ready for the README.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::SystemTime;

/// What a check demands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bar {
    /// Time of the subject over the time of the baseline at most this.
    TimeAtMost(f64),
    /// Throughput of the subject over that of the baseline (the baseline's
    /// time over the subject's, for the same work) at least this.
    ThroughputAtLeast(f64),
    /// The subject's median time, in nanoseconds, under this.
    NanosUnder(f64),
    /// Nothing demanded: shown for context.
    Info,
}

/// One row of the report: a subject benchmark, its baseline, the bar.
#[derive(Clone, Debug)]
pub struct Check {
    /// What is compared, as the README's table names it.
    pub label: &'static str,
    /// The subject benchmark, `group/bench`.
    pub subject: &'static str,
    /// The baseline benchmark, `group/bench` (none for absolute bars).
    pub baseline: Option<&'static str>,
    /// What is demanded.
    pub bar: Bar,
}

impl Check {
    /// A check of `subject` against `baseline`.
    pub const fn ratio(
        label: &'static str,
        subject: &'static str,
        baseline: &'static str,
        bar: Bar,
    ) -> Self {
        Check {
            label,
            subject,
            baseline: Some(baseline),
            bar,
        }
    }

    /// A check of `subject` alone.
    pub const fn absolute(label: &'static str, subject: &'static str, bar: Bar) -> Self {
        Check {
            label,
            subject,
            baseline: None,
            bar,
        }
    }
}

fn started() -> SystemTime {
    static STARTED: OnceLock<SystemTime> = OnceLock::new();
    *STARTED.get_or_init(SystemTime::now)
}

/// Notes the start of the run: estimates older than this are stale. Call
/// it first thing in `main`.
pub fn start() {
    let _ = started();
}

/// Where criterion writes its results (its own rule: `CRITERION_HOME`,
/// else `$CARGO_TARGET_DIR/criterion`, else `target/criterion`).
pub fn criterion_home() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from("target"), PathBuf::from)
        .join("criterion")
}

/// The median time per iteration, in nanoseconds, of `id` (`group/bench`)
/// if this process measured it.
pub fn median_ns(id: &str) -> Option<f64> {
    let path = criterion_home().join(id).join("new").join("estimates.json");
    let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
    if modified < started() {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// A time in nanoseconds, readably.
pub fn format_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.1} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{:.2} ms", ns / 1_000_000.0)
    }
}

/// The report's rows for `checks` (checks not measured in this run are
/// left out).
pub fn rows(checks: &[Check]) -> String {
    let mut out = String::new();
    for check in checks {
        let Some(subject) = median_ns(check.subject) else {
            continue;
        };
        let baseline = check.baseline.and_then(median_ns);
        if check.baseline.is_some() && baseline.is_none() {
            continue;
        }
        let (measured, bar, met) = match (check.bar, baseline) {
            (Bar::TimeAtMost(max), Some(base)) => {
                let r = subject / base;
                (
                    format!(
                        "{r:.3}x time ({} vs {})",
                        format_ns(subject),
                        format_ns(base)
                    ),
                    format!("<= {max}x time"),
                    Some(r <= max),
                )
            }
            (Bar::ThroughputAtLeast(min), Some(base)) => {
                let r = base / subject;
                (
                    format!(
                        "{r:.2}x throughput ({} vs {} per iteration)",
                        format_ns(subject),
                        format_ns(base)
                    ),
                    format!(">= {min}x throughput"),
                    Some(r >= min),
                )
            }
            (Bar::NanosUnder(max), _) => (
                format_ns(subject),
                format!("< {max} ns"),
                Some(subject < max),
            ),
            (Bar::Info, Some(base)) => (
                format!(
                    "{:.3}x time ({} vs {})",
                    subject / base,
                    format_ns(subject),
                    format_ns(base)
                ),
                "(context)".to_owned(),
                None,
            ),
            (Bar::Info, None) => (format_ns(subject), "(context)".to_owned(), None),
            (_, None) => continue,
        };
        out.push_str(&row(check.label, &measured, &bar, met));
    }
    out
}

/// One Markdown table row: what is compared, the measurement, the bar and
/// whether it is met (`None`: no bar).
pub fn row(label: &str, measured: &str, bar: &str, met: Option<bool>) -> String {
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "",
    };
    let mut out = String::new();
    let _ = writeln!(out, "| {label} | {measured} | {bar} | {verdict} |");
    out
}

/// Prints `rows` (from [`rows`] or [`row`]) as a table under a heading
/// line, if there are any.
pub fn print_rows(title: &str, rows: &str) {
    if !rows.is_empty() {
        println!("\n### {title}\n");
        println!("| comparison | measured | bar | |");
        println!("|---|---|---|---|");
        print!("{rows}");
    }
}

/// Prints the report's rows for `checks` under a heading line, if any was
/// measured in this run.
pub fn print(title: &str, checks: &[Check]) {
    print_rows(title, &rows(checks));
}
