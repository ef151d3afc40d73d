//! MariaDB / MySQL: ignored unless asked for (`--run-ignored all`;
//! `.ci/test` asks when `TRACEWIRE_SQLX_DB_TESTS=1`), failing when the
//! server is unreachable. The machine runs MariaDB, so `db.system.name` is
//! `mariadb` unless `TRACEWIRE_MYSQL_SYSTEM` says otherwise.

use std::sync::LazyLock;

static SYSTEM: LazyLock<String> = LazyLock::new(|| env_or("TRACEWIRE_MYSQL_SYSTEM", "mariadb"));

db_suite! {
    #[ignore = "needs MariaDB/MySQL (TRACEWIRE_MYSQL_URL, default mysql://root@127.0.0.1:3306/test): cargo nextest run --run-ignored all"]
    db: sqlx::MySql,
    connect: {
        let url = env_or("TRACEWIRE_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
        sqlx::mysql::MySqlPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to MariaDB/MySQL at {url}: {e}"))
    },
    capture: capture,
    p1: "?",
    p2: "?",
    system: SYSTEM.as_str(),
    namespace: "test",
    address: Some("127.0.0.1"),
    // The error numbers (ER_PARSE_ERROR, ER_DUP_ENTRY), not the SQLSTATEs
    // (42000, 23000).
    syntax_code: "1064",
    unique_code: "1062",
    slow_rows: "SELECT SLEEP(0.05) FROM (SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3) AS t",
}
