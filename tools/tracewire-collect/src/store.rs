//! The embedded trace store: one SQLite file through sqlx.
//!
//! One row per span; attributes, events, links, resource and scope are
//! kept as JSON text. The indexes serve the searches of the API: by
//! service, by operation (and service) over time, by duration, by error,
//! by time, and one trace by id (the primary key). Each write also keeps
//! a row per trace (`traces`: first start, spans, bytes), the totals
//! retention checks (`totals`) and the distinct operations
//! (`operations`), once per batch (see `write`).

mod dependencies;
mod retention;
mod write;

pub use dependencies::{Edge, TimeRange};
pub(crate) use retention::counted_bytes;
pub use retention::{Retention, Usage};

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite};

/// SQLite's page cache per connection, in KiB (64 MiB; SQLite's default is
/// 2 MiB). The primary key (random trace ids) and the indexes of a growing
/// store outgrow a small cache, and every miss is a read from the file:
/// filling a store to 600,000 spans went from about 13,000 to 16,000–18,000
/// spans/s with it (`benches/RESULTS.md`).
const PAGE_CACHE_KIB: i64 = 64 * 1024;

/// The name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "traces.sqlite";

/// The most traces one search returns.
pub const MAX_LIMIT: u32 = 1000;

/// The traces a search returns when it does not say.
pub const DEFAULT_LIMIT: u32 = 20;

/// The most attribute conditions one search takes.
pub const MAX_ATTRIBUTE_CONDITIONS: usize = 16;

/// The longest attribute key, and the longest value, a search takes (in
/// bytes).
pub const MAX_ATTRIBUTE_BYTES: usize = 256;

/// Bytes counted per span for its ids, numbers and index entries, on top
/// of its text (see [`Usage::bytes`]).
pub const SPAN_OVERHEAD_BYTES: u64 = 128;

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
    // (name, service, start_ns) serves searches by operation with or
    // without a service; it replaced (service, name, start_ns).
    "DROP INDEX IF EXISTS spans_service_name_start",
    "CREATE INDEX IF NOT EXISTS spans_name_service_start ON spans (name, service, start_ns)",
    "CREATE INDEX IF NOT EXISTS spans_duration ON spans (duration_ns)",
    "CREATE INDEX IF NOT EXISTS spans_error_start ON spans (start_ns) WHERE is_error = 1",
    "CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ns)",
    "CREATE TABLE IF NOT EXISTS traces (
        trace_id TEXT PRIMARY KEY,
        first_start_ns INTEGER NOT NULL,
        spans INTEGER NOT NULL,
        bytes INTEGER NOT NULL
    ) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS traces_first_start ON traces (first_start_ns)",
    "CREATE TABLE IF NOT EXISTS totals (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        traces INTEGER NOT NULL,
        bytes INTEGER NOT NULL,
        logs INTEGER NOT NULL DEFAULT 0,
        log_bytes INTEGER NOT NULL DEFAULT 0
    )",
    "INSERT OR IGNORE INTO totals (id, traces, bytes) VALUES (0, 0, 0)",
    "CREATE TABLE IF NOT EXISTS operations (
        service TEXT NOT NULL,
        name TEXT NOT NULL,
        kind INTEGER NOT NULL,
        PRIMARY KEY (service, name, kind)
    ) WITHOUT ROWID",
    // Stores of earlier versions kept `traces`, `totals` and
    // `operations` with per-row triggers; `Store::insert` now updates them
    // once per batch.
    "DROP TRIGGER IF EXISTS spans_inserted",
    "DROP TRIGGER IF EXISTS spans_replaced",
    "DROP TRIGGER IF EXISTS spans_deleted",
    "DROP TRIGGER IF EXISTS traces_inserted",
    "DROP TRIGGER IF EXISTS traces_updated",
    "DROP TRIGGER IF EXISTS traces_deleted",
];

/// Fills `traces` and `operations` for spans stored before those tables
/// existed, and recounts `totals`; run at every open (each statement is
/// cheap when there is nothing to do).
fn backfill() -> [String; 3] {
    [
        format!(
            "INSERT OR IGNORE INTO traces (trace_id, first_start_ns, spans, bytes)
             SELECT trace_id, MIN(start_ns), COUNT(*), SUM({})
             FROM spans WHERE NOT EXISTS (SELECT 1 FROM traces) GROUP BY trace_id",
            write::ROW_BYTES_SQL
        ),
        "INSERT OR IGNORE INTO operations (service, name, kind)
            SELECT DISTINCT service, name, kind FROM spans
            WHERE NOT EXISTS (SELECT 1 FROM operations)"
            .to_owned(),
        "UPDATE totals SET traces = (SELECT COUNT(*) FROM traces),
            bytes = (SELECT COALESCE(SUM(bytes), 0) FROM traces) WHERE id = 0"
            .to_owned(),
    ]
}

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

