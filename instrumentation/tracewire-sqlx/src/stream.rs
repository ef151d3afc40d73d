//! A stream that keeps a query span open until the results end or the
//! stream is dropped.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_core::Stream;
use futures_core::stream::BoxStream;
use sqlx::{Either, Error};
use tracing::Span;

use crate::span::{Shared, without_span};

/// Query results with the query's span: entered on every poll, ended at the
/// end of the results (or when dropped early), rows counted, the first
/// error recorded.
pub(crate) struct TracedStream<'e, Q, R> {
    inner: Option<BoxStream<'e, Result<Either<Q, R>, Error>>>,
    span: Span,
    shared: Arc<Shared>,
    rows: u64,
}

impl<'e, Q, R> TracedStream<'e, Q, R> {
    pub(crate) fn new(
        inner: BoxStream<'e, Result<Either<Q, R>, Error>>,
        span: Span,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            inner: Some(inner),
            span,
            shared,
            rows: 0,
        }
    }

    fn finish(&mut self) {
        let inner = self.inner.take();
        without_span(|| drop(inner));
        self.shared.record_rows(&self.span, self.rows);
        self.span = Span::none();
    }
}

impl<Q, R> Drop for TracedStream<'_, Q, R> {
    /// Dropped before the end: the span ends now, with the rows seen.
    fn drop(&mut self) {
        if self.inner.is_some() {
            self.finish();
        }
    }
}

impl<Q, R> Stream for TracedStream<'_, Q, R> {
    type Item = Result<Either<Q, R>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = {
            let _entered = this.span.enter();
            inner.as_mut().poll_next(cx)
        };
        match polled {
            Poll::Ready(Some(Ok(item))) => {
                if matches!(item, Either::Right(_)) {
                    this.rows += 1;
                }
                Poll::Ready(Some(Ok(item)))
            }
            Poll::Ready(Some(Err(err))) => {
                this.shared.record_error(&this.span, &err);
                this.finish();
                Poll::Ready(Some(Err(err)))
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
