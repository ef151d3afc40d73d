//! Writing a batch of spans: the rows, then once per batch what the
//! searches and retention read besides them — a row per trace (`traces`:
//! first start, spans, bytes), the totals (`totals`) and the distinct
//! operations (`operations`).
//!
//! The rows are upserted (a span already stored, e.g. from a retried
//! export, is replaced). New rows get rowids past the largest before the
//! write while a replaced row keeps its own, so counting the rows past it
//! tells whether every span was new: then each trace's row gets the
//! batch's spans added; otherwise the batch's traces are counted again
//! from their spans.

use std::collections::{BTreeSet, HashMap};

use sqlx::{AssertSqlSafe, QueryBuilder, Row as _, Sqlite, SqliteConnection};

use super::retention::counted_bytes;
use super::{SPAN_OVERHEAD_BYTES, SpanRow, StoreError};

/// Rows per `INSERT` statement (19 values each, well under SQLite's
/// 32,766 bound variables).
const ROWS_PER_INSERT: usize = 100;

/// A stored span's bytes as retention counts them, in SQL: the text of
/// the row plus [`SPAN_OVERHEAD_BYTES`] (128). [`row_bytes`] is the same
/// sum in Rust.
pub(super) const ROW_BYTES_SQL: &str = "(128 + octet_length(service) + octet_length(name)
    + octet_length(status_message) + octet_length(trace_state) + octet_length(attributes)
    + octet_length(events) + octet_length(links) + octet_length(resource)
    + octet_length(scope))";

/// A span row's bytes as retention counts them (see [`ROW_BYTES_SQL`]).
pub(super) fn row_bytes(row: &SpanRow) -> i64 {
    counted_bytes(
        &[
            &row.service,
            &row.name,
            &row.status_message,
            &row.trace_state,
            &row.attributes,
            &row.events,
            &row.links,
            &row.resource,
            &row.scope,
        ],
        SPAN_OVERHEAD_BYTES,
    )
}

/// How a batch changed the store's totals.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Change {
    traces: i64,
    bytes: i64,
}

/// One trace's share of a batch.
#[derive(Clone, Copy)]
struct TraceShare {
    first_start_ns: i64,
    spans: i64,
    bytes: i64,
}

/// Writes `spans` and the per-trace rows, totals and operations they
/// change, inside the caller's transaction.
pub(super) async fn insert(
    conn: &mut SqliteConnection,
    spans: Vec<SpanRow>,
) -> Result<(), StoreError> {
    let mut shares: HashMap<String, TraceShare> = HashMap::new();
    let mut operations: BTreeSet<(&str, &str, i32)> = BTreeSet::new();
    for span in &spans {
        let bytes = row_bytes(span);
        match shares.get_mut(&span.trace_id) {
            Some(t) => {
                t.first_start_ns = t.first_start_ns.min(span.start_ns);
                t.spans += 1;
                t.bytes = t.bytes.saturating_add(bytes);
            }
            None => {
                shares.insert(
                    span.trace_id.clone(),
                    TraceShare {
                        first_start_ns: span.start_ns,
                        spans: 1,
                        bytes,
                    },
                );
            }
        }
        operations.insert((&span.service, &span.name, span.kind));
    }
    // Owned: the rows' text moves into the statements.
    let operations: Vec<(String, String, i32)> = operations
        .into_iter()
        .map(|(service, name, kind)| (service.to_owned(), name.to_owned(), kind))
        .collect();
    let last_rowid: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(rowid), 0) FROM spans")
        .fetch_one(&mut *conn)
        .await?;
    let count = i64::try_from(spans.len()).unwrap_or(i64::MAX);
    let mut rows = spans.into_iter();
    loop {
        let chunk: Vec<SpanRow> = rows.by_ref().take(ROWS_PER_INSERT).collect();
        if chunk.is_empty() {
            break;
        }
        upsert_rows(conn, chunk).await?;
    }
    let new_rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM spans WHERE rowid > ?")
        .bind(last_rowid)
        .fetch_one(&mut *conn)
        .await?;
    let shares: Vec<(String, TraceShare)> = shares.into_iter().collect();
    let change = if new_rows == count {
        add_to_traces(conn, &shares).await?
    } else {
        recount_traces(conn, shares.iter().map(|(id, _)| id.as_str())).await?
    };
    if change != Change::default() {
        sqlx::query("UPDATE totals SET traces = traces + ?, bytes = bytes + ? WHERE id = 0")
            .bind(change.traces)
            .bind(change.bytes)
            .execute(&mut *conn)
            .await?;
    }
    add_operations(conn, operations).await
}

