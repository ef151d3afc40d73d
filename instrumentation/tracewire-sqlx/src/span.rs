//! The state a traced pool shares with its connections and transactions,
//! and the query span: creation and recording of results.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::Error;
use sqlx::error::DatabaseError;
use tracing::Span;
use tracing::field::Empty;

use crate::database::{ConnectionInfo, TracedDatabase};
use crate::sanitize::{QueryCache, QueryText};

/// Options shared by a pool and everything acquired from it.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cache: QueryCache,
    pub(crate) query_text: QueryText,
    pub(crate) returned_rows: bool,
    /// `db.system.name`, once known (MySQL's needs a look at the server).
    pub(crate) system: OnceLock<&'static str>,
    pub(crate) default_system: &'static str,
    pub(crate) info: ConnectionInfo,
    pub(crate) is_error_code: fn(&str) -> bool,
    /// `db.response.status_code` of a database error.
    pub(crate) status_code: for<'e> fn(&'e (dyn DatabaseError + 'static)) -> Option<Cow<'e, str>>,
}

impl Shared {
    pub(crate) fn new<DB: TracedDatabase>(
        info: ConnectionInfo,
        query_text: QueryText,
        returned_rows: bool,
        cache_capacity: usize,
        detect: bool,
    ) -> Arc<Self> {
        let system = OnceLock::new();
        if !detect {
            let _ = system.set(DB::SYSTEM);
        }
        Arc::new(Self {
            cache: QueryCache::new(DB::DIALECT, cache_capacity),
            query_text,
            returned_rows,
            system,
            default_system: DB::SYSTEM,
            info,
            is_error_code: DB::is_error_code,
            status_code: DB::status_code,
        })
    }

    /// A CLIENT span for `sql`, a child of the current span.
    pub(crate) fn query_span(&self, sql: &str) -> Span {
        let info = self.cache.get(sql);
        let system = self.system.get().copied();
        let name = info
            .summary()
            .unwrap_or_else(|| system.unwrap_or(self.default_system));
        let text = match self.query_text {
            QueryText::Full => Some(sql),
            QueryText::Sanitized => Some(info.text()),
            QueryText::Off => None,
        };
        tracing::info_span!(
            target: "tracewire_sqlx",
            "db.query",
            otel.name = name,
            otel.kind = "client",
            otel.status_code = Empty,
            otel.status_message = Empty,
            db.system.name = system,
            db.namespace = self.info.namespace.as_deref(),
            server.address = self.info.address.as_deref(),
            server.port = self.info.port,
            db.operation.name = info.operation(),
            db.collection.name = info.collection(),
            db.query.summary = info.summary(),
            db.query.text = text,
            db.response.returned_rows = Empty,
            db.response.status_code = Empty,
            error.type = Empty,
            db.client.connection.wait_time = Empty,
        )
    }

    /// A CLIENT span for a transaction statement (`BEGIN`, `COMMIT`,
    /// `ROLLBACK`) that sqlx runs for us.
    pub(crate) fn tx_span(&self, op: &'static str) -> Span {
        tracing::info_span!(
            target: "tracewire_sqlx",
            "db.query",
            otel.name = op,
            otel.kind = "client",
            otel.status_code = Empty,
            otel.status_message = Empty,
            db.system.name = self.system.get().copied(),
            db.namespace = self.info.namespace.as_deref(),
            server.address = self.info.address.as_deref(),
            server.port = self.info.port,
            db.operation.name = op,
            db.query.summary = op,
            db.response.status_code = Empty,
            error.type = Empty,
            db.client.connection.wait_time = Empty,
        )
    }

    /// Records `db.system.name` once it is known.
    pub(crate) fn record_system(&self, span: &Span, system: &'static str) {
        let _ = self.system.set(system);
        span.record("db.system.name", system);
    }

    pub(crate) fn record_rows(&self, span: &Span, rows: u64) {
        if self.returned_rows {
            span.record("db.response.returned_rows", rows);
        }
    }

    /// Records a failed query: the database's code (PostgreSQL: SQLSTATE;
    /// MySQL/MariaDB: error number; SQLite: extended result code),
    /// `error.type`, and status Error when the code counts as an error.
    pub(crate) fn record_error(&self, span: &Span, err: &Error) {
        let code = match err {
            Error::Database(db) => (self.status_code)(&**db),
            _ => None,
        };
        let error_type = match &code {
            Some(code) => {
                span.record("db.response.status_code", code.as_ref());
                if !(self.is_error_code)(code) {
                    return;
                }
                code.as_ref()
            }
            None => error_type(err),
        };
        tracewire::error::record_error(span, error_type, Some(err));
    }
}

/// Records the time spent waiting for a pooled connection.
pub(crate) fn record_wait(span: &Span, wait: Duration) {
    span.record("db.client.connection.wait_time", wait.as_secs_f64());
}

/// A low-cardinality name for an error without a database code.
fn error_type(err: &Error) -> &'static str {
    match err {
        Error::Configuration(_) => "Configuration",
        Error::InvalidArgument(_) => "InvalidArgument",
        Error::Database(_) => "Database",
        Error::Io(_) => "Io",
        Error::Tls(_) => "Tls",
        Error::Protocol(_) => "Protocol",
        Error::RowNotFound => "RowNotFound",
        Error::TypeNotFound { .. } => "TypeNotFound",
        Error::ColumnIndexOutOfBounds { .. } => "ColumnIndexOutOfBounds",
        Error::ColumnNotFound(_) => "ColumnNotFound",
        Error::ColumnDecode { .. } => "ColumnDecode",
        Error::Encode(_) => "Encode",
        Error::Decode(_) => "Decode",
        Error::PoolTimedOut => "PoolTimedOut",
        Error::PoolClosed => "PoolClosed",
        Error::WorkerCrashed => "WorkerCrashed",
        _ => "_OTHER",
    }
}

/// Runs `f` with no current span. A pooled connection is returned here:
/// sqlx's SQLite worker keeps the span current when a command is sent (for
/// example when a connection goes back to the pool) until its next command,
/// which would keep a finished query's span, or its parent, open.
pub(crate) fn without_span<R>(f: impl FnOnce() -> R) -> R {
    tracing::dispatcher::with_default(&tracing::Dispatch::none(), f)
}
