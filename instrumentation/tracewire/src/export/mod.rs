//! The span pipeline after the layer: batching and exporters.
//!
//! [`BatchSpanProcessor`] receives finished spans without blocking, queues
//! them in a bounded queue and exports batches from a background thread
//! through a [`SpanExporter`]: OTLP over HTTP or gRPC, a JSON-lines file, the
//! console. Nothing here can slow or break the request path: when the queue
//! is full, spans are dropped and counted.

mod batch;
mod console;
mod file;
#[cfg(feature = "otlp")]
pub mod otlp;
mod proto;
mod resource;

pub use batch::{BatchConfig, BatchSpanProcessor, PipelineStats};
pub use console::ConsoleExporter;
pub use file::JsonLinesExporter;
pub use resource::Resource;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use crate::SpanData;

/// Why an export failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The receiver could not be reached or answered with a retryable
    /// error, and retries ran out.
    #[error("export failed, retries exhausted: {0}")]
    Unavailable(String),
    /// The receiver rejected the data; retrying would not help.
    #[error("export rejected: {0}")]
    Rejected(String),
    /// The export did not finish within its timeout.
    #[error("export timed out")]
    Timeout,
    /// Writing to a file or stream failed.
    #[error("export I/O error: {0}")]
    Io(String),
    /// The exporter was shut down.
    #[error("exporter already shut down")]
    Shutdown,
}

/// The future an exporter returns.
pub type ExportFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ExportError>> + Send + 'a>>;

/// Sends batches of finished spans somewhere.
///
/// Exporters run on the batch processor's background thread, inside a
/// current-thread tokio runtime of their own, one export at a time, so they
/// may use tokio I/O and timers freely and need no locking of their own.
///
/// ```
/// use tracewire::export::{ExportFuture, SpanExporter};
/// use tracewire::SpanData;
///
/// #[derive(Debug)]
/// struct CountingExporter(std::sync::atomic::AtomicUsize);
///
/// impl SpanExporter for CountingExporter {
///     fn export(&mut self, batch: Vec<SpanData>) -> ExportFuture<'_> {
///         self.0.fetch_add(batch.len(), std::sync::atomic::Ordering::Relaxed);
///         Box::pin(async { Ok(()) })
///     }
/// }
/// ```
pub trait SpanExporter: Send + fmt::Debug + 'static {
    /// Exports one batch. The future must finish (the processor also cuts it
    /// off at the export timeout).
    fn export(&mut self, batch: Vec<SpanData>) -> ExportFuture<'_>;

    /// Flushes anything the exporter buffers itself.
    fn force_flush(&mut self) -> ExportFuture<'_> {
        Box::pin(async { Ok(()) })
    }

    /// Releases the exporter's resources; no export follows.
    fn shutdown(&mut self) -> ExportFuture<'_> {
        Box::pin(async { Ok(()) })
    }
}

impl<E: SpanExporter + ?Sized> SpanExporter for Box<E> {
    fn export(&mut self, batch: Vec<SpanData>) -> ExportFuture<'_> {
        (**self).export(batch)
    }
    fn force_flush(&mut self) -> ExportFuture<'_> {
        (**self).force_flush()
    }
    fn shutdown(&mut self) -> ExportFuture<'_> {
        (**self).shutdown()
    }
}
