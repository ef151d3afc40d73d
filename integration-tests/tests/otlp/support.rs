//! An OTLP receiver for tests: HTTP (protobuf and JSON, gzip) and gRPC,
//! decoding with the official message types, answering from a script.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub(crate) enum Reply {
    /// 200 with an empty response message.
    Ok,
    /// This status, with a `Retry-After` header when given.
    Status(u16, Option<&'static str>),
    /// Waits, then answers.
    Slow(Duration, Box<Reply>),
}

/// One request as received.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) at: Instant,
    pub(crate) path: String,
    pub(crate) headers: http::HeaderMap,
    pub(crate) raw: Vec<u8>,
    pub(crate) request: Option<ExportTraceServiceRequest>,
}

#[derive(Clone, Default)]
struct Shared {
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Shared {
    fn next_reply(&self) -> Reply {
        self.script.lock().unwrap().pop_front().unwrap_or(Reply::Ok)
    }
}

/// A running receiver; stops when dropped.
pub(crate) struct Receiver {
    pub(crate) addr: SocketAddr,
    shared: Shared,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Receiver {
    /// An OTLP/HTTP receiver answering `script` in order, then 200s.
    pub(crate) fn http(script: Vec<Reply>) -> Self {
        let runtime = runtime();
        let shared = Shared {
            script: Arc::new(Mutex::new(script.into())),
            ..Shared::default()
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let state = shared.clone();
        runtime.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let state = state.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle_http(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            shared,
            runtime: Some(runtime),
        }
    }

    /// An OTLP/gRPC receiver answering `script` in order (statuses map to
    /// gRPC codes: 503 → UNAVAILABLE, 400 → INVALID_ARGUMENT), then OK.
    pub(crate) fn grpc(script: Vec<Reply>) -> Self {
        let runtime = runtime();
        let shared = Shared {
            script: Arc::new(Mutex::new(script.into())),
            ..Shared::default()
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let service = TraceServiceServer::new(GrpcReceiver(shared.clone()))
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
        runtime.spawn(async move {
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
                .unwrap();
        });
        Receiver {
            addr,
            shared,
            runtime: Some(runtime),
        }
    }

    /// An address where nothing listens.
    pub(crate) fn closed_address() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn decode(headers: &http::HeaderMap, body: &[u8]) -> Option<ExportTraceServiceRequest> {
    let mut raw = body.to_vec();
    if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .read_to_end(&mut out)
            .ok()?;
        raw = out;
    }
    match headers.get("content-type")?.to_str().ok()? {
        "application/x-protobuf" => ExportTraceServiceRequest::decode(raw.as_slice()).ok(),
        "application/json" => serde_json::from_slice(&raw).ok(),
        _ => None,
    }
}

async fn reply_after(reply: Reply) -> Reply {
    let mut reply = reply;
    while let Reply::Slow(delay, next) = reply {
        tokio::time::sleep(delay).await;
        reply = *next;
    }
    reply
}

async fn handle_http(
    state: Shared,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let raw = body
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let request = decode(&parts.headers, &raw);
    let json = parts
        .headers
        .get("content-type")
        .is_some_and(|v| v == "application/json");
    state.received.lock().unwrap().push(Received {
        at: Instant::now(),
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        raw,
        request,
    });
    let response = match reply_after(state.next_reply()).await {
        Reply::Status(code, retry_after) => {
            let mut response = http::Response::builder().status(code);
            if let Some(after) = retry_after {
                response = response.header("retry-after", after);
            }
            response
                .body(Full::new(Bytes::from_static(b"try later")))
                .unwrap()
        }
        Reply::Ok | Reply::Slow(..) => {
            let message = ExportTraceServiceResponse {
                partial_success: None,
            };
            let (body, content_type) = if json {
                (serde_json::to_vec(&message).unwrap(), "application/json")
            } else {
                (message.encode_to_vec(), "application/x-protobuf")
            };
            http::Response::builder()
                .header("content-type", content_type)
                .body(Full::new(Bytes::from(body)))
                .unwrap()
        }
    };
    Ok(response)
}

struct GrpcReceiver(Shared);

#[tonic::async_trait]
impl TraceService for GrpcReceiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        let message = request.into_inner();
        self.0.received.lock().unwrap().push(Received {
            at: Instant::now(),
            path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export".into(),
            headers,
            raw: message.encode_to_vec(),
            request: Some(message),
        });
        match reply_after(self.0.next_reply()).await {
            Reply::Status(503, _) => Err(tonic::Status::unavailable("busy")),
            Reply::Status(_, _) => Err(tonic::Status::invalid_argument("bad data")),
            Reply::Ok | Reply::Slow(..) => Ok(tonic::Response::new(ExportTraceServiceResponse {
                partial_success: None,
            })),
        }
    }
}

/// The value of attribute `key`.
pub(crate) fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

/// A span by name.
pub(crate) fn span<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span named {name:?}"))
}
