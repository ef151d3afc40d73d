//! Building blocks for HTTP instrumentation that follows the OpenTelemetry
//! HTTP semantic conventions (stable names): the attributes of a request
//! and its response, `url.full` with credentials and signatures redacted,
//! the CLIENT span itself ([`http_client_span!`](crate::http_client_span)),
//! context injection, and the per-request switches
//! [`DisablePropagation`] and [`ResendCount`].
//!
//! `tracewire-tower` (its server and client layers) and
//! `tracewire-reqwest` are built from these pieces, so a client you
//! instrument yourself with them records what theirs record, and the
//! switches a request carries work with any of them.
//!
//! Nothing here allocates for a span that is not recorded: attribute values
//! borrow from the request, and `url.full` is only written out for recorded
//! spans.
//!
//! ```
//! use tracing_subscriber::prelude::*;
//! use tracewire::error::{error_type_name, record_error};
//! use tracewire::http::{
//!     ClientRequest, DisablePropagation, inject_context, record_client_response,
//! };
//! use tracewire::testing::InMemoryExporter;
//! use tracewire::{TracewireLayer, Value};
//!
//! /// The HTTP client being instrumented.
//! fn send(request: &http::Request<()>) -> std::io::Result<http::Response<()>> {
//!     assert!(request.headers().contains_key("traceparent"));
//!     Ok(http::Response::builder().status(503).body(()).unwrap())
//! }
//!
//! fn traced_send(mut request: http::Request<()>) -> std::io::Result<http::Response<()>> {
//!     // A CLIENT span named after the method, a child of the current span.
//!     let span = tracewire::http_client_span!(target: "my_client", ClientRequest::new(&request));
//!     if !DisablePropagation::is_set(request.extensions()) {
//!         let propagator = tracewire::propagation::global();
//!         inject_context(&span, &*propagator, request.headers_mut());
//!     }
//!     let result = span.in_scope(|| send(&request));
//!     match &result {
//!         Ok(response) => {
//!             record_client_response(&span, response.status(), response.version(), false)
//!         }
//!         Err(error) => record_error(&span, error_type_name::<std::io::Error>(), Some(error)),
//!     }
//!     result
//! }
//!
//! let exporter = InMemoryExporter::new();
//! let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone()));
//! tracing::subscriber::with_default(subscriber, || {
//!     let request = http::Request::get("https://user:pw@api.example/v1?sig=abc&page=2")
//!         .body(())
//!         .unwrap();
//!     traced_send(request).unwrap();
//! });
//!
//! let span = exporter.span("GET");
//! assert!(span.status.is_error()); // 5xx
//! let url = span.attribute("url.full");
//! assert_eq!(
//!     url,
//!     Some(&Value::from("https://REDACTED:REDACTED@api.example/v1?sig=REDACTED&page=2"))
//! );
//! assert_eq!(span.attribute("server.port"), Some(&Value::I64(443)));
//! assert_eq!(span.attribute("error.type"), Some(&Value::from("503")));
//! ```

use std::fmt;
use std::sync::Arc;

use http::{Extensions, HeaderMap, HeaderName, Method, StatusCode, Uri, Version};
use tracing::Span;

use crate::layer::SpanExt as _;
use crate::propagation::{Injector, Propagator};

/// `tracing`, for [`http_client_span!`](crate::http_client_span) to expand
/// to in crates that name it differently or not at all.
#[doc(hidden)]
pub use tracing as __tracing;

/// Put in an outgoing request's extensions to keep tracewire's HTTP
/// clients (`tracewire-tower`'s client layer, `tracewire-reqwest`'s
/// middleware) from writing `traceparent`, `tracestate` and `baggage` into
/// it; the CLIENT span is still recorded. For calls to third parties that
/// must not learn your trace ids.
///
/// `tracewire_tower::DisablePropagation` and
/// `tracewire_reqwest::DisablePropagation` are this type, so the marker
/// works whichever of them sends the request.
///
/// ```
/// use tracewire::http::DisablePropagation;
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(DisablePropagation);
/// assert!(DisablePropagation::is_set(request.extensions()));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DisablePropagation;

impl DisablePropagation {
    /// Whether `extensions` carry the marker.
    pub fn is_set(extensions: &Extensions) -> bool {
        extensions.get::<DisablePropagation>().is_some()
    }
}

