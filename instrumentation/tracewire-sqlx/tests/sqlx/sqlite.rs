//! SQLite in memory and on disk.
//!
//! Known problem: sqlx's SQLite worker thread keeps a handle to the span
//! that was current when it received its last command, so the caller's span
//! (the parent these tests wait for) can stay open until the connection's
//! next command. Until that is handled, these tests run only with
//! `TRACEWIRE_SQLX_SQLITE_TESTS=1` (most pass; parent-closing waits are
//! flaky). The crate's doc tests exercise SQLite on every run.

mod memory {
    db_suite! {
        db: sqlx::Sqlite,
        connect: if !sqlite_tests_enabled() { None } else { Some(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect("sqlite::memory:")
                .await
                .unwrap(),
        ) },
        p1: "$1",
        p2: "$2",
        system: "sqlite",
        namespace: ":memory:",
        address: None,
        syntax_code: "1",
        unique_code: "1555",
    }
}

mod file {
    use std::sync::LazyLock;

    static PATH: LazyLock<String> = LazyLock::new(|| {
        std::env::temp_dir()
            .join(format!(
                "tracewire-sqlx-{}-{:x}.db",
                std::process::id(),
                fastrand::u64(..)
            ))
            .display()
            .to_string()
    });

    db_suite! {
        db: sqlx::Sqlite,
        connect: if !sqlite_tests_enabled() { None } else { Some(
            sqlx::sqlite::SqlitePoolOptions::new()
                .connect_with(
                    sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(&*PATH)
                        .create_if_missing(true)
                        .busy_timeout(std::time::Duration::from_secs(10)),
                )
                .await
                .unwrap(),
        ) },
        p1: "$1",
        p2: "$2",
        system: "sqlite",
        namespace: PATH.as_str(),
        address: None,
        syntax_code: "1",
        unique_code: "1555",
    }
}
