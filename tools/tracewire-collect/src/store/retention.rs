//! Retention: the store is bounded by a number of traces and a number of
//! bytes; past either bound the oldest traces (by first span start) are
//! deleted whole, with their log records. Log records are bounded too, by
//! their own number and bytes (records of no trace, or of a trace never
//! stored, would otherwise stay forever); past either, the oldest records
//! (by time) are deleted.
//!
//! The sizes are kept by every write (see `write`): `traces` holds one
//! row per trace (first span start, spans, bytes) and `totals` the sums,
//! so checking the bounds after a write is one row read and finding the
//! oldest traces is an index range.

use sqlx::sqlite::{SqliteConnection, SqlitePool};
use sqlx::{AssertSqlSafe, Row as _};

use super::StoreError;
use crate::logs::LOG_ROW_BYTES_SQL;

/// Traces deleted per transaction when evicting.
pub(super) const EVICTION_CHUNK: i64 = 256;

/// The store's bounds; past either, the oldest traces are deleted whole
/// after a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// The most traces kept (default 100,000).
    pub max_traces: u64,
    /// The most bytes kept, as counted by [`Usage::bytes`] (default
    /// 1 GiB).
    pub max_bytes: u64,
    /// The most log records kept (default 1,000,000).
    pub max_logs: u64,
    /// The most bytes of log records kept, as counted by
    /// [`Usage::log_bytes`] (default 256 MiB).
    pub max_log_bytes: u64,
}

impl Retention {
    /// 100,000 traces and 1 GiB; 1,000,000 log records and 256 MiB.
    pub const DEFAULT: Retention = Retention {
        max_traces: 100_000,
        max_bytes: 1 << 30,
        max_logs: 1_000_000,
        max_log_bytes: 256 << 20,
    };
}

impl Default for Retention {
    /// [`Retention::DEFAULT`].
    fn default() -> Self {
        Retention::DEFAULT
    }
}

/// What the store holds, as retention counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Traces with at least one stored span.
    pub traces: u64,
    /// The stored text of every span (name, service, status message,
    /// trace state and the JSON of attributes, events, links, resource and
    /// scope, in UTF-8 bytes) plus
    /// [`SPAN_OVERHEAD_BYTES`](super::SPAN_OVERHEAD_BYTES) per span for
    /// its ids, numbers and index entries.
    pub bytes: u64,
    /// Log records stored.
    pub logs: u64,
    /// The stored text of every log record (service, severity text and
    /// the JSON of body, attributes, resource and scope, in UTF-8 bytes)
    /// plus 128 bytes per record for its ids, numbers and index entries.
    pub log_bytes: u64,
}

/// What retention counts for one stored row: the UTF-8 bytes of `texts`
/// plus `overhead` (its ids, numbers and index entries).
pub(crate) fn counted_bytes(texts: &[&str], overhead: u64) -> i64 {
    let text = texts.iter().map(|s| s.len() as u64).sum::<u64>();
    i64::try_from(text.saturating_add(overhead)).unwrap_or(i64::MAX)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(super) async fn usage(pool: &SqlitePool) -> Result<Usage, StoreError> {
    let row = sqlx::query("SELECT traces, bytes, logs, log_bytes FROM totals WHERE id = 0")
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        Some(row) => Usage {
            traces: to_u64(row.try_get("traces")?),
            bytes: to_u64(row.try_get("bytes")?),
            logs: to_u64(row.try_get("logs")?),
            log_bytes: to_u64(row.try_get("log_bytes")?),
        },
        None => Usage::default(),
    })
}

/// Deletes the oldest traces (spans, their `traces` row and their log
/// records), [`EVICTION_CHUNK`] per transaction, until the store is within
/// `retention`'s trace bounds; then the oldest log records until it is
/// within its log bounds. Returns the traces deleted.
pub(super) async fn enforce(pool: &SqlitePool, retention: Retention) -> Result<u64, StoreError> {
    let mut evicted = 0;
    loop {
        let now = usage(pool).await?;
        let excess_traces = now.traces.saturating_sub(retention.max_traces);
        let excess_bytes = now.bytes.saturating_sub(retention.max_bytes);
        if excess_traces == 0 && excess_bytes == 0 {
            break;
        }
        let oldest = sqlx::query(
            "SELECT trace_id, bytes FROM traces ORDER BY first_start_ns, trace_id LIMIT ?",
        )
        .bind(EVICTION_CHUNK)
        .fetch_all(pool)
        .await?;
        let oldest = oldest
            .iter()
            .map(|row| Ok((row.try_get::<String, _>("trace_id")?, row.try_get("bytes")?)))
            .collect::<Result<Vec<(String, i64)>, sqlx::Error>>()?;
        let ids = enough(oldest, excess_traces, excess_bytes);
        if ids.is_empty() {
            break;
        }
        evicted += delete_traces(pool, &ids).await?;
    }
    if evicted > 0 {
        prune_operations(pool).await?;
    }
    enforce_logs(pool, retention).await?;
    Ok(evicted)
}

