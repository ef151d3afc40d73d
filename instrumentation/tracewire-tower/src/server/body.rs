//! The response body of a traced server, which holds the span until the
//! body ends.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tracewire::error::{error_type_name, record_error};
use tracing::Span;

use crate::messages::MessageEvents;
use crate::protocol::BodyEnd;
use crate::record;

pin_project! {
    /// The response body of a traced server (or gRPC client): the span
    /// stays open until the body ends (its trailers, with gRPC's status,
    /// are the last frame), fails or is dropped, and is entered while the
    /// body is polled (streaming handlers log inside the request's span).
    pub struct ResponseBody<B> {
        #[pin]
        inner: B,
        span: Option<Span>,
        // What the protocol reads before the span ends (gRPC's status
        // trailer).
        end: BodyEnd,
        // The opt-in `rpc.message` events of a gRPC stream.
        messages: Option<MessageEvents>,
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
    /// A body that ends `span` when it ends, after reading `end`.
    pub(crate) fn traced_until(inner: B, span: Span, end: BodyEnd) -> Self {
        ResponseBody {
            inner,
            span: Some(span),
            end,
            messages: None,
        }
    }

    /// The same body, adding `rpc.message` events with `messages`.
    pub(crate) fn with_message_events(mut self, messages: Option<MessageEvents>) -> Self {
        self.messages = messages;
        self
    }

    pub(crate) fn untraced(inner: B) -> Self {
        ResponseBody {
            inner,
            span: None,
            end: BodyEnd::Nothing,
            messages: None,
        }
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
            None => {
                if let Some(span) = this.span.take() {
                    std::mem::replace(this.end, BodyEnd::Nothing).on_end(&span);
                }
            }
            Some(Ok(frame)) => {
                if let (Some(data), Some(messages), Some(span)) =
                    (frame.data_ref(), this.messages.as_mut(), this.span.as_ref())
                {
                    messages.on_data(span, data);
                }
                // Trailers are a body's last frame: the span ends with them
                // (a caller may hold the body long after).
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(span) = this.span.take()
                {
                    std::mem::replace(this.end, BodyEnd::Nothing)
                        .on_trailers(&span, trailers)
                        .on_end(&span);
                }
            }
            Some(Err(error)) => {
                if let Some(span) = this.span.take() {
                    record_error(&span, error_type_name::<B::Error>(), Some(error));
                }
            }
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
