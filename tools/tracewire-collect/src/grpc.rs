//! The OTLP/gRPC receiver: `TraceService/Export` and `LogsService/Export`
//! (opentelemetry-proto's generated tonic services) on their own listener.
//!
//! Bounds: a message larger than the body limit (as sent or once
//! decompressed) is refused before it is read whole; connections are at
//! most `max_connections` (more wait to be accepted), requests in
//! progress across every connection at most `max_connections` too (more
//! wait), and streams per connection at most
//! [`MAX_STREAMS_PER_CONNECTION`]. A request may take
//! [`REQUEST_TIMEOUT`] (then `CANCELLED`); a connection lives at most
//! [`MAX_CONNECTION_AGE`] (then it is asked to go away, and closed
//! [`MAX_CONNECTION_AGE_GRACE`] later), so idle or stalled connections
//! cannot hold the connection permits for ever.
//!
//! Answers, as OTLP/gRPC asks: a full queue is `UNAVAILABLE` with a
//! `google.rpc.RetryInfo` detail (retry after 1 s); a message that does
//! not decode (bad protobuf, bad gzip, a truncated frame) is
//! `INVALID_ARGUMENT`; a message over the limit is `RESOURCE_EXHAUSTED`
//! (without `RetryInfo`, so clients do not retry it); bad span ids are a
//! partial success, as over HTTP.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::http::{HeaderValue, Response};
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tonic::codec::CompressionEncoding;
use tonic::transport::Server;
use tonic::transport::server::{Connected, TcpConnectInfo};
use tonic::{Code, Request, Status};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::util::MapResponseLayer;

use crate::ingest::{Ingest, Refused};

/// Streams (requests) one HTTP/2 connection may have open at once.
pub const MAX_STREAMS_PER_CONNECTION: u32 = 16;

/// The longest a gRPC request may take, reading its message included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The longest a gRPC connection is kept; clients reconnect.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);

/// How long a connection past [`MAX_CONNECTION_AGE`] gets to finish its
/// requests before it is closed.
pub const MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(30);

/// The delay a throttled client is asked to wait (`RetryInfo`).
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// The OTLP services over the queue.
#[derive(Clone, Debug)]
struct Receiver {
    ingest: Ingest,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        self.ingest
            .traces(request.into_inner())
            .map(tonic::Response::new)
            .map_err(refused)
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, Status> {
        self.ingest
            .logs(request.into_inner())
            .map(tonic::Response::new)
            .map_err(refused)
    }
}

/// The status of a refused export: `UNAVAILABLE` either way (both are
/// retryable), with `RetryInfo` when the queue is full.
fn refused(why: Refused) -> Status {
    match why {
        Refused::Full => Status::with_details(
            Code::Unavailable,
            "the ingest queue is full; retry later",
            retry_info_details(RETRY_DELAY),
        ),
        Refused::Stopping => Status::unavailable("the collector is stopping"),
    }
}

/// The status details of a throttled export: a `google.rpc.Status`
/// (`UNAVAILABLE`) holding a `google.rpc.RetryInfo`.
fn retry_info_details(delay: Duration) -> Bytes {
    Bytes::from(crate::retry_info::status_with_retry(
        Code::Unavailable as i32,
        "the ingest queue is full; retry later",
        delay,
    ))
}

/// tonic answers a request it cannot decode with `INTERNAL` and one over
/// the size limit with `OUT_OF_RANGE`; OTLP asks for `INVALID_ARGUMENT`
/// for bad data, and `OUT_OF_RANGE` is one of the codes its clients retry.
/// The services here never answer either code themselves, so every such
/// answer comes from reading the request and is rewritten:
/// `INTERNAL` → `INVALID_ARGUMENT`, `OUT_OF_RANGE` → `RESOURCE_EXHAUSTED`.
fn otlp_status_codes<B>(mut response: Response<B>) -> Response<B> {
    let rewrite = match response
        .headers()
        .get(Status::GRPC_STATUS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(Code::from_i32)
    {
        Some(Code::Internal) => Some(Code::InvalidArgument),
        Some(Code::OutOfRange) => Some(Code::ResourceExhausted),
        _ => None,
    };
    if let Some(code) = rewrite {
        response
            .headers_mut()
            .insert(Status::GRPC_STATUS, HeaderValue::from(code as i32));
    }
    response
}

/// An accepted connection holding one of the listener's connection
/// permits until it is closed.
#[derive(Debug)]
struct PermittedStream {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for PermittedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for PermittedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

impl Connected for PermittedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

/// The listener's connections, each accepted once a permit is free (at
/// most `max_connections` open at once).
fn incoming(
    listener: TcpListener,
    max_connections: usize,
) -> impl futures_util::Stream<Item = io::Result<PermittedStream>> {
    let permits = Arc::new(Semaphore::new(max_connections));
    futures_util::stream::unfold((listener, permits), |(listener, permits)| async move {
        let permit = permits.clone().acquire_owned().await.ok()?;
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let stream = PermittedStream {
                        stream,
                        _permit: permit,
                    };
                    return Some((Ok(stream), (listener, permits)));
                }
                // Out of file descriptors and the like: wait a little
                // rather than spin (an error here would end the server).
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    })
}

/// Serves OTLP/gRPC on `listener` until `stopped` turns true, then lets
/// the open connections finish their requests.
pub(crate) async fn serve(
    listener: TcpListener,
    ingest: Ingest,
    mut stopped: watch::Receiver<bool>,
    body_limit: usize,
    max_connections: usize,
) {
    let receiver = Receiver { ingest };
    let traces = TraceServiceServer::new(receiver.clone())
        .max_decoding_message_size(body_limit)
        .accept_compressed(CompressionEncoding::Gzip);
    let logs = LogsServiceServer::new(receiver)
        .max_decoding_message_size(body_limit)
        .accept_compressed(CompressionEncoding::Gzip);
    let incoming = incoming(listener, max_connections);
    let _ = Server::builder()
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .timeout(REQUEST_TIMEOUT)
        .max_connection_age(MAX_CONNECTION_AGE)
        .max_connection_age_grace(MAX_CONNECTION_AGE_GRACE)
        .layer(GlobalConcurrencyLimitLayer::new(max_connections))
        .layer(MapResponseLayer::new(otlp_status_codes))
        .add_service(traces)
        .add_service(logs)
        .serve_with_incoming_shutdown(incoming, async move {
            let _ = stopped.wait_for(|s| *s).await;
        })
        .await;
}
