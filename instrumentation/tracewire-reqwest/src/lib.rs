//! Traces outgoing HTTP requests made with [`reqwest`] through
//! [`reqwest_middleware`]: every request becomes a CLIENT span (a child of
//! the current span), and `traceparent`, `tracestate` and `baggage` from it
//! are written into the request, so the server continues the trace.
//!
//! ```
//! use reqwest_middleware::ClientBuilder;
//! use tracewire_reqwest::TracingMiddleware;
//!
//! # async fn run() -> Result<(), reqwest_middleware::Error> {
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(TracingMiddleware::default())
//!     .build();
//! let response = client.get("http://inventory.internal/items/7").send().await?;
//! # let _ = response;
//! # Ok(())
//! # }
//! ```
//!
//! The span is named after the method (`GET`; `HTTP` for an unknown one)
//! and carries the OpenTelemetry HTTP client conventions:
//! `http.request.method` (`_OTHER` plus `http.request.method_original` for
//! unknown methods), `server.address`, `server.port`, `url.full` (user and
//! password replaced by `REDACTED:REDACTED`, values of `X-Amz-Signature`,
//! `X-Amz-Credential`, `X-Amz-Security-Token`, `sig` and `X-Goog-Signature`
//! replaced by `REDACTED`), `http.request.resend_count` on retries,
//! `http.response.status_code`, `network.protocol.version` and `error.type`.
//! Its status is Error for 4xx and 5xx responses and for transport errors;
//! a request dropped before its response arrives (cancelled, or timed out by
//! the caller's own `tokio::time::timeout`) ends the span without an error.
//! The span ends when the response head arrives. With
//! `OTEL_SEMCONV_STABILITY_OPT_IN=http/dup` (or
//! [`legacy_http_attributes`](TracingMiddleware::legacy_http_attributes))
//! the pre-stable names `http.method`, `http.url`, `net.peer.name` and
//! `http.status_code` are recorded too.
//!
//! # Retries
//!
//! With [`reqwest-retry`](https://docs.rs/reqwest-retry), add this
//! middleware **after** the retry middleware so that it runs once per
//! attempt: each attempt is its own span, and attempts after the first
//! carry `http.request.resend_count` (1, 2, …), as the conventions ask.
//!
//! ```
//! use reqwest_middleware::ClientBuilder;
//! use reqwest_retry::{RetryTransientMiddleware, policies::ExponentialBackoff};
//! use tracewire_reqwest::TracingMiddleware;
//!
//! let policy = ExponentialBackoff::builder().build_with_max_retries(3);
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(RetryTransientMiddleware::new_with_policy(policy))
//!     .with(TracingMiddleware::default()) // inside the retry loop: one span per attempt
//!     .build();
//! # let _ = client;
//! ```
//!
//! Placed before the retry middleware it sees the whole retry loop as one
//! request: one span, no resend count.
//!
//! # Per-request switches
//!
//! Put [`DisablePropagation`] in a request's extensions
//! (`RequestBuilder::with_extension`) to keep the trace headers out of a
//! call to a third party; the span is still recorded. [`ResendCount`] marks
//! a request your own code resends.
//!
//! ```
//! # async fn run(client: reqwest_middleware::ClientWithMiddleware) -> reqwest_middleware::Result<()> {
//! use tracewire_reqwest::DisablePropagation;
//!
//! client
//!     .get("https://api.partner.example/quote")
//!     .with_extension(DisablePropagation)
//!     .send()
//!     .await?;
//! # Ok(())
//! # }
//! ```
//!
//! Both are the types of [`tracewire::http`], re-exported: the same marks
//! work with `tracewire-tower`'s client layer, and the attributes, the
//! redaction of `url.full` and the status rules are the ones that module
//! gives every tracewire HTTP client.
//!
//! # Features
//!
//! This crate has no features of its own; TLS and the other reqwest options
//! are chosen on your `reqwest` dependency.

use std::fmt;
use std::sync::Arc;

use http::{Extensions, HeaderName};
use reqwest::{Request, Response, Url};
use reqwest_middleware::{Middleware, Next, Result};
use tracewire::http::{
    ClientRequest, RedactedUrl, inject_context, record_client_response, record_error,
    record_request_headers, record_response_headers,
};
use tracewire::propagation::Propagator;
use tracing::Instrument as _;
use tracing::Span;

pub use tracewire::http::{DisablePropagation, ResendCount};

/// The span target, which `EnvFilter` directives can name.
const TARGET: &str = "tracewire_reqwest";

/// A [`Middleware`] that traces each request it sees as a CLIENT span and
/// propagates its context in the request's headers.
///
/// `TracingMiddleware::default()` uses the process-wide propagator
/// ([`tracewire::propagation::global`]) and records no header.
#[derive(Clone)]
pub struct TracingMiddleware {
    propagator: Option<Arc<dyn Propagator>>,
    request_headers: Vec<HeaderName>,
    response_headers: Vec<HeaderName>,
    legacy: bool,
}

impl Default for TracingMiddleware {
    fn default() -> Self {
        TracingMiddleware {
            propagator: None,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            legacy: tracewire::http::legacy_opt_in_from_env(),
        }
    }
}

impl fmt::Debug for TracingMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracingMiddleware")
            .field("propagator", &self.propagator)
            .field("request_headers", &self.request_headers)
            .field("response_headers", &self.response_headers)
            .field("legacy", &self.legacy)
            .finish()
    }
}

