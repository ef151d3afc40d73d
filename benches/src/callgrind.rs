//! Instruction counts of single-thread paths, with valgrind's callgrind.
//!
//! A bench target measured this way runs itself as a child under
//! `valgrind --tool=callgrind --separate-threads=yes`, once with `n1`
//! iterations of a scenario and once with `n2`; the difference divided by
//! `n2 - n1` is the cost of one iteration, free of the process's start,
//! the subscriber's setup and the warm-up (which both runs share).
//! Instruction counts do not depend on the machine's load, so a ratio of
//! two of them is the same on a busy machine as on an idle one.
//!
//! Callgrind writes one file per thread: the calling thread's count is the
//! main thread's (`-01`), the all-threads count the sum of them all (the
//! batch processor's export thread included).

use std::path::Path;
use std::process::Command;

/// The environment variable naming the scenario a child runs.
const SCENARIO_VAR: &str = "TRACEWIRE_CALLGRIND_SCENARIO";
/// The environment variable giving the child's iteration count.
const ITERATIONS_VAR: &str = "TRACEWIRE_CALLGRIND_ITERATIONS";

/// What one iteration of a scenario costs, in instructions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PerIteration {
    /// On the thread that runs the scenario.
    pub calling_thread: f64,
    /// On every thread of the process.
    pub all_threads: f64,
}

/// The scenario and iteration count this process was started to run, when
/// it is a child of [`measure`].
pub fn child_request() -> Option<(String, u64)> {
    let scenario = std::env::var(SCENARIO_VAR).ok()?;
    let iterations = std::env::var(ITERATIONS_VAR).ok()?.parse().ok()?;
    Some((scenario, iterations))
}

/// Whether valgrind can be run (`apt install valgrind`).
pub fn available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The cost of one iteration of `scenario`: this executable run under
/// callgrind with `n1` and with `n2` iterations (`n2 > n1`).
///
/// # Errors
/// When valgrind cannot run, the child fails, or its output cannot be read.
pub fn measure(scenario: &str, n1: u64, n2: u64) -> Result<PerIteration, String> {
    let (calling1, all1) = run(scenario, n1)?;
    let (calling2, all2) = run(scenario, n2)?;
    let per = |a: u64, b: u64| (b as f64 - a as f64) / (n2 - n1) as f64;
    Ok(PerIteration {
        calling_thread: per(calling1, calling2),
        all_threads: per(all1, all2),
    })
}

/// Runs `scenario` `iterations` times under callgrind: (main thread, all
/// threads) instruction counts.
fn run(scenario: &str, iterations: u64) -> Result<(u64, u64), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!(
        "tracewire-callgrind-{}-{scenario}-{iterations}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let output = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--separate-threads=yes")
        .arg(format!("--callgrind-out-file={}/out", dir.display()))
        .arg(&exe)
        .env(SCENARIO_VAR, scenario)
        .env(ITERATIONS_VAR, iterations.to_string())
        .output()
        .map_err(|e| format!("running valgrind: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{scenario} under callgrind failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let counts = thread_counts(&dir)?;
    let _ = std::fs::remove_dir_all(&dir);
    let main = counts
        .iter()
        .find(|(thread, _)| *thread == 1)
        .map(|(_, n)| *n)
        .ok_or("no count for the main thread")?;
    Ok((main, counts.iter().map(|(_, n)| n).sum()))
}

/// (thread number, instructions) from each per-thread file in `dir`
/// (`out-01`, `out-02`, …).
fn thread_counts(dir: &Path) -> Result<Vec<(u32, u64)>, String> {
    let mut counts = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())? {
        let path = entry.map_err(|e| e.to_string())?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some(thread) = name.rsplit('-').next().and_then(|t| t.parse().ok()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
        let total = text
            .lines()
            .find_map(|l| l.strip_prefix("summary:").or(l.strip_prefix("totals:")))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| format!("no total in {}", path.display()))?;
        counts.push((thread, total));
    }
    Ok(counts)
}