/// Upserts `rows` in one statement, moving their text into the statement.
async fn upsert_rows(conn: &mut SqliteConnection, rows: Vec<SpanRow>) -> Result<(), StoreError> {
    let mut insert = QueryBuilder::<Sqlite>::new(
        "INSERT INTO spans (trace_id, span_id, parent_span_id, service, name,
            kind, start_ns, end_ns, duration_ns, status_code, status_message, is_error,
            trace_state, flags, attributes, events, links, resource, scope) ",
    );
    insert.push_values(rows, |mut row, s| {
        let duration_ns = s.end_ns.saturating_sub(s.start_ns).max(0);
        row.push_bind(s.trace_id)
            .push_bind(s.span_id)
            .push_bind(s.parent_span_id)
            .push_bind(s.service)
            .push_bind(s.name)
            .push_bind(s.kind)
            .push_bind(s.start_ns)
            .push_bind(s.end_ns)
            .push_bind(duration_ns)
            .push_bind(s.status_code)
            .push_bind(s.status_message)
            .push_bind(s.status_code == 2)
            .push_bind(s.trace_state)
            .push_bind(i64::from(s.flags))
            .push_bind(s.attributes)
            .push_bind(s.events)
            .push_bind(s.links)
            .push_bind(s.resource)
            .push_bind(s.scope);
    });
    insert.push(
        " ON CONFLICT (trace_id, span_id) DO UPDATE SET
            parent_span_id = excluded.parent_span_id, service = excluded.service,
            name = excluded.name, kind = excluded.kind, start_ns = excluded.start_ns,
            end_ns = excluded.end_ns, duration_ns = excluded.duration_ns,
            status_code = excluded.status_code,
            status_message = excluded.status_message, is_error = excluded.is_error,
            trace_state = excluded.trace_state, flags = excluded.flags,
            attributes = excluded.attributes, events = excluded.events,
            links = excluded.links, resource = excluded.resource, scope = excluded.scope",
    );
    insert.build().execute(conn).await?;
    Ok(())
}

/// Adds each trace's share of the batch to its row (creating it for a new
/// trace).
async fn add_to_traces(
    conn: &mut SqliteConnection,
    shares: &[(String, TraceShare)],
) -> Result<Change, StoreError> {
    let mut change = Change::default();
    for chunk in shares.chunks(ROWS_PER_INSERT) {
        let mut upsert = QueryBuilder::<Sqlite>::new(
            "INSERT INTO traces (trace_id, first_start_ns, spans, bytes) ",
        );
        upsert.push_values(chunk, |mut row, (id, share)| {
            row.push_bind(id.as_str())
                .push_bind(share.first_start_ns)
                .push_bind(share.spans)
                .push_bind(share.bytes);
        });
        // A trace stored before has at least one span already, so the
        // count returned equals the batch's own only for a new trace.
        upsert.push(
            " ON CONFLICT (trace_id) DO UPDATE SET
                first_start_ns = MIN(first_start_ns, excluded.first_start_ns),
                spans = spans + excluded.spans, bytes = bytes + excluded.bytes
              RETURNING trace_id, spans",
        );
        let counts: HashMap<&str, i64> =
            chunk.iter().map(|(id, s)| (id.as_str(), s.spans)).collect();
        for row in upsert.build().fetch_all(&mut *conn).await? {
            let id: &str = row.try_get("trace_id")?;
            let spans: i64 = row.try_get("spans")?;
            if counts.get(id) == Some(&spans) {
                change.traces += 1;
            }
        }
        change.bytes += chunk.iter().map(|(_, s)| s.bytes).sum::<i64>();
    }
    Ok(change)
}

/// Counts the `traces` rows of `ids` again from their spans.
async fn recount_traces<'a>(
    conn: &mut SqliteConnection,
    ids: impl Iterator<Item = &'a str>,
) -> Result<Change, StoreError> {
    // The ids travel as one JSON array parameter, read with json_each.
    let ids: Vec<&str> = ids.collect();
    let list = serde_json::to_string(&ids).unwrap_or_else(|_| "[]".to_owned());
    let before = sums(conn, &list).await?;
    sqlx::query("DELETE FROM traces WHERE trace_id IN (SELECT value FROM json_each(?))")
        .bind(&list)
        .execute(&mut *conn)
        .await?;
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO traces (trace_id, first_start_ns, spans, bytes)
         SELECT trace_id, MIN(start_ns), COUNT(*), SUM({ROW_BYTES_SQL}) FROM spans
         WHERE trace_id IN (SELECT value FROM json_each(?)) GROUP BY trace_id"
    )))
    .bind(&list)
    .execute(&mut *conn)
    .await?;
    let after = sums(conn, &list).await?;
    Ok(Change {
        traces: after.traces - before.traces,
        bytes: after.bytes - before.bytes,
    })
}

/// The number of `traces` rows of the ids in `list` (a JSON array) and
/// the sum of their bytes.
async fn sums(conn: &mut SqliteConnection, list: &str) -> Result<Change, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS traces, COALESCE(SUM(bytes), 0) AS bytes FROM traces
         WHERE trace_id IN (SELECT value FROM json_each(?))",
    )
    .bind(list)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Change {
        traces: row.try_get("traces")?,
        bytes: row.try_get("bytes")?,
    })
}

/// Records the batch's distinct operations (service, name, kind).
async fn add_operations(
    conn: &mut SqliteConnection,
    operations: Vec<(String, String, i32)>,
) -> Result<(), StoreError> {
    for chunk in operations.chunks(ROWS_PER_INSERT) {
        let mut insert =
            QueryBuilder::<Sqlite>::new("INSERT INTO operations (service, name, kind) ");
        insert.push_values(chunk, |mut row, (service, name, kind)| {
            row.push_bind(service.as_str())
                .push_bind(name.as_str())
                .push_bind(*kind);
        });
        insert.push(" ON CONFLICT DO NOTHING");
        insert.build().execute(&mut *conn).await?;
    }
    Ok(())
}
