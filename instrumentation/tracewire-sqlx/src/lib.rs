//! Automatic query spans for [sqlx](https://docs.rs/sqlx): swap a
//! `sqlx::Pool` for a [`TracedPool`] and every query made through it
//! becomes a CLIENT span under the current span, named and attributed by
//! the OpenTelemetry database conventions, with no change to query code.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), sqlx::Error> {
//! use tracing::Instrument;
//! use tracing_subscriber::prelude::*;
//! use tracewire::{testing::InMemoryExporter, TracewireLayer};
//! use tracewire_sqlx::TracedPool;
//!
//! let exporter = InMemoryExporter::new();
//! let _guard = tracing::dispatcher::set_default(
//!     &tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone())).into(),
//! );
//!
//! let pool = TracedPool::new(sqlx::SqlitePool::connect("sqlite::memory:").await?);
//! sqlx::raw_sql("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)").execute(&pool).await?;
//!
//! async {
//!     sqlx::query("INSERT INTO users (id, name) VALUES ($1, 'ann')").bind(1).execute(&pool).await?;
//!     let name: String = sqlx::query_scalar("SELECT name FROM users WHERE id = $1")
//!         .bind(1)
//!         .fetch_one(&pool)
//!         .await?;
//!     assert_eq!(name, "ann");
//!
//!     let mut tx = pool.begin().await?;
//!     sqlx::query("DELETE FROM users WHERE id = 1").execute(&mut tx).await?;
//!     tx.commit().await?;
//!     Ok::<_, sqlx::Error>(())
//! }
//! .instrument(tracing::info_span!("handler"))
//! .await?;
//! # drop(pool);
//! # tokio::time::sleep(std::time::Duration::from_millis(50)).await;
//!
//! let insert = exporter.span("INSERT users");
//! assert_eq!(insert.attribute("db.system.name").and_then(|v| v.as_str()), Some("sqlite"));
//! // Literals are replaced by `?`; placeholders stay.
//! assert_eq!(
//!     insert.attribute("db.query.text").and_then(|v| v.as_str()),
//!     Some("INSERT INTO users (id, name) VALUES ($1, ?)")
//! );
//! assert_eq!(exporter.span("SELECT users").kind, tracewire::SpanKind::Client);
//! assert_eq!(exporter.spans_named("COMMIT").len(), 1);
//! # Ok(()) }
//! ```
//!
//! # What each span holds
//!
//! | attribute | value |
//! |---|---|
//! | span name | `db.query.summary` (`SELECT users`), else `db.system.name` |
//! | `otel.kind` | `client` |
//! | `db.system.name` | `postgresql`, `mysql`, `mariadb` (asked of the server once per pool), `sqlite` |
//! | `db.namespace` | database name; SQLite: file name or `:memory:` |
//! | `server.address`, `server.port` | host (or socket path); port only when not the default |
//! | `db.operation.name`, `db.collection.name` | when the query has one operation / one table |
//! | `db.query.summary` | operations and tables in order: `INSERT orders SELECT carts` |
//! | `db.query.text` | per [`QueryText`]: sanitized (default), full, or off |
//! | `db.response.returned_rows` | opt-in: [`TracedPoolBuilder::returned_rows`] |
//! | `db.response.status_code`, `error.type`, status | on failure: PostgreSQL: the SQLSTATE (`23505`; class 02 and above is an error); MySQL/MariaDB: the error number (`1062`; every error); SQLite: the extended result code (`1555`); else the sqlx error kind |
//! | `db.client.connection.wait_time` | seconds spent waiting for a pooled connection (pool executor) |
//!
//! # When each span starts and ends
//!
//! - `execute`, `fetch_one`, `fetch_optional`, `fetch_all`: from the call
//!   (including the wait for a connection) to the result.
//! - `fetch` / `fetch_many` streams: until the stream ends, fails or is
//!   dropped; the span is entered on every poll.
//! - `begin`, `commit`, `rollback`: a `BEGIN` / `COMMIT` / `ROLLBACK` span.
//!
//! sqlx runs SQLite statements on a worker thread that holds the current
//! span while it works, so a SQLite query span can end on that thread, a
//! moment after the awaited call returned. With the subscriber installed
//! globally (as `tracewire::init()` does) its parent then ends as usual; a
//! subscriber that is only a thread's default (`tracing::subscriber::with_default`)
//! is not seen by the worker thread, and `tracing-subscriber`'s registry
//! cannot end the parent (tokio-rs/tracing#1656).
//!
//! Use `&pool`, `&mut conn` (from [`TracedPool::acquire`]) and `&mut tx`
//! (from [`TracedPool::begin`]) as executors. [`TracedPool::inner`] gives
//! the untraced pool.
//!
//! # Generic code: `Executor` yes, `Acquire` no
//!
//! `&TracedPool`, `&mut TracedConnection` and `&mut TracedTransaction` are
//! `sqlx::Executor`s, so a function generic over the executor is traced
//! whichever of them it is given:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), sqlx::Error> {
//! use sqlx::{Executor, Sqlite};
//!
//! async fn count<'e, E: Executor<'e, Database = Sqlite>>(db: E) -> Result<i64, sqlx::Error> {
//!     sqlx::query_scalar("SELECT COUNT(*) FROM sqlite_master").fetch_one(db).await
//! }
//!
//! let pool = tracewire_sqlx::TracedPool::new(sqlx::SqlitePool::connect("sqlite::memory:").await?);
//! count(&pool).await?;
//! let mut tx = pool.begin().await?;
//! count(&mut tx).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```
//!
//! The traced types do not implement `sqlx::Acquire`, because no
//! implementation of it could keep the queries traced: its `acquire()`
//! must return a value that dereferences to the driver's own connection
//! (`Connection: DerefMut<Target = DB::Connection>`) and its `begin()` a
//! `sqlx::Transaction<'c, DB>`, so code generic over `Acquire` queries
//! `&mut *conn` or `&mut *tx`: sqlx's untraced connection, which has no
//! per-query hook. Such an implementation would compile and silently drop
//! every query span. Code written against `A: Acquire` should take an
//! `E: Executor` (one query per executor), or `&TracedPool<DB>` /
//! `&mut TracedConnection<DB>` and call their `begin` and `acquire`.
//!
//! # `sqlx::Any` is not supported
//!
//! `TracedPool<sqlx::Any>` does not compile: `Any` is not a
//! [`TracedDatabase`]. The query path itself would work for it
//! (`&mut AnyConnection` is an `Executor`, and the drivers' errors come
//! through `Any` unchanged), but [`TracedDatabase`] fixes per database type,
//! at compile time, what for `Any` depends on the backend chosen at run
//! time (the URL scheme, or `AnyConnection::backend_name()` once
//! connected): `db.system.name` ([`TracedDatabase::SYSTEM`]), the
//! sanitizer's [`Dialect`](sanitize::Dialect) (MySQL's backslash escapes
//! and `#` comments versus standard strings), which error codes are errors
//! (PostgreSQL's SQLSTATE classes 00 and 01 are not) and which code is
//! recorded (MySQL's error number). Supporting it needs: those four chosen
//! per pool when it is built instead of per type (a profile in the shared
//! span state, which already holds them as values); an `any` feature
//! (`sqlx/any`); an implementation for `Any` that picks the profile from
//! `AnyConnectOptions::database_url`'s scheme among the compiled-in drivers
//! and reads the connection attributes with that driver's
//! `ConnectOptions::from_url`, detecting MariaDB as the `mysql` driver
//! does; and the database test suite run through `Any` for each backend.
//! Until then, match on the URL yourself and build a `TracedPool<Postgres>`,
//! `TracedPool<MySql>` or `TracedPool<Sqlite>` (an enum of them, as
//! `examples/shop` does).
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `postgres` | no | [`sqlx::Postgres`] |
//! | `mysql` | no | `sqlx::MySql`, MySQL and MariaDB |
//! | `sqlite` | no | [`sqlx::Sqlite`] (bundled libsqlite3) |
//!
//! The crate turns on sqlx's `runtime-tokio` and `macros` features (the
//! latter so that `Executor::describe` exists in every build).

mod connection;
pub mod database;
mod execute;
mod executor;
mod pool;
pub mod sanitize;
mod span;
mod stream;
mod transaction;

pub use connection::TracedConnection;
pub use database::TracedDatabase;
pub use pool::{DEFAULT_CACHE_CAPACITY, TracedPool, TracedPoolBuilder};
pub use sanitize::QueryText;
pub use transaction::TracedTransaction;
