//! [`TracedConnection`]: a pooled connection whose queries become spans.

use std::fmt;
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Error};

use crate::database::TracedDatabase;
use crate::executor::{impl_executor, traced_tx};
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

impl_executor! {
    impl<'c> for &'c mut TracedConnection<DB>;
    on_connection: |this| (this.shared, &mut *this.conn);
}
