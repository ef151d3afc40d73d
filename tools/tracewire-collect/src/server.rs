//! The HTTP listener: OTLP/HTTP on `/v1/traces`, the JSON API on
//! `/api/…`, and the task writing accepted batches to the store.

use std::convert::Infallible;
use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use prost::Message as _;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use crate::export::Exporters;
use crate::otlp::{self, Encoding, Received};
use crate::pipeline::Processors;
use crate::store::Store;
use crate::{Counters, DRAIN_TIMEOUT, api};

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// What `Retry-After` says when the queue is full, in seconds.
const RETRY_AFTER_SECONDS: &str = "1";

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) store: Store,
    pub(crate) queue: mpsc::Sender<Vec<Received>>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) body_limit: usize,
}

/// An answer of the collector's listener or API.
pub type Reply = Response<Full<Bytes>>;

/// Where the processors' output goes: the store (unless the pipeline
/// only forwards) and the forwarding exporters' queues.
#[derive(Debug)]
pub(crate) struct Outputs {
    pub(crate) store: Option<Store>,
    pub(crate) exporters: Exporters,
}

/// Runs batches through the processors and writes what they pass, until
/// every sender is gone and the queue is empty; then decides every trace
/// still buffered and writes those kept. Returning drops the exporters'
/// queues, so that they finish.
pub(crate) async fn write(
    mut batches: mpsc::Receiver<Vec<Received>>,
    outputs: Outputs,
    counters: Arc<Counters>,
    mut processors: Processors,
) {
    loop {
        let deadline = processors.next_deadline();
        let received = tokio::select! {
            batch = batches.recv() => match batch {
                Some(batch) => Some(batch),
                None => break,
            },
            () = sleep_until(deadline) => None,
        };
        let now = Instant::now();
        let mut out = match received {
            Some(mut batch) => {
                if outputs.exporters.is_empty() {
                    // Only the store's rows are needed: the OTLP spans
                    // would only take memory in the processors' buffers.
                    for received in &mut batch {
                        drop(std::mem::take(&mut received.span));
                    }
                }
                processors.push(batch, now)
            }
            None => Vec::new(),
        };
        out.extend(processors.tick(now, false));
        store_batch(&outputs, &counters, &mut processors, out).await;
    }
    let out = processors.tick(Instant::now(), true);
    store_batch(&outputs, &counters, &mut processors, out).await;
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

async fn store_batch(
    outputs: &Outputs,
    counters: &Counters,
    processors: &mut Processors,
    batch: Vec<Received>,
) {
    let dropped = std::mem::take(&mut processors.dropped);
    Counters::add(&counters.spans_filtered, dropped.filtered);
    Counters::add(&counters.spans_not_sampled, dropped.not_sampled);
    if batch.is_empty() {
        return;
    }
    let n = u64::try_from(batch.len()).unwrap_or(u64::MAX);
    let forward = !outputs.exporters.is_empty();
    let mut rows = Vec::with_capacity(batch.len());
    let mut spans = Vec::with_capacity(if forward { batch.len() } else { 0 });
    for received in batch {
        rows.push(received.row);
        if forward {
            spans.push((received.span, received.scope));
        }
    }
    // The exporters first: queueing never waits.
    if forward {
        outputs.exporters.offer(otlp::request(spans), n);
    }
    let Some(store) = &outputs.store else {
        return;
    };
    match store.insert(&rows).await {
        Ok(()) => Counters::add(&counters.spans_stored, n),
        Err(_) => Counters::add(&counters.spans_lost, n),
    }
}

/// Accepts connections until `stopped` turns true, then lets the open
/// ones finish (up to [`DRAIN_TIMEOUT`]) and returns, dropping the last
/// queue sender.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    mut stopped: watch::Receiver<bool>,
    max_connections: usize,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopping(&mut stopped) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: wait a little
                // rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopping(&mut stopped) => break,
        };
        while connections.try_join_next().is_some() {}
        let state = state.clone();
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(&state, req).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stopping(&mut stopped) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    drop(state);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

