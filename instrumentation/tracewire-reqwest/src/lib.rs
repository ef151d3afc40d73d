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
//! # Features
//!
//! This crate has no features of its own; TLS and the other reqwest options
//! are chosen on your `reqwest` dependency.

use std::fmt;
use std::sync::Arc;

use http::{Extensions, HeaderName, Method};
use reqwest::{Request, Response, Url};
use reqwest_middleware::{Middleware, Next, Result};
use tracewire::SpanExt as _;
use tracewire::propagation::Propagator;
use tracing::Instrument as _;
use tracing::Span;
use tracing::field::Empty;

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
            legacy: legacy_opt_in(
                std::env::var("OTEL_SEMCONV_STABILITY_OPT_IN")
                    .ok()
                    .as_deref(),
            ),
        }
    }
}

/// Whether an `OTEL_SEMCONV_STABILITY_OPT_IN` value asks for the old HTTP
/// attribute names next to the stable ones (`http/dup`).
fn legacy_opt_in(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        v.split(',')
            .any(|item| item.trim().eq_ignore_ascii_case("http/dup"))
    })
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

    /// Request headers recorded as `http.request.header.<name>` (several
    /// values joined with `,`). Only these are read: keep secrets out.
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
        let (method, method_original) = method_attributes(request.method());
        let url = request.url();
        let host = url
            .host_str()
            .map(|h| h.trim_start_matches('[').trim_end_matches(']'));
        let span = tracing::info_span!(
            target: TARGET,
            "HTTP client request",
            otel.name = method_for_name(request.method()),
            otel.kind = "client",
            otel.status_code = Empty,
            otel.status_message = Empty,
            http.request.method = method,
            http.request.method_original = method_original,
            server.address = host,
            server.port = url.port_or_known_default(),
            url.full = %RedactedUrl(url),
            http.request.resend_count = resend,
            network.protocol.version = Empty,
            http.response.status_code = Empty,
            error.type = Empty,
            http.method = Empty,
            http.url = Empty,
            net.peer.name = Empty,
            http.status_code = Empty,
        );
        if self.legacy && span.is_recording() {
            span.record("http.method", request.method().as_str());
            span.record("http.url", tracing::field::display(RedactedUrl(url)));
            span.record("net.peer.name", host);
        }
        if propagate {
            let propagator = self
                .propagator
                .clone()
                .unwrap_or_else(tracewire::propagation::global);
            // A span filtered out by the subscriber still passes the
            // current trace on.
            let cx = if span.is_disabled() {
                tracewire::current_context()
            } else {
                span.context()
            };
            propagator.inject(&cx, request.headers_mut());
        }
        if span.is_disabled() {
            return span;
        }
        if !self.request_headers.is_empty() && span.is_recording() {
            record_headers(
                &span,
                "http.request.header.",
                &self.request_headers,
                request.headers(),
            );
        }
        span
    }

    fn record(&self, span: &Span, result: &Result<Response>) {
        match result {
            Ok(response) => {
                let status = response.status();
                span.record("http.response.status_code", status.as_u16());
                if self.legacy {
                    span.record("http.status_code", status.as_u16());
                }
                span.record(
                    "network.protocol.version",
                    protocol_version(response.version()),
                );
                if status.is_client_error() || status.is_server_error() {
                    span.record("otel.status_code", "error");
                    span.record("error.type", status.as_str());
                }
                if !self.response_headers.is_empty() && span.is_recording() {
                    record_headers(
                        span,
                        "http.response.header.",
                        &self.response_headers,
                        response.headers(),
                    );
                }
            }
            Err(error) => {
                span.record("otel.status_code", "error");
                span.record("otel.status_message", tracing::field::display(error));
                span.record("error.type", error_type(error));
            }
        }
    }
}

/// Counts the attempts of one request: the retry middleware passes the same
/// extensions to every attempt.
#[derive(Clone, Copy, Debug)]
struct Attempts(u32);

