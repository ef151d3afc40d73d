//! [`TraceLayer`], its two presets and their options, and the [`Trace`]
//! service it produces.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use http::HeaderName;
use tower_layer::Layer;
use tracewire::http::ClientOptions;
use tracewire::propagation::Propagator;

use crate::grpc::RpcOptions;
use crate::hooks::{BoxedHook, DefaultSpanName, Filter, OnRequest, OnResponse, SpanName};
use crate::protocol::{Grpc, Http};

/// A tower layer that traces HTTP requests: [`TraceLayer::server`] for
/// services that answer requests (axum, hyper), [`TraceLayer::client`] for
/// services that send them (hyper-util's `Client`, any tower HTTP client).
///
/// Options are builder methods on the layer; see [`Server`] and [`Client`]
/// for what each preset records.
#[derive(Clone, Debug)]
pub struct TraceLayer<M> {
    pub(crate) mode: M,
}

/// What the server layer does with the trace context a caller sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum TrustBoundary {
    /// Continue the caller's trace and follow its sampling decision (the
    /// default; right between your own services).
    #[default]
    Trust,
    /// Continue the caller's trace (same trace id, the caller's span as
    /// parent) but ignore its sampled flag: your sampler decides as for a
    /// new trace, so callers cannot force or suppress recording.
    IgnoreSampledFlag,
    /// Start a new trace and keep the caller's context only as a link on the
    /// server span; the caller's baggage is dropped too. For public edges.
    Restart,
}

/// The server preset's propagation and capture options (the client's are
/// a [`ClientOptions`]).
#[derive(Clone, Default)]
pub struct Common {
    pub(crate) propagator: Option<Arc<dyn Propagator>>,
    pub(crate) request_headers: Vec<HeaderName>,
    pub(crate) response_headers: Vec<HeaderName>,
    /// Also record the pre-stable attribute names (`http/dup`).
    pub(crate) legacy: bool,
    /// The gRPC-only options (older names, metadata, message events).
    pub(crate) rpc: RpcOptions,
}

impl Common {
    /// The defaults, with `legacy` from `OTEL_SEMCONV_STABILITY_OPT_IN`.
    pub(crate) fn from_env() -> Self {
        Common {
            legacy: tracewire::http::legacy_opt_in_from_env(),
            rpc: RpcOptions::from_env(),
            ..Common::default()
        }
    }

    pub(crate) fn propagator(&self) -> Arc<dyn Propagator> {
        self.propagator
            .clone()
            .unwrap_or_else(tracewire::propagation::global)
    }
}

impl fmt::Debug for Common {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Common")
            .field("propagator", &self.propagator)
            .field("request_headers", &self.request_headers)
            .field("response_headers", &self.response_headers)
            .field("legacy", &self.legacy)
            .field("rpc", &self.rpc)
            .finish()
    }
}

/// The server preset's options and hooks (see [`TraceLayer::server`]).
///
/// Type parameters are the hooks: the [filter](crate::Filter), the
/// [span name](crate::SpanName), [`OnRequest`](crate::OnRequest) and
/// [`OnResponse`](crate::OnResponse); `P` is the [protocol](crate::Protocol)
/// ([`Http`], or [`Grpc`] for [`TraceLayer::grpc_server`]).
#[derive(Clone, Debug)]
pub struct Server<F = (), N = DefaultSpanName, Req = (), Res = (), P = Http> {
    pub(crate) common: Common,
    pub(crate) trust: TrustBoundary,
    pub(crate) forwarded: bool,
    pub(crate) scheme: Option<Cow<'static, str>>,
    pub(crate) traceresponse: bool,
    pub(crate) server_timing: bool,
    pub(crate) filter: F,
    pub(crate) name: N,
    pub(crate) on_request: Req,
    pub(crate) on_response: Res,
    pub(crate) protocol: PhantomData<P>,
}

