//! Span timing: a wall-clock start and a monotonic duration.

use std::time::{Instant, SystemTime};

/// When a span started, on both clocks: the wall clock gives the start time
/// other processes can compare with, the monotonic clock gives an exact
/// duration that a clock step cannot make negative.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timestamp {
    instant: Instant,
    system: SystemTime,
}

impl Timestamp {
    pub(crate) fn now() -> Self {
        Timestamp {
            system: SystemTime::now(),
            instant: Instant::now(),
        }
    }

    /// The wall-clock time.
    pub(crate) fn system_time(self) -> SystemTime {
        self.system
    }

    /// The wall-clock time `elapsed` later, measured on the monotonic clock.
    pub(crate) fn end(self) -> SystemTime {
        self.system + self.instant.elapsed()
    }

    #[cfg(test)]
    fn since(self, earlier: Timestamp) -> std::time::Duration {
        self.instant.saturating_duration_since(earlier.instant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn duration_is_monotonic_and_end_follows_start() {
        let t = Timestamp::now();
        std::thread::sleep(Duration::from_millis(5));
        assert!(Timestamp::now().since(t) >= Duration::from_millis(5));
        assert!(t.end().duration_since(t.system_time()).unwrap() >= Duration::from_millis(5));
    }
}
