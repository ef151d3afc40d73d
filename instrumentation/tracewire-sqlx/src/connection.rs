//! [`TracedConnection`]: a pooled connection whose queries become spans.

use std::fmt;
use std::sync::Arc;

use futures_core::future::BoxFuture;
use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Error, Execute, Executor, SqlStr};

use crate::database::TracedDatabase;
use crate::executor::{ResultStream, fetch_many, fetch_optional, traced_tx};
use crate::span::Shared;
use crate::transaction::TracedTransaction;

/// A connection from [`TracedPool::acquire`](crate::TracedPool::acquire).
/// Use `&mut conn` as the executor; it goes back to the pool when dropped.
pub struct TracedConnection<DB: Database> {
    conn: PoolConnection<DB>,
    shared: Arc<Shared>,
}

impl<DB: Database> fmt::Debug for TracedConnection<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracedConnection")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl<DB: TracedDatabase> TracedConnection<DB> {
    pub(crate) const fn new(conn: PoolConnection<DB>, shared: Arc<Shared>) -> Self {
        Self { conn, shared }
    }

    /// Starts a transaction on this connection (a `BEGIN` span).
    pub async fn begin(&mut self) -> Result<TracedTransaction<'_, DB>, Error> {
        let span = self.shared.tx_span("BEGIN");
        let tx = traced_tx(&self.shared, span, self.conn.begin()).await?;
        Ok(TracedTransaction::new(tx, Arc::clone(&self.shared)))
    }

    /// The untraced pooled connection.
    pub fn into_inner(self) -> PoolConnection<DB> {
        self.conn
    }
}

impl<'c, DB> Executor<'c> for &'c mut TracedConnection<DB>
where
    DB: TracedDatabase,
    for<'a> &'a mut DB::Connection: Executor<'a, Database = DB>,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> ResultStream<'e, DB>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        fetch_many::<DB, E>(&self.shared, &mut *self.conn, query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, Error>>
    where
        'c: 'e,
        E: 'q + Execute<'q, DB>,
    {
        fetch_optional::<DB, E>(&self.shared, &mut *self.conn, query)
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, Error>>
    where
        'c: 'e,
    {
        (&mut *self.conn).prepare_with(sql, parameters)
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<DB>, Error>>
    where
        'c: 'e,
    {
        (&mut *self.conn).describe(sql)
    }
}