/// Marks an outgoing request as a resend (a retry or a redirect your own
/// code makes): its CLIENT span gets `http.request.resend_count` with this
/// value. The first attempt carries no mark (or 0, which is not recorded).
///
/// `tracewire_tower::ResendCount` and `tracewire_reqwest::ResendCount` are
/// this type. (`tracewire-reqwest` also counts the attempts of
/// `reqwest-retry` by itself; an explicit mark wins.)
///
/// ```
/// use tracewire::http::ResendCount;
///
/// let mut retry = http::Request::new(());
/// retry.extensions_mut().insert(ResendCount(1));
/// assert_eq!(ResendCount::of(retry.extensions()), Some(1));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ResendCount(pub u32);

impl ResendCount {
    /// The `http.request.resend_count` that `extensions` ask for: the
    /// marked count, when there is a mark above 0.
    pub fn of(extensions: &Extensions) -> Option<u32> {
        extensions
            .get::<ResendCount>()
            .map(|r| r.0)
            .filter(|&n| n > 0)
    }
}

/// The `http.request.method` value of `method` when it is one of the nine
/// methods the conventions know (`GET`, `POST`, …), else `None`.
///
/// ```
/// assert_eq!(tracewire::http::known_method(&http::Method::PATCH), Some("PATCH"));
/// assert_eq!(tracewire::http::known_method(&"PURGE".parse().unwrap()), None);
/// ```
pub fn known_method(method: &Method) -> Option<&'static str> {
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

/// The method attributes: (`http.request.method`,
/// `http.request.method_original`). An unknown method is `_OTHER`, with
/// the method as sent as the original.
///
/// ```
/// use tracewire::http::method_attributes;
///
/// assert_eq!(method_attributes(&http::Method::GET), ("GET", None));
/// let purge = http::Method::from_bytes(b"PURGE").unwrap();
/// assert_eq!(method_attributes(&purge), ("_OTHER", Some("PURGE")));
/// ```
pub fn method_attributes(method: &Method) -> (&'static str, Option<&str>) {
    match known_method(method) {
        Some(m) => (m, None),
        None => ("_OTHER", Some(method.as_str())),
    }
}

/// The method part of a span name: the method, or `HTTP` for an unknown
/// one (so a span is never named after an arbitrary token).
///
/// ```
/// let purge = http::Method::from_bytes(b"PURGE").unwrap();
/// assert_eq!(tracewire::http::method_for_span_name(&purge), "HTTP");
/// ```
pub fn method_for_span_name(method: &Method) -> &'static str {
    known_method(method).unwrap_or("HTTP")
}

/// `network.protocol.version` of an HTTP version (`1.1`, `2`, …).
///
/// ```
/// assert_eq!(tracewire::http::protocol_version(http::Version::HTTP_2), Some("2"));
/// ```
pub fn protocol_version(version: Version) -> Option<&'static str> {
    Some(match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_11 => "1.1",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => return None,
    })
}

/// The default port of a URL scheme (`http`/`ws` 80, `https`/`wss` 443,
/// any case), which `server.port` falls back to.
///
/// ```
/// assert_eq!(tracewire::http::default_port("HTTPS"), Some(443));
/// assert_eq!(tracewire::http::default_port("ftp"), None);
/// ```
pub fn default_port(scheme: &str) -> Option<u16> {
    if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("ws") {
        Some(80)
    } else if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("wss") {
        Some(443)
    } else {
        None
    }
}

/// A host without the brackets of an IPv6 literal (`[::1]` → `::1`), as
/// `server.address` wants it.
fn unbracketed(host: &str) -> &str {
    host.trim_start_matches('[').trim_end_matches(']')
}

/// `server.address` and `server.port` of an outgoing request, from its
/// URI: the host (IPv6 without brackets) and the port, else the scheme's
/// default port. `None` for a URI without authority.
///
/// ```
/// let uri: http::Uri = "http://[::1]/health".parse().unwrap();
/// assert_eq!(tracewire::http::server_address(&uri), Some(("::1", Some(80))));
/// ```
pub fn server_address(uri: &Uri) -> Option<(&str, Option<u16>)> {
    let authority = uri.authority()?;
    let port = authority
        .port_u16()
        .or_else(|| uri.scheme_str().and_then(default_port));
    Some((unbracketed(authority.host()), port))
}

/// Query parameters whose values [`RedactedUrl`] replaces by `REDACTED`
/// (compared ignoring case), as the conventions list them.
pub const SENSITIVE_QUERY_KEYS: [&str; 5] = [
    "X-Amz-Signature",
    "X-Amz-Credential",
    "X-Amz-Security-Token",
    "sig",
    "X-Goog-Signature",
];

