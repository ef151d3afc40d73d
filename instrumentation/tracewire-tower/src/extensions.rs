//! Per-request switches and facts that travel in `http::Extensions`.

use std::borrow::Cow;

/// The route template of a request (`/users/{id}`), for servers without
/// axum's `MatchedPath`: put it in the request's extensions before the
/// server layer sees the request, and it becomes `http.route` and part of
/// the span name. axum's `MatchedPath` wins when both are present.
///
/// ```
/// use tracewire_tower::HttpRoute;
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(HttpRoute::new("/users/{id}"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRoute(pub Cow<'static, str>);

impl HttpRoute {
    /// A route template.
    pub fn new(route: impl Into<Cow<'static, str>>) -> Self {
        HttpRoute(route.into())
    }

    /// The template.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Put in an outgoing request's extensions to keep the client layer (or
/// the reqwest middleware) from writing `traceparent`, `tracestate` and
/// `baggage` into it; the CLIENT span is still recorded. For calls to
/// third parties that must not learn your trace ids.
///
/// ```
/// use tracewire_tower::DisablePropagation;
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(DisablePropagation);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DisablePropagation;

/// Marks an outgoing request as a resend (a retry or redirect): its CLIENT
/// span gets `http.request.resend_count` with this value. The first attempt
/// carries no mark (or 0, which is not recorded).
///
/// ```
/// use tracewire_tower::ResendCount;
///
/// let mut retry = http::Request::new(());
/// retry.extensions_mut().insert(ResendCount(1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResendCount(pub u32);
