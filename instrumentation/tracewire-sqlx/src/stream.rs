//! Streams: one that keeps a query span open until the results end or the
//! stream is dropped, and a small generator for streams that own their
//! pooled connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
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

/// Hands items from a generator future to its stream.
pub(crate) struct Yielder<T> {
    slot: Arc<Mutex<Option<T>>>,
}

impl<T> Yielder<T> {
    /// Gives `item` to the stream and waits until it has been taken.
    pub(crate) async fn send(&self, item: T) {
        *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(item);
        // Return Pending once: the stream's poll_next finds the item in the
        // slot and returns it; its next poll resumes here.
        let mut yielded = false;
        std::future::poll_fn(|_| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                Poll::Pending
            }
        })
        .await;
    }
}

/// A stream driven by a future that sends its items through a [`Yielder`]:
/// the future can own a connection and a stream borrowing it.
pub(crate) struct Generator<'e, T> {
    slot: Arc<Mutex<Option<T>>>,
    future: Option<Pin<Box<dyn Future<Output = ()> + Send + 'e>>>,
}

impl<'e, T: Send + 'e> Generator<'e, T> {
    pub(crate) fn new<F, Fut>(f: F) -> Self
    where
        F: FnOnce(Yielder<T>) -> Fut,
        Fut: Future<Output = ()> + Send + 'e,
    {
        let slot = Arc::new(Mutex::new(None));
        let future = f(Yielder {
            slot: Arc::clone(&slot),
        });
        Self {
            slot,
            future: Some(Box::pin(future)),
        }
    }
}

impl<T> Stream for Generator<'_, T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = self.get_mut();
        let Some(future) = this.future.as_mut() else {
            return Poll::Ready(None);
        };
        let done = future.as_mut().poll(cx).is_ready();
        let item = this
            .slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if done {
            this.future = None;
        }
        match item {
            Some(item) => Poll::Ready(Some(item)),
            None if done => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}
