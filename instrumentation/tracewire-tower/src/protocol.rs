//! The wire protocol a layer traces: [`Http`] (the default) or [`Grpc`].
//!
//! Both presets share everything that is not protocol-specific: the
//! [`Trace`](crate::Trace) service, the response futures, the response
//! body that holds a span until the body ends, panic capture, the
//! propagators, trust boundaries and hooks. What differs lives behind the
//! sealed [`Protocol`] trait (crate-internal methods): creating the span
//! with its attributes, recording the response head, and what is read at
//! the end of a response body (gRPC's `grpc-status` trailer).

use std::fmt;

use http::{HeaderMap, Request, Response};
use tracewire::SpanExt as _;
use tracewire::error::{error_type_name, record_error};
use tracewire::http::ClientOptions;
use tracing::Span;

use crate::grpc::{self, Deadline, RpcOptions, TrailingMetadata};
use crate::hooks::SpanName;
use crate::layer::{Common, Server};
use crate::messages::{Direction, MessageEvents};
use crate::server::ResponseBody;

/// A wire protocol the layer knows: [`Http`] or [`Grpc`]. Sealed: the
/// crate implements it for those two types only.
pub trait Protocol: sealed::Protocol {}

/// Plain HTTP: the HTTP semantic conventions, the status from the
/// response head ([`TraceLayer::server`](crate::TraceLayer::server),
/// [`TraceLayer::client`](crate::TraceLayer::client)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Http;

/// gRPC over HTTP/2: the RPC semantic conventions, the status from
/// `grpc-status` ([`TraceLayer::grpc_server`](crate::TraceLayer::grpc_server),
/// [`TraceLayer::grpc_client`](crate::TraceLayer::grpc_client)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Grpc;

/// gRPC served or called through tonic (feature `tonic`): [`Grpc`], and
/// the request body is handed on as a [`tonic::body::Body`] (the type
/// tonic's server routes and its `Channel` take) wrapping a counting body,
/// so [`message_events(true)`](crate::TraceLayer::message_events) also
/// records the request stream (server `RECEIVED`, client `SENT`). Made
/// by [`TraceLayer::for_tonic`](crate::TraceLayer::for_tonic).
#[cfg(feature = "tonic")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tonic;

impl Protocol for Http {}
impl Protocol for Grpc {}
#[cfg(feature = "tonic")]
impl Protocol for Tonic {}

/// Which side of a call a span is on (gRPC's status rules differ).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// A SERVER span.
    Server,
    /// A CLIENT span.
    Client,
}

/// What a response body reads before it ends its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyEnd {
    /// Nothing: the status is already known (HTTP, or a gRPC
    /// trailers-only response).
    Nothing,
    /// The `grpc-status` of the trailers frame (and the allow-listed
    /// trailing metadata).
    GrpcStatus {
        side: Side,
        /// Also the `rpc/dup` attribute names.
        legacy: bool,
        /// The response metadata capture, merged with the trailers.
        metadata: Option<Box<TrailingMetadata>>,
    },
}

impl BodyEnd {
    /// Reads a trailers frame of the body; returns what is left to read.
    pub(crate) fn on_trailers(self, span: &Span, trailers: &HeaderMap) -> BodyEnd {
        match self {
            BodyEnd::Nothing => BodyEnd::Nothing,
            BodyEnd::GrpcStatus {
                side,
                legacy,
                metadata,
            } => {
                if let Some(metadata) = metadata {
                    metadata.record(span, trailers);
                }
                if grpc::record_status_from(span, trailers, side, legacy) {
                    BodyEnd::Nothing
                } else {
                    BodyEnd::GrpcStatus {
                        side,
                        legacy,
                        metadata: None,
                    }
                }
            }
        }
    }

    /// The body ended (no more frames) without what was expected.
    pub(crate) fn on_end(self, span: &Span) {
        if let BodyEnd::GrpcStatus { side, legacy, .. } = self {
            grpc::missing_status(span, side, legacy);
        }
    }
}

pub(crate) mod sealed {
    use super::*;

