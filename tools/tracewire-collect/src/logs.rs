//! OTLP log records: decoding them to rows, their table (`logs`),
//! inserting and querying them.
//!
//! Log records skip the span processors: `filter` and `tail_sampling` are
//! trace processors, so every log record received is stored.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::sqlite::{SqlitePool, SqliteRow};

use crate::otlp::{attributes_json, clamp_ns, resource_fields, scope_json, value_json};
use crate::store::{Store, StoreError};

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

/// The most log records [`Store::trace_logs`] returns for one trace.
pub const MAX_TRACE_LOGS: u32 = 10_000;

/// Creates the `logs` table and its indexes if missing (called by
/// [`Store::open`]).
pub(crate) async fn create_schema(pool: &SqlitePool) -> Result<(), StoreError> {
    for statement in LOGS_SCHEMA {
        sqlx::query(*statement).execute(pool).await?;
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
    /// Stores `logs` in one transaction.
    ///
    /// # Errors
    /// When SQLite fails; nothing of the batch is stored then.
    pub async fn insert_logs(&self, logs: &[LogRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for l in logs {
            sqlx::query(
                "INSERT INTO logs (trace_id, span_id, time_ns, observed_time_ns, service,
                    severity_number, severity_text, body, attributes, resource, scope, flags)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&l.trace_id)
            .bind(&l.span_id)
            .bind(l.time_ns)
            .bind(l.observed_time_ns)
            .bind(&l.service)
            .bind(l.severity_number)
            .bind(&l.severity_text)
            .bind(&l.body)
            .bind(&l.attributes)
            .bind(&l.resource)
            .bind(&l.scope)
            .bind(i64::from(l.flags))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
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