/// One operation of a service: a span name with its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// The span name.
    pub name: String,
    /// The OTLP `SpanKind` number.
    pub kind: i32,
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
    /// `(key, value)`: the span, or its resource, has the attribute `key`
    /// whose string rendering is `value` (strings as they are, other
    /// values as their JSON text: `200`, `true`, `1.5`). The API allows at
    /// most [`MAX_ATTRIBUTE_CONDITIONS`] of at most
    /// [`MAX_ATTRIBUTE_BYTES`] each.
    pub attributes: Vec<(String, String)>,
    /// At most this many traces (clamped to 1..=[`MAX_LIMIT`]).
    pub limit: u32,
}

/// The SQLite trace store. Cheap to clone (a pool handle; clones share
/// the retention and the eviction count).
#[derive(Clone, Debug)]
pub struct Store {
    retention: Retention,
    evicted: Arc<AtomicU64>,
    pub(crate) pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, with the default
    /// [`Retention`].
    ///
    /// # Errors
    /// When the directory cannot be created or the database opened.
    pub async fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, Retention::default()).await
    }

    /// Opens (creating if needed) the store in `dir`, bounded by
    /// `retention` (applied at once: a store over the bounds loses its
    /// oldest traces).
    ///
    /// # Errors
    /// When the directory cannot be created or the database opened.
    pub async fn open_with(dir: &Path, retention: Retention) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
            path: dir.to_path_buf(),
            source,
        })?;
        let options = SqliteConnectOptions::from_str("sqlite:")?
            .filename(dir.join(DATABASE_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", format!("-{PAGE_CACHE_KIB}"));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Store::set_up(pool, retention).await
    }

    /// Creates the tables and indexes (if missing) of the store in `pool`
    /// and applies `retention`.
    async fn set_up(pool: SqlitePool, retention: Retention) -> Result<Self, StoreError> {
        for statement in SCHEMA {
            sqlx::query(*statement).execute(&pool).await?;
        }
        crate::logs::create_schema(&pool).await?;
        for statement in backfill() {
            sqlx::query(AssertSqlSafe(statement)).execute(&pool).await?;
        }
        let store = Store {
            retention,
            evicted: Arc::new(AtomicU64::new(0)),
            pool,
        };
        store.enforce_retention().await?;
        Ok(store)
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
        Store::set_up(pool, Retention::default()).await
    }

    /// Stores `spans` in one transaction. A span already stored (same
    /// trace and span id, e.g. a retried export) is replaced. Then, past
    /// the [`Retention`], the oldest traces are deleted whole (a failed
    /// eviction is not an error of the write: it is tried again after the
    /// next one).
    ///
    /// # Errors
    /// When SQLite fails; nothing of the batch is stored then.
    pub async fn insert(&self, spans: Vec<SpanRow>) -> Result<(), StoreError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        write::insert(&mut tx, spans).await?;
        tx.commit().await?;
        let _ = self.enforce_retention().await;
        Ok(())
    }

    /// Deletes the oldest traces (by first span start) whole — spans and
    /// log records — in chunks of 256, until the store is within its
    /// [`Retention`]; returns how many were deleted. [`Store::insert`]
    /// calls it after every write.
    ///
    /// # Errors
    /// When SQLite fails (what was deleted before stays deleted).
    pub async fn enforce_retention(&self) -> Result<u64, StoreError> {
        let evicted = retention::enforce(&self.pool, self.retention).await?;
        self.evicted.fetch_add(evicted, Ordering::Relaxed);
        Ok(evicted)
    }

    /// The bounds of this store.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Traces deleted by retention since this store was opened.
    pub fn traces_evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// The traces and bytes stored, as retention counts them.
    ///
    /// # Errors
    /// When SQLite fails.
    pub async fn usage(&self) -> Result<Usage, StoreError> {
        retention::usage(&self.pool).await
    }

    /// Every service with a stored span, sorted.
    ///
    /// # Errors
    /// When SQLite fails.
    pub async fn services(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT DISTINCT service FROM operations ORDER BY service")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// The operations of `service`: each distinct span name with its kind,
    /// sorted by name (then kind).
    ///
    /// # Errors
    /// When SQLite fails.
    pub async fn operations(&self, service: &str) -> Result<Vec<Operation>, StoreError> {
        let rows =
            sqlx::query("SELECT name, kind FROM operations WHERE service = ? ORDER BY name, kind")
                .bind(service)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(Operation {
                    name: row.try_get("name")?,
                    kind: row.try_get("kind")?,
                })
            })
            .collect()
    }

    /// The calls between services, and from services to databases, among
    /// the spans starting in `range`, sorted by caller, callee and
    /// protocol. See the README for the definition and the cost.
    ///
    /// # Errors
    /// When SQLite fails.
    pub async fn dependencies(&self, range: TimeRange) -> Result<Vec<Edge>, StoreError> {
        dependencies::dependencies(&self.pool, range).await
    }

    /// The traces matching `query`, newest (latest start) first.
    ///
    /// # Errors
    /// When SQLite fails.
    pub async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>, StoreError> {
        let rows = search_query(query, false).fetch_all(&self.pool).await?;
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

/// The search of [`Store::find_traces`] with its values bound (with
/// `explain`, its `EXPLAIN QUERY PLAN`).
fn search_query<'q>(
    query: &'q TraceQuery,
    explain: bool,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments> {
    // Each condition with the value bound to its `?`, so that the
    // placeholders and the binds stay in the same order.
    let texts: Vec<(&str, &'q str)> = [
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
    // The key goes in as a bound JSON path (`$."key"`, quoted and
    // escaped as a JSON string), never into the SQL text.
    let attributes: Vec<(String, &'q str)> = query
        .attributes
        .iter()
        .map(|(key, value)| (attribute_path(key), value.as_str()))
        .collect();
    conditions.extend(attributes.iter().map(|_| ATTRIBUTE_CONDITION));
    let matched = if conditions.is_empty() {
        // The newest traces, straight from their index.
        "SELECT trace_id, first_start_ns AS first FROM traces
         ORDER BY first_start_ns DESC LIMIT ?"
            .to_owned()
    } else {
        // `+trace_id`: grouping does not use the primary key, so that the
        // conditions' index finds the spans (the planner would rather scan
        // the whole table in trace order for a one-sided range).
        format!(
            "SELECT trace_id, MIN(start_ns) AS first FROM spans WHERE {}
             GROUP BY +trace_id ORDER BY first DESC LIMIT ?",
            conditions.join(" AND ")
        )
    };
    // Only fixed fragments are formatted in; every value is bound.
    let explain = if explain { "EXPLAIN QUERY PLAN " } else { "" };
    let sql = format!(
        "{explain}WITH matched AS ({matched})
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
    for (path, value) in &attributes {
        for _ in 0..3 {
            q = q.bind(path.clone());
        }
        q = q.bind(*value);
        for _ in 0..3 {
            q = q.bind(path.clone());
        }
        q = q.bind(*value);
    }
    q = q.bind(i64::from(query.limit.clamp(1, MAX_LIMIT)));
    q
}

/// One attribute condition; binds: the path three times, the value, the
/// path three times, the value. A string compares as its text, anything
/// else as its JSON text.
const ATTRIBUTE_CONDITION: &str = "((CASE json_type(attributes, ?) WHEN 'text' \
    THEN attributes ->> ? ELSE attributes -> ? END) = ? \
    OR (CASE json_type(resource, ?) WHEN 'text' \
    THEN resource ->> ? ELSE resource -> ? END) = ?)";

/// The JSON path of an object member named `key`: `$."key"` with the key
/// escaped as a JSON string (SQLite reads those escapes in quoted path
/// labels), so dots, quotes and backslashes are part of the key.
fn attribute_path(key: &str) -> String {
    let quoted = serde_json::to_string(key).unwrap_or_else(|_| "\"\"".to_owned());
    format!("$.{quoted}")
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

#[cfg(test)]
mod tests {
    use sqlx::Row as _;

    use super::{Retention, SpanRow, Store, TraceQuery, search_query};
    use crate::logs::LogRow;

    fn row(trace: u32, start_ns: i64) -> SpanRow {
        SpanRow {
            trace_id: format!("{trace:032x}"),
            span_id: format!("{:016x}", 1),
            parent_span_id: None,
            service: "svc".to_owned(),
            name: "op".to_owned(),
            kind: 2,
            start_ns,
            end_ns: start_ns + 10,
            status_code: 0,
            status_message: String::new(),
            trace_state: String::new(),
            flags: 1,
            attributes: "{}".to_owned(),
            events: "[]".to_owned(),
            links: "[]".to_owned(),
            resource: "{}".to_owned(),
            scope: "{}".to_owned(),
        }
    }

    /// The plan of the search's first step (finding matching spans) names
    /// the index each single condition should use.
    #[tokio::test]
    async fn each_search_condition_uses_an_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let some = |s: &str| Some(s.to_owned());
        let cases = [
            (TraceQuery::default(), "traces_first_start"),
            (
                TraceQuery {
                    service: some("svc"),
                    ..TraceQuery::default()
                },
                "spans_service_start",
            ),
            (
                TraceQuery {
                    operation: some("op"),
                    ..TraceQuery::default()
                },
                "spans_name_service_start",
            ),
            (
                TraceQuery {
                    service: some("svc"),
                    operation: some("op"),
                    ..TraceQuery::default()
                },
                "spans_name_service_start",
            ),
            (
                TraceQuery {
                    min_duration_ns: Some(1_000),
                    ..TraceQuery::default()
                },
                "spans_duration",
            ),
            (
                TraceQuery {
                    error: Some(true),
                    ..TraceQuery::default()
                },
                "spans_error_start",
            ),
            (
                TraceQuery {
                    start_min_ns: Some(1),
                    start_max_ns: Some(2),
                    ..TraceQuery::default()
                },
                "spans_start",
            ),
        ];
        for (query, index) in cases {
            let plan: Vec<String> = search_query(&query, true)
                .fetch_all(&store.pool)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get::<String, _>("detail"))
                .collect();
            assert!(
                plan.iter()
                    .any(|d| d.contains(" USING ") && d.contains(index)),
                "{query:?} should use {index}: {plan:#?}"
            );
        }
        // Eviction finds the oldest traces through their index.
        let plan: Vec<String> = sqlx::query(
            "EXPLAIN QUERY PLAN SELECT trace_id, bytes FROM traces
             ORDER BY first_start_ns, trace_id LIMIT 1",
        )
        .fetch_all(&store.pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("detail"))
        .collect();
        assert!(
            plan.iter().any(|d| d.contains("traces_first_start")),
            "{plan:#?}"
        );
    }

    /// Every connection of the store has the larger page cache.
    #[tokio::test]
    async fn the_stores_connections_have_the_larger_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut conn = store.pool.acquire().await.unwrap();
            let kib: i64 = sqlx::query_scalar("PRAGMA cache_size")
                .fetch_one(&mut *conn)
                .await
                .unwrap();
            assert_eq!(kib, -super::PAGE_CACHE_KIB);
            held.push(conn);
        }
    }

    /// An evicted trace's log records go with it (and out of the
    /// totals); others stay.
    #[tokio::test]
    async fn eviction_deletes_the_traces_log_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_with(
            dir.path(),
            Retention {
                max_traces: 1,
                ..Retention::default()
            },
        )
        .await
        .unwrap();
        let logs: Vec<LogRow> = [(Some(1u32), 1), (Some(1), 2), (Some(2), 3), (None, 4)]
            .into_iter()
            .map(|(trace, time_ns)| LogRow {
                trace_id: trace.map(|t| format!("{t:032x}")),
                span_id: None,
                time_ns,
                observed_time_ns: time_ns,
                service: "svc".to_owned(),
                severity_number: 9,
                severity_text: "INFO".to_owned(),
                body: "\"hello\"".to_owned(),
                attributes: "{}".to_owned(),
                resource: "{}".to_owned(),
                scope: "{}".to_owned(),
                flags: 0,
            })
            .collect();
        store.insert_logs(&logs).await.unwrap();
        let one_log = store.usage().await.unwrap().log_bytes / 4;
        store.insert(vec![row(1, 100)]).await.unwrap();
        store.insert(vec![row(2, 200)]).await.unwrap();
        assert_eq!(store.traces_evicted(), 1);
        let left: Vec<i64> = sqlx::query_scalar("SELECT time_ns FROM logs ORDER BY time_ns")
            .fetch_all(&store.pool)
            .await
            .unwrap();
        assert_eq!(left, [3, 4]);
        let usage = store.usage().await.unwrap();
        assert_eq!((usage.logs, usage.log_bytes), (2, 2 * one_log));
    }
}
