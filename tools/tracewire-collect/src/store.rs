//! The embedded trace store: one SQLite file through sqlx.
//!
//! One row per span; attributes, events, links, resource and scope are
//! kept as JSON text. The indexes serve the searches of the API: by
//! service (and operation) over time, by duration, by error, by time, and
//! one trace by id (the primary key).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};

/// The name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "traces.sqlite";

/// The most traces one search returns.
pub const MAX_LIMIT: u32 = 1000;

/// The traces a search returns when it does not say.
pub const DEFAULT_LIMIT: u32 = 20;

const SCHEMA: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS spans (
        trace_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        parent_span_id TEXT,
        service TEXT NOT NULL,
        name TEXT NOT NULL,
        kind INTEGER NOT NULL,
        start_ns INTEGER NOT NULL,
        end_ns INTEGER NOT NULL,
        duration_ns INTEGER NOT NULL,
        status_code INTEGER NOT NULL,
        status_message TEXT NOT NULL,
        is_error INTEGER NOT NULL,
        trace_state TEXT NOT NULL,
        flags INTEGER NOT NULL,
        attributes TEXT NOT NULL,
        events TEXT NOT NULL,
        links TEXT NOT NULL,
        resource TEXT NOT NULL,
        scope TEXT NOT NULL,
        PRIMARY KEY (trace_id, span_id)
    )",
    "CREATE INDEX IF NOT EXISTS spans_service_start ON spans (service, start_ns)",
    "CREATE INDEX IF NOT EXISTS spans_service_name_start ON spans (service, name, start_ns)",
    "CREATE INDEX IF NOT EXISTS spans_duration ON spans (duration_ns)",
    "CREATE INDEX IF NOT EXISTS spans_error_start ON spans (start_ns) WHERE is_error = 1",
    "CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns)",
];

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {}: {source}", path.display())]
    Directory {
        /// The directory.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// SQLite (through sqlx) failed.
    #[error("trace store: {0}")]
    Database(#[from] sqlx::Error),
}

/// One span as stored: ids in lowercase hex, times in Unix nanoseconds,
/// the OTLP enums as their numbers, structured fields as JSON text.
#[derive(Clone, Debug, PartialEq)]
pub struct SpanRow {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits; `None` for a root span.
    pub parent_span_id: Option<String>,
    /// The resource's `service.name` (`unknown_service` without one).
    pub service: String,
    /// The span (operation) name.
    pub name: String,
    /// The OTLP `SpanKind` number.
    pub kind: i32,
    /// Start, Unix nanoseconds.
    pub start_ns: i64,
    /// End, Unix nanoseconds.
    pub end_ns: i64,
    /// The OTLP `StatusCode` number.
    pub status_code: i32,
    /// The status message.
    pub status_message: String,
    /// The W3C trace state.
    pub trace_state: String,
    /// The OTLP span flags.
    pub flags: u32,
    /// A JSON object: attribute key to value.
    pub attributes: String,
    /// A JSON array of events.
    pub events: String,
    /// A JSON array of links.
    pub links: String,
    /// A JSON object: the resource's attributes.
    pub resource: String,
    /// A JSON object: the instrumentation scope.
    pub scope: String,
}

/// A found trace, summarised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TraceSummary {
    /// 32 hex digits.
    pub trace_id: String,
    /// The earliest span start, Unix nanoseconds.
    pub start_unix_nano: i64,
    /// From the earliest start to the latest end, in nanoseconds.
    pub duration_ns: i64,
    /// Spans stored for the trace.
    pub span_count: i64,
    /// Spans with an error status.
    pub error_count: i64,
    /// The root span's service, when the root span is stored.
    pub root_service: Option<String>,
    /// The root span's name, when the root span is stored.
    pub root_name: Option<String>,
    /// Every service with a span in the trace, sorted.
    pub services: Vec<String>,
}

