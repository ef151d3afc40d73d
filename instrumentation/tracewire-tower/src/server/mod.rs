//! The server side: a SERVER span per request, under the caller's context,
//! ended when the response body ends.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_service::Service;
use tracewire::http::{
    RedactedQuery, error_type_name, method_attributes, protocol_version, record_error,
    record_request_headers, record_response_headers, record_status_code,
};
use tracewire::propagation::format_traceparent;
use tracewire::{SpanContext, SpanExt as _, with_remote_parent_recording};
use tracing::Span;
use tracing::field::{Empty, display};

use crate::hooks::{Filter, LazyName, OnRequest, OnResponse, SpanName};
use crate::layer::{Server, Trace, TrustBoundary};
use crate::semconv::{forwarded_client, forwarded_proto, server_host, single_header};
use crate::{HttpRoute, record};

/// The span target, which `EnvFilter` directives can name.
pub(crate) const TARGET: &str = "tracewire_tower";

/// The route template of a request: axum's `MatchedPath`, else an
/// [`HttpRoute`] extension.
fn route_of<B>(request: &Request<B>) -> Option<&str> {
    #[cfg(feature = "axum")]
    if let Some(path) = request.extensions().get::<axum::extract::MatchedPath>() {
        return Some(path.as_str());
    }
    request
        .extensions()
        .get::<HttpRoute>()
        .map(HttpRoute::as_str)
}

/// The peer of the connection, when the server put it in the extensions.
fn peer_of<B>(request: &Request<B>) -> Option<SocketAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = request
        .extensions()
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(info.0);
    }
    request.extensions().get::<SocketAddr>().copied()
}

impl<F, N, Req, Res> Server<F, N, Req, Res> {
    /// Creates the SERVER span of `request` under the context it carries,
    /// and tells whether it is recorded.
    fn make_span<B>(&self, request: &Request<B>) -> (Span, bool)
    where
        N: SpanName<B>,
    {
        if !tracing::span_enabled!(target: TARGET, tracing::Level::INFO) {
            return (Span::none(), false);
        }
        let extracted = self.common.propagator().extract(request.headers());
        let (cx, link) = match self.trust {
            TrustBoundary::Trust => (extracted, None),
            TrustBoundary::IgnoreSampledFlag => match extracted.span_context() {
                Some(_) => (extracted.with_resampling(), None),
                // A bare sampling decision (B3's `b3: 0`) is ignored too.
                None => (
                    tracewire::Context::new().with_baggage(extracted.baggage().clone()),
                    None,
                ),
            },
            TrustBoundary::Restart => {
                (tracewire::Context::new(), extracted.span_context().cloned())
            }
        };

        let headers = request.headers();
        let uri = request.uri();
        let scheme = uri
            .scheme_str()
            .or_else(|| self.forwarded.then(|| forwarded_proto(headers)).flatten())
            .or(self.scheme.as_deref())
            .unwrap_or("http");
        let (method, method_original) = method_attributes(request.method());
        let route = route_of(request);
        let host = server_host(uri, headers, scheme);
        let peer = peer_of(request);
        let forwarded = if self.forwarded {
            forwarded_client(headers)
        } else {
            None
        };
        let client_address = match (forwarded, peer) {
            (Some(f), _) => Some(display(ClientAddress::Forwarded(f))),
            (None, Some(p)) => Some(display(ClientAddress::Peer(p))),
            (None, None) => None,
        };
        let name = LazyName {
            hook: &self.name,
            request,
            route,
        };

        let (span, recording) = with_remote_parent_recording(&cx, || {
            tracing::info_span!(
                target: TARGET,
                "HTTP request",
                otel.name = %name,
                otel.kind = "server",
                otel.status_code = Empty,
                otel.status_message = Empty,
                http.request.method = method,
                http.request.method_original = method_original,
                http.route = route,
                url.path = uri.path(),
                url.query = uri.query().map(|q| display(RedactedQuery(q))),
                url.scheme = scheme,
                server.address = host.map(|(h, _)| h),
                server.port = host.and_then(|(_, p)| p),
                client.address = client_address,
                network.peer.address = peer.map(|p| display(p.ip())),
                network.peer.port = peer.map(|p| p.port()),
                user_agent.original = single_header(headers, &http::header::USER_AGENT),
                network.protocol.version = protocol_version(request.version()),
                http.response.status_code = Empty,
                error.type = Empty,
                http.method = Empty,
                http.target = Empty,
                net.host.name = Empty,
                http.status_code = Empty,
            )
        });
        // An unsampled span records nothing: skip what only feeds attributes.
        if recording {
            if self.common.legacy {
                span.record("http.method", request.method().as_str());
                let target = match uri.query() {
                    Some(q) => format!("{}?{}", uri.path(), RedactedQuery(q)),
                    None => uri.path().to_owned(),
                };
                span.record("http.target", target);
                span.record("net.host.name", host.map(|(h, _)| h));
            }
            if let Some(link) = link {
                span.add_link(&link);
            }
            record_request_headers(&span, &self.common.request_headers, headers);
        }
        (span, recording)
    }
}

