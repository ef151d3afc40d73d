//! Tower layers that trace HTTP and gRPC: a SERVER span for every request
//! an axum, hyper or tonic service answers, continuing the caller's trace,
//! and a CLIENT span for every request a tower HTTP client or a tonic
//! channel sends, with the trace context written into its headers. Spans are ordinary `tracing` spans that the
//! [`tracewire`] layer gives W3C ids; attributes follow the OpenTelemetry
//! HTTP semantic conventions.
//!
//! # Server
//!
//! `.layer(TraceLayer::server())` is all an axum application needs:
//!
//! ```
//! use axum::{Router, extract::Path, routing::get};
//! use tracewire_tower::TraceLayer;
//!
//! async fn user(Path(id): Path<u32>) -> String {
//!     tracing::info!(id, "loading user"); // inside the request's span
//!     format!("user {id}")
//! }
//!
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(user))
//!     .layer(TraceLayer::server());
//! # let _ = app;
//! ```
//!
//! Each request gets a span named `GET /users/{id}` (the route template
//! from axum's `MatchedPath`, never the raw path), of kind SERVER, whose
//! parent is the caller's span from `traceparent` (a new trace when there
//! is none or it is invalid). It carries `http.request.method`, `url.path`,
//! `url.query`, `url.scheme`, `http.route`, `server.address`,
//! `server.port`, `client.address`, `network.peer.address`,
//! `network.peer.port`, `user_agent.original`,
//! `network.protocol.version`, `http.response.status_code` and, on
//! failure, `error.type`. Its status is Error for 5xx responses and for
//! errors of the inner service; a 4xx leaves it unset. The span is current
//! while the handler runs and ends when the response body has been sent
//! (or dropped), so streaming bodies and server-sent events are covered.
//!
//! # Client
//!
//! ```
//! use http_body_util::Empty;
//! use hyper_util::client::legacy::Client;
//! use hyper_util::rt::TokioExecutor;
//! use tower::{Service as _, ServiceBuilder, ServiceExt as _};
//! use tracewire_tower::TraceLayer;
//!
//! # async fn call() -> Result<(), Box<dyn std::error::Error>> {
//! let mut client = ServiceBuilder::new()
//!     .layer(TraceLayer::client())
//!     .service(Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>());
//! let request = http::Request::get("http://inventory.internal/items/7").body(Empty::new())?;
//! let response = client.ready().await?.call(request).await?;
//! # let _ = response;
//! # Ok(())
//! # }
//! ```
//!
//! Each request gets a CLIENT span named after the method, a child of the
//! current span, and `traceparent`, `tracestate` and `baggage` from it are
//! written into the request. It carries `http.request.method`,
//! `server.address`, `server.port`, `url.full` (credentials and signature
//! query values redacted), `http.request.resend_count` (when the request
//! carries a [`ResendCount`]), `http.response.status_code`,
//! `network.protocol.version` and `error.type`. Its status is Error for
//! 4xx, 5xx and transport errors; a request dropped before its response
//! (cancelled) ends the span without error. The span ends when the response
//! head arrives. A request carrying [`DisablePropagation`] is traced but
//! its headers are left alone. When the subscriber filters the client span
//! out, the current span's context is injected instead, so the trace still
//! reaches the next service.
//!
//! [`DisablePropagation`] and [`ResendCount`] are re-exports of
//! [`tracewire::http`]'s types, which `tracewire-reqwest` uses too, and the
//! client span is the one that module's
//! [`http_client_span!`](tracewire::http_client_span) creates: a request
//! marked for one tracewire client is understood by the other, and both
//! record the same attributes.
//!
//! # gRPC
//!
//! tonic is built on tower, so the same layer traces gRPC with two presets:
//! [`TraceLayer::grpc_server`] for `tonic::transport::Server::builder()
//! .layer(…)` and [`TraceLayer::grpc_client`] for a tonic `Channel`
//! wrapped with `tower::ServiceBuilder`. They need only `http` and
//! `http-body` (no tonic dependency without the `tonic` feature), and
//! share the HTTP presets' machinery: the propagator (`traceparent`, `tracestate` and `baggage`
//! travel as gRPC metadata, which are HTTP/2 headers), the trust boundary,
//! the hooks, panic capture, and the response body that keeps the span
//! open until the stream ends.
//!
//! ```no_run
//! use tonic::transport::{Endpoint, Server};
//! use tower::ServiceBuilder;
//! use tracewire_tower::TraceLayer;
//! # #[derive(Clone)]
//! # struct Payments;
//! # impl tonic::server::NamedService for Payments {
//! #     const NAME: &'static str = "shop.Payments";
//! # }
//! # impl tower::Service<http::Request<tonic::body::Body>> for Payments {
//! #     type Response = http::Response<tonic::body::Body>;
//! #     type Error = std::convert::Infallible;
//! #     type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
//! #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>)
//! #         -> std::task::Poll<Result<(), Self::Error>> { std::task::Poll::Ready(Ok(())) }
//! #     fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
//! #         std::future::ready(Ok(tonic::Status::unimplemented("").into_http()))
//! #     }
//! # }
//!
//! # async fn run(payments: Payments) -> Result<(), Box<dyn std::error::Error>> {
//! // Server: every call is a SERVER span under the caller's context.
//! // (`payments` is any tonic service, generated or written by hand.)
//! Server::builder()
//!     .layer(TraceLayer::grpc_server())
//!     .add_service(payments)
//!     .serve("0.0.0.0:50051".parse()?)
//!     .await?;
//!
//! // Client: every call is a CLIENT span whose context goes into the
//! // request metadata. `with_origin` puts the server's address into each
//! // request's URI, where the layer reads `server.address`/`server.port`.
//! let origin: http::Uri = "http://payments.internal:50051".parse()?;
//! let channel = Endpoint::from(origin.clone()).connect().await?;
//! let traced = ServiceBuilder::new()
//!     .layer(TraceLayer::grpc_client())
//!     .service(channel);
//! let client = tonic::client::Grpc::with_origin(traced, origin);
//! // …or hand `traced` to a generated client's `with_origin`.
//! # let _ = client;
//! # Ok(())
//! # }
//! ```
//!
//! Spans follow the RPC semantic conventions (release candidate): named
//! `{package.Service}/{Method}` from the request path (`_OTHER`, with
//! `rpc.method_original`, for a path that is not `/service/method`), with
//! `rpc.system.name = grpc`, `rpc.method` (fully qualified),
//! `server.address`, `server.port`, `rpc.response.status_code` (the status
//! name: `OK`, `NOT_FOUND`, …) and `error.type` (the status name) on
//! error. The status is read from `grpc-status` in the response headers
//! (a trailers-only response) or in the trailers that end the stream; the
//! span ends with the trailers, when the response stream ends, or when it
//! is dropped, so streaming calls are timed whole. A server span is Error
//! for `UNKNOWN`, `DEADLINE_EXCEEDED`, `UNIMPLEMENTED`, `INTERNAL`,
//! `UNAVAILABLE` and `DATA_LOSS`; a client span for every code but `OK`,
//! with the decoded `grpc-message` as the status message.
//!
//! Where the conventions are silent:
//! - a response that ends without any `grpc-status` is `UNKNOWN` (an
//!   error) on the client, as gRPC clients report it, and leaves the server
//!   span's status unset (the server sent none);
//! - an error of the inner client service (no response: connection
//!   refused, reset) is `UNAVAILABLE`, with the error as the message;
//! - a call dropped by its caller before the status (a cancelled stream)
//!   ends both spans without a status code or error, like a cancelled
//!   HTTP request;
//! - `grpc-status` values that are not a code from 0 to 16 count as
//!   `UNKNOWN`;
//! - a call whose `grpc-timeout` deadline has passed is
//!   `DEADLINE_EXCEEDED` (an error on both sides): on the server when the
//!   handler's future is dropped at or after the deadline (tonic's server
//!   drops it and answers `CANCELLED` "Timeout expired"), on the client
//!   when the inner service fails at or after it (tonic's channel enforces
//!   the deadline with an error that its client reports as `CANCELLED`);
//!   "at" allows 5 ms for the server's timer, which starts before the
//!   layer sees the request;
//! - a panicking handler makes the server span Error (`error.type =
//!   panic`, an `exception` event) and the panic unwinds on; with tonic,
//!   hyper then resets that HTTP/2 stream (the connection and the server
//!   keep serving), tonic's client reports `CANCELLED` and the client span,
//!   which saw a transport error and no `grpc-status`, is `UNAVAILABLE`.
//!
//! With `OTEL_SEMCONV_STABILITY_OPT_IN=rpc/dup` (or
//! [`legacy_rpc_attributes(true)`](TraceLayer::legacy_rpc_attributes)) the
//! spans also carry the older `rpc.system = grpc`, `rpc.service` and the
//! integer `rpc.grpc.status_code`. The older `rpc.method` (the method
//! alone) has the same name as the stable, fully qualified one: the stable
//! value is kept.
//!
//! Opt-in, off by default:
//! - metadata capture: [`request_metadata`](TraceLayer::request_metadata)
//!   and [`response_metadata`](TraceLayer::response_metadata) (on both
//!   gRPC presets) take an allow-list of keys recorded as
//!   `rpc.request.metadata.<key>` / `rpc.response.metadata.<key>` string
//!   arrays, the shape of the HTTP presets' header capture. Binary keys
//!   (`-bin`) are left out of the list: their values are base64 of
//!   arbitrary bytes (often credentials or serialized messages), not text.
//!   Response metadata is read from the response headers (initial
//!   metadata, or a trailers-only response's) and from the trailers that
//!   end the stream (trailing metadata, where servers often put it, next
//!   to `grpc-status`); a key found in both is one array, the header
//!   values first. The
//!   HTTP `request_headers`/`response_headers` options record nothing on
//!   gRPC spans;
//! - [`message_events(true)`](TraceLayer::message_events): an
//!   `rpc.message` event per message of the response stream, with
//!   `rpc.message.type` (`SENT` on the server, `RECEIVED` on the client),
//!   `rpc.message.id` (1, 2, … per stream) and the message's size on the
//!   wire (`rpc.message.compressed_size` when its compressed flag is set,
//!   else `rpc.message.uncompressed_size`). Messages are counted from the
//!   gRPC framing (a 5-byte prefix: flag and big-endian length) of the
//!   body's data frames with a reader that keeps 5 bytes of state, so a
//!   message split across HTTP/2 frames counts once and no input can make
//!   it allocate or panic. Request messages (server `RECEIVED`, client
//!   `SENT`, with their own `rpc.message.id` sequence) are counted only by
//!   a layer made with `.for_tonic()` (feature `tonic`, see below): the
//!   plain presets hand the request body on unchanged, since the inner
//!   service's request type is fixed (tonic's routes and `Channel` take
//!   `http::Request<tonic::body::Body>`) and a counting body is another
//!   type.
//!
//! ## Request messages with tonic (feature `tonic`)
//!
//! `for_tonic()` turns a gRPC preset into one whose protocol is `Tonic`:
//! it re-wraps the request body as `tonic::body::Body::new(counting
//! body)` (tonic's public, documented constructor; a `tonic::body::Body`
//! with nothing to count is handed back as it is), so the inner service
//! still gets `http::Request<tonic::body::Body>`:
//!
//! ```
//! # #[cfg(feature = "tonic")] {
//! use tracewire_tower::TraceLayer;
//!
//! // Server::builder().layer(server).add_service(…)
//! let server = TraceLayer::grpc_server().message_events(true).for_tonic();
//! // ServiceBuilder::new().layer(client).service(channel)
//! let client = TraceLayer::grpc_client().message_events(true).for_tonic();
//! # let _ = (server, client);
//! # }
//! ```
//!
//! Each request message then adds an `rpc.message` event (`RECEIVED` on
//! the server, `SENT` on the client, ids 1, 2, … separate from the
//! response stream's). The counting body holds the span until the
//! request stream ends (its last frame, an error, or its drop). The
//! feature adds a dependency on tonic (without its default features);
//! everything else is the same as with the [`Grpc`] presets.
//!
//! # When each hook runs
//!
//! | hook | server | client |
//! |---|---|---|
//! | [`Filter`] | before anything else; a rejected request gets no span and no header is read | — |
//! | [`SpanName`] | when the span is created, only if it is recorded | — |
//! | [`OnRequest`] | after the span is created, inside it, before the inner service is called | after the span is created and the context injected, inside it, before the request is sent |
//! | [`OnResponse`] | when the inner service returns the response head, before the body is sent | when the response head arrives |
//! | span end | when the response body ends, fails or is dropped; on an inner error; on a panic | with the response head; on an error; when the future is dropped |
//!
//! A panic in the handler (or while the body is produced) is recorded as
//! an `exception` event with status Error and `error.type = panic`, and the
//! span ends; the panic then continues unwinding (the layer catches it with
//! `catch_unwind` and resumes it), so tower-http's `CatchPanic` or the
//! server's own handling sees it as before.
//!
//! # Options
//!
//! - [`filter`](TraceLayer::filter): skip requests (health checks) at no
//!   span cost.
//! - [`span_name`](TraceLayer::span_name), [`on_request`](TraceLayer::on_request),
//!   [`on_response`](TraceLayer::on_response): naming and extra attributes.
//! - [`request_headers`](TraceLayer::request_headers),
//!   [`response_headers`](TraceLayer::response_headers): an allow-list of
//!   headers recorded as `http.request.header.<name>` /
//!   `http.response.header.<name>` (string arrays, one element per
//!   header line).
//! - [`trust_boundary`](TraceLayer::trust_boundary): ignore the caller's
//!   sampled flag, or restart the trace and keep the caller only as a link.
//! - [`trust_forwarded_headers`](TraceLayer::trust_forwarded_headers):
//!   `client.address` from `Forwarded` / `X-Forwarded-For`.
//! - [`traceresponse_header`](TraceLayer::traceresponse_header),
//!   [`server_timing_header`](TraceLayer::server_timing_header): tell the
//!   caller (or the browser) the trace of its request.
//! - [`propagator`](TraceLayer::propagator): a propagator other than
//!   [`tracewire::propagation::global`].
//! - Client only: [`options`](TraceLayer::options) sets all the client
//!   options at once from a [`tracewire::http::ClientOptions`], the type
//!   `tracewire-reqwest`'s middleware takes too, so both clients can share
//!   one; [`propagation`](TraceLayer::propagation) turns context injection
//!   off for every request (as [`DisablePropagation`] does for one).
//! - [`legacy_http_attributes`](TraceLayer::legacy_http_attributes): also
//!   the pre-stable attribute names (`http.method`, `http.status_code`,
//!   `http.target`, `http.url`, `net.host.name`, `net.peer.name`); on by
//!   default when `OTEL_SEMCONV_STABILITY_OPT_IN` contains `http/dup`.
//!
//! - [`boxed`](TraceLayer#method.boxed): the same layer with its hooks
//!   behind `Arc<dyn …>`, so a function can return it as a
//!   [`BoxedServerLayer`] (or [`BoxedClientLayer`]) whatever the hooks are.
//!
//! Without axum, give the route template with an [`HttpRoute`] request
//! extension (or a [`SpanName`] hook), and the peer address with a
//! `SocketAddr` extension.
//!
//! # Features
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `axum` | yes | `http.route` and span names from axum's `MatchedPath`; `client.address` from `ConnectInfo<SocketAddr>` |
//! | `tonic` | no | `for_tonic()` on the gRPC presets (`Tonic` protocol): the request body handed on as `tonic::body::Body`, so `message_events(true)` counts request messages too |
//!
//! With `default-features = false` the crate depends on `http`, `http-body`
//! and tower's traits only, and works with plain hyper services.