/// Whether the value of query parameter `key` is replaced by `REDACTED` in
/// `url.full` (one of [`SENSITIVE_QUERY_KEYS`], ignoring case).
///
/// ```
/// assert!(tracewire::http::is_sensitive_query_key("x-amz-signature"));
/// assert!(!tracewire::http::is_sensitive_query_key("page"));
/// ```
pub fn is_sensitive_query_key(key: &str) -> bool {
    SENSITIVE_QUERY_KEYS
        .iter()
        .any(|s| s.eq_ignore_ascii_case(key))
}

/// `url.full` of an outgoing request: user and password become
/// `REDACTED:REDACTED`, values of the [`SENSITIVE_QUERY_KEYS`] become
/// `REDACTED`, the rest is written as it is. A [`Display`](fmt::Display)
/// value that borrows the URL's parts, so it costs nothing until a
/// recorded span formats it.
///
/// ```
/// use tracewire::http::RedactedUrl;
///
/// let uri: http::Uri = "https://me:pw@files.example/a?X-Amz-Signature=abc&v=2".parse().unwrap();
/// assert_eq!(
///     RedactedUrl::new(&uri).to_string(),
///     "https://REDACTED:REDACTED@files.example/a?X-Amz-Signature=REDACTED&v=2"
/// );
///
/// // A URL type other than `http::Uri` gives its parts.
/// let url = RedactedUrl::from_parts(Some("http"), Some("u@[::1]:81"), "/x", None);
/// assert_eq!(url.to_string(), "http://REDACTED:REDACTED@[::1]:81/x");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RedactedUrl<'a> {
    scheme: Option<&'a str>,
    authority: Option<&'a str>,
    path: &'a str,
    query: Option<&'a str>,
}

impl<'a> RedactedUrl<'a> {
    /// The URL of `uri`.
    pub fn new(uri: &'a Uri) -> Self {
        RedactedUrl {
            scheme: uri.scheme_str(),
            authority: uri.authority().map(|a| a.as_str()),
            path: uri.path(),
            query: uri.query(),
        }
    }

    /// A URL from its parts as they are written: the scheme (without
    /// `:`), the authority (`[user[:password]@]host[:port]`, written after
    /// `//` when there is a scheme), the path and the query (without `?`).
    /// The fragment is never part of `url.full`: it is not sent.
    pub const fn from_parts(
        scheme: Option<&'a str>,
        authority: Option<&'a str>,
        path: &'a str,
        query: Option<&'a str>,
    ) -> Self {
        RedactedUrl {
            scheme,
            authority,
            path,
            query,
        }
    }
}

impl fmt::Display for RedactedUrl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scheme) = self.scheme {
            f.write_str(scheme)?;
            f.write_str(if self.authority.is_some() { "://" } else { ":" })?;
        }
        if let Some(authority) = self.authority {
            let host_port = match authority.rsplit_once('@') {
                Some((_, host_port)) => {
                    f.write_str("REDACTED:REDACTED@")?;
                    host_port
                }
                None => authority,
            };
            f.write_str(host_port)?;
        }
        f.write_str(self.path)?;
        if let Some(query) = self.query {
            write!(f, "?{}", RedactedQuery(query))?;
        }
        Ok(())
    }
}

/// A query string (without `?`) with the values of the
/// [`SENSITIVE_QUERY_KEYS`] replaced by `REDACTED`: `url.query` of a server
/// span, and the query part of [`RedactedUrl`].
///
/// ```
/// use tracewire::http::RedactedQuery;
///
/// assert_eq!(
///     RedactedQuery("sig=abc&page=2&X-Goog-Signature=x").to_string(),
///     "sig=REDACTED&page=2&X-Goog-Signature=REDACTED"
/// );
/// ```
#[derive(Clone, Copy, Debug)]
pub struct RedactedQuery<'a>(pub &'a str);

impl fmt::Display for RedactedQuery<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.0.split('&').enumerate() {
            if i > 0 {
                f.write_str("&")?;
            }
            match pair.split_once('=') {
                Some((key, _)) if is_sensitive_query_key(key) => {
                    write!(f, "{key}=REDACTED")?;
                }
                _ => f.write_str(pair)?,
            }
        }
        Ok(())
    }
}

/// Whether an `OTEL_SEMCONV_STABILITY_OPT_IN` value asks for the
/// pre-stable HTTP attribute names next to the stable ones (it lists
/// `http/dup`, any case).
///
/// ```
/// use tracewire::http::legacy_opt_in;
///
/// assert!(legacy_opt_in(Some("database, http/dup")));
/// assert!(!legacy_opt_in(Some("http")));
/// assert!(!legacy_opt_in(None));
/// ```
pub fn legacy_opt_in(value: Option<&str>) -> bool {
    stability_opt_in(value, "http/dup")
}

