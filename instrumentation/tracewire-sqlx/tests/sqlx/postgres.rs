//! PostgreSQL: ignored unless asked for (`--run-ignored all`; `.ci/test`
//! asks when `TRACEWIRE_SQLX_DB_TESTS=1`), failing when the server is
//! unreachable.

db_suite! {
    #[ignore = "needs PostgreSQL (TRACEWIRE_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test): cargo nextest run --run-ignored all"]
    db: sqlx::Postgres,
    connect: {
        let url = env_or("TRACEWIRE_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test");
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {url}: {e}"))
    },
    capture: capture,
    p1: "$1",
    p2: "$2",
    system: "postgresql",
    namespace: "test",
    address: Some("127.0.0.1"),
    syntax_code: "42601",
    unique_code: "23505",
    // pg_sleep per row (LATERAL on x, so run again for each).
    slow_rows: "SELECT x FROM generate_series(1, 3) AS x, \
                LATERAL (SELECT pg_sleep(0.05 + 0 * x)) AS s",
}
