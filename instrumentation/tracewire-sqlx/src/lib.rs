//! sqlx tracing.

mod connection;
pub mod database;
mod execute;
mod executor;
mod pool;
pub mod sanitize;
mod span;
mod stream;
mod transaction;

pub use connection::TracedConnection;
pub use database::TracedDatabase;
pub use pool::{DEFAULT_CACHE_CAPACITY, TracedPool, TracedPoolBuilder};
pub use sanitize::QueryText;
pub use transaction::TracedTransaction;
