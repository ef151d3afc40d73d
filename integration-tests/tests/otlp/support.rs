//! An OTLP receiver for tests: HTTP (protobuf and JSON, gzip) and gRPC,
//! decoding with the official message types, answering from a script;
//! and hostile peers (a listener that never answers).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::io::Read as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
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
    /// This status with a body of this many bytes (gRPC: OK with a partial
    /// success whose message is that long).
    Body(u16, usize),
    /// This status announcing a 1 MB body, then 16 KB of it, then the
    /// connection is cut.
    CutMidBody(u16),
    /// This status, then a body that never comes.
    StalledBody(u16),
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

/// A TCP listener that accepts connections and never reads from or
/// answers them; stops when dropped.
pub(crate) struct Silent {
    pub(crate) addr: SocketAddr,
    accepted: Arc<Mutex<usize>>,
    _runtime: RuntimeGuard,
}

impl Silent {
    pub(crate) fn start() -> Self {
        let runtime = runtime();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(Mutex::new(0));
        let count = Arc::clone(&accepted);
        runtime.spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                *count.lock().unwrap() += 1;
                held.push(stream);
            }
        });
        Silent {
            addr,
            accepted,
            _runtime: RuntimeGuard(Some(runtime)),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connections accepted so far.
    pub(crate) fn accepted(&self) -> usize {
        *self.accepted.lock().unwrap()
    }
}

/// Shuts a runtime down without waiting for its tasks.
struct RuntimeGuard(Option<tokio::runtime::Runtime>);

impl Drop for RuntimeGuard {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
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

type Body = BoxBody<Bytes, std::io::Error>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

async fn handle_http(
    state: Shared,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Body>, Infallible> {
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
                .body(full(Bytes::from_static(b"try later")))
                .unwrap()
        }
        Reply::Body(code, len) => http::Response::builder()
            .status(code)
            .header("content-type", "application/x-protobuf")
            .body(full(vec![b'x'; len]))
            .unwrap(),
        Reply::CutMidBody(code) => {
            use futures_util::StreamExt as _;
            let data = futures_util::stream::once(async {
                Ok(Frame::data(Bytes::from(vec![b'x'; 16 * 1024])))
            });
            // Cut once the status and the first bytes are out (hyper would
            // drop them unsent if the error came at once).
            let cut = futures_util::stream::once(async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "cut mid-body",
                ))
            });
            http::Response::builder()
                .status(code)
                .header("content-length", "1048576")
                .body(BodyExt::boxed(StreamBody::new(data.chain(cut))))
                .unwrap()
        }
        Reply::StalledBody(code) => {
            let never = futures_util::stream::pending::<Result<Frame<Bytes>, std::io::Error>>();
            http::Response::builder()
                .status(code)
                .header("content-length", "100")
                .body(BodyExt::boxed(StreamBody::new(never)))
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
                .body(full(body))
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
            Reply::Body(_, len) => Ok(tonic::Response::new(ExportTraceServiceResponse {
                partial_success: Some(ExportTracePartialSuccess {
                    rejected_spans: 0,
                    error_message: "x".repeat(len),
                }),
            })),
            Reply::Ok | Reply::Slow(..) | Reply::CutMidBody(_) | Reply::StalledBody(_) => {
                Ok(tonic::Response::new(ExportTraceServiceResponse {
                    partial_success: None,
                }))
            }
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
