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
//! # Options and hooks
//!
//! The options (propagator, [`propagation`](TracingMiddleware::propagation)
//! on or off, captured request and response headers, pre-stable attribute
//! names) are a [`tracewire::http::ClientOptions`]: build one and give it
//! to this middleware with [`options`](TracingMiddleware::options) and to
//! `tracewire-tower`'s client layer with `TraceLayer::client().options(…)`,
//! and both trace alike. The builder methods of [`TracingMiddleware`] set
//! the same options one at a time.
//!
//! [`on_request`](TracingMiddleware::on_request) and
//! [`on_response`](TracingMiddleware::on_response) take hooks of the shape
//! of `tracewire-tower`'s client hooks ([`OnRequest`], [`OnResponse`]), over
//! `reqwest::Request` and `reqwest::Response`: closures
//! `Fn(&reqwest::Request, &Span)` and `Fn(&reqwest::Response, Duration, &Span)`
//! that add attributes to the request's span.
//!
//! # Features
//!
//! This crate has no features of its own; TLS and the other reqwest options
//! are chosen on your `reqwest` dependency.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use http::{Extensions, HeaderName};
use reqwest::{Request, Response, Url};
use reqwest_middleware::{Middleware, Next, Result};
use tracewire::error::record_error;
use tracewire::http::{ClientOptions, ClientRequest, RedactedUrl};
use tracewire::propagation::Propagator;
use tracing::Instrument as _;
use tracing::Span;

mod hooks;

pub use hooks::{OnRequest, OnResponse};
pub use tracewire::http::{DisablePropagation, ResendCount};

/// The span target, which `EnvFilter` directives can name.
const TARGET: &str = "tracewire_reqwest";

/// A [`Middleware`] that traces each request it sees as a CLIENT span and
/// propagates its context in the request's headers.
///
/// `TracingMiddleware::default()` uses the process-wide propagator
/// ([`tracewire::propagation::global`]) and records no header. Its options
/// are a [`ClientOptions`], the type `tracewire-tower`'s client layer holds
/// too, and its hooks ([`on_request`](Self::on_request),
/// [`on_response`](Self::on_response)) have the shape of that layer's.
///
/// ```
/// use std::time::Duration;
/// use http::HeaderName;
/// use tracewire::SpanExt as _;
/// use tracewire::http::ClientOptions;
/// use tracewire_reqwest::TracingMiddleware;
///
/// // One set of options for every HTTP client of the application.
/// let options = ClientOptions::new()
///     .request_headers([HeaderName::from_static("x-tenant")])
///     .legacy_http_attributes(true);
///
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(
///         TracingMiddleware::new()
///             .options(options.clone())
///             .on_response(|response: &reqwest::Response, _: Duration, span: &tracing::Span| {
///                 span.set_attribute("app.body_length", response.content_length().is_some());
///             }),
///     )
///     .build();
/// # let _ = client;
/// ```
#[derive(Clone)]
pub struct TracingMiddleware {
    options: ClientOptions,
    on_request: Option<Arc<dyn OnRequest + Send + Sync>>,
    on_response: Option<Arc<dyn OnResponse + Send + Sync>>,
}

impl Default for TracingMiddleware {
    fn default() -> Self {
        TracingMiddleware {
            options: ClientOptions::new(),
            on_request: None,
            on_response: None,
        }
    }
}

impl fmt::Debug for TracingMiddleware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TracingMiddleware")
            .field("options", &self.options)
            .field("on_request", &self.on_request.is_some())
            .field("on_response", &self.on_response.is_some())
            .finish()
    }
}

impl TracingMiddleware {
    /// The default middleware.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces all the options with `options`: the way to give this
    /// middleware and `tracewire-tower`'s client layer the same ones.
    pub fn options(mut self, options: ClientOptions) -> Self {
        self.options = options;
        self
    }

    /// Injects with `propagator` instead of the process-wide one (see
    /// [`ClientOptions::propagator`]).
    pub fn propagator(mut self, propagator: impl Propagator + 'static) -> Self {
        self.options = self.options.propagator(propagator);
        self
    }

    /// Whether the trace context is written into requests at all (default:
    /// yes; see [`ClientOptions::propagation`]).
    pub fn propagation(mut self, enabled: bool) -> Self {
        self.options = self.options.propagation(enabled);
        self
    }

    /// Request headers recorded as `http.request.header.<name>` (a string
    /// array, one element per header line). Only these are read: keep secrets out.
    pub fn request_headers<I: IntoIterator<Item = HeaderName>>(mut self, names: I) -> Self {
        self.options = self.options.request_headers(names);
        self
    }

    /// Response headers recorded as `http.response.header.<name>`.
    pub fn response_headers<I: IntoIterator<Item = HeaderName>>(mut self, names: I) -> Self {
        self.options = self.options.response_headers(names);
        self
    }

    /// Whether spans also carry the pre-stable attribute names
    /// (`http.method`, `http.url`, `net.peer.name`, `http.status_code`).
    /// Default: on when `OTEL_SEMCONV_STABILITY_OPT_IN` contains
    /// `http/dup`.
    pub fn legacy_http_attributes(mut self, enabled: bool) -> Self {
        self.options = self.options.legacy_http_attributes(enabled);
        self
    }

