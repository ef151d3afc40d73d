//! Helpers shared by tracewire's benchmarks.
//!
//! Every bench target under `benches/` measures tracewire next to its
//! baseline in the same run, then prints the ratios against the bars set in
//! the issues ([`report`]). Single-threaded code is measured with criterion
//! (in thread CPU time, [`ThreadCpuTime`]); multi-threaded pipelines with
//! rounds that alternate between the variants ([`alternate`]). The export
//! benchmarks send to [`Receiver`], a minimal OTLP/HTTP receiver on
//! loopback. The load benchmarks (HTTP, gRPC) measure a server in a child
//! process pinned to one core, whole ([`load`], [`usage`]).
//!
//! Run them all with `bash benches/run.sh`.

pub mod alternate;
pub mod callgrind;
pub mod load;
pub mod receiver;
pub mod report;
pub mod usage;

pub use receiver::Receiver;

/// The span the span benchmarks measure: three attributes and an empty
/// one at creation, entered, the empty one recorded, exited and closed.
#[inline(never)]
pub fn one_span(i: u64) {
    let span = tracing::info_span!(
        "GET /users/{id}",
        http.request.method = "GET",
        url.path = "/users/42",
        user.id = i,
        http.response.status_code = tracing::field::Empty,
    );
    let entered = span.enter();
    span.record("http.response.status_code", 200);
    drop(entered);
    drop(span);
}

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// The criterion settings every bench target starts from, overridden by
/// the command line (`--warm-up-time`, `--measurement-time`, a filter, …).
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

/// [`criterion()`] measuring the CPU time of the benchmarking thread
/// instead of wall time (see [`ThreadCpuTime`]).
pub fn criterion_cpu() -> criterion::Criterion<ThreadCpuTime> {
    criterion::Criterion::default()
        .with_measurement(ThreadCpuTime)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}

/// A criterion measurement: the CPU time of the calling thread
/// (`CLOCK_THREAD_CPUTIME_ID`), in the same units as wall time.
///
/// For single-threaded benchmarks on a shared machine: wall time also
/// counts the time the thread waits while other processes (builds) hold
/// the core, which moves from one benchmark to the next and skews ratios;
/// CPU time does not. It still includes what sharing costs in caches, for
/// subject and baseline alike.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadCpuTime;

static WALL_TIME: WallTime = WallTime;

impl Measurement for ThreadCpuTime {
    type Intermediate = cpu_time::ThreadTime;
    type Value = Duration;

    fn start(&self) -> Self::Intermediate {
        cpu_time::ThreadTime::now()
    }
    fn end(&self, start: Self::Intermediate) -> Self::Value {
        start.elapsed()
    }
    fn add(&self, v1: &Self::Value, v2: &Self::Value) -> Self::Value {
        *v1 + *v2
    }
    fn zero(&self) -> Self::Value {
        Duration::ZERO
    }
    fn to_f64(&self, value: &Self::Value) -> f64 {
        value.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        WALL_TIME.formatter()
    }
}
