//! Customization points: which requests are traced, what the span is
//! called, and what is added when the request starts and when its response
//! arrives.
//!
//! Each is a trait with a blanket impl for closures, a `()` no-op (the
//! layer's default, except for [`SpanName`]: [`DefaultSpanName`]) and,
//! for the request and response hooks, a struct that logs an event
//! ([`LogOnRequest`], [`LogOnResponse`]). [`BoxedHook`] erases any of them.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use tracing::{Level, Span};

use tracewire::http::method_for_span_name;

/// Decides whether a request is traced. A request it rejects goes straight
/// to the inner service: no span is created, no header is read.
///
/// `()` traces everything; a closure `Fn(&Request<B>) -> bool` traces the
/// requests it returns `true` for.
///
/// ```
/// use tracewire_tower::TraceLayer;
///
/// let layer = TraceLayer::server()
///     .filter(|req: &http::Request<axum::body::Body>| req.uri().path() != "/health");
/// # let _ = layer;
/// ```
pub trait Filter<B> {
    /// Whether `request` gets a span.
    fn trace(&self, request: &Request<B>) -> bool;
}

impl<B> Filter<B> for () {
    fn trace(&self, _: &Request<B>) -> bool {
        true
    }
}

impl<B, F> Filter<B> for F
where
    F: Fn(&Request<B>) -> bool,
{
    fn trace(&self, request: &Request<B>) -> bool {
        self(request)
    }
}

/// Names the span of a request. `route` is the route template when one is
/// known (axum's `MatchedPath`, or an [`HttpRoute`](crate::HttpRoute)
/// extension).
///
/// The name is only computed for spans that are recorded. Keep it
/// low-cardinality: never put the raw path or ids in it.
///
/// A closure `Fn(&Request<B>, Option<&str>) -> impl Into<Cow<'static, str>>`
/// is a `SpanName`.
///
/// ```
/// use tracewire_tower::TraceLayer;
///
/// let layer = TraceLayer::server().span_name(
///     |req: &http::Request<axum::body::Body>, route: Option<&str>| {
///         format!("{} {}", req.method(), route.unwrap_or("(unmatched)"))
///     },
/// );
/// # let _ = layer;
/// ```
pub trait SpanName<B> {
    /// The span name for `request`.
    fn span_name(&self, request: &Request<B>, route: Option<&str>) -> Cow<'static, str>;

    /// Writes the span name for `request` into `f` (how the layer reads
    /// it): [`span_name`](SpanName::span_name) written out, unless an
    /// implementation can write the name without building it first.
    fn write_span_name(
        &self,
        request: &Request<B>,
        route: Option<&str>,
        f: &mut fmt::Formatter<'_>,
    ) -> fmt::Result {
        f.write_str(&self.span_name(request, route))
    }
}

/// The conventional name: `{method} {route}` when the route is known, else
/// `{method}`; an unknown method is written `HTTP`.
///
/// In the gRPC preset ([`TraceLayer::grpc_server`](crate::TraceLayer::grpc_server))
/// the `route` is the fully qualified method (`package.Service/Method`),
/// and the default name is that route, or `_OTHER` for a path that names
/// no method.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultSpanName {
    /// The RPC naming: the route alone.
    rpc: bool,
}

impl DefaultSpanName {
    /// The conventional naming.
    pub const fn new() -> Self {
        DefaultSpanName { rpc: false }
    }

    /// The RPC naming (the gRPC preset's default).
    pub(crate) const fn rpc() -> Self {
        DefaultSpanName { rpc: true }
    }
}