    /// Runs `hook` before each request is sent, inside its span (see
    /// [`OnRequest`]).
    pub fn on_request(mut self, hook: impl OnRequest + Send + Sync + 'static) -> Self {
        self.on_request = Some(Arc::new(hook));
        self
    }

    /// Runs `hook` when the response head arrives (see [`OnResponse`]).
    pub fn on_response(mut self, hook: impl OnResponse + Send + Sync + 'static) -> Self {
        self.on_response = Some(Arc::new(hook));
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
            .with_legacy_attributes(self.options.records_legacy_attributes()),
        );
        if propagate {
            self.options.inject_context(&span, request.headers_mut());
        }
        self.options
            .record_request_headers(&span, request.headers());
        span
    }

    fn record(&self, span: &Span, result: &Result<Response>, start: Instant) {
        match result {
            Ok(response) => {
                self.options.record_response_parts(
                    span,
                    response.status(),
                    response.version(),
                    response.headers(),
                );
                if let Some(hook) = &self.on_response {
                    span.in_scope(|| hook.on_response(response, start.elapsed(), span));
                }
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
        let propagate = self.options.propagates(extensions);
        let span = self.span(&mut request, resend, propagate);
        if let Some(hook) = &self.on_request {
            span.in_scope(|| hook.on_request(&request, &span));
        }
        let start = Instant::now();
        let result = next.run(request, extensions).instrument(span.clone()).await;
        self.record(&span, &result, start);
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

    use std::sync::Mutex;
    use std::time::Duration;

    use tracewire::propagation::B3Propagator;
    use tracewire::testing::InMemoryExporter;
    use tracewire::{SpanExt as _, TracewireLayer, Value};
    use tracing_subscriber::prelude::*;

    /// Answers every request itself, keeping the headers it was sent with.
    struct Canned(Arc<Mutex<http::HeaderMap>>);

    #[async_trait::async_trait]
    impl Middleware for Canned {
        async fn handle(
            &self,
            request: Request,
            _: &mut Extensions,
            _: Next<'_>,
        ) -> Result<Response> {
            *self.0.lock().unwrap() = request.headers().clone();
            let response = http::Response::builder()
                .header("x-cache", "hit")
                .header("x-region", "eu-west")
                .body("")
                .unwrap();
            Ok(Response::from(response))
        }
    }

    #[tokio::test]
    async fn shared_client_options_and_hooks() {
        let exporter = InMemoryExporter::new();
        let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone()));
        let _guard = tracing::subscriber::set_default(subscriber);

        // What an application would give tracewire-tower's client layer too.
        let options = ClientOptions::new()
            .propagator(B3Propagator::new())
            .request_headers([HeaderName::from_static("x-tenant")])
            .response_headers([HeaderName::from_static("x-cache")])
            .legacy_http_attributes(true);
        let middleware = TracingMiddleware::new()
            .options(options)
            .on_request(|request: &Request, span: &Span| {
                span.set_attribute("app.path", request.url().path().to_owned());
            })
            .on_response(|response: &Response, latency: Duration, span: &Span| {
                if let Some(region) = response.headers().get("x-region") {
                    span.set_attribute("app.region", region.to_str().unwrap().to_owned());
                }
                span.set_attribute("app.latency_ms", latency.as_secs_f64() * 1000.0);
            });
        let seen = Arc::new(Mutex::new(http::HeaderMap::new()));
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(middleware)
            .with(Canned(seen.clone()))
            .build();
        let response = client
            .get("http://inventory.internal/items/7")
            .header("x-tenant", "acme")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);

        let span = exporter.span("GET");
        let headers = seen.lock().unwrap();
        assert!(headers.contains_key("b3"), "the options' propagator");
        assert!(!headers.contains_key("traceparent"));
        assert_eq!(
            span.attribute("http.request.header.x-tenant"),
            Some(&Value::from(vec!["acme"]))
        );
        assert_eq!(
            span.attribute("http.response.header.x-cache"),
            Some(&Value::from(vec!["hit"]))
        );
        assert_eq!(span.attribute("http.method"), Some(&Value::from("GET")));
        assert_eq!(span.attribute("http.status_code"), Some(&Value::I64(200)));
        assert_eq!(span.attribute("app.path"), Some(&Value::from("/items/7")));
        assert_eq!(span.attribute("app.region"), Some(&Value::from("eu-west")));
        assert!(matches!(
            span.attribute("app.latency_ms"),
            Some(Value::F64(_))
        ));
    }

    #[tokio::test]
    async fn propagation_off_keeps_headers_out() {
        let exporter = InMemoryExporter::new();
        let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone()));
        let _guard = tracing::subscriber::set_default(subscriber);
        let seen = Arc::new(Mutex::new(http::HeaderMap::new()));
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(TracingMiddleware::new().propagation(false))
            .with(Canned(seen.clone()))
            .build();
        let parent = tracing::info_span!("parent");
        let _ = client
            .get("http://partner.example/")
            .send()
            .instrument(parent)
            .await
            .unwrap();
        assert!(!seen.lock().unwrap().contains_key("traceparent"));
        assert_eq!(
            exporter.span("GET").attribute("http.response.status_code"),
            Some(&Value::I64(200))
        );
    }

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
