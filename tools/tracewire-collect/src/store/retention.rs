//! Retention: the store is bounded by a number of traces and a number of
//! bytes; past either bound the oldest traces (by first span start) are
//! deleted whole.
//!
//! The sizes are kept by every write (see `write`): `traces` holds one
//! row per trace (first span start, spans, bytes) and `totals` the sums,
//! so checking the bounds after a write is one row read and finding the
//! oldest traces is an index range.

use sqlx::Row as _;
use sqlx::sqlite::SqlitePool;

use super::StoreError;

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
}

impl Retention {
    /// 100,000 traces and 1 GiB.
    pub const DEFAULT: Retention = Retention {
        max_traces: 100_000,
        max_bytes: 1 << 30,
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
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(super) async fn usage(pool: &SqlitePool) -> Result<Usage, StoreError> {
    let row = sqlx::query("SELECT traces, bytes FROM totals WHERE id = 0")
        .fetch_optional(pool)
        .await?;
    Ok(match row {
        Some(row) => Usage {
            traces: to_u64(row.try_get("traces")?),
            bytes: to_u64(row.try_get("bytes")?),
        },
        None => Usage::default(),
    })
}

/// Deletes the oldest traces (spans, their `traces` row and, when the
/// table exists, their log records), [`EVICTION_CHUNK`] per transaction,
/// until the store is within `retention`. Returns the traces deleted.
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
        // The oldest traces that bring both counts within bounds (or the
        // whole chunk when that is not enough).
        let mut ids = Vec::new();
        let mut freed = 0u64;
        for row in &oldest {
            let count = u64::try_from(ids.len()).unwrap_or(u64::MAX);
            if count >= excess_traces && freed >= excess_bytes {
                break;
            }
            let id: String = row.try_get("trace_id")?;
            let bytes: i64 = row.try_get("bytes")?;
            ids.push(id);
            freed = freed.saturating_add(to_u64(bytes));
        }
        if ids.is_empty() {
            break;
        }
        evicted += delete_traces(pool, &ids).await?;
    }
    if evicted > 0 {
        prune_operations(pool).await?;
    }
    Ok(evicted)
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
    let has_logs: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'logs')",
    )
    .fetch_one(&mut *tx)
    .await?;
    if has_logs {
        sqlx::query("DELETE FROM logs WHERE trace_id IN (SELECT value FROM json_each(?))")
            .bind(&list)
            .execute(&mut *tx)
            .await?;
    }
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