/// [`legacy_opt_in`] of the process's `OTEL_SEMCONV_STABILITY_OPT_IN`:
/// the default of the instrumentations' `legacy_http_attributes` option.
pub fn legacy_opt_in_from_env() -> bool {
    stability_opt_in_from_env("http/dup")
}

/// Whether an `OTEL_SEMCONV_STABILITY_OPT_IN` value lists `token` (a
/// comma-separated list, any case, spaces trimmed): `http/dup` for HTTP,
/// `rpc/dup` for RPC, … ([`legacy_opt_in`] is this for `http/dup`).
///
/// ```
/// use tracewire::http::stability_opt_in;
///
/// assert!(stability_opt_in(Some("http/dup, RPC/DUP"), "rpc/dup"));
/// assert!(!stability_opt_in(Some("http/dup"), "rpc/dup"));
/// assert!(!stability_opt_in(None, "rpc/dup"));
/// ```
pub fn stability_opt_in(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| {
        v.split(',')
            .any(|item| item.trim().eq_ignore_ascii_case(token))
    })
}

/// [`stability_opt_in`] of the process's `OTEL_SEMCONV_STABILITY_OPT_IN`.
pub fn stability_opt_in_from_env(token: &str) -> bool {
    stability_opt_in(
        std::env::var("OTEL_SEMCONV_STABILITY_OPT_IN")
            .ok()
            .as_deref(),
        token,
    )
}

/// The options of a tracewire HTTP client, shared by `tracewire-tower`'s
/// client layer and `tracewire-reqwest`'s middleware: the propagator,
/// whether the context is written into requests at all, the allow-lists of
/// captured headers, and the pre-stable attribute names.
///
/// Build it once and hand it to each client (`TraceLayer::client().options(…)`,
/// `TracingMiddleware::new().options(…)`), so both trace alike. The methods
/// that take a span ([`propagates`](Self::propagates),
/// [`inject_context`](Self::inject_context),
/// [`record_request_headers`](Self::record_request_headers),
/// [`record_response`](Self::record_response)) are what those clients do
/// with it, for a client you instrument yourself.
///
/// ```
/// use http::HeaderName;
/// use tracing_subscriber::prelude::*;
/// use tracewire::http::{ClientOptions, ClientRequest};
/// use tracewire::propagation::TraceContextPropagator;
/// use tracewire::testing::InMemoryExporter;
/// use tracewire::{TracewireLayer, Value};
///
/// let options = ClientOptions::new()
///     .propagator(TraceContextPropagator::new())
///     .request_headers([HeaderName::from_static("x-tenant")])
///     .response_headers([HeaderName::from_static("x-cache")])
///     .legacy_http_attributes(true);
/// assert!(options.records_legacy_attributes());
///
/// let exporter = InMemoryExporter::new();
/// let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone()));
/// tracing::subscriber::with_default(subscriber, || {
///     let mut request = http::Request::get("http://cart.internal/items")
///         .header("x-tenant", "acme")
///         .body(())
///         .unwrap();
///     let span = tracewire::http_client_span!(
///         target: "my_client",
///         ClientRequest::new(&request)
///             .with_legacy_attributes(options.records_legacy_attributes()),
///     );
///     if options.propagates(request.extensions()) {
///         options.inject_context(&span, request.headers_mut());
///     }
///     options.record_request_headers(&span, request.headers());
///     assert!(request.headers().contains_key("traceparent"));
///
///     let response = http::Response::builder().header("x-cache", "hit").body(()).unwrap();
///     options.record_response(&span, &response);
/// });
///
/// let span = exporter.span("GET");
/// assert_eq!(span.attribute("http.method"), Some(&Value::from("GET")));
/// assert!(span.attribute("http.request.header.x-tenant").is_some());
/// assert!(span.attribute("http.response.header.x-cache").is_some());
/// assert_eq!(span.attribute("http.response.status_code"), Some(&Value::I64(200)));
/// ```
#[derive(Clone, Debug)]
pub struct ClientOptions {
    propagator: Option<Arc<dyn Propagator>>,
    propagation: bool,
    request_headers: Vec<HeaderName>,
    response_headers: Vec<HeaderName>,
    legacy: bool,
}

impl Default for ClientOptions {
    /// The same as [`ClientOptions::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl ClientOptions {
    /// The defaults: the process-wide propagator
    /// ([`global`](crate::propagation::global), read per request),
    /// propagation on, no header captured, and the pre-stable attribute
    /// names when `OTEL_SEMCONV_STABILITY_OPT_IN` lists `http/dup`
    /// ([`legacy_opt_in_from_env`]).
    pub fn new() -> Self {
        ClientOptions {
            propagator: None,
            propagation: true,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            legacy: legacy_opt_in_from_env(),
        }
    }

