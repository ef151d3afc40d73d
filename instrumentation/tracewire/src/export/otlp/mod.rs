//! OTLP exporters: HTTP/protobuf (the default), HTTP/JSON and gRPC.
//!
//! [`OtlpExporter`] sends each batch as one `ExportTraceServiceRequest` to an
//! OpenTelemetry Collector, Jaeger, Grafana Tempo or any OTLP receiver, as
//! the OpenTelemetry SDKs do: the resource, instrumentation scopes, span
//! kinds, status, events, links, dropped counts and attribute types are all
//! kept. Retryable failures (HTTP 429, 502, 503, 504, connection errors,
//! gRPC `UNAVAILABLE` and the like) are retried with exponential back-off and
//! jitter, honouring `Retry-After`, within the export timeout (a
//! `Retry-After` longer than the time left ends the export at once); other
//! failures are not retried. A 2xx answer counts as delivered whatever its
//! body (at most 64 KiB of a response is read, and a body cut short keeps
//! its status), so a delivered batch is never sent twice. It runs on the batch processor's thread, so
//! none of this ever slows the code that produced the spans.
//!
//! ```no_run
//! use tracewire::export::otlp::{OtlpConfig, OtlpExporter, Protocol};
//! use tracewire::export::{BatchConfig, BatchSpanProcessor, Resource};
//!
//! let config = OtlpConfig::new(Protocol::HttpProtobuf, "http://collector:4318/v1/traces");
//! let exporter = OtlpExporter::new(Resource::new("checkout"), config).unwrap();
//! let processor = BatchSpanProcessor::new(exporter, BatchConfig::default());
//! let layer = tracewire::TracewireLayer::new(processor);
//! ```

mod config;
#[cfg(feature = "grpc")]
mod grpc;
mod http_client;

pub use config::{Compression, OtlpConfig, Protocol, RetryPolicy};
pub use http_client::{HttpClient, HttpError, HttpFuture, HyperClient};

use http_client::MAX_RESPONSE_BYTES;

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;

use super::{ExportError, ExportFuture, Resource, SpanExporter, proto};
use crate::SpanData;

/// The smallest capacity the body buffer is given before encoding.
const MIN_BODY_CAPACITY: usize = 16 * 1024;

/// Why an exporter could not be created.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    /// The endpoint is not an absolute `http://` or `https://` URL.
    #[error("invalid OTLP endpoint {0:?}: expected an absolute http:// or https:// URL")]
    InvalidEndpoint(String),
    /// A configured header name or value is not valid in HTTP.
    #[error("invalid OTLP header {0:?}")]
    InvalidHeader(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(HttpError),
    /// gRPC was asked for, but the crate was built without the `grpc` feature.
    #[error("OTLP over gRPC needs tracewire's `grpc` feature")]
    GrpcDisabled,
}

/// What one attempt to send a batch came to.
#[derive(Debug)]
enum Attempt {
    Delivered,
    /// Worth retrying, after `after` if the receiver said so.
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    Rejected(String),
}

