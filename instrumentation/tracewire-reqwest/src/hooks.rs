//! The request and response hooks, shaped as `tracewire-tower`'s client
//! hooks are (`tracewire_tower::{OnRequest, OnResponse}`), for reqwest's
//! own request and response types.

use std::time::Duration;

use reqwest::{Request, Response};
use tracing::Span;

/// Runs before each request is sent, after its span is created and the
/// context injected, inside the span. Use it to add attributes
/// (`span.record` for declared fields,
/// [`tracewire::SpanExt::set_attribute`] for others).
///
/// `()` does nothing; a closure `Fn(&reqwest::Request, &Span)` is an
/// `OnRequest`. The same shape as `tracewire_tower::OnRequest`, which
/// takes an `http::Request`.
///
/// ```
/// use tracewire::SpanExt as _;
/// use tracewire_reqwest::TracingMiddleware;
///
/// let middleware = TracingMiddleware::new().on_request(
///     |request: &reqwest::Request, span: &tracing::Span| {
///         span.set_attribute("app.path_depth", request.url().path_segments().map_or(0, |s| s.count()) as i64);
///     },
/// );
/// # let _ = middleware;
/// ```
pub trait OnRequest {
    /// Called with the request and its span.
    fn on_request(&self, request: &Request, span: &Span);
}

impl OnRequest for () {
    fn on_request(&self, _: &Request, _: &Span) {}
}

impl<F> OnRequest for F
where
    F: Fn(&Request, &Span),
{
    fn on_request(&self, request: &Request, span: &Span) {
        self(request, span);
    }
}

/// Runs when the response head arrives, after the status and the captured
/// headers are recorded, inside the span, with the time since the request
/// was handed on. Not called when the request fails.
///
/// `()` does nothing; a closure `Fn(&reqwest::Response, Duration, &Span)`
/// is an `OnResponse`. The same shape as `tracewire_tower::OnResponse`,
/// which takes an `http::Response`.
///
/// ```
/// use std::time::Duration;
/// use tracewire::SpanExt as _;
/// use tracewire_reqwest::TracingMiddleware;
///
/// let middleware = TracingMiddleware::new().on_response(
///     |response: &reqwest::Response, _: Duration, span: &tracing::Span| {
///         if let Some(region) = response.headers().get("x-region").and_then(|v| v.to_str().ok()) {
///             span.set_attribute("app.region", region.to_owned());
///         }
///     },
/// );
/// # let _ = middleware;
/// ```
pub trait OnResponse {
    /// Called with the response, the latency and the span.
    fn on_response(&self, response: &Response, latency: Duration, span: &Span);
}

impl OnResponse for () {
    fn on_response(&self, _: &Response, _: Duration, _: &Span) {}
}

impl<F> OnResponse for F
where
    F: Fn(&Response, Duration, &Span),
{
    fn on_response(&self, response: &Response, latency: Duration, span: &Span) {
        self(response, latency, span);
    }
}
