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

/// Implements `sqlx::Executor<$c>` for `$ty` (generic over `DB`), once for
/// the pool, connection and transaction.
///
/// Two forms:
/// - `impl<'c> for Ty; on_connection: |this| (shared, conn);`: queries run
///   on the connection `conn` (a `&mut DB::Connection`) with the span
///   options `shared` (connections and transactions);
/// - `impl<'c> for Ty; untraced: |this| executor; fetch_many: |this, query|
///   expr; fetch_optional: |this, query| expr;`: each traced method given
///   (the pool, which acquires a connection per query).
///
/// `prepare_with` and `describe` run no statement of the user's and are
/// passed to the untraced executor as they are.
macro_rules! impl_executor {
    (
        impl<$c:lifetime> for $ty:ty;
        on_connection: |$this:ident| ($shared:expr, $conn:expr $(,)?);
    ) => {
        $crate::executor::impl_executor! {
            impl<$c> for $ty;
            untraced: |$this| $conn;
            fetch_many: |$this, query| {
                $crate::executor::fetch_many::<DB, E>(&$shared, $conn, query)
            };
            fetch_optional: |$this, query| {
                $crate::executor::fetch_optional::<DB, E>(&$shared, $conn, query)
            };
        }
    };
    (
        impl<$c:lifetime> for $ty:ty;
        untraced: |$u:ident| $untraced:expr;
        fetch_many: |$fm:ident, $fm_query:ident| $fetch_many:expr;
        fetch_optional: |$fo:ident, $fo_query:ident| $fetch_optional:expr;
    ) => {
        impl<$c, DB> ::sqlx::Executor<$c> for $ty
        where
            DB: $crate::database::TracedDatabase,
            for<'a> &'a mut DB::Connection: ::sqlx::Executor<'a, Database = DB>,
        {
            type Database = DB;

            fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> $crate::executor::ResultStream<'e, DB>
            where
                $c: 'e,
                E: 'q + ::sqlx::Execute<'q, DB>,
            {
                let ($fm, $fm_query) = (self, query);
                $fetch_many
            }

            fn fetch_optional<'e, 'q: 'e, E>(
                self,
                query: E,
            ) -> ::futures_core::future::BoxFuture<'e, Result<Option<DB::Row>, ::sqlx::Error>>
            where
                $c: 'e,
                E: 'q + ::sqlx::Execute<'q, DB>,
            {
                let ($fo, $fo_query) = (self, query);
                $fetch_optional
            }

            fn prepare_with<'e>(
                self,
                sql: ::sqlx::SqlStr,
                parameters: &'e [DB::TypeInfo],
            ) -> ::futures_core::future::BoxFuture<'e, Result<DB::Statement, ::sqlx::Error>>
            where
                $c: 'e,
            {
                let $u = self;
                ::sqlx::Executor::prepare_with($untraced, sql, parameters)
            }

            fn describe<'e>(
                self,
                sql: ::sqlx::SqlStr,
            ) -> ::futures_core::future::BoxFuture<'e, Result<::sqlx::Describe<DB>, ::sqlx::Error>>
            where
                $c: 'e,
            {
                let $u = self;
                ::sqlx::Executor::describe($untraced, sql)
            }
        }
    };
}

pub(crate) use impl_executor;