/// Sends with retries until delivered, rejected, out of attempts or past
/// `deadline`.
async fn with_retries<F, Fut>(
    policy: RetryPolicy,
    deadline: Instant,
    mut attempt: F,
) -> Result<(), ExportError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt>,
{
    let mut attempts: u32 = 0;
    loop {
        attempts = attempts.saturating_add(1);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let outcome = tokio::time::timeout(remaining, attempt())
            .await
            .map_err(|_| ExportError::Timeout)?;
        match outcome {
            Attempt::Delivered => return Ok(()),
            Attempt::Rejected(reason) => return Err(ExportError::Rejected(reason)),
            Attempt::Retry { reason, after } => {
                if attempts >= policy.max_attempts.max(1) {
                    return Err(ExportError::Unavailable(format!(
                        "{reason} (after {attempts} attempts)"
                    )));
                }
                let delay = after.unwrap_or_else(|| policy.backoff(attempts));
                // Compared with what is left rather than added to an
                // Instant: a huge Retry-After cannot overflow. Waiting
                // longer than is left only to give up is pointless, so a
                // delay past the deadline ends the export now.
                if delay >= deadline.saturating_duration_since(Instant::now()) {
                    return Err(ExportError::Unavailable(format!(
                        "{reason} (no time left for a retry within the export timeout)"
                    )));
                }
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// The delay a `Retry-After` header asks for: seconds or an HTTP date (a
/// past date is no delay). Longer delays than any export may take are
/// clamped to [`OtlpConfig::MAX_TIMEOUT`]; a malformed value is ignored
/// (the computed back-off applies).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    let delay = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is simply very long.
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let date = httpdate::parse_http_date(value).ok()?;
        date.duration_since(SystemTime::now()).unwrap_or_default()
    };
    Some(delay.min(OtlpConfig::MAX_TIMEOUT))
}

/// At most this many bytes of an error response's body (or of a partial
/// success's message) go into a message.
const ERROR_DETAIL_BYTES: usize = 256;

/// The start of an error response's body for a message: at most
/// [`ERROR_DETAIL_BYTES`], control characters replaced by spaces.
fn error_detail(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(ERROR_DETAIL_BYTES)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Warns when the receiver accepted only part of a batch.
fn note_partial_success(response: &ExportTraceServiceResponse) {
    if let Some(partial) = &response.partial_success
        && (partial.rejected_spans > 0 || !partial.error_message.is_empty())
    {
        tracing::warn!(
            target: "tracewire::export",
            rejected_spans = partial.rejected_spans,
            message = %error_detail(partial.error_message.as_bytes()),
            "the OTLP receiver rejected part of a batch"
        );
    }
}

enum Transport {
    Http {
        client: Arc<dyn HttpClient>,
        uri: http::Uri,
        headers: http::HeaderMap,
    },
    #[cfg(feature = "grpc")]
    Grpc(Box<grpc::GrpcTransport>),
}

/// What one export sends, prepared before its future runs.
enum Payload {
    /// The encoded (and maybe compressed) HTTP body.
    Http(Result<Bytes, ExportError>),
    /// The message for tonic, which encodes it itself.
    #[cfg(feature = "grpc")]
    Grpc(ExportTraceServiceRequest),
}

/// Where HTTP bodies are encoded.
#[derive(Debug, Default)]
struct BodyBuffer {
    buf: BytesMut,
    /// The longest body encoded so far: what is reserved before encoding.
    largest: usize,
}

/// Exports spans over OTLP. See the [module docs](self).
pub struct OtlpExporter {
    resource: Resource,
    config: OtlpConfig,
    transport: Transport,
    /// The HTTP request message, reused from batch to batch.
    buffer: proto::RequestBuffer,
    /// The encoded HTTP body's buffer, reused from batch to batch.
    body: BodyBuffer,
    shut_down: bool,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("service", &self.resource.service_name())
            .field("protocol", &self.config.protocol)
            .field("endpoint", &config::redact_endpoint(&self.config.endpoint))
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// An exporter for `resource` with `config`, using the default
    /// [`HyperClient`] for HTTP.
    ///
    /// # Errors
    /// When the endpoint or a header is invalid, or gRPC is asked for
    /// without the `grpc` feature.
    pub fn new(resource: Resource, config: OtlpConfig) -> Result<Self, OtlpError> {
        let client: Option<Arc<dyn HttpClient>> = match config.protocol {
            Protocol::Grpc => None,
            _ => Some(Arc::new(HyperClient::new().map_err(OtlpError::Client)?)),
        };
        Self::build(resource, config, client)
    }

    /// An HTTP exporter sending through `client` (ignored for gRPC).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_http_client(
        resource: Resource,
        config: OtlpConfig,
        client: impl HttpClient,
    ) -> Result<Self, OtlpError> {
        Self::build(resource, config, Some(Arc::new(client)))
    }

    fn build(
        resource: Resource,
        config: OtlpConfig,
        client: Option<Arc<dyn HttpClient>>,
    ) -> Result<Self, OtlpError> {
        let mut config = config;
        config.timeout = OtlpConfig::effective_timeout(config.timeout);
        let uri: http::Uri = config
            .endpoint
            .parse()
            .ok()
            .filter(|u: &http::Uri| {
                matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some()
            })
            .ok_or_else(|| {
                OtlpError::InvalidEndpoint(config::redact_endpoint(&config.endpoint).into_owned())
            })?;
        let transport = match (config.protocol, client) {
            (Protocol::Grpc, _) => Self::grpc_transport(&config, uri)?,
            (_, client) => {
                let mut headers = http::HeaderMap::new();
                for (k, v) in &config.headers {
                    let name = http::HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| OtlpError::InvalidHeader(k.clone()))?;
                    let value = http::HeaderValue::from_str(v)
                        .map_err(|_| OtlpError::InvalidHeader(k.clone()))?;
                    headers.append(name, value);
                }
                let client = match client {
                    Some(c) => c,
                    None => Arc::new(HyperClient::new().map_err(OtlpError::Client)?),
                };
                Transport::Http {
                    client,
                    uri,
                    headers,
                }
            }
        };
        Ok(OtlpExporter {
            resource,
            config,
            transport,
            buffer: proto::RequestBuffer::default(),
            body: BodyBuffer::default(),
            shut_down: false,
        })
    }

    #[cfg(feature = "grpc")]
    fn grpc_transport(config: &OtlpConfig, uri: http::Uri) -> Result<Transport, OtlpError> {
        grpc::GrpcTransport::new(config, uri).map(|t| Transport::Grpc(Box::new(t)))
    }

    #[cfg(not(feature = "grpc"))]
    fn grpc_transport(_: &OtlpConfig, _: http::Uri) -> Result<Transport, OtlpError> {
        Err(OtlpError::GrpcDisabled)
    }

    /// The settings in use.
    pub fn config(&self) -> &OtlpConfig {
        &self.config
    }

    /// The endpoint for messages, credentials hidden.
    fn shown_endpoint(&self) -> std::borrow::Cow<'_, str> {
        config::redact_endpoint(&self.config.endpoint)
    }

    /// The HTTP request body for `request`, encoded and compressed.
    ///
    /// Protobuf is encoded straight into `body`, which keeps its
    /// allocation from batch to batch: the previous body's `Bytes` are
    /// dropped once its export is over, so `reserve` gets the same memory
    /// back, and the request is sent from it without a copy.
    fn http_body(
        config: &OtlpConfig,
        request: &ExportTraceServiceRequest,
        body: &mut BodyBuffer,
    ) -> Result<Bytes, ExportError> {
        let encoded = match config.protocol {
            Protocol::HttpJson => Bytes::from(
                serde_json::to_vec(request).map_err(|e| ExportError::Rejected(e.to_string()))?,
            ),
            _ => {
                let buf = &mut body.buf;
                buf.clear();
                buf.reserve(body.largest.max(MIN_BODY_CAPACITY));
                // A `BytesMut` grows as needed: `encode` cannot run short.
                request
                    .encode(buf)
                    .map_err(|e| ExportError::Rejected(e.to_string()))?;
                body.largest = body.largest.max(buf.len());
                buf.split().freeze()
            }
        };
        match config.compression {
            Compression::None => Ok(encoded),
            Compression::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(
                    Vec::with_capacity(encoded.len() / 4),
                    flate2::Compression::fast(),
                );
                gz.write_all(&encoded)
                    .and_then(|()| gz.finish())
                    .map(Bytes::from)
                    .map_err(|e| ExportError::Io(e.to_string()))
            }
        }
    }

    async fn send_http(
        &self,
        client: &dyn HttpClient,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> Attempt {
        let json = self.config.protocol == Protocol::HttpJson;
        let mut request = http::Request::post(uri.clone())
            .header(
                http::header::CONTENT_TYPE,
                if json {
                    "application/json"
                } else {
                    "application/x-protobuf"
                },
            )
            .header(
                http::header::USER_AGENT,
                concat!("tracewire/", env!("CARGO_PKG_VERSION")),
            );
        if self.config.compression == Compression::Gzip {
            request = request.header(http::header::CONTENT_ENCODING, "gzip");
        }
        let Ok(mut request) = request.body(body) else {
            return Attempt::Rejected("cannot build the request".into());
        };
        request.headers_mut().extend(headers.clone());
        let response = match client.send(request).await {
            Ok(response) => response,
            Err(e) => {
                return Attempt::Retry {
                    reason: format!("cannot reach {}: {e}", self.shown_endpoint()),
                    after: None,
                };
            }
        };
        let status = response.status();
        if status.is_success() {
            // A success is a success, whatever the body: it only matters
            // for a partial success, looked for within the bound (a
            // truncated or garbled body just does not decode).
            let body = response.body();
            // A body of the full bound may have been cut: not decoded.
            if body.len() < MAX_RESPONSE_BYTES {
                let decoded = if json {
                    serde_json::from_slice(body).ok()
                } else {
                    ExportTraceServiceResponse::decode(body.as_ref()).ok()
                };
                if let Some(decoded) = decoded {
                    note_partial_success(&decoded);
                }
            }
            return Attempt::Delivered;
        }
        let reason = format!(
            "{} answered {status} {}",
            self.shown_endpoint(),
            error_detail(response.body())
        );
        match status.as_u16() {
            429 | 502 | 503 | 504 => Attempt::Retry {
                reason,
                after: retry_after(response.headers()),
            },
            _ => Attempt::Rejected(reason),
        }
    }
}

