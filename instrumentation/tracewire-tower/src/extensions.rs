//! Per-request facts that travel in `http::Extensions`. The client-side
//! switches (`DisablePropagation`, `ResendCount`) live in `tracewire::http`.

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
