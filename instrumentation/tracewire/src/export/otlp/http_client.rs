//! The HTTP client the OTLP/HTTP exporter sends with, replaceable by the
//! user's own.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// An error from an [`HttpClient`]: the request did not get a response.
pub type HttpError = Box<dyn std::error::Error + Send + Sync>;

/// The future an [`HttpClient`] returns.
pub type HttpFuture<'a> =
    Pin<Box<dyn Future<Output = Result<http::Response<Bytes>, HttpError>> + Send + 'a>>;

/// Sends one HTTP request and returns the whole response.
///
/// The exporter runs it inside its own tokio runtime, so implementations may
/// use tokio I/O. Implement it to bring your own client settings (proxies,
/// custom TLS roots, client certificates):
///
/// ```
/// use tracewire::export::otlp::{HttpClient, HttpFuture};
///
/// #[derive(Debug)]
/// struct Refuse;
///
/// impl HttpClient for Refuse {
///     fn send(&self, _request: http::Request<bytes::Bytes>) -> HttpFuture<'_> {
///         Box::pin(async { Err("offline".into()) })
///     }
/// }
/// ```
pub trait HttpClient: Send + Sync + fmt::Debug + 'static {
    /// Sends `request`; an `Err` means no response was received.
    fn send(&self, request: http::Request<Bytes>) -> HttpFuture<'_>;
}

#[cfg(feature = "tls")]
type Connector = hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>;
#[cfg(not(feature = "tls"))]
type Connector = hyper_util::client::legacy::connect::HttpConnector;

/// The longest response body read (OTLP responses are small; a receiver
/// answering with more is cut off rather than growing memory).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The default client: hyper with a connection pool, HTTP/1.1, and with the
/// `tls` feature (on by default) HTTPS through rustls and the Mozilla root
/// certificates.
#[derive(Clone)]
pub struct HyperClient {
    client: Client<Connector, Full<Bytes>>,
}

impl fmt::Debug for HyperClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperClient").finish_non_exhaustive()
    }
}

impl HyperClient {
    /// A client for `http://` and, with the `tls` feature, `https://` URLs.
    ///
    /// # Errors
    /// When TLS cannot be set up (no usable cipher suites).
    pub fn new() -> Result<Self, HttpError> {
        let mut http = hyper_util::client::legacy::connect::HttpConnector::new();
        http.set_nodelay(true);
        http.enforce_http(false);
        #[cfg(feature = "tls")]
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(std::sync::Arc::new(
                rustls::crypto::ring::default_provider(),
            ))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        #[cfg(not(feature = "tls"))]
        let connector = http;
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(std::time::Duration::from_secs(30))
            .build(connector);
        Ok(HyperClient { client })
    }
}

impl HttpClient for HyperClient {
    fn send(&self, request: http::Request<Bytes>) -> HttpFuture<'_> {
        Box::pin(async move {
            let response = self.client.request(request.map(Full::new)).await?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body))
        })
    }
}
