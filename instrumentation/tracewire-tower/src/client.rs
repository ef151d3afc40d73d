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
use tracewire::SpanExt as _;
use tracing::Span;
use tracing::field::{Empty, display};

use crate::hooks::{OnRequest, OnResponse};
use crate::layer::{Client, Common, Trace};
use crate::semconv::{
    RedactedUrl, client_host, error_type_name, method_attributes, method_for_name, protocol_version,
};
use crate::server::TARGET;
use crate::{DisablePropagation, ResendCount, headers, record};

/// Creates the CLIENT span of an outgoing request (a child of the current
/// span) and writes its context into the request's headers, unless the
/// request carries [`DisablePropagation`].
fn start_span<B>(common: &Common, request: &mut Request<B>) -> Span {
    let (method, method_original) = method_attributes(request.method());
    let resend = request
        .extensions()
        .get::<ResendCount>()
        .map(|r| r.0)
        .filter(|&n| n > 0);
    let uri = request.uri();
    let host = client_host(uri);
    let span = tracing::info_span!(
        target: TARGET,
        "HTTP client request",
        otel.name = method_for_name(request.method()),
        otel.kind = "client",
        otel.status_code = Empty,
        otel.status_message = Empty,
        http.request.method = method,
        http.request.method_original = method_original,
        server.address = host.map(|(h, _)| h),
        server.port = host.and_then(|(_, p)| p),
        url.full = display(RedactedUrl { uri }),
        http.request.resend_count = resend,
        network.protocol.version = Empty,
        http.response.status_code = Empty,
        error.type = Empty,
        http.method = Empty,
        http.url = Empty,
        net.peer.name = Empty,
        http.status_code = Empty,
    );
    if common.legacy && span.is_recording() {
        span.record("http.method", request.method().as_str());
        span.record("http.url", display(RedactedUrl { uri }));
        span.record("net.peer.name", host.map(|(h, _)| h));
    }
    if request.extensions().get::<DisablePropagation>().is_none() {
        // A disabled span (filtered out by the subscriber) still passes the
        // current trace on.
        let cx = if span.is_disabled() {
            tracewire::current_context()
        } else {
            span.context()
        };
        common.propagator().inject(&cx, request.headers_mut());
    }
    if span.is_disabled() {
        return span;
    }
    if !common.request_headers.is_empty() && span.is_recording() {
        headers::record(
            &span,
            "http.request.header.",
            &common.request_headers,
            request.headers(),
        );
    }
    span
}

/// Records the response head: status code, protocol version, captured
/// headers, and status Error for 4xx and 5xx.
fn record_client_response<B>(common: &Common, span: &Span, response: &Response<B>) {
    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if common.legacy {
        span.record("http.status_code", status.as_u16());
    }
    span.record(
        "network.protocol.version",
        protocol_version(response.version()),
    );
    if status.is_client_error() || status.is_server_error() {
        record::error_status(span, status.as_str(), None);
    }
    if !common.response_headers.is_empty() && span.is_recording() {
        headers::record(
            span,
            "http.response.header.",
            &common.response_headers,
            response.headers(),
        );
    }
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
        let future = {
            let _entered = span.enter();
            self.mode.on_request.on_request(&request, &span);
            self.inner.call(request)
        };
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
                    record_client_response(&this.mode.common, &span, response);
                    this.mode
                        .on_response
                        .on_response(response, this.start.elapsed(), &span);
                }
                Err(error) => record::error_status(&span, error_type_name::<E>(), Some(error)),
            }
        }
        Poll::Ready(result)
    }
}
