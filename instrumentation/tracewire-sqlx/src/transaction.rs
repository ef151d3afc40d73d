//! [`TracedTransaction`]: a transaction whose queries become spans.

use std::fmt;
use std::sync::Arc;

use futures_core::future::BoxFuture;
use sqlx::{Error, Execute, Executor, SqlStr, Transaction};

use crate::database::TracedDatabase;
use crate::executor::{ResultStream, fetch_many, fetch_optional, traced_tx};
use crate::span::Shared;

/// A transaction from [`TracedPool::begin`](crate::TracedPool::begin) or
/// [`TracedConnection::begin`](crate::TracedConnection::begin). Use
/// `&mut tx` as the executor. [`commit`](Self::commit) and
/// [`rollback`](Self::rollback) are spans too; dropping it without either
/// rolls back, as sqlx does.
pub struct TracedTransaction<'c, DB: TracedDatabase> {
    tx: Transaction<'c, DB>,
    shared: Arc<Shared>,
}

impl<DB: TracedDatabase> fmt::Debug for TracedTransaction<'_, DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracedTransaction")
            .field("tx", &self.tx)
            .finish_non_exhaustive()
    }
}

impl<'c, DB: TracedDatabase> TracedTransaction<'c, DB> {
    pub(crate) const fn new(tx: Transaction<'c, DB>, shared: Arc<Shared>) -> Self {
        Self { tx, shared }
    }

    /// Commits the transaction (a `COMMIT` span).
    pub async fn commit(self) -> Result<(), Error> {
        let span = self.shared.tx_span("COMMIT");
        traced_tx(&self.shared, span, self.tx.commit()).await
    }

    /// Rolls the transaction back (a `ROLLBACK` span).
    pub async fn rollback(self) -> Result<(), Error> {
        let span = self.shared.tx_span("ROLLBACK");
        traced_tx(&self.shared, span, self.tx.rollback()).await
    }

    /// The untraced `sqlx::Transaction`.
    pub fn into_inner(self) -> Transaction<'c, DB> {
        self.tx
    }
}

impl<'t, DB> Executor<'t> for &'t mut TracedTransaction<'_, DB>
where
    DB: TracedDatabase,
    for<'a> &'a mut DB::Connection: Executor<'a, Database = DB>,
{
    type Database = DB;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> ResultStream<'e, DB>
    where
        't: 'e,
        E: 'q + Execute<'q, DB>,
    {
        fetch_many::<DB, E>(&self.shared, &mut *self.tx, query)
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, Error>>
    where
        't: 'e,
        E: 'q + Execute<'q, DB>,
    {
        fetch_optional::<DB, E>(&self.shared, &mut *self.tx, query)
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [DB::TypeInfo],
    ) -> BoxFuture<'e, Result<DB::Statement, Error>>
    where
        't: 'e,
    {
        (&mut *self.tx).prepare_with(sql, parameters)
    }

    fn describe<'e>(self, sql: SqlStr) -> BoxFuture<'e, Result<sqlx::Describe<DB>, Error>>
    where
        't: 'e,
    {
        (&mut *self.tx).describe(sql)
    }
}
