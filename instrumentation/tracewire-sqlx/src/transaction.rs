//! [`TracedTransaction`]: a transaction whose queries become spans.

use std::fmt;
use std::sync::Arc;

use sqlx::{Error, Transaction};

use crate::database::TracedDatabase;
use crate::executor::{impl_executor, traced_tx};
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

impl_executor! {
    impl<'t> for &'t mut TracedTransaction<'_, DB>;
    on_connection: |this| (this.shared, &mut *this.tx);
}