/// The first of `oldest` (key, bytes) that bring both counts within
/// bounds: at least `excess` of them, of at least `excess_bytes` in all
/// (or all of them when that is not enough).
fn enough<K>(oldest: Vec<(K, i64)>, excess: u64, excess_bytes: u64) -> Vec<K> {
    let mut keys = Vec::new();
    let mut freed = 0u64;
    for (key, bytes) in oldest {
        let count = u64::try_from(keys.len()).unwrap_or(u64::MAX);
        if count >= excess && freed >= excess_bytes {
            break;
        }
        keys.push(key);
        freed = freed.saturating_add(to_u64(bytes));
    }
    keys
}

/// Deletes the oldest log records (by time, then as stored),
/// [`EVICTION_CHUNK`] per transaction, until the store is within
/// `retention`'s log bounds.
async fn enforce_logs(pool: &SqlitePool, retention: Retention) -> Result<(), StoreError> {
    loop {
        let now = usage(pool).await?;
        let excess_logs = now.logs.saturating_sub(retention.max_logs);
        let excess_bytes = now.log_bytes.saturating_sub(retention.max_log_bytes);
        if excess_logs == 0 && excess_bytes == 0 {
            return Ok(());
        }
        let oldest = sqlx::query(AssertSqlSafe(format!(
            "SELECT rowid, {LOG_ROW_BYTES_SQL} AS bytes FROM logs ORDER BY time_ns, rowid LIMIT ?"
        )))
        .bind(EVICTION_CHUNK)
        .fetch_all(pool)
        .await?;
        let oldest = oldest
            .iter()
            .map(|row| Ok((row.try_get::<i64, _>("rowid")?, row.try_get("bytes")?)))
            .collect::<Result<Vec<(i64, i64)>, sqlx::Error>>()?;
        let rowids = enough(oldest, excess_logs, excess_bytes);
        if rowids.is_empty() {
            // The totals say more than the table holds: nothing to delete.
            return Ok(());
        }
        let list = serde_json::to_string(&rowids).unwrap_or_else(|_| "[]".to_owned());
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let deleted =
            delete_logs(&mut tx, "rowid IN (SELECT value FROM json_each(?))", &list).await?;
        subtract_logs(&mut tx, deleted).await?;
        tx.commit().await?;
    }
}

/// Deletes the log records matching `condition` (one `?`, bound to
/// `value`); returns how many and their bytes.
async fn delete_logs(
    conn: &mut SqliteConnection,
    condition: &str,
    value: &str,
) -> Result<(i64, i64), StoreError> {
    let freed: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
        "DELETE FROM logs WHERE {condition} RETURNING {LOG_ROW_BYTES_SQL}"
    )))
    .bind(value)
    .fetch_all(&mut *conn)
    .await?;
    Ok((
        i64::try_from(freed.len()).unwrap_or(i64::MAX),
        freed.iter().sum(),
    ))
}

/// Takes deleted log records (count, bytes) off the totals.
async fn subtract_logs(
    conn: &mut SqliteConnection,
    (logs, bytes): (i64, i64),
) -> Result<(), StoreError> {
    if logs > 0 {
        sqlx::query("UPDATE totals SET logs = logs - ?, log_bytes = log_bytes - ? WHERE id = 0")
            .bind(logs)
            .bind(bytes)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// Deletes these traces whole in one transaction; returns how many had a
/// `traces` row.
async fn delete_traces(pool: &SqlitePool, ids: &[String]) -> Result<u64, StoreError> {
    // The ids travel as one JSON array parameter, read with json_each.
    let list = serde_json::to_string(ids).unwrap_or_else(|_| "[]".to_owned());
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let freed: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM traces WHERE trace_id IN (SELECT value FROM json_each(?)) RETURNING bytes",
    )
    .bind(&list)
    .fetch_all(&mut *tx)
    .await?;
    sqlx::query("UPDATE totals SET traces = traces - ?, bytes = bytes - ? WHERE id = 0")
        .bind(i64::try_from(freed.len()).unwrap_or(i64::MAX))
        .bind(freed.iter().sum::<i64>())
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM spans WHERE trace_id IN (SELECT value FROM json_each(?))")
        .bind(&list)
        .execute(&mut *tx)
        .await?;
    let deleted = delete_logs(
        &mut tx,
        "trace_id IN (SELECT value FROM json_each(?))",
        &list,
    )
    .await?;
    subtract_logs(&mut tx, deleted).await?;
    tx.commit().await?;
    Ok(u64::try_from(freed.len()).unwrap_or(u64::MAX))
}

/// Forgets operations (service, name, kind) no stored span has any more.
async fn prune_operations(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::query(
        "DELETE FROM operations WHERE NOT EXISTS (
            SELECT 1 FROM spans s WHERE s.name = operations.name
                AND s.service = operations.service AND s.kind = operations.kind)",
    )
    .execute(pool)
    .await?;
    Ok(())
}