/// A server [`TraceLayer`] whose hooks are boxed, made by
/// [`TraceLayer::boxed`](TraceLayer#method.boxed): one type whatever the
/// hooks are, for a function that returns the layer. `ReqBody` and
/// `ResBody` are the request and response body types of the service it
/// wraps; `P` the [protocol](crate::Protocol).
pub type BoxedServerLayer<ReqBody, ResBody = ReqBody, P = Http> = TraceLayer<
    Server<
        BoxedHook<dyn Filter<ReqBody> + Send + Sync>,
        BoxedHook<dyn SpanName<ReqBody> + Send + Sync>,
        BoxedHook<dyn OnRequest<ReqBody> + Send + Sync>,
        BoxedHook<dyn OnResponse<ResBody> + Send + Sync>,
        P,
    >,
>;

/// A client [`TraceLayer`] whose hooks are boxed, made by
/// [`TraceLayer::boxed`](TraceLayer#method.boxed-1), as
/// [`BoxedServerLayer`] is for servers.
pub type BoxedClientLayer<ReqBody, ResBody = ReqBody, P = Http> = TraceLayer<
    Client<
        BoxedHook<dyn OnRequest<ReqBody> + Send + Sync>,
        BoxedHook<dyn OnResponse<ResBody> + Send + Sync>,
        P,
    >,
>;

/// The client preset's options and hooks (see [`TraceLayer::client`]).
///
/// The options are a [`ClientOptions`], the type `tracewire-reqwest`'s
/// middleware holds too; `P` is the [protocol](crate::Protocol) ([`Http`],
/// or [`Grpc`] for [`TraceLayer::grpc_client`]).
#[derive(Clone, Debug)]
pub struct Client<Req = (), Res = (), P = Http> {
    pub(crate) options: ClientOptions,
    /// The gRPC-only options (older names, metadata, message events).
    pub(crate) rpc: RpcOptions,
    pub(crate) on_request: Req,
    pub(crate) on_response: Res,
    pub(crate) protocol: PhantomData<P>,
}

impl TraceLayer<Server> {
    /// Traces a server: every request becomes a SERVER span that continues
    /// the caller's trace (read with [`tracewire::propagation::global`]
    /// unless [`propagator`](TraceLayer::propagator) says otherwise), named
    /// `{method} {route}` and carrying the HTTP server conventions.
    ///
    /// ```
    /// use axum::{Router, routing::get};
    /// use tracewire_tower::TraceLayer;
    ///
    /// let app: Router = Router::new()
    ///     .route("/users/{id}", get(|| async { "alice" }))
    ///     .layer(TraceLayer::server());
    /// # let _ = app;
    /// ```
    pub fn server() -> Self {
        TraceLayer {
            mode: Server::new(DefaultSpanName::new()),
        }
    }
}

impl<P> Server<(), DefaultSpanName, (), (), P> {
    /// The defaults of a server preset named by `name`.
    fn new(name: DefaultSpanName) -> Self {
        Server {
            common: Common::from_env(),
            trust: TrustBoundary::Trust,
            forwarded: false,
            scheme: None,
            traceresponse: false,
            server_timing: false,
            filter: (),
            name,
            on_request: (),
            on_response: (),
            protocol: PhantomData,
        }
    }
}

impl TraceLayer<Server<(), DefaultSpanName, (), (), Grpc>> {
    /// Traces a gRPC server (tonic's `Server::builder().layer(…)`): every
    /// call becomes a SERVER span that continues the caller's trace from
    /// the request metadata, named `{package.Service}/{Method}` and
    /// carrying the RPC conventions; it ends when the response stream
    /// ends. See [the crate docs](crate#grpc).
    ///
    /// The server options apply as for [`server`](TraceLayer::server),
    /// except that header capture (`request_headers`, `response_headers`)
    /// and the HTTP-only attributes are not recorded on gRPC spans: capture
    /// metadata with [`request_metadata`](Self::request_metadata) and
    /// [`response_metadata`](Self::response_metadata); count messages
    /// with [`message_events`](Self::message_events).
    pub fn grpc_server() -> Self {
        TraceLayer {
            mode: Server::new(DefaultSpanName::rpc()),
        }
    }
}

