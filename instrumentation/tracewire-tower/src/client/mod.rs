//! The client side: a CLIENT span per request, its context injected into
//! the request's headers.
//!
//! The span is made in `span.rs` and the response future is in
//! `future.rs`; this file is the service.

mod future;
mod span;

use std::fmt;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;
use tracewire::SpanExt as _;

pub use future::ClientFuture;

use crate::hooks::{OnRequest, OnResponse, call_in_span};
use crate::layer::{Client, Trace};
use crate::messages::{Direction, MessageEvents};
use crate::protocol::sealed::RequestBody;
use crate::protocol::{Protocol, Side};
pub(crate) use span::http_span;

impl<S, Req, Res, P, ReqBody, ResBody> Service<Request<ReqBody>> for Trace<S, Client<Req, Res, P>>
where
    S: Service<Request<<P as RequestBody<ReqBody>>::Body>, Response = Response<ResBody>>,
    S::Error: fmt::Display + 'static,
    Req: OnRequest<ReqBody>,
    Res: OnResponse<ResBody>,
    P: Protocol + RequestBody<ReqBody>,
{
    type Response = Response<P::ClientBody<ResBody>>;
    type Error = S::Error;
    type Future = ClientFuture<S::Future, Client<Req, Res, P>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let span = P::client_span(&self.mode.options, &self.mode.rpc, &mut request);
        let deadline = P::deadline(request.headers(), Side::Client, &self.mode.rpc);
        // The request stream's `rpc.message` events (`SENT`), with their
        // own ids.
        let events = (P::COUNTS_MESSAGES && self.mode.rpc.message_events && span.is_recording())
            .then(|| (span.clone(), MessageEvents::new(Direction::Sent)));
        let future = call_in_span(
            &mut self.inner,
            &self.mode.on_request,
            request,
            &span,
            |body| P::request_body(body, events),
        );
        ClientFuture::new(future, span, deadline, self.mode.clone())
    }
}

#[cfg(test)]
mod tests;
