//! [`TracedPool`]: a `sqlx::Pool` whose queries become spans.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use futures_core::future::BoxFuture;
use futures_util::StreamExt;
use sqlx::{Database, Error, Execute, Executor, Pool};
use tracing::Instrument;

use crate::connection::TracedConnection;
use crate::database::TracedDatabase;
use crate::execute::Prepared;
use crate::executor::{ResultStream, impl_executor, record_optional, traced_tx};
use crate::sanitize::QueryText;
use crate::span::{Shared, record_wait, without_span};
use crate::stream::TracedStream;
use crate::transaction::TracedTransaction;

/// How many distinct SQL strings a pool's sanitizer cache holds by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

/// A [`sqlx::Pool`] whose every query is a CLIENT span under the current
/// span. Use `&traced_pool` wherever sqlx takes an executor.
///
/// Cloning is cheap and shares the pool, its options and its sanitizer
/// cache.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), sqlx::Error> {
/// use tracewire_sqlx::TracedPool;
///
/// let pool = TracedPool::new(sqlx::SqlitePool::connect("sqlite::memory:").await?);
/// let one: i64 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await?;
/// assert_eq!(one, 1);
/// # Ok(()) }
/// ```
pub struct TracedPool<DB: Database> {
    pool: Pool<DB>,
    shared: Arc<Shared>,
}

impl<DB: Database> Clone for TracedPool<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<DB: Database> fmt::Debug for TracedPool<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracedPool")
            .field("pool", &self.pool)
            .field("query_text", &self.shared.query_text)
            .field("returned_rows", &self.shared.returned_rows)
            .finish_non_exhaustive()
    }
}

impl<DB: TracedDatabase> From<Pool<DB>> for TracedPool<DB> {
    fn from(pool: Pool<DB>) -> Self {
        Self::new(pool)
    }
}

impl<DB: TracedDatabase> TracedPool<DB> {
    /// Traces `pool` with the default options: sanitized query text, no
    /// row counts.
    pub fn new(pool: Pool<DB>) -> Self {
        Self::builder(pool).build()
    }

    /// Options for tracing a pool.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), sqlx::Error> {
    /// use tracewire_sqlx::{QueryText, TracedPool};
    ///
    /// let pool = TracedPool::builder(sqlx::SqlitePool::connect("sqlite::memory:").await?)
    ///     .query_text(QueryText::Full)
    ///     .returned_rows(true)
    ///     .build();
    /// # Ok(()) }
    /// ```
    pub const fn builder(pool: Pool<DB>) -> TracedPoolBuilder<DB> {
        TracedPoolBuilder {
            pool,
            query_text: QueryText::Sanitized,
            returned_rows: false,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }

    /// The traced pool's `sqlx::Pool`; queries through it are not traced.
    pub const fn inner(&self) -> &Pool<DB> {
        &self.pool
    }

    /// Unwraps the `sqlx::Pool`.
    pub fn into_inner(self) -> Pool<DB> {
        self.pool
    }

    /// Takes a connection from the pool; its queries are traced.
    pub async fn acquire(&self) -> Result<TracedConnection<DB>, Error> {
        let mut conn = self.pool.acquire().await?;
        self.detect(&mut conn, &tracing::Span::none()).await;
        Ok(TracedConnection::new(conn, Arc::clone(&self.shared)))
    }

    /// Starts a transaction on a pooled connection (a `BEGIN` span); its
    /// queries are traced.
    pub async fn begin(&self) -> Result<TracedTransaction<'static, DB>, Error> {
        let span = self.shared.tx_span("BEGIN");
        let mut tx = traced_tx(&self.shared, span.clone(), self.pool.begin()).await?;
        self.detect(&mut tx, &span).await;
        Ok(TracedTransaction::new(tx, Arc::clone(&self.shared)))
    }

    /// Closes the pool (see [`Pool::close`]).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Learns `db.system.name` from the server the first time (MySQL vs
    /// MariaDB) and records it on `span`.
    async fn detect(&self, conn: &mut DB::Connection, span: &tracing::Span) {
        let system = match self.shared.system.get() {
            Some(system) => *system,
            None => DB::detect_system(conn).await,
        };
        self.shared.record_system(span, system);
    }
}