impl TraceLayer<Client<(), (), Grpc>> {
    /// Traces a gRPC client (a tonic `Channel` through
    /// `tower::ServiceBuilder`): every call becomes a CLIENT span (a child
    /// of the current span) whose context is written into the request
    /// metadata; it ends when the response stream ends or is dropped. See
    /// [the crate docs](crate#grpc).
    pub fn grpc_client() -> Self {
        TraceLayer {
            mode: Client::new(),
        }
    }
}

impl TraceLayer<Client> {
    /// Traces a client: every request becomes a CLIENT span (a child of the
    /// current span) whose context is written into the request's headers.
    ///
    /// ```
    /// use http_body_util::Empty;
    /// use hyper_util::client::legacy::Client;
    /// use hyper_util::rt::TokioExecutor;
    /// use tower::ServiceBuilder;
    /// use tracewire_tower::TraceLayer;
    ///
    /// let client = ServiceBuilder::new()
    ///     .layer(TraceLayer::client())
    ///     .service(Client::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>());
    /// # let _ = client;
    /// ```
    pub fn client() -> Self {
        TraceLayer {
            mode: Client::new(),
        }
    }
}

impl<P> Client<(), (), P> {
    /// The defaults of a client preset.
    fn new() -> Self {
        Client {
            options: ClientOptions::new(),
            rpc: RpcOptions::from_env(),
            on_request: (),
            on_response: (),
            protocol: PhantomData,
        }
    }
}

/// The server's propagation and capture options.
macro_rules! common_options {
    () => {
        /// The propagator that reads (server) or writes (client) the trace
        /// context, instead of the process-wide
        /// [`global`](tracewire::propagation::global) one.
        pub fn propagator(mut self, propagator: impl Propagator + 'static) -> Self {
            self.mode.common.propagator = Some(Arc::new(propagator));
            self
        }

        /// Request headers recorded as `http.request.header.<name>` attributes
        /// (lowercase name; a string array, one element per header line). Only these
        /// headers are read: keep secrets such as `authorization` out.
        pub fn request_headers<I>(mut self, names: I) -> Self
        where
            I: IntoIterator<Item = HeaderName>,
        {
            self.mode.common.request_headers = names.into_iter().collect();
            self
        }

        /// Response headers recorded as `http.response.header.<name>`
        /// attributes, as for [`request_headers`](TraceLayer::request_headers).
        pub fn response_headers<I>(mut self, names: I) -> Self
        where
            I: IntoIterator<Item = HeaderName>,
        {
            self.mode.common.response_headers = names.into_iter().collect();
            self
        }

        /// Whether spans also carry the pre-stable HTTP attribute names
        /// (`http.method`, `http.status_code`, `http.target` and
        /// `net.host.name` on servers, `http.url` and `net.peer.name` on
        /// clients) for backends that still query them. Default: on when
        /// `OTEL_SEMCONV_STABILITY_OPT_IN` contains `http/dup`, as the
        /// conventions' migration plan says.
        pub fn legacy_http_attributes(mut self, enabled: bool) -> Self {
            self.mode.common.legacy = enabled;
            self
        }

        /// Whether gRPC spans also carry the older RPC attribute names
        /// (`rpc.system`, `rpc.service`, integer `rpc.grpc.status_code`).
        /// Default: on when `OTEL_SEMCONV_STABILITY_OPT_IN` contains
        /// `rpc/dup`. The older `rpc.method` (the method alone) shares its
        /// name with the stable one: the stable, fully qualified value is
        /// kept.
        pub fn legacy_rpc_attributes(mut self, enabled: bool) -> Self {
            self.mode.common.rpc.legacy = enabled;
            self
        }
    };
}

impl<F, N, Req, Res, P> TraceLayer<Server<F, N, Req, Res, P>> {
    common_options!();

    /// Traces only the requests `filter` accepts (see [`Filter`](crate::Filter));
    /// the others pass through without a span.
    pub fn filter<F2>(self, filter: F2) -> TraceLayer<Server<F2, N, Req, Res, P>> {
        self.map_hooks(|(_, name, on_request, on_response)| (filter, name, on_request, on_response))
    }

