//! The shop's database: SQLite by default, PostgreSQL when `DATABASE_URL`
//! says so. The same SQL runs on both (`$n` placeholders work in SQLite
//! too); the pool type is chosen when connecting.
//!
//! `users.email` has no index on purpose: a lookup by e-mail reads the
//! whole table, which is what a cache miss in the user service costs.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Postgres, Sqlite};
use tracewire_sqlx::TracedPool;

use crate::BoxError;

/// The PostgreSQL schema the shop's tables live in (so that they never
/// meet another program's tables in a shared database); `create` spells it
/// out in its statements.
const PG_SCHEMA: &str = "shop";

/// A user row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub(crate) struct User {
    pub(crate) id: i64,
    pub(crate) email: String,
    pub(crate) name: String,
}

/// The e-mail address of the seeded user `id`.
pub(crate) fn email_of(id: u32) -> String {
    format!("user{id}@shop.example")
}

/// A traced connection pool to either database.
#[derive(Clone, Debug)]
pub(crate) enum Db {
    Sqlite(TracedPool<Sqlite>),
    Postgres(TracedPool<Postgres>),
}

/// Runs `$body` with `$pool` bound to whichever traced pool `$db` holds.
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

/// Whether `url` names a PostgreSQL server.
fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The URL services use for the SQLite database file `path`.
pub(crate) fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Checks that `url` is one this example can use.
pub(crate) fn check_url(url: &str) -> Result<(), BoxError> {
    if is_postgres(url) || url.starts_with("sqlite:") {
        Ok(())
    } else {
        Err(format!(
            "DATABASE_URL must be a postgres:// URL (or unset for SQLite), not {:?}",
            url.split(':').next().unwrap_or_default()
        )
        .into())
    }
}

impl Db {
    /// Connects to `url` with at most `connections` connections.
    pub(crate) async fn connect(url: &str, connections: u32) -> Result<Db, BoxError> {
        check_url(url)?;
        if is_postgres(url) {
            let options = PgConnectOptions::from_str(url)?.options([("search_path", PG_SCHEMA)]);
            let pool = PgPoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
            Ok(Db::Postgres(
                TracedPool::builder(pool).returned_rows(true).build(),
            ))
        } else {
            let options = SqliteConnectOptions::from_str(url)?
                .busy_timeout(Duration::from_secs(10))
                .journal_mode(SqliteJournalMode::Wal)
                // Durable across a crash of the program (not of the machine),
                // as usual with WAL; FULL would fsync on every commit.
                .synchronous(SqliteSynchronous::Normal);
            let pool = SqlitePoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|e| format!("cannot open the SQLite database: {e}"))?;
            Ok(Db::Sqlite(
                TracedPool::builder(pool).returned_rows(true).build(),
            ))
        }
    }

    /// Creates the database afresh with `users` seeded rows (untraced: it
    /// is set-up, not a request). SQLite files are created; PostgreSQL gets
    /// the `shop` schema, its old tables dropped.
    pub(crate) async fn create(url: &str, users: u32) -> Result<(), BoxError> {
        check_url(url)?;
        if is_postgres(url) {
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect(url)
                .await
                .map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
            // The schema is `shop` (see `connect`).
            sqlx::raw_sql(
                "CREATE SCHEMA IF NOT EXISTS shop;
                 DROP TABLE IF EXISTS shop.orders, shop.users;
                 CREATE TABLE shop.users (id BIGINT PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL);
                 CREATE TABLE shop.orders (id BIGSERIAL PRIMARY KEY, user_id BIGINT NOT NULL,
                     amount_cents BIGINT NOT NULL, status TEXT NOT NULL, notified BIGINT NOT NULL DEFAULT 0);",
            )
            .execute(&admin)
            .await?;
            sqlx::query(
                "INSERT INTO shop.users (id, email, name)
                 SELECT n, 'user' || n || '@shop.example', 'User ' || n FROM generate_series(1, $1::BIGINT) AS n",
            )
            .bind(i64::from(users))
            .execute(&admin)
            .await?;
            sqlx::raw_sql("ANALYZE shop.users").execute(&admin).await?;
            admin.close().await;
        } else {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(|e| format!("cannot create the SQLite database: {e}"))?;
            sqlx::raw_sql(
                "DROP TABLE IF EXISTS orders;
                 DROP TABLE IF EXISTS users;
                 CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL);
                 CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER NOT NULL,
                     amount_cents INTEGER NOT NULL, status TEXT NOT NULL, notified INTEGER NOT NULL DEFAULT 0);",
            )
            .execute(&pool)
            .await?;
            // One statement, one transaction: a few hundred thousand rows in
            // well under a second.
            sqlx::query(
                "WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < $1)
                 INSERT INTO users (id, email, name)
                 SELECT n, 'user' || n || '@shop.example', 'User ' || n FROM seq",
            )
            .bind(i64::from(users))
            .execute(&pool)
            .await?;
            // Move the seeded rows from the write-ahead log into the
            // database now, not during the first order's INSERT.
            sqlx::raw_sql("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&pool)
                .await?;
            pool.close().await;
        }
        Ok(())
    }

    /// Users with an id up to `last`, untraced (for warming a cache at
    /// start).
    pub(crate) async fn first_users(&self, last: u32) -> Result<Vec<User>, sqlx::Error> {
        const SQL: &str = "SELECT id, email, name FROM users WHERE id <= $1";
        with_pool!(self, pool => sqlx::query_as(SQL).bind(i64::from(last)).fetch_all(pool.inner()).await)
    }

    /// The users with this e-mail address: a full table scan, as there is
    /// no index on `email`.
    pub(crate) async fn users_by_email(&self, email: &str) -> Result<Vec<User>, sqlx::Error> {
        const SQL: &str = "SELECT id, email, name FROM users WHERE email = $1";
        with_pool!(self, pool => sqlx::query_as(SQL).bind(email).fetch_all(pool).await)
    }

    /// Stores a new pending order; its id.
    pub(crate) async fn insert_order(
        &self,
        user_id: i64,
        amount_cents: i64,
    ) -> Result<i64, sqlx::Error> {
        const SQL: &str = "INSERT INTO orders (user_id, amount_cents, status) VALUES ($1, $2, 'pending') RETURNING id";
        with_pool!(self, pool => sqlx::query_scalar(SQL).bind(user_id).bind(amount_cents).fetch_one(pool).await)
    }

    /// Sets an order's status.
    pub(crate) async fn set_order_status(&self, id: i64, status: &str) -> Result<(), sqlx::Error> {
        const SQL: &str = "UPDATE orders SET status = $1 WHERE id = $2";
        with_pool!(self, pool => sqlx::query(SQL).bind(status).bind(id).execute(pool).await.map(|_| ()))
    }

    /// Records that the customer was told about order `id`; false when
    /// there is no such order.
    pub(crate) async fn mark_notified(&self, id: i64) -> Result<bool, sqlx::Error> {
        const SQL: &str = "UPDATE orders SET notified = 1 WHERE id = $1";
        let rows = with_pool!(self, pool => sqlx::query(SQL).bind(id).execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(rows == 1)
    }

    /// Paid orders whose customer has not been told yet (untraced: the
    /// launcher's wait, not a request).
    pub(crate) async fn unnotified_orders(&self) -> Result<i64, sqlx::Error> {
        const SQL: &str = "SELECT COUNT(*) FROM orders WHERE status = 'paid' AND notified = 0";
        with_pool!(self, pool => sqlx::query_scalar(SQL).fetch_one(pool.inner()).await)
    }

    /// Closes the pool.
    pub(crate) async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }
}