/// `client.address`: the forwarded client, or the peer's IP.
enum ClientAddress<'a> {
    Forwarded(&'a str),
    Peer(SocketAddr),
}

impl fmt::Display for ClientAddress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientAddress::Forwarded(a) => f.write_str(a),
            ClientAddress::Peer(p) => p.ip().fmt(f),
        }
    }
}

impl<S, F, N, Req, Res, ReqBody, ResBody> Service<Request<ReqBody>>
    for Trace<S, Server<F, N, Req, Res>>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: fmt::Display + 'static,
    ResBody: Body,
    ResBody::Error: fmt::Display + 'static,
    F: Filter<ReqBody>,
    N: SpanName<ReqBody>,
    Req: OnRequest<ReqBody>,
    Res: OnResponse<ResBody>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, Server<F, N, Req, Res>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if !self.mode.filter.trace(&request) {
            return ResponseFuture {
                inner: self.inner.call(request),
                state: None,
            };
        }
        let (span, recording) = self.mode.make_span(&request);
        let future =
            crate::hooks::call_in_span(&mut self.inner, &self.mode.on_request, request, &span);
        ResponseFuture {
            inner: future,
            state: Some(State {
                span,
                recording,
                start: Instant::now(),
                mode: self.mode.clone(),
            }),
        }
    }
}

/// What a traced request's future keeps until the response head is ready.
struct State<M> {
    span: Span,
    /// Whether `span` is recorded: an unsampled one gets no `record` calls.
    recording: bool,
    start: Instant,
    mode: std::sync::Arc<M>,
}

pin_project! {
    /// The response future of a traced server: enters the span on every
    /// poll, records the response status and hands the span to the body.
    pub struct ResponseFuture<Fut, M> {
        #[pin]
        inner: Fut,
        state: Option<State<M>>,
    }
}

impl<Fut, M> fmt::Debug for ResponseFuture<Fut, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture")
            .field("traced", &self.state.is_some())
            .finish_non_exhaustive()
    }
}

impl<Fut, F, N, Req, Res, B, E> Future for ResponseFuture<Fut, Server<F, N, Req, Res>>
where
    Fut: Future<Output = Result<Response<B>, E>>,
    E: fmt::Display + 'static,
    B: Body,
    B::Error: fmt::Display + 'static,
    Res: OnResponse<B>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.state.is_none() {
            let response = ready!(this.inner.poll(cx))?;
            return Poll::Ready(Ok(response.map(ResponseBody::untraced)));
        }
        let Some(state) = this.state.take() else {
            unreachable!("state checked above");
        };
        // One entry of the span for the poll and, when the response is
        // ready, for recording it and the `OnResponse` hook.
        let entered = state.span.enter();
        let result = match catch_unwind(AssertUnwindSafe(|| this.inner.poll(cx))) {
            Ok(Poll::Ready(result)) => result,
            Ok(Poll::Pending) => {
                drop(entered);
                *this.state = Some(state);
                return Poll::Pending;
            }
            Err(payload) => {
                drop(entered);
                record::panic(&state.span, payload.as_ref());
                drop(state);
                resume_unwind(payload)
            }
        };
        let span = &state.span;
        let mode = &state.mode;
        match result {
            Ok(mut response) => {
                let status = response.status();
                if state.recording {
                    record_status_code(span, status, mode.common.legacy);
                    if status.is_server_error() {
                        record_error(span, status.as_str(), None);
                    }
                }
                if (mode.traceresponse || mode.server_timing)
                    && let Some(cx) = span.span_context()
                {
                    add_trace_headers(&mut response, &cx, mode.traceresponse, mode.server_timing);
                }
                if state.recording {
                    record_response_headers(
                        span,
                        &mode.common.response_headers,
                        response.headers(),
                    );
                }
                mode.on_response
                    .on_response(&response, state.start.elapsed(), span);
                drop(entered);
                Poll::Ready(Ok(
                    response.map(|body| ResponseBody::traced(body, state.span))
                ))
            }
            Err(error) => {
                if state.recording {
                    record_error(span, error_type_name::<E>(), Some(&error));
                }
                drop(entered);
                Poll::Ready(Err(error))
            }
        }
    }
}

/// Writes `traceresponse` and/or `Server-Timing: traceparent;desc=…`.
fn add_trace_headers<B>(
    response: &mut Response<B>,
    cx: &SpanContext,
    traceresponse: bool,
    server_timing: bool,
) {
    let value = format_traceparent(cx);
    let Ok(text) = std::str::from_utf8(&value) else {
        return;
    };
    if traceresponse && let Ok(v) = HeaderValue::from_str(text) {
        response.headers_mut().insert("traceresponse", v);
    }
    if server_timing && let Ok(v) = HeaderValue::from_str(&format!("traceparent;desc=\"{text}\"")) {
        response.headers_mut().append("server-timing", v);
    }
}

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
            || inner.poll_frame(cx)
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