    /// Names spans with `name` (see [`SpanName`](crate::SpanName)).
    pub fn span_name<N2>(self, name: N2) -> TraceLayer<Server<F, N2, Req, Res, P>> {
        self.map_hooks(|(filter, _, on_request, on_response)| {
            (filter, name, on_request, on_response)
        })
    }

    /// Runs `hook` when a request starts (see [`OnRequest`](crate::OnRequest)).
    pub fn on_request<Req2>(self, hook: Req2) -> TraceLayer<Server<F, N, Req2, Res, P>> {
        self.map_hooks(|(filter, name, _, on_response)| (filter, name, hook, on_response))
    }

    /// Runs `hook` when the response head is ready (see
    /// [`OnResponse`](crate::OnResponse)).
    pub fn on_response<Res2>(self, hook: Res2) -> TraceLayer<Server<F, N, Req, Res2, P>> {
        self.map_hooks(|(filter, name, on_request, _)| (filter, name, on_request, hook))
    }

    /// The same layer with its hooks boxed: a type that a function
    /// signature can name whatever the hooks are (closures included), at
    /// the cost of a dynamic call per hook. `ReqBody` and `ResBody` are the
    /// request and response body types of the service the layer wraps
    /// (`axum::body::Body` for both in axum).
    ///
    /// ```
    /// use axum::{Router, body::Body, routing::get};
    /// use tracewire_tower::{BoxedServerLayer, LogOnResponse, TraceLayer};
    ///
    /// /// The tracing every service of the application shares.
    /// fn tracing_layer() -> BoxedServerLayer<Body> {
    ///     TraceLayer::server()
    ///         .filter(|req: &http::Request<Body>| req.uri().path() != "/health")
    ///         .on_response(LogOnResponse::new())
    ///         .boxed()
    /// }
    ///
    /// let app: Router = Router::new()
    ///     .route("/users/{id}", get(|| async { "alice" }))
    ///     .layer(tracing_layer());
    /// # let _ = app;
    /// ```
    pub fn boxed<ReqBody, ResBody>(self) -> BoxedServerLayer<ReqBody, ResBody, P>
    where
        F: Filter<ReqBody> + Send + Sync + 'static,
        N: SpanName<ReqBody> + Send + Sync + 'static,
        Req: OnRequest<ReqBody> + Send + Sync + 'static,
        Res: OnResponse<ResBody> + Send + Sync + 'static,
    {
        self.map_hooks(|(filter, name, on_request, on_response)| {
            (
                BoxedHook::new(Arc::new(filter) as Arc<dyn Filter<ReqBody> + Send + Sync>),
                BoxedHook::new(Arc::new(name) as Arc<dyn SpanName<ReqBody> + Send + Sync>),
                BoxedHook::new(Arc::new(on_request) as Arc<dyn OnRequest<ReqBody> + Send + Sync>),
                BoxedHook::new(Arc::new(on_response) as Arc<dyn OnResponse<ResBody> + Send + Sync>),
            )
        })
    }

    /// The same options with the hooks `f` makes of the current ones.
    fn map_hooks<F2, N2, Req2, Res2>(
        self,
        f: impl FnOnce((F, N, Req, Res)) -> (F2, N2, Req2, Res2),
    ) -> TraceLayer<Server<F2, N2, Req2, Res2, P>> {
        let m = self.mode;
        let (filter, name, on_request, on_response) =
            f((m.filter, m.name, m.on_request, m.on_response));
        TraceLayer {
            mode: Server {
                common: m.common,
                trust: m.trust,
                forwarded: m.forwarded,
                scheme: m.scheme,
                traceresponse: m.traceresponse,
                server_timing: m.server_timing,
                filter,
                name,
                on_request,
                on_response,
                protocol: PhantomData,
            },
        }
    }

    /// How much to trust the caller's trace context (default:
    /// [`TrustBoundary::Trust`]).
    pub fn trust_boundary(mut self, trust: TrustBoundary) -> Self {
        self.mode.trust = trust;
        self
    }

