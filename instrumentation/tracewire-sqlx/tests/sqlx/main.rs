//! Query spans against real databases: SQLite always (in memory and on
//! disk); PostgreSQL and MariaDB/MySQL are `#[ignore]`d tests (skipped
//! unless asked for with `cargo nextest run --run-ignored all`, as
//! `.ci/test` does when `TRACEWIRE_SQLX_DB_TESTS=1`), which fail when their
//! server is unreachable (URLs from `TRACEWIRE_POSTGRES_URL` /
//! `TRACEWIRE_MYSQL_URL`).

mod support;
#[macro_use]
mod suite;
mod mysql;
mod postgres;
mod sqlite;