impl TracingMiddleware {
    /// The default middleware.
    pub fn new() -> Self {
        Self::default()
    }

    /// Injects with `propagator` instead of the process-wide one.
    pub fn propagator(mut self, propagator: impl Propagator + 'static) -> Self {
        self.propagator = Some(Arc::new(propagator));
        self
    }

    /// Request headers recorded as `http.request.header.<name>` (a string
    /// array, one element per header line). Only these are read: keep secrets out.
    pub fn request_headers<I: IntoIterator<Item = HeaderName>>(mut self, names: I) -> Self {
        self.request_headers = names.into_iter().collect();
        self
    }

    /// Response headers recorded as `http.response.header.<name>`.
    pub fn response_headers<I: IntoIterator<Item = HeaderName>>(mut self, names: I) -> Self {
        self.response_headers = names.into_iter().collect();
        self
    }

    /// Whether spans also carry the pre-stable attribute names
    /// (`http.method`, `http.url`, `net.peer.name`, `http.status_code`).
    /// Default: on when `OTEL_SEMCONV_STABILITY_OPT_IN` contains
    /// `http/dup`.
    pub fn legacy_http_attributes(mut self, enabled: bool) -> Self {
        self.legacy = enabled;
        self
    }

    fn span(&self, request: &mut Request, resend: Option<u32>, propagate: bool) -> Span {
        let url = request.url();
        let span = tracewire::http_client_span!(
            target: TARGET,
            ClientRequest::from_parts(
                request.method(),
                redacted_url(url),
                url.host_str(),
                url.port_or_known_default(),
            )
            .with_resend_count(resend)
            .with_legacy_attributes(self.legacy),
        );
        if propagate {
            let propagator = self
                .propagator
                .clone()
                .unwrap_or_else(tracewire::propagation::global);
            inject_context(&span, &*propagator, request.headers_mut());
        }
        record_request_headers(&span, &self.request_headers, request.headers());
        span
    }

    fn record(&self, span: &Span, result: &Result<Response>) {
        match result {
            Ok(response) => {
                record_client_response(span, response.status(), response.version(), self.legacy);
                record_response_headers(span, &self.response_headers, response.headers());
            }
            Err(error) => record_error(span, error_type(error), Some(error)),
        }
    }
}

/// Counts the attempts of one request: the retry middleware passes the same
/// extensions to every attempt.
#[derive(Clone, Copy, Debug)]
struct Attempts(u32);

/// The resend count of this attempt: an explicit [`ResendCount`], else how
/// many times this middleware already saw the request's extensions.
fn resend_count(extensions: &mut Extensions) -> Option<u32> {
    if let Some(ResendCount(n)) = extensions.get::<ResendCount>() {
        return (*n > 0).then_some(*n);
    }
    match extensions.get_mut::<Attempts>() {
        Some(attempts) => {
            attempts.0 = attempts.0.saturating_add(1);
            Some(attempts.0)
        }
        None => {
            extensions.insert(Attempts(0));
            None
        }
    }
}

#[async_trait::async_trait]
impl Middleware for TracingMiddleware {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response> {
        let resend = resend_count(extensions);
        let propagate = !DisablePropagation::is_set(extensions);
        let span = self.span(&mut request, resend, propagate);
        let result = next.run(request, extensions).instrument(span.clone()).await;
        self.record(&span, &result);
        result
    }
}

/// A low-cardinality `error.type` for a failed request.
fn error_type(error: &reqwest_middleware::Error) -> &'static str {
    match error {
        reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => "timeout",
        reqwest_middleware::Error::Reqwest(e) if e.is_connect() => "connect",
        reqwest_middleware::Error::Reqwest(e) if e.is_redirect() => "redirect",
        reqwest_middleware::Error::Reqwest(e) if e.is_body() => "body",
        reqwest_middleware::Error::Reqwest(e) if e.is_request() => "request",
        reqwest_middleware::Error::Reqwest(_) => "reqwest::Error",
        reqwest_middleware::Error::Middleware(_) => "middleware",
    }
}

/// `url.full` of `url`: its parts as they are written (the fragment is
/// never sent), redacted when a recorded span formats it.
fn redacted_url(url: &Url) -> RedactedUrl<'_> {
    RedactedUrl::from_parts(
        Some(url.scheme()),
        url.host_str().map(|_| url.authority()),
        url.path(),
        url.query(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_full_is_redacted() {
        let url = Url::parse(
            "https://user:secret@files.example:8443/a/b?X-Amz-Signature=abc&keep=1&sig=zz#frag",
        )
        .unwrap();
        assert_eq!(
            redacted_url(&url).to_string(),
            "https://REDACTED:REDACTED@files.example:8443/a/b?X-Amz-Signature=REDACTED&keep=1&sig=REDACTED"
        );
        let plain = Url::parse("http://[::1]:3000/users?id=7").unwrap();
        assert_eq!(
            redacted_url(&plain).to_string(),
            "http://[::1]:3000/users?id=7"
        );
    }

    #[test]
    fn attempts_are_counted_per_request() {
        let mut extensions = Extensions::new();
        assert_eq!(resend_count(&mut extensions), None);
        assert_eq!(resend_count(&mut extensions), Some(1));
        assert_eq!(resend_count(&mut extensions), Some(2));
        let mut explicit = Extensions::new();
        explicit.insert(ResendCount(4));
        assert_eq!(resend_count(&mut explicit), Some(4));
        explicit.insert(ResendCount(0));
        assert_eq!(resend_count(&mut explicit), None);
    }
}