    /// Writes the context with `propagator` instead of the process-wide one.
    pub fn propagator(mut self, propagator: impl Propagator + 'static) -> Self {
        self.propagator = Some(Arc::new(propagator));
        self
    }

    /// Whether the context is written into requests at all (default: yes).
    /// Off, every request is traced as if it carried
    /// [`DisablePropagation`]: for a client that only talks to third parties.
    pub fn propagation(mut self, enabled: bool) -> Self {
        self.propagation = enabled;
        self
    }

    /// Request headers recorded as `http.request.header.<name>` attributes
    /// (a string array, one element per header line). Only these headers
    /// are read: keep secrets such as `authorization` out.
    pub fn request_headers<I: IntoIterator<Item = HeaderName>>(mut self, names: I) -> Self {
        self.request_headers = names.into_iter().collect();
        self
    }

    /// Response headers recorded as `http.response.header.<name>`
    /// attributes, as for [`request_headers`](Self::request_headers).
    pub fn response_headers<I: IntoIterator<Item = HeaderName>>(mut self, names: I) -> Self {
        self.response_headers = names.into_iter().collect();
        self
    }

    /// Whether spans also carry the pre-stable attribute names
    /// (`http.method`, `http.url`, `net.peer.name`, `http.status_code`) for
    /// backends that still query them. Default: on when
    /// `OTEL_SEMCONV_STABILITY_OPT_IN` lists `http/dup`.
    pub fn legacy_http_attributes(mut self, enabled: bool) -> Self {
        self.legacy = enabled;
        self
    }

    /// The propagator requests are written with: the one given to
    /// [`propagator`](Self::propagator), else the process-wide one as it
    /// is now.
    pub fn propagator_or_global(&self) -> Arc<dyn Propagator> {
        self.propagator
            .clone()
            .unwrap_or_else(crate::propagation::global)
    }

    /// Whether propagation is on (see [`propagation`](Self::propagation)).
    pub fn propagation_enabled(&self) -> bool {
        self.propagation
    }

    /// The request headers that are captured.
    pub fn captured_request_headers(&self) -> &[HeaderName] {
        &self.request_headers
    }

    /// The response headers that are captured.
    pub fn captured_response_headers(&self) -> &[HeaderName] {
        &self.response_headers
    }

    /// Whether the pre-stable attribute names are recorded (what
    /// [`ClientRequest::with_legacy_attributes`] and
    /// [`record_client_response`] are given).
    pub fn records_legacy_attributes(&self) -> bool {
        self.legacy
    }

    /// Whether the context goes into a request with these `extensions`:
    /// propagation is on and the request does not carry
    /// [`DisablePropagation`].
    pub fn propagates(&self, extensions: &Extensions) -> bool {
        self.propagation && !DisablePropagation::is_set(extensions)
    }

    /// Writes the context of `span` into `headers` with
    /// [`propagator_or_global`](Self::propagator_or_global) (see
    /// [`inject_context`](fn@inject_context)). It does not look at
    /// [`propagates`](Self::propagates): ask that first.
    pub fn inject_context(&self, span: &Span, headers: &mut dyn Injector) {
        inject_context(span, &*self.propagator_or_global(), headers);
    }

    /// Records the captured request headers found in `headers` on `span`
    /// (see [`record_request_headers`](fn@record_request_headers)).
    pub fn record_request_headers(&self, span: &Span, headers: &HeaderMap) {
        record_request_headers(span, &self.request_headers, headers);
    }

    /// Records a response head on a CLIENT span: status, protocol version
    /// and error status as [`record_client_response`] does (with the
    /// pre-stable `http.status_code` when asked for), and the captured
    /// response headers.
    pub fn record_response<B>(&self, span: &Span, response: &http::Response<B>) {
        self.record_response_parts(
            span,
            response.status(),
            response.version(),
            response.headers(),
        );
    }

    /// [`record_response`](Self::record_response) for a response that is
    /// not an `http::Response`: its status, version and headers.
    pub fn record_response_parts(
        &self,
        span: &Span,
        status: StatusCode,
        version: Version,
        headers: &HeaderMap,
    ) {
        record_client_response(span, status, version, self.legacy);
        record_response_headers(span, &self.response_headers, headers);
    }
}

