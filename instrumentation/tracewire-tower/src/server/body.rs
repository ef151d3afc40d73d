//! The response body of a traced server, which holds the span until the
//! body ends.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tracewire::error::{error_type_name, record_error};
use tracing::Span;

use crate::record;

pin_project! {
    /// The response body of a traced server: the span stays open until the
    /// body ends, fails or is dropped, and is entered while the body is
    /// polled (streaming handlers log inside the request's span).
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        span: Option<Span>,
    }
}

impl<B> fmt::Debug for ResponseBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn traced(inner: B, span: Span) -> Self {
        ResponseBody {
            inner,
            span: Some(span),
        }
    }

    pub(crate) fn untraced(inner: B) -> Self {
        ResponseBody { inner, span: None }
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body,
    B::Error: fmt::Display + 'static,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let inner = this.inner;
        let frame = ready!(record::poll_in_span(
            this.span,
            |span| span,
            || inner.poll_frame(cx),
            |_, _| {},
        ));
        match &frame {
            None => *this.span = None,
            Some(Err(error)) => {
                if let Some(span) = this.span.take() {
                    record_error(&span, error_type_name::<B::Error>(), Some(error));
                }
            }
            Some(Ok(_)) => {}
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
