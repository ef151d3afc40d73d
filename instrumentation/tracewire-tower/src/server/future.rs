//! The response future of a traced server.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use http::{HeaderValue, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tracewire::error::{error_type_name, record_error};
use tracewire::propagation::format_traceparent;
use tracewire::{SpanContext, SpanExt as _};
use tracing::Span;

use super::ResponseBody;
use crate::grpc::Deadline;
use crate::hooks::OnResponse;
use crate::layer::Server;
use crate::messages::{Direction, MessageEvents};
use crate::protocol::{BodyEnd, Protocol};
use crate::record;

/// What a traced request's future keeps until the response head is ready.
struct State<M> {
    span: Span,
    /// Whether `span` is recorded: an unsampled one gets no `record` calls.
    recording: bool,
    start: Instant,
    /// A gRPC call's `grpc-timeout`.
    deadline: Option<Deadline>,
    mode: Arc<M>,
}

pin_project! {
    /// The response future of a traced server: enters the span on every
    /// poll, records the response status and hands the span to the body.
    pub struct ServerFuture<Fut, M> {
        #[pin]
        inner: Fut,
        state: Option<State<M>>,
    }

    impl<Fut, M> PinnedDrop for ServerFuture<Fut, M> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before the response head: a gRPC call past its
            // deadline (tonic's server drops the handler when
            // `grpc-timeout` expires) is DEADLINE_EXCEEDED.
            if let Some(state) = this.project().state.take()
                && let Some(deadline) = state.deadline
                && deadline.passed()
            {
                deadline.record(&state.span);
            }
        }
    }
}

impl<Fut, M> ServerFuture<Fut, M> {
    /// The future of a request that gets `span`.
    pub(super) fn traced(
        inner: Fut,
        span: Span,
        recording: bool,
        deadline: Option<Deadline>,
        mode: Arc<M>,
    ) -> Self {
        ServerFuture {
            inner,
            state: Some(State {
                span,
                recording,
                start: Instant::now(),
                deadline,
                mode,
            }),
        }
    }

    /// The future of a request the filter rejected.
    pub(super) fn untraced(inner: Fut) -> Self {
        ServerFuture { inner, state: None }
    }
}

impl<Fut, M> fmt::Debug for ServerFuture<Fut, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerFuture")
            .field("traced", &self.state.is_some())
            .finish_non_exhaustive()
    }
}

impl<Fut, F, N, Req, Res, P, B, E> Future for ServerFuture<Fut, Server<F, N, Req, Res, P>>
where
    P: Protocol,
    Fut: Future<Output = Result<Response<B>, E>>,
    E: fmt::Display + 'static,
    B: Body,
    B::Error: fmt::Display + 'static,
    Res: OnResponse<B>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        // One entry of the span for the poll and, when the response is
        // ready, for recording it and the `OnResponse` hook.
        let mut end = BodyEnd::Nothing;
        let result = ready!(record::poll_in_span(
            this.state,
            |state| &state.span,
            || inner.poll(cx),
            |state, result| end = state.record(result),
        ));
        Poll::Ready(match this.state.take() {
            Some(state) => {
                let events = (state.recording && state.mode.common.rpc.message_events)
                    .then(|| MessageEvents::new(Direction::Sent));
                result.map(|r| {
                    r.map(|body| {
                        ResponseBody::traced_until(body, state.span, end)
                            .with_message_events(events)
                    })
                })
            }
            None => result.map(|r| r.map(ResponseBody::untraced)),
        })
    }
}

impl<F, N, Req, Res, P: Protocol> State<Server<F, N, Req, Res, P>> {
    /// Records the response (or the error) of the inner service on the
    /// span, adds the trace headers and runs the `OnResponse` hook; called
    /// inside the span. Returns what the body must read before the span
    /// ends.
    fn record<B, E>(&self, result: &mut Result<Response<B>, E>) -> BodyEnd
    where
        E: fmt::Display + 'static,
        Res: OnResponse<B>,
    {
        let span = &self.span;
        let mode = &self.mode;
        match result {
            Ok(response) => {
                let end = if self.recording {
                    P::server_response(span, &mode.common, response)
                } else {
                    BodyEnd::Nothing
                };
                if (mode.traceresponse || mode.server_timing)
                    && let Some(cx) = span.span_context()
                {
                    add_trace_headers(response, &cx, mode.traceresponse, mode.server_timing);
                }
                mode.on_response
                    .on_response(response, self.start.elapsed(), span);
                end
            }
            Err(error) => {
                if self.recording {
                    record_error(span, error_type_name::<E>(), Some(&*error));
                }
                BodyEnd::Nothing
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