impl SpanExporter for OtlpExporter {
    fn export(&mut self, batch: Vec<SpanData>) -> ExportFuture<'_> {
        if self.shut_down {
            return Box::pin(async { Err(ExportError::Shutdown) });
        }
        let now = Instant::now();
        // The timeout is clamped in `build`; checked all the same.
        let deadline = now
            .checked_add(self.config.timeout)
            .unwrap_or_else(|| now + OtlpConfig::DEFAULT_TIMEOUT);
        let policy = self.config.retry;
        let payload = match &self.transport {
            // Encoded now, from a message reused from batch to batch.
            Transport::Http { .. } => Payload::Http(Self::http_body(
                &self.config,
                self.buffer.fill(&self.resource, &batch),
                &mut self.body,
            )),
            #[cfg(feature = "grpc")]
            Transport::Grpc(_) => Payload::Grpc(proto::export_request(&self.resource, &batch)),
        };
        drop(batch);
        Box::pin(async move {
            match (&self.transport, payload) {
                (
                    Transport::Http {
                        client,
                        uri,
                        headers,
                    },
                    Payload::Http(body),
                ) => {
                    let body = body?;
                    let this = &*self;
                    with_retries(policy, deadline, || {
                        this.send_http(client.as_ref(), uri, headers, body.clone())
                    })
                    .await
                }
                #[cfg(feature = "grpc")]
                (Transport::Grpc(grpc), Payload::Grpc(request)) => {
                    let grpc = grpc.as_ref().clone();
                    with_retries(policy, deadline, || grpc.send(request.clone())).await
                }
                #[cfg(feature = "grpc")]
                _ => Err(ExportError::Rejected(
                    "internal error: payload made for another transport".into(),
                )),
            }
        })
    }

    fn shutdown(&mut self) -> ExportFuture<'_> {
        self.shut_down = true;
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        h.insert(http::header::RETRY_AFTER, later.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        h.insert(http::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn retry_after_huge_or_malformed() {
        let mut h = http::HeaderMap::new();
        for (value, expected) in [
            ("1000000000000", Some(OtlpConfig::MAX_TIMEOUT)),
            ("18446744073709551616", Some(OtlpConfig::MAX_TIMEOUT)),
            (
                "Fri, 31 Dec 9999 23:59:59 GMT",
                Some(OtlpConfig::MAX_TIMEOUT),
            ),
            ("Thu, 01 Jan 1970 00:00:00 GMT", Some(Duration::ZERO)),
            ("-1", None),
            ("1.5", None),
            ("", None),
            ("Fri, 31 Dec 99999 23:59:59 GMT", None),
        ] {
            h.insert(http::header::RETRY_AFTER, value.parse().unwrap());
            assert_eq!(retry_after(&h), expected, "{value}");
        }
        h.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn a_retry_after_past_the_deadline_ends_the_export_at_once() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut calls = 0;
        let result = rt.block_on(with_retries(
            RetryPolicy::default(),
            Instant::now() + Duration::from_secs(10),
            || {
                calls += 1;
                async {
                    Attempt::Retry {
                        reason: "busy".into(),
                        after: Some(Duration::MAX),
                    }
                }
            },
        ));
        assert!(
            matches!(result, Err(ExportError::Unavailable(_))),
            "{result:?}"
        );
        assert_eq!(calls, 1);
    }

    #[test]
    fn error_details_are_bounded_and_printable() {
        let detail = error_detail(&[b'x'; 1 << 20]);
        assert_eq!(detail.len(), ERROR_DETAIL_BYTES);
        assert_eq!(
            error_detail(b"bad\r\nInjected: header\0"),
            "bad  Injected: header"
        );
    }

    #[test]
    fn timeouts_set_in_code_are_clamped() {
        for (timeout, expected) in [
            (Duration::MAX, OtlpConfig::MAX_TIMEOUT),
            (Duration::ZERO, OtlpConfig::DEFAULT_TIMEOUT),
        ] {
            let mut config = OtlpConfig::new(Protocol::HttpProtobuf, "http://c:4318/v1/traces");
            config.timeout = timeout;
            let exporter = OtlpExporter::new(Resource::new("t"), config).unwrap();
            assert_eq!(exporter.config().timeout, expected);
        }
    }

    #[test]
    fn invalid_endpoint_errors_hide_credentials() {
        let config = OtlpConfig::new(Protocol::HttpProtobuf, "ftp://u:hunter2@c/v1/traces");
        let err = OtlpExporter::new(Resource::new("t"), config).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
    }

    #[test]
    fn invalid_endpoints_are_errors() {
        for bad in ["collector:4318", "ftp://c/v1/traces", "/v1/traces"] {
            let config = OtlpConfig::new(Protocol::HttpProtobuf, bad);
            assert!(matches!(
                OtlpExporter::new(Resource::new("t"), config),
                Err(OtlpError::InvalidEndpoint(_))
            ));
        }
    }
}