mod client;
mod extensions;
mod grpc;
mod hooks;
mod layer;
mod messages;
mod protocol;
mod record;
mod semconv;
mod server;

pub use client::ClientFuture;
pub use extensions::HttpRoute;
pub use hooks::{
    BoxedHook, DefaultSpanName, Filter, LogOnRequest, LogOnResponse, OnRequest, OnResponse,
    SpanName,
};
pub use layer::{
    BoxedClientLayer, BoxedServerLayer, Client, Server, Trace, TraceLayer, TrustBoundary,
};
#[cfg(feature = "tonic")]
pub use protocol::Tonic;
pub use protocol::{Grpc, Http, Protocol};
pub use server::{ResponseBody, ServerFuture};
pub use tracewire::http::{DisablePropagation, ResendCount};

/// The former name of [`ServerFuture`] (the client's is [`ClientFuture`]).
#[deprecated(note = "renamed to `ServerFuture`, to match `ClientFuture`")]
pub type ResponseFuture<Fut, M> = ServerFuture<Fut, M>;

/// The former name of [`LogOnRequest`].
#[deprecated(note = "renamed to `LogOnRequest`: it logs, while the layer's default is `()`")]
pub type DefaultOnRequest = LogOnRequest;

/// The former name of [`LogOnResponse`].
#[deprecated(note = "renamed to `LogOnResponse`: it logs, while the layer's default is `()`")]
pub type DefaultOnResponse = LogOnResponse;

/// The span target, which `EnvFilter` directives can name.
pub(crate) const TARGET: &str = "tracewire_tower";

#[cfg(test)]
mod tests;
