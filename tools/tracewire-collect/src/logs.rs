//! OTLP log records: decoding them to rows, their table (`logs`),
//! inserting and querying them.
//!
//! Log records skip the span processors: `filter` and `tail_sampling` are
//! trace processors, so every log record received is stored.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use serde_json::{Value, json};
use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::{AssertSqlSafe, QueryBuilder, Row as _, Sqlite};

use crate::otlp::{attributes_json, clamp_ns, resource_fields, scope_json, value_json};
use crate::store::{Store, StoreError, counted_bytes};

/// The `logs` table and its indexes.
const LOGS_SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS logs (
        trace_id TEXT,
        span_id TEXT,
        time_ns INTEGER NOT NULL,
        observed_time_ns INTEGER NOT NULL,
        service TEXT NOT NULL,
        severity_number INTEGER NOT NULL,
        severity_text TEXT NOT NULL,
        body TEXT NOT NULL,
        attributes TEXT NOT NULL,
        resource TEXT NOT NULL,
        scope TEXT NOT NULL,
        flags INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS logs_trace_time ON logs (trace_id, time_ns)",
    "CREATE INDEX IF NOT EXISTS logs_time ON logs (time_ns)",
];

/// Bytes counted per log record for its ids, numbers and index entries,
/// on top of its text (see [`Usage::log_bytes`](crate::Usage::log_bytes)).
pub(crate) const LOG_OVERHEAD_BYTES: u64 = 128;

/// A stored log record's bytes as retention counts them, in SQL: its text
/// plus [`LOG_OVERHEAD_BYTES`] (128). [`log_bytes`] is the same sum in
/// Rust.
pub(crate) const LOG_ROW_BYTES_SQL: &str = "(128 + octet_length(service)
    + octet_length(severity_text) + octet_length(body) + octet_length(attributes)
    + octet_length(resource) + octet_length(scope))";

/// A log row's bytes as retention counts them (see [`LOG_ROW_BYTES_SQL`]).
fn log_bytes(row: &LogRow) -> i64 {
    counted_bytes(
        &[
            &row.service,
            &row.severity_text,
            &row.body,
            &row.attributes,
            &row.resource,
            &row.scope,
        ],
        LOG_OVERHEAD_BYTES,
    )
}

/// Log rows per `INSERT` statement (12 values each).
const ROWS_PER_INSERT: usize = 100;

/// The most log records [`Store::trace_logs`] returns for one trace.
pub const MAX_TRACE_LOGS: u32 = 10_000;

/// Creates the `logs` table and its indexes if missing, and the log
/// columns of `totals` (called by [`Store::open`], after the span schema).
pub(crate) async fn create_schema(pool: &SqlitePool) -> Result<(), StoreError> {
    for statement in LOGS_SCHEMA {
        sqlx::query(*statement).execute(pool).await?;
    }
    // A store of an earlier version counted no log records in `totals`:
    // add the columns and count what is there.
    let counted: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info('totals') WHERE name = 'logs')",
    )
    .fetch_one(pool)
    .await?;
    if !counted {
        for statement in [
            "ALTER TABLE totals ADD COLUMN logs INTEGER NOT NULL DEFAULT 0".to_owned(),
            "ALTER TABLE totals ADD COLUMN log_bytes INTEGER NOT NULL DEFAULT 0".to_owned(),
            format!(
                "UPDATE totals SET logs = (SELECT COUNT(*) FROM logs),
                    log_bytes = (SELECT COALESCE(SUM({LOG_ROW_BYTES_SQL}), 0) FROM logs)"
            ),
        ] {
            sqlx::query(AssertSqlSafe(statement)).execute(pool).await?;
        }
    }
    Ok(())
}