    /// Whether `client.address` and `url.scheme` may come from `Forwarded`
    /// and `X-Forwarded-For` / `X-Forwarded-Proto` (default: no). Turn it on
    /// only behind a proxy that sets them, since any client can send them.
    pub fn trust_forwarded_headers(mut self, trust: bool) -> Self {
        self.mode.forwarded = trust;
        self
    }

    /// The `url.scheme` of requests whose URI does not say (HTTP/1
    /// requests in origin form); default `http`. Set `https` on a server
    /// that terminates TLS itself.
    pub fn scheme(mut self, scheme: impl Into<Cow<'static, str>>) -> Self {
        self.mode.scheme = Some(scheme.into());
        self
    }

    /// Adds a `traceresponse` header (W3C Trace Context Level 2 draft:
    /// `00-{trace-id}-{server-span-id}-{flags}`) to every traced response,
    /// so callers can find the trace of their request.
    pub fn traceresponse_header(mut self, enabled: bool) -> Self {
        self.mode.traceresponse = enabled;
        self
    }

    /// Adds `Server-Timing: traceparent;desc="00-…"` to every traced
    /// response, which browsers expose to page scripts (real-user
    /// monitoring agents read it to join the page load to the trace).
    pub fn server_timing_header(mut self, enabled: bool) -> Self {
        self.mode.server_timing = enabled;
        self
    }
}

/// The gRPC-only options of both presets.
macro_rules! rpc_options {
    ($($rpc:ident).+) => {
        /// Request metadata keys recorded as `rpc.request.metadata.<key>`
        /// attributes (lowercase key; a string array, one element per
        /// value), as the RPC conventions' opt-in capture asks. Only these
        /// keys are read: keep secrets such as `authorization` out. Binary
        /// keys (ending in `-bin`) are left out of the list: their values
        /// are base64 of arbitrary bytes, not text. Values that are not
        /// visible ASCII are skipped.
        pub fn request_metadata<I>(mut self, keys: I) -> Self
        where
            I: IntoIterator<Item = HeaderName>,
        {
            self.mode.$($rpc).+.request_metadata = crate::grpc::metadata_keys(keys);
            self
        }

        /// Response metadata keys recorded as
        /// `rpc.response.metadata.<key>` attributes, as for
        /// [`request_metadata`](Self::request_metadata). They are read from
        /// the response headers (the initial metadata, or all of a
        /// trailers-only response's metadata) and from the trailers that
        /// end the stream (trailing metadata, next to `grpc-status`): a key
        /// in both gets the header values first, then the trailer values,
        /// in one string array.
        pub fn response_metadata<I>(mut self, keys: I) -> Self
        where
            I: IntoIterator<Item = HeaderName>,
        {
            self.mode.$($rpc).+.response_metadata = crate::grpc::metadata_keys(keys).into();
            self
        }

        /// Whether the messages of the response stream become `rpc.message`
        /// events (default: off): `rpc.message.type` (`SENT` on the
        /// server, `RECEIVED` on the client), `rpc.message.id` (1, 2, … per
        /// stream) and the size on the wire, `rpc.message.compressed_size`
        /// for a compressed message, else `rpc.message.uncompressed_size`.
        /// Messages are counted from the 5-byte gRPC framing of the body's
        /// data frames, whatever their chunking. Request messages (server
        /// `RECEIVED`, client `SENT`, with their own ids) are recorded
        /// only by a layer made with `for_tonic()` (feature `tonic`),
        /// which hands the request body on as a `tonic::body::Body`; the
        /// plain gRPC presets hand it on unchanged. Each event counts
        /// against the span's event limit (128 by default).
        pub fn message_events(mut self, enabled: bool) -> Self {
            self.mode.$($rpc).+.message_events = enabled;
            self
        }
    };
}

impl<F, N, Req, Res> TraceLayer<Server<F, N, Req, Res, Grpc>> {
    rpc_options!(common.rpc);