/// Options for a [`TracedPool`], from [`TracedPool::builder`]. The
/// defaults: [`QueryText::Sanitized`], no row counts, a cache of
/// [`DEFAULT_CACHE_CAPACITY`] queries.
#[derive(Debug)]
#[must_use]
pub struct TracedPoolBuilder<DB: Database> {
    pool: Pool<DB>,
    query_text: QueryText,
    returned_rows: bool,
    cache_capacity: usize,
}

impl<DB: TracedDatabase> TracedPoolBuilder<DB> {
    /// What `db.query.text` holds.
    pub fn query_text(mut self, mode: QueryText) -> Self {
        self.query_text = mode;
        self
    }

    /// Whether to record `db.response.returned_rows` (opt-in by the
    /// conventions).
    pub fn returned_rows(mut self, enabled: bool) -> Self {
        self.returned_rows = enabled;
        self
    }

    /// How many distinct SQL strings the sanitizer cache holds.
    pub fn cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }

    /// Traces the pool with these options.
    pub fn build(self) -> TracedPool<DB> {
        let pool = self.pool;
        let info = DB::connection_info(&pool.connect_options());
        let detect = DB::SYSTEM == "mysql";
        let shared = Shared::new::<DB>(
            info,
            self.query_text,
            self.returned_rows,
            self.cache_capacity,
            detect,
        );
        TracedPool { pool, shared }
    }
}

impl_executor! {
    impl<'p> for &'_ TracedPool<DB>;
    untraced: |this| &this.pool;
    fetch_many: |this, query| this.traced_fetch_many(query);
    fetch_optional: |this, query| this.traced_fetch_optional(query);
}

/// The traced queries of `&TracedPool`: each takes a connection from the
/// pool for the query (the wait is recorded on the query's span).
impl<DB> TracedPool<DB>
where
    DB: TracedDatabase,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    fn traced_fetch_many<'e, 'q: 'e, E>(&self, query: E) -> ResultStream<'e, DB>
    where
        E: 'q + Execute<'q, DB>,
    {
        let prepared = Prepared::<DB>::new(query);
        let span = self.shared.query_span(prepared.text());
        let pool = self.clone();
        let inner_span = span.clone();
        // The stream owns its pooled connection and the results borrowing
        // it: a generator (async-stream) holds both across yields.
        let results = async_stream::stream! {
            let start = Instant::now();
            let mut conn = match pool.pool.acquire().await {
                Ok(conn) => conn,
                Err(err) => {
                    yield Err(err);
                    return;
                }
            };
            record_wait(&inner_span, start.elapsed());
            pool.detect(&mut conn, &inner_span).await;
            let mut rows = conn.fetch_many(prepared);
            while let Some(item) = rows.next().await {
                let failed = item.is_err();
                yield item;
                if failed {
                    break;
                }
            }
            drop(rows);
            without_span(|| drop(conn));
        };
        Box::pin(TracedStream::new(
            Box::pin(results),
            span,
            Arc::clone(&self.shared),
        ))
    }

    fn traced_fetch_optional<'e, 'q: 'e, E>(
        &self,
        query: E,
    ) -> BoxFuture<'e, Result<Option<DB::Row>, Error>>
    where
        E: 'q + Execute<'q, DB>,
    {
        let prepared = Prepared::<DB>::new(query);
        let span = self.shared.query_span(prepared.text());
        let pool = self.clone();
        Box::pin(async move {
            let result = async {
                let start = Instant::now();
                let mut conn = pool.pool.acquire().await?;
                record_wait(&span, start.elapsed());
                pool.detect(&mut conn, &span).await;
                let result = conn.fetch_optional(prepared).await;
                without_span(|| drop(conn));
                result
            }
            .instrument(span.clone())
            .await;
            record_optional(&pool.shared, &span, &result);
            result
        })
    }
}
