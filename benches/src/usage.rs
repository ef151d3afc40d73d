//! What a whole process costs: the CPU time and context switches of all
//! its threads, read from `/proc` (Linux), and pinning threads to a core.
//!
//! The load benchmarks run the server under test in a child process pinned
//! to one core with all its threads (the runtime thread, the export thread,
//! any thread the tracing stack starts) and read the child's usage from the
//! outside before and after each run, so the cost a user pays per request
//! is measured whole and the load client's work is not in it.

use std::io;
use std::path::Path;
use std::time::Duration;

/// A process's usage so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// CPU time run by the process's live threads: the sum of each
    /// thread's `/proc/<pid>/task/<tid>/schedstat` run time (nanoseconds).
    pub cpu: Duration,
    /// `utime + stime` of `/proc/<pid>/stat`: the whole process, threads
    /// that exited included, in clock ticks (10 ms) — a cross-check.
    pub cpu_ticks: Duration,
    /// Voluntary and involuntary context switches, summed over the live
    /// threads (`/proc/<pid>/task/<tid>/status`).
    pub context_switches: u64,
    /// How many threads the process has.
    pub threads: usize,
}

impl Usage {
    /// The usage of process `pid` so far.
    ///
    /// # Errors
    /// When `/proc/<pid>` cannot be read (the process is gone, or this is
    /// not Linux).
    pub fn of(pid: u32) -> io::Result<Self> {
        let root = Path::new("/proc").join(pid.to_string());
        let stat = std::fs::read_to_string(root.join("stat"))?;
        // The command name, in parentheses, may hold spaces: the fields
        // counted start after its closing parenthesis (field 3, the state).
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let ticks = |i: usize| -> u64 { fields.get(i).and_then(|f| f.parse().ok()).unwrap_or(0) };
        // utime is field 14, stime field 15.
        let per_second = rustix::param::clock_ticks_per_second().max(1);
        let cpu_ticks =
            Duration::from_nanos((ticks(11) + ticks(12)) * (1_000_000_000 / per_second));

        let mut usage = Usage {
            cpu_ticks,
            ..Usage::default()
        };
        for task in std::fs::read_dir(root.join("task"))? {
            let task = task?.path();
            // A thread may exit between the listing and the reading.
            let (Ok(schedstat), Ok(status)) = (
                std::fs::read_to_string(task.join("schedstat")),
                std::fs::read_to_string(task.join("status")),
            ) else {
                continue;
            };
            usage.threads += 1;
            let ns: u64 = schedstat
                .split_whitespace()
                .next()
                .and_then(|f| f.parse().ok())
                .unwrap_or(0);
            usage.cpu += Duration::from_nanos(ns);
            for line in status.lines() {
                if let Some(value) = line
                    .strip_prefix("voluntary_ctxt_switches:")
                    .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
                {
                    usage.context_switches += value.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
        Ok(usage)
    }

    /// What was used between `earlier` and `self` (the thread count is
    /// `self`'s).
    pub fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            cpu: self.cpu.saturating_sub(earlier.cpu),
            cpu_ticks: self.cpu_ticks.saturating_sub(earlier.cpu_ticks),
            context_switches: self
                .context_switches
                .saturating_sub(earlier.context_switches),
            threads: self.threads,
        }
    }
}

/// The cores the calling thread may run on.
///
/// # Errors
/// When the kernel does not say.
pub fn allowed_cores() -> io::Result<Vec<usize>> {
    let set = rustix::thread::sched_getaffinity(None)?;
    Ok((0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&core| set.is_set(core))
        .collect())
}

/// Pins the calling thread to core `core`; the threads it starts later
/// inherit the pinning (pin first thing in `main` to pin a whole process).
///
/// # Errors
/// When the kernel refuses (no such core, or not allowed).
pub fn pin_current_thread(core: usize) -> io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    set.set(core);
    rustix::thread::sched_setaffinity(None, &set).map_err(io::Error::from)
}