/// Resolves when the collector stops: the flag turned true, or the
/// [`Collector`](crate::Collector) holding its sender is gone.
async fn stopping(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

async fn handle(state: &State, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_owned();
    if path == "/v1/traces" {
        if req.method() != Method::POST {
            return text(StatusCode::METHOD_NOT_ALLOWED, "use POST for /v1/traces");
        }
        return export(state, req).await;
    }
    if path == "/api" || path.starts_with("/api/") {
        if req.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "the API only answers GET");
        }
        return api::api_response(&state.store, &path, req.uri().query().unwrap_or_default()).await;
    }
    text(
        StatusCode::NOT_FOUND,
        "not found: try POST /v1/traces or GET /api/services",
    )
}

/// A plain-text answer.
pub(crate) fn text(status: StatusCode, message: &str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    reply
}

async fn export(state: &State, req: Request<Incoming>) -> Reply {
    let headers = req.headers();
    let Some(encoding) = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Encoding::from_content_type)
    else {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/x-protobuf or application/json",
        );
    };
    let gzip = match headers.get(CONTENT_ENCODING).map(HeaderValue::to_str) {
        None => false,
        Some(Ok(v)) if v.trim().eq_ignore_ascii_case("gzip") => true,
        Some(Ok(v)) if v.trim().eq_ignore_ascii_case("identity") => false,
        Some(_) => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Encoding must be gzip or identity",
            );
        }
    };
    let too_large = format!("the body is larger than {} bytes", state.body_limit);
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(state.body_limit).unwrap_or(u64::MAX)) {
        return text(StatusCode::PAYLOAD_TOO_LARGE, &too_large);
    }
    let body = match Limited::new(req.into_body(), state.body_limit)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, &too_large);
        }
        Err(e) => return text(StatusCode::BAD_REQUEST, &format!("reading the body: {e}")),
    };
    let body = if gzip {
        match gunzip(&body, state.body_limit) {
            Ok(Some(b)) => Bytes::from(b),
            Ok(None) => {
                return text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the decompressed {too_large}"),
                );
            }
            Err(e) => return text(StatusCode::BAD_REQUEST, &format!("bad gzip body: {e}")),
        }
    } else {
        body
    };
    let request = match otlp::decode(encoding, &body) {
        Ok(r) => r,
        Err(message) => return text(StatusCode::BAD_REQUEST, &message),
    };
    drop(body);
    let (rows, rejected, reason) = otlp::rows(request);
    let accepted = u64::try_from(rows.len()).unwrap_or(u64::MAX);
    if !rows.is_empty() {
        match state.queue.try_send(rows) {
            Ok(()) => Counters::add(&state.counters.spans_accepted, accepted),
            Err(mpsc::error::TrySendError::Full(_)) => {
                Counters::add(&state.counters.requests_throttled, 1);
                let mut reply = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the ingest queue is full; retry later",
                );
                reply
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
                return reply;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return text(StatusCode::SERVICE_UNAVAILABLE, "the collector is stopping");
            }
        }
    }
    Counters::add(&state.counters.spans_rejected, rejected);
    let response = ExportTraceServiceResponse {
        partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message: reason.unwrap_or_default(),
        }),
    };
    let (body, content_type) = match encoding {
        Encoding::Protobuf => (response.encode_to_vec(), "application/x-protobuf"),
        Encoding::Json => (
            serde_json::to_vec(&response).unwrap_or_else(|_| b"{}".to_vec()),
            "application/json",
        ),
    };
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply
}

/// The decompressed body; `None` when it is larger than `limit`.
fn gunzip(body: &[u8], limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(body)
        .take(cap)
        .read_to_end(&mut out)?;
    Ok((out.len() <= limit).then_some(out))
}