/// One log record as stored: ids in lowercase hex, times in Unix
/// nanoseconds, structured fields as JSON text.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    /// 32 hex digits; `None` when the record has no valid trace id (empty,
    /// all zeros or not 16 bytes: OTLP says such a record belongs to no
    /// trace).
    pub trace_id: Option<String>,
    /// 16 hex digits; `None` when the record has no valid span id (or no
    /// trace id).
    pub span_id: Option<String>,
    /// When the event happened, Unix nanoseconds: the record's
    /// `time_unix_nano`, or its observed time when that is 0.
    pub time_ns: i64,
    /// When the event was observed, Unix nanoseconds: the record's
    /// `observed_time_unix_nano`, or the time the collector received it
    /// when that is 0.
    pub observed_time_ns: i64,
    /// The resource's `service.name` (`unknown_service` without one).
    pub service: String,
    /// The OTLP `SeverityNumber` (0: unspecified, 1–24 TRACE to FATAL4).
    pub severity_number: i32,
    /// The severity as the source wrote it (`INFO`, `warn`, …).
    pub severity_text: String,
    /// The body as JSON: a string, number, boolean, array, object or
    /// `null`, with the same value mapping as attributes.
    pub body: String,
    /// A JSON object: attribute key to value.
    pub attributes: String,
    /// A JSON object: the resource's attributes.
    pub resource: String,
    /// A JSON object: the instrumentation scope (`name`, `version`).
    pub scope: String,
    /// The OTLP log record flags (the low byte: W3C trace flags).
    pub flags: u32,
}

/// The rows of a request's log records. No record is rejected: an
/// invalid trace or span id means the record belongs to no trace.
pub(crate) fn rows(request: ExportLogsServiceRequest) -> Vec<LogRow> {
    let received = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    let mut out = Vec::new();
    for rl in request.resource_logs {
        let (service, resource) = resource_fields(rl.resource.as_ref());
        for sl in rl.scope_logs {
            let scope = scope_json(sl.scope.as_ref());
            for record in sl.log_records {
                let trace_id = valid_id(&record.trace_id, 16);
                let span_id = trace_id.as_ref().and_then(|_| valid_id(&record.span_id, 8));
                let observed = match clamp_ns(record.observed_time_unix_nano) {
                    0 => received,
                    ns => ns,
                };
                let time = match clamp_ns(record.time_unix_nano) {
                    0 => observed,
                    ns => ns,
                };
                out.push(LogRow {
                    trace_id,
                    span_id,
                    time_ns: time,
                    observed_time_ns: observed,
                    service: service.clone(),
                    severity_number: record.severity_number,
                    severity_text: record.severity_text,
                    body: value_json(record.body.as_ref()),
                    attributes: attributes_json(&record.attributes),
                    resource: resource.clone(),
                    scope: scope.clone(),
                    flags: record.flags,
                });
            }
        }
    }
    out
}

/// The id in hex when it has `len` bytes and is not all zeros.
fn valid_id(id: &[u8], len: usize) -> Option<String> {
    (id.len() == len && id.iter().any(|b| *b != 0)).then(|| hex::encode(id))
}

impl Store {
    /// Stores `logs` in one transaction; then, past the [`Retention`]'s
    /// log bounds, the oldest log records are deleted (a failed eviction
    /// is not an error of the write: it is tried again after the next
    /// one).
    ///
    /// [`Retention`]: crate::Retention
    ///
    /// # Errors
    /// When SQLite fails; nothing of the batch is stored then.
    pub async fn insert_logs(&self, logs: &[LogRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for chunk in logs.chunks(ROWS_PER_INSERT) {
            let mut insert = QueryBuilder::<Sqlite>::new(
                "INSERT INTO logs (trace_id, span_id, time_ns, observed_time_ns, service,
                    severity_number, severity_text, body, attributes, resource, scope, flags) ",
            );
            insert.push_values(chunk, |mut row, l| {
                row.push_bind(l.trace_id.as_deref())
                    .push_bind(l.span_id.as_deref())
                    .push_bind(l.time_ns)
                    .push_bind(l.observed_time_ns)
                    .push_bind(l.service.as_str())
                    .push_bind(l.severity_number)
                    .push_bind(l.severity_text.as_str())
                    .push_bind(l.body.as_str())
                    .push_bind(l.attributes.as_str())
                    .push_bind(l.resource.as_str())
                    .push_bind(l.scope.as_str())
                    .push_bind(i64::from(l.flags));
            });
            insert.build().execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE totals SET logs = logs + ?, log_bytes = log_bytes + ? WHERE id = 0")
            .bind(i64::try_from(logs.len()).unwrap_or(i64::MAX))
            .bind(logs.iter().map(log_bytes).fold(0i64, i64::saturating_add))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        let _ = self.enforce_retention().await;
        Ok(())
    }

    /// The stored log records of a trace (`trace_id`: 32 lowercase hex
    /// digits), by time (then in the order stored); at most
    /// [`MAX_TRACE_LOGS`], the earliest.
    ///
    /// # Errors
    /// When SQLite fails.
    pub async fn trace_logs(&self, trace_id: &str) -> Result<Vec<LogRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT trace_id, span_id, time_ns, observed_time_ns, service, severity_number,
                    severity_text, body, attributes, resource, scope, flags
             FROM logs WHERE trace_id = ? ORDER BY time_ns, rowid LIMIT ?",
        )
        .bind(trace_id)
        .bind(i64::from(MAX_TRACE_LOGS))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(log_row).collect()
    }
}