/// What a CLIENT span records about an outgoing request before it is sent:
/// the input of [`http_client_span!`](crate::http_client_span).
///
/// ```
/// use tracewire::http::ClientRequest;
///
/// let request = http::Request::delete("http://cart.internal:8080/items/7").body(()).unwrap();
/// let attributes = ClientRequest::new(&request);
/// assert_eq!(attributes.method_attribute(), "DELETE");
/// assert_eq!(attributes.server_address(), Some("cart.internal"));
/// assert_eq!(attributes.server_port(), Some(8080));
/// assert_eq!(attributes.url_full().to_string(), "http://cart.internal:8080/items/7");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ClientRequest<'a> {
    method: &'a Method,
    url: RedactedUrl<'a>,
    server_address: Option<&'a str>,
    server_port: Option<u16>,
    resend_count: Option<u32>,
    legacy: bool,
}

impl<'a> ClientRequest<'a> {
    /// The attributes of `request`: method, `url.full` and server address
    /// from its URI, `http.request.resend_count` from a [`ResendCount`] in
    /// its extensions.
    pub fn new<B>(request: &'a http::Request<B>) -> Self {
        let uri = request.uri();
        let server = server_address(uri);
        ClientRequest {
            method: request.method(),
            url: RedactedUrl::new(uri),
            server_address: server.map(|(host, _)| host),
            server_port: server.and_then(|(_, port)| port),
            resend_count: ResendCount::of(request.extensions()),
            legacy: false,
        }
    }

    /// The attributes of a request whose URL is not an `http::Uri`: its
    /// method, its URL, its host (IPv6 brackets are removed) and its port
    /// (explicit or the scheme's default). No resend count.
    pub fn from_parts(
        method: &'a Method,
        url: RedactedUrl<'a>,
        server_address: Option<&'a str>,
        server_port: Option<u16>,
    ) -> Self {
        ClientRequest {
            method,
            url,
            server_address: server_address.map(unbracketed),
            server_port,
            resend_count: None,
            legacy: false,
        }
    }

    /// Sets `http.request.resend_count` (`None` or 0: not a resend).
    pub fn with_resend_count(mut self, resend_count: Option<u32>) -> Self {
        self.resend_count = resend_count.filter(|&n| n > 0);
        self
    }

    /// Whether the span also carries the pre-stable names `http.method`,
    /// `http.url` and `net.peer.name` (default: no; see
    /// [`legacy_opt_in_from_env`]).
    pub fn with_legacy_attributes(mut self, enabled: bool) -> Self {
        self.legacy = enabled;
        self
    }

    /// The request's method.
    pub fn method(&self) -> &'a Method {
        self.method
    }

    /// `http.request.method` (see [`method_attributes`]).
    pub fn method_attribute(&self) -> &'static str {
        method_attributes(self.method).0
    }

    /// `http.request.method_original`, for a method the conventions do not
    /// know.
    pub fn method_original(&self) -> Option<&'a str> {
        method_attributes(self.method).1
    }

    /// The span name: the method, `HTTP` for an unknown one.
    pub fn span_name(&self) -> &'static str {
        method_for_span_name(self.method)
    }

    /// `url.full`.
    pub fn url_full(&self) -> RedactedUrl<'a> {
        self.url
    }

    /// `server.address`.
    pub fn server_address(&self) -> Option<&'a str> {
        self.server_address
    }

    /// `server.port`.
    pub fn server_port(&self) -> Option<u16> {
        self.server_port
    }

    /// `http.request.resend_count`.
    pub fn resend_count(&self) -> Option<u32> {
        self.resend_count
    }

    /// Records the pre-stable request attributes on `span` when they are
    /// asked for ([`with_legacy_attributes`](Self::with_legacy_attributes))
    /// and the span is recorded. [`http_client_span!`](crate::http_client_span)
    /// calls it.
    pub fn record_legacy_attributes(&self, span: &Span) {
        if self.legacy && span.is_recording() {
            span.record("http.method", self.method.as_str());
            span.record("http.url", tracing::field::display(self.url));
            span.record("net.peer.name", self.server_address);
        }
    }
}

