//! sqlx tracing.

pub mod sanitize;
