//! Helpers shared by tracewire's benchmarks.
//!
//! Every bench target under `benches/` measures tracewire next to its
//! baseline in the same run, then prints the ratios against the bars set in
//! the issues ([`report`]). The export benchmarks send to [`Receiver`], a
//! minimal OTLP/HTTP receiver on loopback.
//!
//! Run them all with `bash benches/run.sh`.

pub mod receiver;
pub mod report;

pub use receiver::Receiver;

use std::time::Duration;

/// The criterion settings every bench target starts from, overridden by
/// the command line (`--warm-up-time`, `--measurement-time`, a filter, …).
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args()
}
