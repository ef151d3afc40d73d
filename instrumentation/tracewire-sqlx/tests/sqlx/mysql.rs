//! MariaDB / MySQL (with `TRACEWIRE_SQLX_DB_TESTS=1`). The machine runs
//! MariaDB, so `db.system.name` is `mariadb` unless
//! `TRACEWIRE_MYSQL_SYSTEM` says otherwise.

use std::sync::LazyLock;

static SYSTEM: LazyLock<String> = LazyLock::new(|| env_or("TRACEWIRE_MYSQL_SYSTEM", "mariadb"));

db_suite! {
    db: sqlx::MySql,
    connect: {
        if !server_tests_enabled("mysql") {
            return None;
        }
        let url = env_or("TRACEWIRE_MYSQL_URL", "mysql://root@127.0.0.1:3306/test");
        Some(sqlx::mysql::MySqlPoolOptions::new().max_connections(4).connect(&url).await.unwrap())
    },
    capture: capture,
    p1: "?",
    p2: "?",
    system: SYSTEM.as_str(),
    namespace: "test",
    address: Some("127.0.0.1"),
    syntax_code: "42000",
    unique_code: "23000",
}