    /// How a protocol hands a request body `B` on to the inner service:
    /// unchanged ([`Http`], [`Grpc`]), or counted and re-wrapped in
    /// tonic's body type (`Tonic`).
    pub trait RequestBody<B>: Protocol {
        /// The request body the inner service gets.
        type Body;

        /// Whether request messages can be counted (the body is wrapped).
        const COUNTS_MESSAGES: bool;

        /// The body handed on; `events` (only when `COUNTS_MESSAGES`)
        /// adds an `rpc.message` event to the span per request message.
        fn request_body(body: B, events: Option<(Span, MessageEvents)>) -> Self::Body;
    }

    /// The protocol-specific parts of the layer (see the module docs).
    pub trait Protocol: Copy + Default + fmt::Debug + Send + Sync + 'static {
        /// The response body a traced client hands back: the inner body
        /// for HTTP (the span ends with the head), a [`ResponseBody`] for
        /// gRPC (the span ends with the stream).
        type ClientBody<B>;

        /// Creates the SERVER span of `request` under `parent`, and tells
        /// whether it is recorded.
        fn server_span<F, N, Req, Res, B>(
            server: &Server<F, N, Req, Res, Self>,
            request: &Request<B>,
            parent: &tracewire::Context,
        ) -> (Span, bool)
        where
            N: SpanName<B>;

        /// Records a server's response head (only on a recorded span);
        /// says what the body must read before the span ends.
        fn server_response<B>(span: &Span, common: &Common, response: &Response<B>) -> BodyEnd;

        /// Creates the CLIENT span of `request` (a child of the current
        /// span) and injects its context.
        fn client_span<B>(
            options: &ClientOptions,
            rpc: &RpcOptions,
            request: &mut Request<B>,
        ) -> Span;

        /// Records a client's response head; says what the body must read
        /// before the span ends (`Nothing`: it ends now).
        fn client_response<B>(
            span: &Span,
            options: &ClientOptions,
            rpc: &RpcOptions,
            response: &Response<B>,
        ) -> BodyEnd;

        /// The deadline (`grpc-timeout`) of a call whose request has
        /// `headers`, starting now; always `None` for HTTP.
        fn deadline(headers: &HeaderMap, side: Side, rpc: &RpcOptions) -> Option<Deadline>;

        /// Records an error of the inner client service (no response).
        fn client_error<E: fmt::Display + 'static>(span: &Span, rpc_legacy: bool, error: &E);

        /// The body handed back to the client's caller; `span` is `Some`
        /// while the body still has to read `end`; `rpc` says whether it
        /// adds `rpc.message` events.
        fn client_body<B>(
            body: B,
            span: Option<Span>,
            end: BodyEnd,
            rpc: &RpcOptions,
        ) -> Self::ClientBody<B>;
    }
}

impl<B> sealed::RequestBody<B> for Http {
    type Body = B;
    const COUNTS_MESSAGES: bool = false;

    fn request_body(body: B, _: Option<(Span, MessageEvents)>) -> B {
        body
    }
}

impl<B> sealed::RequestBody<B> for Grpc {
    type Body = B;
    const COUNTS_MESSAGES: bool = false;

    fn request_body(body: B, _: Option<(Span, MessageEvents)>) -> B {
        body
    }
}

#[cfg(feature = "tonic")]
impl<B> sealed::RequestBody<B> for Tonic
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Body = tonic::body::Body;
    const COUNTS_MESSAGES: bool = true;

    fn request_body(body: B, events: Option<(Span, MessageEvents)>) -> tonic::body::Body {
        match events {
            // `Body::new` hands a `tonic::body::Body` back as it is.
            None => tonic::body::Body::new(body),
            Some((span, events)) => {
                tonic::body::Body::new(crate::messages::CountedBody::new(body, span, events))
            }
        }
    }
}

impl sealed::Protocol for Http {
    type ClientBody<B> = B;

    fn server_span<F, N, Req, Res, B>(
        server: &Server<F, N, Req, Res, Self>,
        request: &Request<B>,
        parent: &tracewire::Context,
    ) -> (Span, bool)
    where
        N: SpanName<B>,
    {
        server.http_span(request, parent)
    }