impl<B> SpanName<B> for DefaultSpanName {
    fn span_name(&self, request: &Request<B>, route: Option<&str>) -> Cow<'static, str> {
        if self.rpc {
            return Cow::Owned(route.unwrap_or("_OTHER").to_owned());
        }
        let method = method_for_span_name(request.method());
        match route {
            Some(route) => Cow::Owned(format!("{method} {route}")),
            None => Cow::Borrowed(method),
        }
    }

    fn write_span_name(
        &self,
        request: &Request<B>,
        route: Option<&str>,
        f: &mut fmt::Formatter<'_>,
    ) -> fmt::Result {
        if self.rpc {
            return f.write_str(route.unwrap_or("_OTHER"));
        }
        f.write_str(method_for_span_name(request.method()))?;
        if let Some(route) = route {
            f.write_str(" ")?;
            f.write_str(route)?;
        }
        Ok(())
    }
}

impl<B, F, S> SpanName<B> for F
where
    F: Fn(&Request<B>, Option<&str>) -> S,
    S: Into<Cow<'static, str>>,
{
    fn span_name(&self, request: &Request<B>, route: Option<&str>) -> Cow<'static, str> {
        self(request, route).into()
    }
}

/// Formats a span name lazily: the hook runs only when a subscriber reads
/// the field (the span is recorded).
pub(crate) struct LazyName<'a, N, B> {
    pub(crate) hook: &'a N,
    pub(crate) request: &'a Request<B>,
    pub(crate) route: Option<&'a str>,
}

impl<N: SpanName<B>, B> fmt::Display for LazyName<'_, N, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.hook.write_span_name(self.request, self.route, f)
    }
}

/// Runs when a request starts, after its span is created and before the
/// inner service is called, inside the span. Use it to add attributes
/// (`span.record` for fields, [`tracewire::SpanExt::set_attribute`] for
/// others).
///
/// `()` does nothing; [`LogOnRequest`] logs an event; a closure
/// `Fn(&Request<B>, &Span)` is an `OnRequest`.
///
/// ```
/// use tracewire::SpanExt as _;
/// use tracewire_tower::TraceLayer;
///
/// let layer = TraceLayer::server().on_request(
///     |req: &http::Request<axum::body::Body>, span: &tracing::Span| {
///         if let Some(tenant) = req.headers().get("x-tenant").and_then(|v| v.to_str().ok()) {
///             span.set_attribute("app.tenant", tenant.to_owned());
///         }
///     },
/// );
/// # let _ = layer;
/// ```
pub trait OnRequest<B> {
    /// Called with the request and its span.
    fn on_request(&self, request: &Request<B>, span: &Span);
}

impl<B> OnRequest<B> for () {
    fn on_request(&self, _: &Request<B>, _: &Span) {}
}

impl<B, F> OnRequest<B> for F
where
    F: Fn(&Request<B>, &Span),
{
    fn on_request(&self, request: &Request<B>, span: &Span) {
        self(request, span);
    }
}

/// Runs when the response head arrives (before the body is sent), inside
/// the span, with the time since the request started.
///
/// `()` does nothing; [`LogOnResponse`] logs an event; a closure
/// `Fn(&Response<B>, Duration, &Span)` is an `OnResponse`.
pub trait OnResponse<B> {
    /// Called with the response head, the latency and the span.
    fn on_response(&self, response: &Response<B>, latency: Duration, span: &Span);
}

impl<B> OnResponse<B> for () {
    fn on_response(&self, _: &Response<B>, _: Duration, _: &Span) {}
}

impl<B, F> OnResponse<B> for F
where
    F: Fn(&Response<B>, Duration, &Span),
{
    fn on_response(&self, response: &Response<B>, latency: Duration, span: &Span) {
        self(response, latency, span);
    }
}

macro_rules! event_at {
    ($level:expr, $($rest:tt)+) => {
        match $level {
            Level::ERROR => tracing::error!($($rest)+),
            Level::WARN => tracing::warn!($($rest)+),
            Level::INFO => tracing::info!($($rest)+),
            Level::DEBUG => tracing::debug!($($rest)+),
            Level::TRACE => tracing::trace!($($rest)+),
        }
    };
}

