//! Cross-crate traces over real sockets and real peers: the tower server
//! layer, the reqwest middleware, the sqlx pool and the rdkafka wrappers
//! together in one trace.
//!
//! - `db`: a request to an axum app whose handlers query through a
//!   `TracedPool`: the query spans sit under the request's SERVER span.
//!   SQLite (in memory) always runs; the PostgreSQL and MariaDB tests are
//!   `#[ignore]`d (shown as skipped) and run with `--run-ignored all`, as
//!   `.ci/test` does, failing without their server
//!   (`TRACEWIRE_POSTGRES_URL`, `TRACEWIRE_MYSQL_URL` override their URLs,
//!   `TRACEWIRE_MYSQL_SYSTEM` the expected `db.system.name`, `mariadb` by
//!   default).
//! - `kafka`: a request that produces a message whose consumer calls
//!   another service: one trace from the caller to the last server.
//!   librdkafka's mock cluster by default; the broker at `KAFKA_BROKERS`
//!   when set.
//! - `grpc`: a gRPC call whose handler calls an HTTP service that produces
//!   a message, consumed in a process span: one trace from the gRPC caller
//!   to the consumer (same broker choice as `kafka`).

mod db;
mod grpc;
mod kafka;
mod support;