fn log_row(row: &SqliteRow) -> Result<LogRow, StoreError> {
    let flags: i64 = row.try_get("flags")?;
    Ok(LogRow {
        trace_id: row.try_get("trace_id")?,
        span_id: row.try_get("span_id")?,
        time_ns: row.try_get("time_ns")?,
        observed_time_ns: row.try_get("observed_time_ns")?,
        service: row.try_get("service")?,
        severity_number: row.try_get("severity_number")?,
        severity_text: row.try_get("severity_text")?,
        body: row.try_get("body")?,
        attributes: row.try_get("attributes")?,
        resource: row.try_get("resource")?,
        scope: row.try_get("scope")?,
        flags: u32::try_from(flags).unwrap_or(0),
    })
}

/// A log record as the JSON API answers it.
pub(crate) fn log_json(l: &LogRow) -> Value {
    json!({
        "time_unix_nano": l.time_ns,
        "observed_time_unix_nano": l.observed_time_ns,
        "service": l.service,
        "severity_number": l.severity_number,
        "severity_text": l.severity_text,
        "body": stored(&l.body),
        "trace_id": l.trace_id,
        "span_id": l.span_id,
        "attributes": stored(&l.attributes),
        "resource": stored(&l.resource),
        "scope": stored(&l.scope),
    })
}

/// Stored JSON text back to JSON (it was written by this crate; anything
/// else reads as `null`).
fn stored(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    use super::{LOG_OVERHEAD_BYTES, create_schema};

    /// A store of the version before log retention (`totals` without the
    /// log columns, records already stored) gets the columns with the
    /// records counted.
    #[tokio::test]
    async fn an_earlier_stores_log_records_are_counted_at_open() {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(SqliteConnectOptions::from_str("sqlite::memory:").unwrap())
            .await
            .unwrap();
        for statement in [
            "CREATE TABLE totals (id INTEGER PRIMARY KEY CHECK (id = 0),
                traces INTEGER NOT NULL, bytes INTEGER NOT NULL)",
            "INSERT INTO totals (id, traces, bytes) VALUES (0, 0, 0)",
            "CREATE TABLE logs (trace_id TEXT, span_id TEXT, time_ns INTEGER NOT NULL,
                observed_time_ns INTEGER NOT NULL, service TEXT NOT NULL,
                severity_number INTEGER NOT NULL, severity_text TEXT NOT NULL,
                body TEXT NOT NULL, attributes TEXT NOT NULL, resource TEXT NOT NULL,
                scope TEXT NOT NULL, flags INTEGER NOT NULL)",
            "INSERT INTO logs VALUES (NULL, NULL, 1, 1, 'svc', 9, 'INFO', '\"hi\"', '{}', '{}', '{}', 0),
                (NULL, NULL, 2, 2, 'svc', 9, 'INFO', '\"hi\"', '{}', '{}', '{}', 0)",
        ] {
            sqlx::query(statement).execute(&pool).await.unwrap();
        }
        create_schema(&pool).await.unwrap();
        let (logs, bytes): (i64, i64) =
            sqlx::query_as("SELECT logs, log_bytes FROM totals WHERE id = 0")
                .fetch_one(&pool)
                .await
                .unwrap();
        // svc, INFO, "hi", {}, {}, {}: 3 + 4 + 4 + 2 + 2 + 2 bytes.
        let one = LOG_OVERHEAD_BYTES as i64 + 17;
        assert_eq!((logs, bytes), (2, 2 * one));
        // Opening again changes nothing.
        create_schema(&pool).await.unwrap();
        let again: (i64, i64) = sqlx::query_as("SELECT logs, log_bytes FROM totals WHERE id = 0")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(again, (2, 2 * one));
    }
}
