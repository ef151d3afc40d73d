//! The traced query path shared by connections and transactions: take the
//! SQL, open the span, run the query on the connection, record the result.

use std::sync::Arc;

use futures_core::future::BoxFuture;
use futures_core::stream::BoxStream;
use sqlx::{Database, Either, Error, Execute, Executor};
use tracing::Instrument;

use crate::database::TracedDatabase;
use crate::execute::Prepared;
use crate::span::Shared;
use crate::stream::TracedStream;

/// The results of a query as sqlx's `fetch_many` gives them.
pub(crate) type ResultStream<'e, DB> =
    BoxStream<'e, Result<Either<<DB as Database>::QueryResult, <DB as Database>::Row>, Error>>;

pub(crate) fn fetch_many<'e, 'c: 'e, 'q: 'e, DB, E>(
    shared: &Arc<Shared>,
    conn: &'c mut DB::Connection,
    query: E,
) -> ResultStream<'e, DB>
where
    DB: TracedDatabase,
    for<'a> &'a mut DB::Connection: Executor<'a, Database = DB>,
    E: 'q + Execute<'q, DB>,
{
    let prepared = Prepared::<DB>::new(query);
    let span = shared.query_span(prepared.text());
    let inner = span.in_scope(|| conn.fetch_many(prepared));
    Box::pin(TracedStream::new(inner, span, Arc::clone(shared)))
}

pub(crate) fn fetch_optional<'e, 'c: 'e, 'q: 'e, DB, E>(
    shared: &Arc<Shared>,
    conn: &'c mut DB::Connection,
    query: E,
) -> BoxFuture<'e, Result<Option<DB::Row>, Error>>
where
    DB: TracedDatabase,
    for<'a> &'a mut DB::Connection: Executor<'a, Database = DB>,
    E: 'q + Execute<'q, DB>,
{
    let prepared = Prepared::<DB>::new(query);
    let span = shared.query_span(prepared.text());
    let shared = Arc::clone(shared);
    let future = span.in_scope(|| conn.fetch_optional(prepared));
    Box::pin(async move {
        let result = future.instrument(span.clone()).await;
        record_optional(&shared, &span, &result);
        result
    })
}

pub(crate) fn record_optional<T>(
    shared: &Shared,
    span: &tracing::Span,
    result: &Result<Option<T>, Error>,
) {
    match result {
        Ok(row) => shared.record_rows(span, u64::from(row.is_some())),
        Err(err) => shared.record_error(span, err),
    }
}

/// Runs `future` (a transaction statement) in `span`, recording a failure.
pub(crate) async fn traced_tx<T>(
    shared: &Shared,
    span: tracing::Span,
    future: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let result = future.instrument(span.clone()).await;
    if let Err(err) = &result {
        shared.record_error(&span, err);
    }
    result
}
