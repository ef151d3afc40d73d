//! The response future of a traced client.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use http::Response;
use pin_project_lite::pin_project;
use tracing::Span;

use crate::grpc::Deadline;
use crate::hooks::OnResponse;
use crate::layer::Client;
use crate::protocol::{BodyEnd, Protocol};

pin_project! {
    /// The response future of a traced client: enters the span on every
    /// poll and ends it when the response head arrives or the request fails
    /// (gRPC: unless the head carries no `grpc-status`; then the returned
    /// [`ResponseBody`](crate::ResponseBody) keeps the span until the
    /// stream ends). Dropping it (cancelling the request) ends the span
    /// without an error.
    pub struct ClientFuture<Fut, M> {
        #[pin]
        inner: Fut,
        span: Option<Span>,
        start: Instant,
        // A gRPC call's `grpc-timeout`.
        deadline: Option<Deadline>,
        mode: Arc<M>,
    }
}

impl<Fut, M> fmt::Debug for ClientFuture<Fut, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientFuture")
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

impl<Fut, Req, Res, P, B, E> Future for ClientFuture<Fut, Client<Req, Res, P>>
where
    Fut: Future<Output = Result<Response<B>, E>>,
    E: fmt::Display + 'static,
    Res: OnResponse<B>,
    P: Protocol,
{
    type Output = Result<Response<P::ClientBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = match this.span.as_ref() {
            Some(span) => {
                let _entered = span.enter();
                this.inner.poll(cx)
            }
            None => this.inner.poll(cx),
        };
        let Poll::Ready(result) = result else {
            return Poll::Pending;
        };
        let Some(span) = this.span.take() else {
            return Poll::Ready(
                result
                    .map(|r| r.map(|b| P::client_body(b, None, BodyEnd::Nothing, &this.mode.rpc))),
            );
        };
        let entered = span.enter();
        let mode = &**this.mode;
        match result {
            Ok(response) => {
                let end = P::client_response(&span, &mode.options, &mode.rpc, &response);
                mode.on_response
                    .on_response(&response, this.start.elapsed(), &span);
                drop(entered);
                // The span ends here unless the body has more to read.
                let span = (end != BodyEnd::Nothing).then_some(span);
                Poll::Ready(Ok(response.map(|b| P::client_body(b, span, end, &mode.rpc))))
            }
            Err(error) => {
                // A failure once the deadline has passed is the deadline
                // (tonic's channel enforces `grpc-timeout` with an error).
                match this.deadline {
                    Some(deadline) if deadline.passed() => deadline.record(&span),
                    _ => P::client_error(&span, mode.rpc.legacy, &error),
                }
                Poll::Ready(Err(error))
            }
        }
    }
}

impl<Fut, M> ClientFuture<Fut, M> {
    /// The future of a request that got `span`.
    pub(super) fn new(inner: Fut, span: Span, deadline: Option<Deadline>, mode: Arc<M>) -> Self {
        ClientFuture {
            inner,
            span: Some(span),
            start: Instant::now(),
            deadline,
            mode,
        }
    }
}
