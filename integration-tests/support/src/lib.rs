//! Helpers the tracewire crates' test suites share (a dev-dependency only):
//! unique names, the switch for tests against real database servers, and
//! with the `kafka` feature a Kafka protocol peer.

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

/// Whether the PostgreSQL and MariaDB tests run (`TRACEWIRE_SQLX_DB_TESTS`
/// is `1` or `true`); prints why not.
pub fn server_tests_enabled(what: &str) -> bool {
    let on = std::env::var("TRACEWIRE_SQLX_DB_TESTS").is_ok_and(|v| v == "1" || v == "true");
    if !on {
        println!("skipped {what}: set TRACEWIRE_SQLX_DB_TESTS=1 to run against real servers");
    }
    on
}

/// The value of the environment variable `name`, or `default` when it is
/// unset or empty.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}
