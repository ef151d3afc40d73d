//! The client side: a CLIENT span per request, its context injected into
//! the request's headers.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;
use tracewire::http::{
    ClientRequest, DisablePropagation, error_type_name, inject_context, record_client_response,
    record_error, record_request_headers, record_response_headers,
};
use tracing::Span;

use crate::hooks::{OnRequest, OnResponse, call_in_span};
use crate::layer::{Client, Common, Trace};
use crate::server::TARGET;

/// Creates the CLIENT span of an outgoing request (a child of the current
/// span) and writes its context into the request's headers, unless the
/// request carries [`DisablePropagation`].
fn start_span<B>(common: &Common, request: &mut Request<B>) -> Span {
    let span = tracewire::http_client_span!(
        target: TARGET,
        ClientRequest::new(request).with_legacy_attributes(common.legacy),
    );
    if !DisablePropagation::is_set(request.extensions()) {
        inject_context(&span, &*common.propagator(), request.headers_mut());
    }
    record_request_headers(&span, &common.request_headers, request.headers());
    span
}

impl<S, Req, Res, ReqBody, ResBody> Service<Request<ReqBody>> for Trace<S, Client<Req, Res>>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: fmt::Display + 'static,
    Req: OnRequest<ReqBody>,
    Res: OnResponse<ResBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ClientFuture<S::Future, Client<Req, Res>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let span = start_span(&self.mode.common, &mut request);
        let future = call_in_span(&mut self.inner, &self.mode.on_request, request, &span);
        ClientFuture {
            inner: future,
            span: Some(span),
            start: Instant::now(),
            mode: self.mode.clone(),
        }
    }
}

pin_project! {
    /// The response future of a traced client: enters the span on every
    /// poll and ends it when the response head arrives or the request fails.
    /// Dropping it (cancelling the request) ends the span without an error.
    pub struct ClientFuture<Fut, M> {
        #[pin]
        inner: Fut,
        span: Option<Span>,
        start: Instant,
        mode: std::sync::Arc<M>,
    }
}

impl<Fut, M> fmt::Debug for ClientFuture<Fut, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientFuture")
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

impl<Fut, Req, Res, B, E> Future for ClientFuture<Fut, Client<Req, Res>>
where
    Fut: Future<Output = Result<Response<B>, E>>,
    E: fmt::Display + 'static,
    Res: OnResponse<B>,
{
    type Output = Result<Response<B>, E>;

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
        if let Some(span) = this.span.take() {
            let _entered = span.enter();
            match &result {
                Ok(response) => {
                    let common = &this.mode.common;
                    record_client_response(
                        &span,
                        response.status(),
                        response.version(),
                        common.legacy,
                    );
                    record_response_headers(&span, &common.response_headers, response.headers());
                    this.mode
                        .on_response
                        .on_response(response, this.start.elapsed(), &span);
                }
                Err(error) => record_error(&span, error_type_name::<E>(), Some(error)),
            }
        }
        Poll::Ready(result)
    }
}
