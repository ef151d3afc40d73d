//! PostgreSQL (with `TRACEWIRE_SQLX_DB_TESTS=1`).

db_suite! {
    db: sqlx::Postgres,
    connect: {
        if !server_tests_enabled("postgres") {
            return None;
        }
        let url = env_or("TRACEWIRE_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test");
        Some(sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(&url).await.unwrap())
    },
    capture: capture,
    p1: "$1",
    p2: "$2",
    system: "postgresql",
    namespace: "test",
    address: Some("127.0.0.1"),
    syntax_code: "42601",
    unique_code: "23505",
}