/// Defines a hook that logs an event at a level (default `DEBUG`): the
/// struct and its constructors.
macro_rules! log_hook {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug)]
        pub struct $name {
            level: Level,
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl $name {
            /// Logs at `DEBUG`.
            pub const fn new() -> Self {
                $name {
                    level: Level::DEBUG,
                }
            }

            /// Logs at `level`.
            pub const fn level(mut self, level: Level) -> Self {
                self.level = level;
                self
            }
        }
    };
}

log_hook!(
    /// Logs `started processing request` at a level (default `DEBUG`): a
    /// log line that carries the trace id. Not the layer's default, which
    /// is `()` (nothing).
    LogOnRequest
);

log_hook!(
    /// Logs `finished processing request` with `latency_ms` and `status`
    /// at a level (default `DEBUG`). Not the layer's default, which is `()`
    /// (nothing).
    LogOnResponse
);

impl<B> OnRequest<B> for LogOnRequest {
    fn on_request(&self, _: &Request<B>, _: &Span) {
        event_at!(self.level, "started processing request");
    }
}

impl<B> OnResponse<B> for LogOnResponse {
    fn on_response(&self, response: &Response<B>, latency: Duration, _: &Span) {
        let latency_ms = latency.as_secs_f64() * 1000.0;
        let status = response.status().as_u16();
        event_at!(
            self.level,
            latency_ms,
            status,
            "finished processing request"
        );
    }
}

/// A hook behind an `Arc<dyn …>`: what [`TraceLayer::boxed`](crate::TraceLayer::boxed)
/// turns each hook into, so that a layer with custom hooks has a type a
/// function signature can name ([`BoxedServerLayer`](crate::BoxedServerLayer),
/// [`BoxedClientLayer`](crate::BoxedClientLayer)). `H` is `dyn Filter<B> +
/// Send + Sync` (or `SpanName`, `OnRequest`, `OnResponse`). Cloning it
/// clones the `Arc`.
pub struct BoxedHook<H: ?Sized>(Arc<H>);

impl<H: ?Sized> BoxedHook<H> {
    pub(crate) fn new(hook: Arc<H>) -> Self {
        BoxedHook(hook)
    }
}

impl<H: ?Sized> Clone for BoxedHook<H> {
    fn clone(&self) -> Self {
        BoxedHook(Arc::clone(&self.0))
    }
}

impl<H: ?Sized> fmt::Debug for BoxedHook<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BoxedHook(..)")
    }
}

impl<B> Filter<B> for BoxedHook<dyn Filter<B> + Send + Sync> {
    fn trace(&self, request: &Request<B>) -> bool {
        self.0.trace(request)
    }
}

impl<B> SpanName<B> for BoxedHook<dyn SpanName<B> + Send + Sync> {
    fn span_name(&self, request: &Request<B>, route: Option<&str>) -> Cow<'static, str> {
        self.0.span_name(request, route)
    }

    fn write_span_name(
        &self,
        request: &Request<B>,
        route: Option<&str>,
        f: &mut fmt::Formatter<'_>,
    ) -> fmt::Result {
        self.0.write_span_name(request, route, f)
    }
}

impl<B> OnRequest<B> for BoxedHook<dyn OnRequest<B> + Send + Sync> {
    fn on_request(&self, request: &Request<B>, span: &Span) {
        self.0.on_request(request, span);
    }
}

impl<B> OnResponse<B> for BoxedHook<dyn OnResponse<B> + Send + Sync> {
    fn on_response(&self, response: &Response<B>, latency: Duration, span: &Span) {
        self.0.on_response(response, latency, span);
    }
}

/// Calls `inner` with `request` inside `span`, after the
/// [`OnRequest`] hook (which sees the request as it came), its body
/// handed on through `body`: how both layers hand a request on.
pub(crate) fn call_in_span<S, B, B2, R>(
    inner: &mut S,
    on_request: &R,
    request: Request<B>,
    span: &Span,
    body: impl FnOnce(B) -> B2,
) -> S::Future
where
    S: tower_service::Service<Request<B2>>,
    R: OnRequest<B>,
{
    let _entered = span.enter();
    on_request.on_request(&request, span);
    inner.call(request.map(body))
}