/// Put in a request's extensions (`RequestBuilder::with_extension`) to keep
/// [`TracingMiddleware`] from writing `traceparent`, `tracestate` and
/// `baggage` into it. The CLIENT span is still recorded.
///
/// ```
/// # async fn run(client: reqwest_middleware::ClientWithMiddleware) -> reqwest_middleware::Result<()> {
/// use tracewire_reqwest::DisablePropagation;
///
/// client
///     .get("https://api.partner.example/quote")
///     .with_extension(DisablePropagation)
///     .send()
///     .await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DisablePropagation;

/// Marks a request as a resend made by your own code (not by
/// `reqwest-retry`, which this crate counts by itself): its span gets
/// `http.request.resend_count` with this value when it is above 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResendCount(pub u32);

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
        let propagate = extensions.get::<DisablePropagation>().is_none();
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

fn known_method(method: &Method) -> Option<&'static str> {
    Some(match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => return None,
    })
}

fn method_attributes(method: &Method) -> (&'static str, Option<&str>) {
    match known_method(method) {
        Some(m) => (m, None),
        None => ("_OTHER", Some(method.as_str())),
    }
}

fn method_for_name(method: &Method) -> &'static str {
    known_method(method).unwrap_or("HTTP")
}

fn protocol_version(version: http::Version) -> Option<&'static str> {
    Some(match version {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_11 => "1.1",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => return None,
    })
}

/// Query parameters whose values are replaced by `REDACTED` in `url.full`.
const SENSITIVE_QUERY_KEYS: [&str; 5] = [
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
    "sig",
    "X-Goog-Signature",
];

/// `url.full` with credentials and signatures redacted; formatted only for
/// recorded spans. The fragment is left out (it is never sent).
struct RedactedUrl<'a>(&'a Url);

impl fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = self.0;
        write!(f, "{}:", url.scheme())?;
        if let Some(host) = url.host_str() {
            f.write_str("//")?;
            if !url.username().is_empty() || url.password().is_some() {
                f.write_str("REDACTED:REDACTED@")?;
            }
            f.write_str(host)?;
            if let Some(port) = url.port() {
                write!(f, ":{port}")?;
            }
        }
        f.write_str(url.path())?;
        if let Some(query) = url.query() {
            f.write_str("?")?;
            for (i, pair) in query.split('&').enumerate() {
                if i > 0 {
                    f.write_str("&")?;
                }
                match pair.split_once('=') {
                    Some((key, _))
                        if SENSITIVE_QUERY_KEYS
                            .iter()
                            .any(|s| s.eq_ignore_ascii_case(key)) =>
                    {
                        write!(f, "{key}=REDACTED")?;
                    }
                    _ => f.write_str(pair)?,
                }
            }
        }
        Ok(())
    }
}

/// Sets `{prefix}{name}` for every allow-listed header present.
fn record_headers(span: &Span, prefix: &str, names: &[HeaderName], headers: &http::HeaderMap) {
    for name in names {
        let mut joined = String::new();
        for value in headers.get_all(name) {
            let Ok(value) = value.to_str() else { continue };
            if !joined.is_empty() {
                joined.push(',');
            }
            joined.push_str(value);
        }
        if !joined.is_empty() {
            span.set_attribute(format!("{prefix}{}", name.as_str()), joined);
        }
    }
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
            RedactedUrl(&url).to_string(),
            "https://REDACTED:REDACTED@files.example:8443/a/b?X-Amz-Signature=REDACTED&keep=1&sig=REDACTED"
        );
        let plain = Url::parse("http://[::1]:3000/users?id=7").unwrap();
        assert_eq!(
            RedactedUrl(&plain).to_string(),
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

    #[test]
    fn legacy_opt_in_parsing() {
        assert!(legacy_opt_in(Some("http/dup")));
        assert!(legacy_opt_in(Some("database,http/dup")));
        assert!(!legacy_opt_in(Some("http")));
        assert!(!legacy_opt_in(None));
    }

    #[test]
    fn methods() {
        let purge = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_attributes(&purge), ("_OTHER", Some("PURGE")));
        assert_eq!(method_for_name(&purge), "HTTP");
        assert_eq!(method_attributes(&Method::PATCH), ("PATCH", None));
    }
}
