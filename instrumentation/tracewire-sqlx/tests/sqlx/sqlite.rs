//! SQLite in memory and on disk, on every run. sqlx runs SQLite queries
//! on a worker thread, so these tests capture through a process-wide
//! subscriber (see `capture_global`).

mod memory {
    db_suite! {
        db: sqlx::Sqlite,
        connect: sqlx::sqlite::SqlitePoolOptions::new()
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect("sqlite::memory:")
            .await
            .unwrap(),
        capture: capture_global,
        p1: "$1",
        p2: "$2",
        system: "sqlite",
        namespace: ":memory:",
        address: None,
        syntax_code: "1",
        unique_code: "1555",
        // The worker thread counts to 100 000 before each row.
        slow_rows: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) \
                    SELECT x FROM c WHERE x % 100000 = 0",
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
        connect: sqlx::sqlite::SqlitePoolOptions::new()
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&*PATH)
                    .create_if_missing(true)
                    .busy_timeout(std::time::Duration::from_secs(10)),
            )
            .await
            .unwrap(),
        capture: capture_global,
        p1: "$1",
        p2: "$2",
        system: "sqlite",
        namespace: PATH.as_str(),
        address: None,
        syntax_code: "1",
        unique_code: "1555",
        // The worker thread counts to 100 000 before each row.
        slow_rows: "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) \
                    SELECT x FROM c WHERE x % 100000 = 0",
    }
}
