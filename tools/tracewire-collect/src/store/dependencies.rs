//! Service-to-service edges: calls between services and from services to
//! databases, with call and error counts and exact latency percentiles.
//!
//! A span whose parent span is stored and belongs to another service is a
//! call from the parent's service to the span's service. A CLIENT span
//! with `db.system.name` (or the older `db.system`) and no child in
//! another service (among the window's spans) is a call from its service
//! to the database, named by that value.
//!
//! Cost: the spans starting in the window are read once, in pages, through
//! the `start_ns` index, each with one primary-key lookup of its parent;
//! only calls come back from SQLite. Memory: one duration per call, plus
//! the ids of the window's cross-service callers and database calls.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use sqlx::Row as _;
use sqlx::sqlite::SqlitePool;

use super::StoreError;

/// Spans read per query page.
const PAGE: i64 = 4096;

/// The protocol of a cross-service call, from the attributes of the span
/// `X`: an RPC system's name (`grpc`), a messaging system's (`kafka`),
/// `http` for a span with an HTTP method, else `other`.
macro_rules! protocol_of {
    ($x:literal) => {
        concat!(
            "CASE WHEN json_type(",
            $x,
            ".attributes, '$.\"rpc.system.name\"') = 'text'
                THEN json_extract(",
            $x,
            ".attributes, '$.\"rpc.system.name\"')
             WHEN json_type(",
            $x,
            ".attributes, '$.\"rpc.system\"') = 'text'
                THEN json_extract(",
            $x,
            ".attributes, '$.\"rpc.system\"')
             WHEN json_type(",
            $x,
            ".attributes, '$.\"messaging.system\"') = 'text'
                THEN json_extract(",
            $x,
            ".attributes, '$.\"messaging.system\"')
             WHEN json_type(",
            $x,
            ".attributes, '$.\"http.request.method\"') IS NOT NULL
                OR json_type(",
            $x,
            ".attributes, '$.\"http.method\"') IS NOT NULL THEN 'http'
             ELSE 'other' END"
        )
    };
}

/// The database system of a span, when it names one.
macro_rules! db_system_of {
    ($x:literal) => {
        concat!(
            "CASE WHEN json_type(",
            $x,
            ".attributes, '$.\"db.system.name\"') = 'text'
                THEN json_extract(",
            $x,
            ".attributes, '$.\"db.system.name\"')
             WHEN json_type(",
            $x,
            ".attributes, '$.\"db.system\"') = 'text'
                THEN json_extract(",
            $x,
            ".attributes, '$.\"db.system\"') END"
        )
    };
}

/// One page of the window's calls: spans with a stored parent in another
/// service, and CLIENT spans naming a database system. Kinds: 3 CLIENT,
/// 4 PRODUCER.
const CALLS: &str = concat!(
    "SELECT c.rowid AS rid, c.start_ns AS start_ns, c.trace_id AS trace_id,
        c.span_id AS span_id, c.parent_span_id AS parent_span_id, c.service AS service,
        c.duration_ns AS duration_ns, c.is_error AS is_error,
        CASE WHEN c.kind = 3 THEN ",
    db_system_of!("c"),
    " END AS db_system,
        p.service AS parent_service, p.kind AS parent_kind, p.duration_ns AS parent_duration_ns,
        p.is_error AS parent_is_error,
        CASE WHEN p.service IS NULL OR p.service = c.service THEN NULL
             WHEN p.kind IN (3, 4) THEN ",
    protocol_of!("p"),
    " ELSE ",
    protocol_of!("c"),
    " END AS protocol
     FROM spans c LEFT JOIN spans p ON p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
     WHERE c.start_ns >= ? AND c.start_ns <= ? AND (c.start_ns, c.rowid) > (?, ?)
       AND ((p.service IS NOT NULL AND p.service <> c.service)
            OR (c.kind = 3 AND (",
    db_system_of!("c"),
    ") IS NOT NULL))
     ORDER BY c.start_ns, c.rowid
     LIMIT ?"
);

/// The spans whose start is within a range (Unix nanoseconds, inclusive;
/// `None`: unbounded).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// At or after this time.
    pub start_min_ns: Option<i64>,
    /// At or before this time.
    pub start_max_ns: Option<i64>,
}

/// Calls from one service to another (or to a database) over a window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Edge {
    /// The calling service.
    pub caller: String,
    /// The called service, or the database system (`postgresql`,
    /// `sqlite`, …).
    pub callee: String,
    /// `http`, `grpc` (an RPC system's name), `kafka` (a messaging
    /// system's name), `sql` (database calls) or `other`.
    pub protocol: String,
    /// Calls.
    pub calls: u64,
    /// Calls where either side has an error status.
    pub errors: u64,
    /// The median latency (nearest rank), in nanoseconds.
    pub p50_ns: i64,
    /// The 99th percentile latency (nearest rank), in nanoseconds.
    pub p99_ns: i64,
}

#[derive(Default)]
struct Calls {
    errors: u64,
    durations: Vec<i64>,
}

/// A database call waiting for the end of the scan (a child in another
/// service found later makes it a service call instead).
struct DbCall {
    trace_id: String,
    span_id: String,
    service: String,
    system: String,
    duration_ns: i64,
    is_error: bool,
}

pub(super) async fn dependencies(
    pool: &SqlitePool,
    range: TimeRange,
) -> Result<Vec<Edge>, StoreError> {
    dependencies_paged(pool, range, PAGE).await
}

/// [`dependencies`], reading `page` spans per query.
async fn dependencies_paged(
    pool: &SqlitePool,
    range: TimeRange,
    page: i64,
) -> Result<Vec<Edge>, StoreError> {
    let since = range.start_min_ns.unwrap_or(i64::MIN);
    let until = range.start_max_ns.unwrap_or(i64::MAX);
    let mut edges: BTreeMap<(String, String, String), Calls> = BTreeMap::new();
    let mut callers: HashSet<(String, String)> = HashSet::new();
    let mut db_calls = Vec::new();
    let mut after = (i64::MIN, i64::MIN);
    loop {
        // The index range starts at the last page's last start (the
        // row-value condition then skips what that page read of it), so
        // each page costs its own rows, not the window's beginning again.
        let rows = sqlx::query(CALLS)
            .bind(since.max(after.0))
            .bind(until)
            .bind(after.0)
            .bind(after.1)
            .bind(page)
            .fetch_all(pool)
            .await?;
        for row in &rows {
            let trace_id: String = row.try_get("trace_id")?;
            let service: String = row.try_get("service")?;
            let duration_ns: i64 = row.try_get("duration_ns")?;
            let is_error: bool = row.try_get("is_error")?;
            if let Some(protocol) = row.try_get::<Option<String>, _>("protocol")? {
                let caller: String = row.try_get("parent_service")?;
                let parent_kind: i32 = row.try_get("parent_kind")?;
                let parent_duration: i64 = row.try_get("parent_duration_ns")?;
                let parent_error: bool = row.try_get("parent_is_error")?;
                let parent_id: Option<String> = row.try_get("parent_span_id")?;
                let calls = edges
                    .entry((caller, service.clone(), protocol))
                    .or_default();
                // The caller's client span measures the call when there is
                // one; otherwise the callee's span does.
                calls.durations.push(if parent_kind == 3 {
                    parent_duration
                } else {
                    duration_ns
                });
                if is_error || parent_error {
                    calls.errors += 1;
                }
                if let Some(parent_id) = parent_id {
                    callers.insert((trace_id.clone(), parent_id));
                }
            }
            if let Some(system) = row.try_get::<Option<String>, _>("db_system")? {
                db_calls.push(DbCall {
                    trace_id,
                    span_id: row.try_get("span_id")?,
                    service,
                    system,
                    duration_ns,
                    is_error,
                });
            }
        }
        match rows.last() {
            Some(last) if rows.len() >= usize::try_from(page).unwrap_or(usize::MAX) => {
                after = (last.try_get("start_ns")?, last.try_get("rid")?);
            }
            _ => break,
        }
    }
    for call in db_calls {
        if callers.contains(&(call.trace_id, call.span_id)) {
            continue;
        }
        let calls = edges
            .entry((call.service, call.system, "sql".to_owned()))
            .or_default();
        calls.durations.push(call.duration_ns);
        if call.is_error {
            calls.errors += 1;
        }
    }
    Ok(edges
        .into_iter()
        .map(|((caller, callee, protocol), mut calls)| {
            calls.durations.sort_unstable();
            Edge {
                caller,
                callee,
                protocol,
                calls: u64::try_from(calls.durations.len()).unwrap_or(u64::MAX),
                errors: calls.errors,
                p50_ns: nearest_rank(&calls.durations, 50),
                p99_ns: nearest_rank(&calls.durations, 99),
            }
        })
        .collect())
}

/// The `percent`th percentile of sorted values by nearest rank: the value
/// at rank ⌈percent/100 × n⌉ (1-based); 0 for no values.
fn nearest_rank(sorted: &[i64], percent: usize) -> i64 {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{PAGE, TimeRange, dependencies_paged, nearest_rank};
    use crate::store::{SpanRow, Store};

    /// Trace `n`: `a` (CLIENT) calls `b` (SERVER) which queries SQLite,
    /// all spans starting at the same time (ties in the page order).
    fn call(n: u32) -> Vec<SpanRow> {
        let span =
            |id: u64, parent: Option<u64>, service: &str, kind: i32, attributes: &str| SpanRow {
                trace_id: format!("{n:032x}"),
                span_id: format!("{id:016x}"),
                parent_span_id: parent.map(|p| format!("{p:016x}")),
                service: service.to_owned(),
                name: "op".to_owned(),
                kind,
                start_ns: 1_000,
                end_ns: 1_000 + i64::from(n) + 1,
                status_code: 0,
                status_message: String::new(),
                trace_state: String::new(),
                flags: 1,
                attributes: attributes.to_owned(),
                events: "[]".to_owned(),
                links: "[]".to_owned(),
                resource: "{}".to_owned(),
                scope: "{}".to_owned(),
            };
        vec![
            span(1, None, "a", 3, r#"{"http.request.method":"GET"}"#),
            span(2, Some(1), "b", 2, "{}"),
            span(3, Some(2), "b", 3, r#"{"db.system.name":"sqlite"}"#),
        ]
    }

    /// Small pages give the same edges as one page: every span is read
    /// once, ties in start time included.
    #[tokio::test]
    async fn paging_reads_every_span_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let spans: Vec<SpanRow> = (0..50).flat_map(call).collect();
        store.insert(spans).await.unwrap();
        let whole = dependencies_paged(&store.pool, TimeRange::default(), PAGE)
            .await
            .unwrap();
        assert_eq!(whole.len(), 2);
        assert!(whole.iter().all(|e| e.calls == 50), "{whole:?}");
        for page in [1, 2, 7, 100] {
            let paged = dependencies_paged(&store.pool, TimeRange::default(), page)
                .await
                .unwrap();
            assert_eq!(paged, whole, "page {page}");
        }
    }

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<i64> = (1..=100).collect();
        assert_eq!(nearest_rank(&values, 50), 50);
        assert_eq!(nearest_rank(&values, 99), 99);
        assert_eq!(nearest_rank(&[7], 99), 7);
        assert_eq!(nearest_rank(&[1, 2, 3], 50), 2);
        assert_eq!(nearest_rank(&[1, 2, 3], 99), 3);
        assert_eq!(nearest_rank(&[], 50), 0);
    }
}