    /// The same server layer for tonic's `Server::builder().layer(…)`
    /// (feature `tonic`): it hands the request body on as a
    /// [`tonic::body::Body`] wrapping a counting body, so
    /// [`message_events(true)`](Self::message_events) also records the
    /// messages the server receives (`RECEIVED`, with their own
    /// `rpc.message.id` sequence). The inner service must take
    /// `http::Request<tonic::body::Body>`, as tonic's routes do.
    ///
    /// ```
    /// use tracewire_tower::TraceLayer;
    ///
    /// let layer = TraceLayer::grpc_server().message_events(true).for_tonic();
    /// // Server::builder().layer(layer).add_service(…)
    /// # let _ = layer;
    /// ```
    #[cfg(feature = "tonic")]
    pub fn for_tonic(self) -> TraceLayer<Server<F, N, Req, Res, crate::protocol::Tonic>> {
        let m = self.mode;
        TraceLayer {
            mode: Server {
                common: m.common,
                trust: m.trust,
                forwarded: m.forwarded,
                scheme: m.scheme,
                traceresponse: m.traceresponse,
                server_timing: m.server_timing,
                filter: m.filter,
                name: m.name,
                on_request: m.on_request,
                on_response: m.on_response,
                protocol: PhantomData,
            },
        }
    }
}

impl<Req, Res> TraceLayer<Client<Req, Res, Grpc>> {
    rpc_options!(rpc);

    /// The same client layer for a tonic `Channel` (feature `tonic`):
    /// it hands the request body on as a [`tonic::body::Body`] wrapping
    /// a counting body, so [`message_events(true)`](Self::message_events)
    /// also records the messages the client sends (`SENT`, with their own
    /// `rpc.message.id` sequence). The inner service must take
    /// `http::Request<tonic::body::Body>`, as `Channel` does.
    #[cfg(feature = "tonic")]
    pub fn for_tonic(self) -> TraceLayer<Client<Req, Res, crate::protocol::Tonic>> {
        let m = self.mode;
        TraceLayer {
            mode: Client {
                options: m.options,
                rpc: m.rpc,
                on_request: m.on_request,
                on_response: m.on_response,
                protocol: PhantomData,
            },
        }
    }
}

#[cfg(feature = "tonic")]
impl<F, N, Req, Res> TraceLayer<Server<F, N, Req, Res, crate::protocol::Tonic>> {
    rpc_options!(common.rpc);
}

#[cfg(feature = "tonic")]
impl<Req, Res> TraceLayer<Client<Req, Res, crate::protocol::Tonic>> {
    rpc_options!(rpc);
}

impl<Req, Res, P> TraceLayer<Client<Req, Res, P>> {
    /// Replaces all the client options with `options`: the way to give
    /// this layer and `tracewire-reqwest`'s middleware the same ones.
    ///
    /// ```
    /// use http::HeaderName;
    /// use tracewire::http::ClientOptions;
    /// use tracewire_tower::TraceLayer;
    ///
    /// let options = ClientOptions::new().request_headers([HeaderName::from_static("x-tenant")]);
    /// let layer = TraceLayer::client().options(options.clone());
    /// # let _ = layer;
    /// ```
    pub fn options(mut self, options: ClientOptions) -> Self {
        self.mode.options = options;
        self
    }

    /// The propagator that writes the trace context, instead of the
    /// process-wide [`global`](tracewire::propagation::global) one (see
    /// [`ClientOptions::propagator`]).
    pub fn propagator(mut self, propagator: impl Propagator + 'static) -> Self {
        self.mode.options = self.mode.options.propagator(propagator);
        self
    }

    /// Whether the trace context is written into requests at all (default:
    /// yes; see [`ClientOptions::propagation`]).
    pub fn propagation(mut self, enabled: bool) -> Self {
        self.mode.options = self.mode.options.propagation(enabled);
        self
    }

