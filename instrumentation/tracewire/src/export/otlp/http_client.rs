//! The HTTP client the OTLP/HTTP exporter sends with, replaceable by the
//! user's own.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// An error from an [`HttpClient`]: the request did not get a response.
pub type HttpError = Box<dyn std::error::Error + Send + Sync>;

/// The future an [`HttpClient`] returns.
pub type HttpFuture<'a> =
    Pin<Box<dyn Future<Output = Result<http::Response<Bytes>, HttpError>> + Send + 'a>>;

/// Sends one HTTP request and returns the response.
///
/// The exporter looks at the status, the `Retry-After` header and at most
/// the first 64 KiB of the body (for a partial success, or for the message
/// of a failure), so implementations should stop reading the body there,
/// and return the response even when reading its body fails after the
/// status arrived: the status is the receiver's answer. [`HyperClient`]
/// does both.
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
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The longest wait for the rest of a response body once its status has
/// arrived: a receiver that answers and then stalls does not hold the
/// export until its timeout.
const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads at most [`MAX_RESPONSE_BYTES`] of `body`, for at most
/// [`BODY_READ_TIMEOUT`]. A body cut short (reset, error, stall) gives what
/// arrived so far: the status already is the answer.
async fn read_bounded(mut body: hyper::body::Incoming) -> Bytes {
    let mut read = BytesMut::new();
    let reading = async {
        while read.len() < MAX_RESPONSE_BYTES {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let take = data.len().min(MAX_RESPONSE_BYTES - read.len());
                        read.extend_from_slice(&data[..take]);
                    }
                }
                Some(Err(_)) | None => break,
            }
        }
    };
    let _ = tokio::time::timeout(BODY_READ_TIMEOUT, reading).await;
    // Dropping the rest of the body closes the connection rather than
    // reading on to reuse it.
    read.freeze()
}

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
            Ok(http::Response::from_parts(parts, read_bounded(body).await))
        })
    }
}
