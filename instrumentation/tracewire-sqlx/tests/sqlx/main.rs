//! Query spans against real databases: SQLite always (in memory and on
//! disk); PostgreSQL and MariaDB/MySQL when `TRACEWIRE_SQLX_DB_TESTS=1`
//! (URLs from `TRACEWIRE_POSTGRES_URL` / `TRACEWIRE_MYSQL_URL`).

mod support;
#[macro_use]
mod suite;
mod mysql;
mod postgres;
mod sqlite;
