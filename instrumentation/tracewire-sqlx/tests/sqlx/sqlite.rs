//! SQLite in memory (always runs) and on disk.

mod memory {
    db_suite! {
        db: sqlx::Sqlite,
        connect: Some(
            sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect("sqlite::memory:")
                .await
                .unwrap(),
        ),
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
            .join(format!("tracewire-sqlx-{}-{:x}.db", std::process::id(), fastrand::u64(..)))
            .display()
            .to_string()
    });

    db_suite! {
        db: sqlx::Sqlite,
        connect: Some(
            sqlx::sqlite::SqlitePoolOptions::new()
                .connect_with(
                    sqlx::sqlite::SqliteConnectOptions::new()
                        .filename(&*PATH)
                        .create_if_missing(true)
                        .busy_timeout(std::time::Duration::from_secs(10)),
                )
                .await
                .unwrap(),
        ),
        p1: "$1",
        p2: "$2",
        system: "sqlite",
        namespace: PATH.as_str(),
        address: None,
        syntax_code: "1",
        unique_code: "1555",
    }
}

#[tokio::test]
async fn zz_probe() {
    use tracing::Instrument;
    let raw = sqlx::sqlite::SqlitePoolOptions::new().max_connections(1).idle_timeout(None).max_lifetime(None).connect("sqlite::memory:").await.unwrap();
    sqlx::raw_sql("CREATE TABLE t (id BIGINT PRIMARY KEY, name VARCHAR(64))").execute(&raw).await.unwrap();
    let (exporter, _guard) = crate::support::capture();
    async { sqlx::query("SELECT 1").fetch_one(&raw).await.unwrap(); }.instrument(tracing::info_span!("plain_one")).await;
    async { sqlx::query("SELECT 1").fetch_all(&raw).await.unwrap(); }.instrument(tracing::info_span!("plain_all")).await;
    let pool = tracewire_sqlx::TracedPool::builder(raw.clone()).returned_rows(true).build();
    async { sqlx::query("SELECT 1").fetch_one(&pool).await.unwrap(); }.instrument(tracing::info_span!("traced_one")).await;
    async { sqlx::query("SELECT 1").fetch_all(&pool).await.unwrap(); }.instrument(tracing::info_span!("traced_all")).await;
    async { sqlx::query("INSERT INTO t (id, name) VALUES ($1, $2)").bind(1_i64).bind("x").execute(&raw).await.unwrap(); }.instrument(tracing::info_span!("plain_insert")).await;
    async { sqlx::query("INSERT INTO t (id, name) VALUES ($1, $2)").bind(2_i64).bind("x").execute(&pool).await.unwrap(); }.instrument(tracing::info_span!("traced_insert")).await;
    async { sqlx::query("SELECT * FROM t").fetch_all(&pool).await.unwrap(); }.instrument(tracing::info_span!("traced_all2")).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    println!("PROBE {:?}", exporter.spans().iter().map(|s| s.name.to_string()).collect::<Vec<_>>());
}
