//! A minimal OTLP/HTTP receiver on loopback: answers `200 OK` with an empty
//! `ExportTraceServiceResponse` to every `POST /v1/traces`, after reading
//! the whole body.
//!
//! It counts requests and bytes. Counting spans needs decoding each
//! request, which costs CPU that the exporters under test would share on a
//! small machine, so it is off unless [`Receiver::set_decode`] turns it on
//! (the benchmarks use it to check, outside the timed runs, that every span
//! arrives).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    bytes: AtomicU64,
    spans: AtomicU64,
    decode: AtomicBool,
}

/// A running receiver; stops when dropped.
#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    counters: Arc<Counters>,
    stop: Arc<Notify>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Receiver {
    /// Starts a receiver on `127.0.0.1` (a free port) in a thread of its own
    /// with a current-thread tokio runtime.
    ///
    /// # Errors
    /// When the runtime or the listening socket cannot be created.
    pub fn start() -> io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(Notify::new());
        let thread = {
            let counters = Arc::clone(&counters);
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("otlp-receiver".into())
                .spawn(move || runtime.block_on(serve(std_listener, counters, stop)))?
        };
        Ok(Receiver {
            addr,
            counters,
            stop,
            thread: Some(thread),
        })
    }

    /// The traces endpoint, `http://127.0.0.1:{port}/v1/traces`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    /// Export requests answered so far.
    pub fn requests(&self) -> u64 {
        self.counters.requests.load(Ordering::Relaxed)
    }

    /// Request body bytes received so far.
    pub fn bytes(&self) -> u64 {
        self.counters.bytes.load(Ordering::Relaxed)
    }

    /// Spans received so far, counted only while decoding is on.
    pub fn spans(&self) -> u64 {
        self.counters.spans.load(Ordering::Relaxed)
    }

    /// Turns decoding (and span counting) on or off.
    pub fn set_decode(&self, decode: bool) {
        self.counters.decode.store(decode, Ordering::Relaxed);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(listener: std::net::TcpListener, counters: Arc<Counters>, stop: Arc<Notify>) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
            () = stop.notified() => return,
        };
        let _ = stream.set_nodelay(true);
        let counters = Arc::clone(&counters);
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(request, Arc::clone(&counters)));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    request: Request<hyper::body::Incoming>,
    counters: Arc<Counters>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let found = request.method() == Method::POST && request.uri().path() == "/v1/traces";
    let body = request.into_body().collect().await?.to_bytes();
    if !found {
        let mut response = Response::new(Full::new(Bytes::new()));
        *response.status_mut() = StatusCode::NOT_FOUND;
        return Ok(response);
    }
    counters.requests.fetch_add(1, Ordering::Relaxed);
    counters
        .bytes
        .fetch_add(body.len() as u64, Ordering::Relaxed);
    if counters.decode.load(Ordering::Relaxed)
        && let Ok(decoded) = ExportTraceServiceRequest::decode(body)
    {
        let spans: usize = decoded
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        counters.spans.fetch_add(spans as u64, Ordering::Relaxed);
    }
    // An empty body is an `ExportTraceServiceResponse` with every field at
    // its default: full success.
    let mut response = Response::new(Full::new(Bytes::new()));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-protobuf"),
    );
    Ok(response)
}
