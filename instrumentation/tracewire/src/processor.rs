//! Where finished spans go: the [`SpanProcessor`] trait.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::SpanData;

/// Why a flush or shutdown did not complete.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ProcessorError {
    /// The operation did not finish within its timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The processor was already shut down.
    #[error("already shut down")]
    AlreadyShutdown,
    /// Exporting failed.
    #[error("export failed: {0}")]
    Export(String),
}

/// Receives every finished, sampled span.
///
/// `on_end` runs on the thread that closed the span, inside the request
/// path: it must not block. Batch processors hand the span to a bounded
/// queue and export elsewhere.
pub trait SpanProcessor: Send + Sync + fmt::Debug + 'static {
    /// Called once for each sampled span when it ends.
    fn on_end(&self, span: SpanData);

    /// Delivers everything received so far, waiting at most `timeout`.
    fn force_flush(&self, timeout: Duration) -> Result<(), ProcessorError> {
        let _ = timeout;
        Ok(())
    }

    /// Flushes and stops; later spans are dropped. Waits at most `timeout`.
    fn shutdown(&self, timeout: Duration) -> Result<(), ProcessorError> {
        let _ = timeout;
        Ok(())
    }
}

impl<P: SpanProcessor + ?Sized> SpanProcessor for Arc<P> {
    fn on_end(&self, span: SpanData) {
        (**self).on_end(span);
    }
    fn force_flush(&self, timeout: Duration) -> Result<(), ProcessorError> {
        (**self).force_flush(timeout)
    }
    fn shutdown(&self, timeout: Duration) -> Result<(), ProcessorError> {
        (**self).shutdown(timeout)
    }
}

impl<P: SpanProcessor + ?Sized> SpanProcessor for Box<P> {
    fn on_end(&self, span: SpanData) {
        (**self).on_end(span);
    }
    fn force_flush(&self, timeout: Duration) -> Result<(), ProcessorError> {
        (**self).force_flush(timeout)
    }
    fn shutdown(&self, timeout: Duration) -> Result<(), ProcessorError> {
        (**self).shutdown(timeout)
    }
}

/// Discards every span (for benchmarks and for `OTEL_TRACES_EXPORTER=none`).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopProcessor;

impl SpanProcessor for NoopProcessor {
    fn on_end(&self, span: SpanData) {
        drop(span);
    }
}

/// Sends each span to several processors in turn.
///
/// ```
/// use tracewire::processor::MultiProcessor;
/// use tracewire::testing::InMemoryExporter;
///
/// let (a, b) = (InMemoryExporter::new(), InMemoryExporter::new());
/// let both = MultiProcessor::new(vec![Box::new(a.clone()), Box::new(b.clone())]);
/// # let _ = both;
/// ```
#[derive(Debug)]
pub struct MultiProcessor(Vec<Box<dyn SpanProcessor>>);

impl MultiProcessor {
    /// A processor forwarding to each of `processors`.
    pub fn new(processors: Vec<Box<dyn SpanProcessor>>) -> Self {
        MultiProcessor(processors)
    }
}

impl SpanProcessor for MultiProcessor {
    fn on_end(&self, span: SpanData) {
        if let Some((last, rest)) = self.0.split_last() {
            for p in rest {
                p.on_end(span.clone());
            }
            last.on_end(span);
        }
    }
    fn force_flush(&self, timeout: Duration) -> Result<(), ProcessorError> {
        // Every processor runs even when an earlier one fails.
        let mut result = Ok(());
        for p in &self.0 {
            let r = p.force_flush(timeout);
            result = result.and(r);
        }
        result
    }
    fn shutdown(&self, timeout: Duration) -> Result<(), ProcessorError> {
        // Every processor runs even when an earlier one fails.
        let mut result = Ok(());
        for p in &self.0 {
            let r = p.shutdown(timeout);
            result = result.and(r);
        }
        result
    }
}