    fn server_response<B>(span: &Span, common: &Common, response: &Response<B>) -> BodyEnd {
        let status = response.status();
        tracewire::http::record_status_code(span, status, common.legacy);
        if status.is_server_error() {
            record_error(span, status.as_str(), None);
        }
        tracewire::http::record_response_headers(
            span,
            &common.response_headers,
            response.headers(),
        );
        BodyEnd::Nothing
    }

    fn client_span<B>(options: &ClientOptions, _: &RpcOptions, request: &mut Request<B>) -> Span {
        crate::client::http_span(options, request)
    }

    fn client_response<B>(
        span: &Span,
        options: &ClientOptions,
        _: &RpcOptions,
        response: &Response<B>,
    ) -> BodyEnd {
        options.record_response(span, response);
        BodyEnd::Nothing
    }

    fn deadline(_: &HeaderMap, _: Side, _: &RpcOptions) -> Option<Deadline> {
        None
    }

    fn client_error<E: fmt::Display + 'static>(span: &Span, _: bool, error: &E) {
        record_error(span, error_type_name::<E>(), Some(error));
    }

    fn client_body<B>(body: B, _: Option<Span>, _: BodyEnd, _: &RpcOptions) -> B {
        body
    }
}

/// Records a gRPC response head on the span of `side`: the allow-listed
/// response metadata, and the status of a trailers-only response; else
/// the status is read from the trailers.
fn grpc_response(span: &Span, rpc: &RpcOptions, headers: &HeaderMap, side: Side) -> BodyEnd {
    let legacy = rpc.legacy;
    let metadata = grpc::record_response_metadata(span, &rpc.response_metadata, headers);
    if grpc::record_status_from(span, headers, side, legacy) {
        BodyEnd::Nothing
    } else {
        BodyEnd::GrpcStatus {
            side,
            legacy,
            metadata,
        }
    }
}

/// The gRPC side of [`sealed::Protocol`], for [`Grpc`] and `Tonic`.
macro_rules! grpc_protocol {
    ($protocol:ty) => {
        impl sealed::Protocol for $protocol {
            type ClientBody<B> = ResponseBody<B>;

            fn server_span<F, N, Req, Res, B>(
                server: &Server<F, N, Req, Res, Self>,
                request: &Request<B>,
                parent: &tracewire::Context,
            ) -> (Span, bool)
            where
                N: SpanName<B>,
            {
                grpc::server_span(server, request, parent)
            }

            fn server_response<B>(span: &Span, common: &Common, response: &Response<B>) -> BodyEnd {
                grpc_response(span, &common.rpc, response.headers(), Side::Server)
            }

            fn client_span<B>(
                options: &ClientOptions,
                rpc: &RpcOptions,
                request: &mut Request<B>,
            ) -> Span {
                grpc::client_span(options, rpc, request)
            }

            fn client_response<B>(
                span: &Span,
                _: &ClientOptions,
                rpc: &RpcOptions,
                response: &Response<B>,
            ) -> BodyEnd {
                grpc_response(span, rpc, response.headers(), Side::Client)
            }

            fn deadline(headers: &HeaderMap, side: Side, rpc: &RpcOptions) -> Option<Deadline> {
                Deadline::of(headers, side, rpc.legacy)
            }

            fn client_error<E: fmt::Display + 'static>(span: &Span, rpc_legacy: bool, error: &E) {
                grpc::transport_error(span, rpc_legacy, error);
            }

            fn client_body<B>(
                body: B,
                span: Option<Span>,
                end: BodyEnd,
                rpc: &RpcOptions,
            ) -> ResponseBody<B> {
                match span {
                    Some(span) => {
                        let events = (rpc.message_events && span.is_recording())
                            .then(|| MessageEvents::new(Direction::Received));
                        ResponseBody::traced_until(body, span, end).with_message_events(events)
                    }
                    None => ResponseBody::untraced(body),
                }
            }
        }
    };
}

grpc_protocol!(Grpc);
#[cfg(feature = "tonic")]
grpc_protocol!(Tonic);