/// What a trace search asks for: traces with at least one span matching
/// every given condition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceQuery {
    /// The span's service.
    pub service: Option<String>,
    /// The span's name.
    pub operation: Option<String>,
    /// The span lasted at least this long (nanoseconds).
    pub min_duration_ns: Option<i64>,
    /// The span lasted at most this long (nanoseconds).
    pub max_duration_ns: Option<i64>,
    /// `Some(true)`: the span has an error status; `Some(false)`: it has
    /// not.
    pub error: Option<bool>,
    /// The span started at or after this time (Unix nanoseconds).
    pub start_min_ns: Option<i64>,
    /// The span started at or before this time (Unix nanoseconds).
    pub start_max_ns: Option<i64>,
    /// At most this many traces (clamped to 1..=[`MAX_LIMIT`]).
    pub limit: u32,
}

/// The SQLite trace store. Cheap to clone (a pool handle).
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`.
    ///
    /// # Errors
    /// When the directory cannot be created or the database opened.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(dir.join(DATABASE_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&pool).await?;
        }
        Ok(Store { pool })
    }

    /// An empty store in memory, for a pipeline that only forwards: the
    /// API answers as for a store with nothing in it.
    ///
    /// # Errors
    /// When SQLite fails.
    pub(crate) async fn in_memory() -> Result<Self, StoreError> {
        // One connection that is never closed: the database lives as long
        // as it does.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(SqliteConnectOptions::from_str("sqlite::memory:")?)
            .await?;
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&pool).await?;
        }
        Ok(Store { pool })
    }

    /// Stores `spans` in one transaction. A span already stored (same
    /// trace and span id, e.g. a retried export) is replaced.
    ///
    /// # Errors
    /// When SQLite fails; nothing of the batch is stored then.
    pub async fn insert(&self, spans: &[SpanRow]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for s in spans {
            sqlx::query(
                "INSERT OR REPLACE INTO spans (trace_id, span_id, parent_span_id, service, name,
                    kind, start_ns, end_ns, duration_ns, status_code, status_message, is_error,
                    trace_state, flags, attributes, events, links, resource, scope)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&s.trace_id)
            .bind(&s.span_id)
            .bind(&s.parent_span_id)
            .bind(&s.service)
            .bind(&s.name)
            .bind(s.kind)
            .bind(s.start_ns)
            .bind(s.end_ns)
            .bind(s.end_ns.saturating_sub(s.start_ns).max(0))
            .bind(s.status_code)
            .bind(&s.status_message)
            .bind(s.status_code == 2)
            .bind(&s.trace_state)
            .bind(i64::from(s.flags))
            .bind(&s.attributes)
            .bind(&s.events)
            .bind(&s.links)
            .bind(&s.resource)
            .bind(&s.scope)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every service with a stored span, sorted.
    ///
    /// # Errors
    /// When SQLite fails.
    pub async fn services(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT service FROM spans ORDER BY service")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The traces matching `query`, newest (latest start) first.
    ///
    /// # Errors
    /// When SQLite fails.
    pub async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError> {
        // Each condition with the value bound to its `?`, so that the
        // placeholders and the binds stay in the same order.
        let texts: Vec<(&str, &str)> = [
            ("service = ?", query.service.as_deref()),
            ("name = ?", query.operation.as_deref()),
        ]
        .into_iter()
        .filter_map(|(c, v)| Some((c, v?)))
        .collect();
        let numbers: Vec<(&str, i64)> = [
            ("duration_ns >= ?", query.min_duration_ns),
            ("duration_ns <= ?", query.max_duration_ns),
            ("start_ns >= ?", query.start_min_ns),
            ("start_ns <= ?", query.start_max_ns),
        ]
        .into_iter()
        .filter_map(|(c, v)| Some((c, v?)))
        .collect();
        let mut conditions: Vec<&str> = texts
            .iter()
            .map(|(c, _)| *c)
            .chain(numbers.iter().map(|(c, _)| *c))
            .collect();
        if let Some(error) = query.error {
            conditions.push(if error {
                "is_error = 1"
            } else {
                "is_error = 0"
            });
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        // Only fixed fragments are formatted in; every value is bound.
        let sql = format!(
            "WITH matched AS (
                SELECT trace_id, MIN(start_ns) AS first FROM spans {filter}
                GROUP BY trace_id ORDER BY first DESC LIMIT ?
             )
             SELECT s.trace_id AS trace_id,
                    MIN(s.start_ns) AS start_ns,
                    MAX(s.end_ns) - MIN(s.start_ns) AS duration_ns,
                    COUNT(*) AS span_count,
                    SUM(s.is_error) AS error_count,
                    (SELECT r.service FROM spans r WHERE r.trace_id = s.trace_id
                        AND r.parent_span_id IS NULL ORDER BY r.start_ns LIMIT 1) AS root_service,
                    (SELECT r.name FROM spans r WHERE r.trace_id = s.trace_id
                        AND r.parent_span_id IS NULL ORDER BY r.start_ns LIMIT 1) AS root_name,
                    (SELECT GROUP_CONCAT(service, char(10)) FROM
                        (SELECT DISTINCT v.service FROM spans v WHERE v.trace_id = s.trace_id
                         ORDER BY v.service)) AS services
             FROM spans s JOIN matched m ON s.trace_id = m.trace_id
             GROUP BY s.trace_id
             ORDER BY start_ns DESC, s.trace_id"
        );
        let mut q = sqlx::query(AssertSqlSafe(sql));
        for (_, v) in texts {
            q = q.bind(v);
        }
        for (_, v) in numbers {
            q = q.bind(v);
        }
        q = q.bind(i64::from(query.limit.clamp(1, MAX_LIMIT)));
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(summary).collect()
    }

    /// Every stored span of a trace (`trace_id`: 32 lowercase hex digits),
    /// by start time; empty when none is stored.
    ///
    /// # Errors
    /// When SQLite fails.
    pub async fn trace(&self, trace_id: &str) -> Result<Vec<SpanRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT trace_id, span_id, parent_span_id, service, name, kind, start_ns, end_ns,
                    status_code, status_message, trace_state, flags, attributes, events, links,
                    resource, scope
             FROM spans WHERE trace_id = ? ORDER BY start_ns, span_id",
        )
        .bind(trace_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(span_row).collect()
    }

    /// Closes the pool: waits for the connections to be returned and
    /// closes them (checkpointing the write-ahead log).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn summary(row: &SqliteRow) -> Result<TraceSummary, StoreError> {
    let services: Option<String> = row.try_get("services")?;
    Ok(TraceSummary {
        trace_id: row.try_get("trace_id")?,
        start_unix_nano: row.try_get("start_ns")?,
        duration_ns: row.try_get("duration_ns")?,
        span_count: row.try_get("span_count")?,
        error_count: row.try_get("error_count")?,
        root_service: row.try_get("root_service")?,
        root_name: row.try_get("root_name")?,
        services: services
            .map(|s| s.split('\n').map(str::to_owned).collect())
            .unwrap_or_default(),
    })
}

fn span_row(row: &SqliteRow) -> Result<SpanRow, StoreError> {
    let flags: i64 = row.try_get("flags")?;
    Ok(SpanRow {
        trace_id: row.try_get("trace_id")?,
        span_id: row.try_get("span_id")?,
        parent_span_id: row.try_get("parent_span_id")?,
        service: row.try_get("service")?,
        name: row.try_get("name")?,
        kind: row.try_get("kind")?,
        start_ns: row.try_get("start_ns")?,
        end_ns: row.try_get("end_ns")?,
        status_code: row.try_get("status_code")?,
        status_message: row.try_get("status_message")?,
        trace_state: row.try_get("trace_state")?,
        flags: u32::try_from(flags).unwrap_or(0),
        attributes: row.try_get("attributes")?,
        events: row.try_get("events")?,
        links: row.try_get("links")?,
        resource: row.try_get("resource")?,
        scope: row.try_get("scope")?,
    })
}
