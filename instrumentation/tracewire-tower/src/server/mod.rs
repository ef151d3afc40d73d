//! The server side: a SERVER span per request, under the caller's context,
//! ended when the response body ends.
//!
//! The span is made in `span.rs`, the response future in `future.rs` and
//! the response body in `body.rs`; this file is the service.

mod body;
mod future;
mod span;

use std::fmt;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

pub use body::ResponseBody;
pub use future::ServerFuture;

use crate::hooks::{Filter, OnRequest, OnResponse, SpanName, call_in_span};
use crate::layer::{Server, Trace};
use crate::messages::{Direction, MessageEvents};
use crate::protocol::sealed::RequestBody;
use crate::protocol::{Protocol, Side};

impl<S, F, N, Req, Res, P, ReqBody, ResBody> Service<Request<ReqBody>>
    for Trace<S, Server<F, N, Req, Res, P>>
where
    S: Service<Request<<P as RequestBody<ReqBody>>::Body>, Response = Response<ResBody>>,
    S::Error: fmt::Display + 'static,
    ResBody: Body,
    ResBody::Error: fmt::Display + 'static,
    F: Filter<ReqBody>,
    N: SpanName<ReqBody>,
    Req: OnRequest<ReqBody>,
    Res: OnResponse<ResBody>,
    P: Protocol + RequestBody<ReqBody>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ServerFuture<S::Future, Server<F, N, Req, Res, P>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if !self.mode.filter.trace(&request) {
            return ServerFuture::untraced(
                self.inner.call(request.map(|b| P::request_body(b, None))),
            );
        }
        let (span, recording) = self.mode.make_span(&request);
        let deadline = recording
            .then(|| P::deadline(request.headers(), Side::Server, &self.mode.common.rpc))
            .flatten();
        // The request stream's `rpc.message` events (`RECEIVED`), with
        // their own ids.
        let events = (P::COUNTS_MESSAGES && recording && self.mode.common.rpc.message_events)
            .then(|| (span.clone(), MessageEvents::new(Direction::Received)));
        let future = call_in_span(
            &mut self.inner,
            &self.mode.on_request,
            request,
            &span,
            |body| P::request_body(body, events),
        );
        ServerFuture::traced(future, span, recording, deadline, self.mode.clone())
    }
}
