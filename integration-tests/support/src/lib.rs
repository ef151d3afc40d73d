//! Helpers the tracewire crates' test suites share (a dev-dependency only):
//! unique names, environment lookups, and with the `kafka` feature a Kafka
//! protocol peer.
//!
//! Tests that need a database server are `#[ignore = "needs …"]`: a run
//! that does not ask for them (`cargo nextest run --run-ignored all`, which
//! `.ci/test` passes when `TRACEWIRE_SQLX_DB_TESTS=1`) shows them as
//! skipped, and a run that asks fails them when the server is unreachable.

#[cfg(feature = "kafka")]
mod kafka;

#[cfg(feature = "kafka")]
pub use kafka::KafkaPeer;

/// A name no other test (or run) uses: `{prefix}_{16 hex digits}`.
///
/// ```
/// let name = tracewire_test_support::unique("orders");
/// assert!(name.starts_with("orders_") && name.len() == "orders_".len() + 16);
/// ```
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{:016x}", fastrand::u64(..))
}

/// The value of the environment variable `name`, or `default` when it is
/// unset or empty.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}