/// Creates the CLIENT span of an outgoing HTTP request from a
/// [`ClientRequest`](crate::http::ClientRequest): an INFO span with the
/// given target (which names the instrumentation scope and which
/// `EnvFilter` directives match), named after the method, a child of the
/// current span.
///
/// It carries `http.request.method`, `http.request.method_original`,
/// `server.address`, `server.port`, `url.full` and
/// `http.request.resend_count` from the request, and declares the fields
/// recorded later: `otel.status_code`, `otel.status_message`,
/// `network.protocol.version`, `http.response.status_code` and
/// `error.type` (see [`record_client_response`](crate::http::record_client_response)
/// and [`record_error`](crate::error::record_error)), and the pre-stable
/// `http.method`, `http.url`, `net.peer.name` and `http.status_code`.
///
/// ```
/// use tracewire::http::ClientRequest;
///
/// let request = http::Request::get("http://inventory.internal/items/7").body(()).unwrap();
/// let span = tracewire::http_client_span!(target: "my_client", ClientRequest::new(&request));
/// # let _ = span;
/// ```
#[macro_export]
macro_rules! http_client_span {
    (target: $target:expr, $request:expr $(,)?) => {{
        let request: $crate::http::ClientRequest<'_> = $request;
        let span = $crate::http::__tracing::info_span!(
            target: $target,
            "HTTP client request",
            otel.name = request.span_name(),
            otel.kind = "client",
            otel.status_code = $crate::http::__tracing::field::Empty,
            otel.status_message = $crate::http::__tracing::field::Empty,
            http.request.method = request.method_attribute(),
            http.request.method_original = request.method_original(),
            server.address = request.server_address(),
            server.port = request.server_port(),
            url.full = $crate::http::__tracing::field::display(request.url_full()),
            http.request.resend_count = request.resend_count(),
            network.protocol.version = $crate::http::__tracing::field::Empty,
            http.response.status_code = $crate::http::__tracing::field::Empty,
            error.type = $crate::http::__tracing::field::Empty,
            http.method = $crate::http::__tracing::field::Empty,
            http.url = $crate::http::__tracing::field::Empty,
            net.peer.name = $crate::http::__tracing::field::Empty,
            http.status_code = $crate::http::__tracing::field::Empty,
        );
        request.record_legacy_attributes(&span);
        span
    }};
}

/// Writes the context of `span` into an outgoing request's headers with
/// `propagator`. When the subscriber filtered `span` out, the current
/// span's context is written instead, so the trace still reaches the next
/// service.
///
/// ```
/// let span = tracing::info_span!("GET");
/// let mut headers = http::HeaderMap::new();
/// tracewire::http::inject_context(&span, &*tracewire::propagation::global(), &mut headers);
/// ```
pub fn inject_context(span: &Span, propagator: &dyn Propagator, headers: &mut dyn Injector) {
    let cx = if span.is_disabled() {
        crate::current_context()
    } else {
        span.context()
    };
    propagator.inject(&cx, headers);
}

/// Records `http.response.status_code`, and the pre-stable
/// `http.status_code` too when `legacy` is set.
pub fn record_status_code(span: &Span, status: StatusCode, legacy: bool) {
    span.record("http.response.status_code", status.as_u16());
    if legacy {
        span.record("http.status_code", status.as_u16());
    }
}

/// Records a response head on a CLIENT span: [`record_status_code`],
/// `network.protocol.version`, and status Error with `error.type` = the
/// status code for 4xx and 5xx.
pub fn record_client_response(span: &Span, status: StatusCode, version: Version, legacy: bool) {
    record_status_code(span, status, legacy);
    span.record("network.protocol.version", protocol_version(version));
    if status.is_client_error() || status.is_server_error() {
        crate::error::record_error(span, status.as_str(), None);
    }
}

/// Records the request headers named in `names` (an allow-list: keep
/// secrets such as `authorization` out) as `http.request.header.<name>`
/// attributes of a recorded span. Values that are not visible ASCII are
/// skipped; the value is an array of strings, one per header line, as the
/// semantic conventions say.
pub fn record_request_headers(span: &Span, names: &[HeaderName], headers: &HeaderMap) {
    record_headers(span, "http.request.header.", names, headers);
}

/// Records the response headers named in `names` as
/// `http.response.header.<name>`, as [`record_request_headers`] does.
pub fn record_response_headers(span: &Span, names: &[HeaderName], headers: &HeaderMap) {
    record_headers(span, "http.response.header.", names, headers);
}

/// Records the headers named in `names` found in `headers` as
/// `{prefix}{name}` string arrays (one element per header line; values
/// that are not visible ASCII are skipped) on a recorded span: what
/// [`record_request_headers`] and [`record_response_headers`] do with the
/// HTTP prefixes, and gRPC metadata capture with `rpc.request.metadata.`
/// and `rpc.response.metadata.`.
pub fn record_headers(span: &Span, prefix: &str, names: &[HeaderName], headers: &HeaderMap) {
    if names.is_empty() || !span.is_recording() {
        return;
    }
    for name in names {
        let values = header_values(headers, name);
        if !values.is_empty() {
            span.set_attribute(format!("{prefix}{}", name.as_str()), values);
        }
    }
}