    /// Request headers recorded as `http.request.header.<name>` attributes
    /// (see [`ClientOptions::request_headers`]). Only these headers are
    /// read: keep secrets such as `authorization` out.
    pub fn request_headers<I>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.mode.options = self.mode.options.request_headers(names);
        self
    }

    /// Response headers recorded as `http.response.header.<name>`
    /// attributes (see [`ClientOptions::response_headers`]).
    pub fn response_headers<I>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = HeaderName>,
    {
        self.mode.options = self.mode.options.response_headers(names);
        self
    }

    /// Whether spans also carry the pre-stable HTTP attribute names
    /// (`http.method`, `http.url`, `net.peer.name`, `http.status_code`; see
    /// [`ClientOptions::legacy_http_attributes`]). Default: on when
    /// `OTEL_SEMCONV_STABILITY_OPT_IN` contains `http/dup`.
    pub fn legacy_http_attributes(mut self, enabled: bool) -> Self {
        self.mode.options = self.mode.options.legacy_http_attributes(enabled);
        self
    }

    /// Whether gRPC spans also carry the older RPC attribute names
    /// (`rpc.system`, `rpc.service`, integer `rpc.grpc.status_code`).
    /// Default: on when `OTEL_SEMCONV_STABILITY_OPT_IN` contains `rpc/dup`.
    /// The older `rpc.method` (the method alone) shares its name with the
    /// stable one: the stable, fully qualified value is kept.
    pub fn legacy_rpc_attributes(mut self, enabled: bool) -> Self {
        self.mode.rpc.legacy = enabled;
        self
    }

    /// Runs `hook` before each request is sent, inside its span (see
    /// [`OnRequest`](crate::OnRequest)).
    pub fn on_request<Req2>(self, hook: Req2) -> TraceLayer<Client<Req2, Res, P>> {
        self.map_hooks(|(_, on_response)| (hook, on_response))
    }

    /// Runs `hook` when the response head arrives (see
    /// [`OnResponse`](crate::OnResponse)).
    pub fn on_response<Res2>(self, hook: Res2) -> TraceLayer<Client<Req, Res2, P>> {
        self.map_hooks(|(on_request, _)| (on_request, hook))
    }

    /// The same layer with its hooks boxed: a type that a function
    /// signature can name whatever the hooks are (closures included), at
    /// the cost of a dynamic call per hook. See
    /// [`TraceLayer::<Server>::boxed`](TraceLayer#method.boxed).
    pub fn boxed<ReqBody, ResBody>(self) -> BoxedClientLayer<ReqBody, ResBody, P>
    where
        Req: OnRequest<ReqBody> + Send + Sync + 'static,
        Res: OnResponse<ResBody> + Send + Sync + 'static,
    {
        self.map_hooks(|(on_request, on_response)| {
            (
                BoxedHook::new(Arc::new(on_request) as Arc<dyn OnRequest<ReqBody> + Send + Sync>),
                BoxedHook::new(Arc::new(on_response) as Arc<dyn OnResponse<ResBody> + Send + Sync>),
            )
        })
    }

    /// The same options with the hooks `f` makes of the current ones.
    fn map_hooks<Req2, Res2>(
        self,
        f: impl FnOnce((Req, Res)) -> (Req2, Res2),
    ) -> TraceLayer<Client<Req2, Res2, P>> {
        let m = self.mode;
        let (on_request, on_response) = f((m.on_request, m.on_response));
        TraceLayer {
            mode: Client {
                options: m.options,
                rpc: m.rpc,
                on_request,
                on_response,
                protocol: PhantomData,
            },
        }
    }
}

impl<S, M: Clone> Layer<S> for TraceLayer<M> {
    type Service = Trace<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        Trace {
            inner,
            mode: Arc::new(self.mode.clone()),
        }
    }
}

/// The service [`TraceLayer`] wraps around another: traces each request
/// as a [`Server`] or a [`Client`].
pub struct Trace<S, M> {
    pub(crate) inner: S,
    pub(crate) mode: Arc<M>,
}

impl<S: Clone, M> Clone for Trace<S, M> {
    fn clone(&self) -> Self {
        Trace {
            inner: self.inner.clone(),
            mode: self.mode.clone(),
        }
    }
}

impl<S: fmt::Debug, M: fmt::Debug> fmt::Debug for Trace<S, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trace")
            .field("inner", &self.inner)
            .field("mode", &self.mode)
            .finish()
    }
}

impl<S, M> Trace<S, M> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}
