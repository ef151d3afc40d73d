//! OTLP over gRPC with tonic.

use std::sync::{Arc, OnceLock};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use super::{Attempt, Compression, OtlpConfig, OtlpError, note_partial_success};

/// A lazily connected gRPC channel (tonic needs a runtime to create one,
/// which exists only on the export thread).
#[derive(Clone)]
pub(super) struct GrpcTransport {
    endpoint: Endpoint,
    channel: Arc<OnceLock<Channel>>,
    metadata: MetadataMap,
    gzip: bool,
}

impl GrpcTransport {
    pub(super) fn new(config: &OtlpConfig, uri: http::Uri) -> Result<Self, OtlpError> {
        let invalid = || {
            OtlpError::InvalidEndpoint(
                super::config::redact_endpoint(&config.endpoint).into_owned(),
            )
        };
        #[allow(unused_mut)]
        let mut endpoint = Endpoint::from(uri.clone()).timeout(config.timeout);
        if uri.scheme_str() == Some("https") {
            #[cfg(feature = "tls")]
            {
                endpoint = endpoint
                    .tls_config(tonic::transport::ClientTlsConfig::new().with_webpki_roots())
                    .map_err(|_| invalid())?;
            }
            #[cfg(not(feature = "tls"))]
            return Err(invalid());
        }
        let mut metadata = MetadataMap::new();
        for (k, v) in &config.headers {
            let key = MetadataKey::from_bytes(k.as_bytes())
                .map_err(|_| OtlpError::InvalidHeader(k.clone()))?;
            let value = MetadataValue::try_from(v.as_str())
                .map_err(|_| OtlpError::InvalidHeader(k.clone()))?;
            metadata.append(key, value);
        }
        Ok(GrpcTransport {
            endpoint,
            channel: Arc::new(OnceLock::new()),
            metadata,
            gzip: config.compression == Compression::Gzip,
        })
    }

    pub(super) async fn send(&self, request: ExportTraceServiceRequest) -> Attempt {
        let channel = self
            .channel
            .get_or_init(|| self.endpoint.connect_lazy())
            .clone();
        let mut client = TraceServiceClient::new(channel);
        if self.gzip {
            client = client
                .send_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Gzip);
        }
        let mut request = tonic::Request::new(request);
        *request.metadata_mut() = self.metadata.clone();
        match client.export(request).await {
            Ok(response) => {
                note_partial_success(response.get_ref());
                Attempt::Delivered
            }
            Err(status) => {
                use tonic::Code;
                let reason = format!("gRPC {:?}: {}", status.code(), status.message());
                match status.code() {
                    Code::Unavailable
                    | Code::Cancelled
                    | Code::DeadlineExceeded
                    | Code::Aborted
                    | Code::OutOfRange
                    | Code::DataLoss
                    | Code::ResourceExhausted => Attempt::Retry {
                        reason,
                        after: None,
                    },
                    _ => Attempt::Rejected(reason),
                }
            }
        }
    }
}