/// The values of header `name` in `headers` that are visible ASCII, one per
/// header line, in order (what header capture records).
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// headers.append("x-tenant", "acme".parse().unwrap());
/// headers.append("x-tenant", "beta".parse().unwrap());
/// let name = http::HeaderName::from_static("x-tenant");
/// assert_eq!(tracewire::http::header_values(&headers, &name), ["acme", "beta"]);
/// ```
pub fn header_values(headers: &HeaderMap, name: &HeaderName) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok().map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods() {
        assert_eq!(method_attributes(&Method::GET), ("GET", None));
        assert_eq!(method_attributes(&Method::PATCH), ("PATCH", None));
        let custom = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(method_attributes(&custom), ("_OTHER", Some("PURGE")));
        assert_eq!(method_for_span_name(&custom), "HTTP");
    }

    #[test]
    fn url_full_is_redacted() {
        let uri: Uri =
            "https://user:secret@files.example:8443/a/b?X-Amz-Signature=abc&keep=1&sig=zz&x"
                .parse()
                .unwrap();
        assert_eq!(
            RedactedUrl::new(&uri).to_string(),
            "https://REDACTED:REDACTED@files.example:8443/a/b?X-Amz-Signature=REDACTED&keep=1&sig=REDACTED&x"
        );
        let plain: Uri = "http://api.example/users?id=7".parse().unwrap();
        assert_eq!(
            RedactedUrl::new(&plain).to_string(),
            "http://api.example/users?id=7"
        );
        assert_eq!(server_address(&plain), Some(("api.example", Some(80))));
    }

    #[test]
    fn url_parts() {
        // Origin form: no scheme, no authority.
        let origin: Uri = "/a?sig=1".parse().unwrap();
        assert_eq!(RedactedUrl::new(&origin).to_string(), "/a?sig=REDACTED");
        // Authority form (CONNECT).
        let connect: Uri = "proxy.example:443".parse().unwrap();
        assert_eq!(RedactedUrl::new(&connect).to_string(), "proxy.example:443");
        // A scheme without authority.
        let url = RedactedUrl::from_parts(Some("file"), None, "/etc/hosts", None);
        assert_eq!(url.to_string(), "file:/etc/hosts");
    }

    #[test]
    fn legacy_opt_in_parsing() {
        assert!(legacy_opt_in(Some("http/dup")));
        assert!(legacy_opt_in(Some("database,http/dup")));
        assert!(legacy_opt_in(Some("database, HTTP/DUP")));
        assert!(!legacy_opt_in(Some("http")));
        assert!(!legacy_opt_in(Some("")));
        assert!(!legacy_opt_in(None));
    }

    #[test]
    fn markers() {
        let mut extensions = Extensions::new();
        assert!(!DisablePropagation::is_set(&extensions));
        assert_eq!(ResendCount::of(&extensions), None);
        extensions.insert(DisablePropagation);
        extensions.insert(ResendCount(0));
        assert!(DisablePropagation::is_set(&extensions));
        assert_eq!(ResendCount::of(&extensions), None);
        extensions.insert(ResendCount(3));
        assert_eq!(ResendCount::of(&extensions), Some(3));
    }

    #[test]
    fn client_options_propagation_switches() {
        let mut extensions = Extensions::new();
        let options = ClientOptions::new();
        assert!(options.propagates(&extensions));
        assert!(!options.clone().propagation(false).propagates(&extensions));
        extensions.insert(DisablePropagation);
        assert!(!options.propagates(&extensions));
        let options = options
            .request_headers([HeaderName::from_static("x-a")])
            .legacy_http_attributes(true);
        assert_eq!(options.captured_request_headers(), ["x-a"]);
        assert!(options.captured_response_headers().is_empty());
        assert!(options.records_legacy_attributes());
    }

    #[test]
    fn client_request_from_parts() {
        let method = Method::from_bytes(b"PURGE").unwrap();
        let url = RedactedUrl::from_parts(Some("http"), Some("[::1]:3000"), "/", None);
        let request = ClientRequest::from_parts(&method, url, Some("[::1]"), Some(3000))
            .with_resend_count(Some(0));
        assert_eq!(request.method_attribute(), "_OTHER");
        assert_eq!(request.method_original(), Some("PURGE"));
        assert_eq!(request.span_name(), "HTTP");
        assert_eq!(request.server_address(), Some("::1"));
        assert_eq!(request.server_port(), Some(3000));
        assert_eq!(request.resend_count(), None);
        assert_eq!(request.url_full().to_string(), "http://[::1]:3000/");
    }
}
