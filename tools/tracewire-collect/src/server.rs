//! The HTTP listener: OTLP/HTTP on `/v1/traces` and `/v1/logs`, the JSON
//! API on `/api/…`, and the task writing accepted batches to the store.

use std::io::Read as _;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::sync::{mpsc, oneshot, watch};

use crate::export::Exporters;
use crate::ingest::{Batch, Ingest, Refused};
use crate::logs::LogRow;
use crate::otlp::{self, Encoding, Received};
use crate::pipeline::Processors;
use crate::store::Store;
use crate::{Counters, api};

/// The most spans the writer takes from the queue for one write (it
/// takes whole batches: one batch larger than this is written alone).
const MAX_SPANS_PER_WRITE: usize = 8192;

/// What `Retry-After` says when the queue is full, in seconds.
const RETRY_AFTER_SECONDS: &str = "1";

/// What every connection shares.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) store: Store,
    pub(crate) ingest: Ingest,
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

/// Runs span batches through the processors and hands what they pass to
/// the outputs, and writes log batches to the store as they are, until
/// every sender is gone and the queue is empty, or `close` fires (or its
/// sender is gone) and what was queued is written; then decides every
/// trace still buffered and hands on those kept. Returning drops the
/// exporters' queues, so that they finish.
pub(crate) async fn write(
    mut batches: mpsc::Receiver<Batch>,
    mut close: oneshot::Receiver<()>,
    outputs: Outputs,
    counters: Arc<Counters>,
    mut processors: Processors,
) {
    let mut closed = false;
    loop {
        let deadline = processors.next_deadline();
        let received = tokio::select! {
            batch = batches.recv() => match batch {
                Some(batch) => Some(batch),
                None => break,
            },
            () = sleep_until(deadline) => None,
            _ = &mut close, if !closed => {
                // No more sends; `recv` answers what is queued, then None.
                closed = true;
                batches.close();
                None
            }
        };
        let now = Instant::now();
        let mut out = match received {
            Some(Batch::Spans(mut batch)) => {
                // What else is queued joins this write (up to
                // MAX_SPANS_PER_WRITE): one transaction touches each page
                // of the store's indexes once.
                let mut logs = Vec::new();
                while batch.len() < MAX_SPANS_PER_WRITE {
                    match batches.try_recv() {
                        Ok(Batch::Spans(more)) => batch.extend(more),
                        Ok(Batch::Logs(more)) => logs.push(more),
                        Err(_) => break,
                    }
                }
                for logs in logs {
                    store_logs(&outputs, &counters, &logs).await;
                }
                if outputs.exporters.is_empty() {
                    // Only the store's rows are needed: the OTLP spans
                    // would only take memory in the processors' buffers.
                    for received in &mut batch {
                        drop(std::mem::take(&mut received.span));
                    }
                }
                processors.push(batch, now)
            }
            Some(Batch::Logs(logs)) => {
                store_logs(&outputs, &counters, &logs).await;
                Vec::new()
            }
            None => Vec::new(),
        };
        out.extend(processors.tick(now, false));
        store_batch(&outputs, &counters, &mut processors, out).await;
    }
    let out = processors.tick(Instant::now(), true);
    store_batch(&outputs, &counters, &mut processors, out).await;
}

/// Stores a batch of log records and counts them as stored or lost.
async fn store_logs(outputs: &Outputs, counters: &Counters, logs: &[LogRow]) {
    // Log records are only stored: without the store (a forwarding-only
    // pipeline) they are counted as lost.
    let n = u64::try_from(logs.len()).unwrap_or(u64::MAX);
    let stored = match &outputs.store {
        Some(store) => store.insert_logs(logs).await.is_ok(),
        None => false,
    };
    if stored {
        Counters::add(&counters.logs_stored, n);
    } else {
        Counters::add(&counters.logs_lost, n);
    }
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
    match store.insert(rows).await {
        Ok(()) => Counters::add(&counters.spans_stored, n),
        Err(_) => Counters::add(&counters.spans_lost, n),
    }
}

/// Accepts connections until `stopped` turns true, then lets the open
/// ones finish (up to [`DRAIN_TIMEOUT`](crate::DRAIN_TIMEOUT)) and
/// returns, dropping the last queue sender.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    stopped: watch::Receiver<bool>,
    max_connections: usize,
) {
    crate::serve_http1(listener, max_connections, stopped, move |request| {
        let state = state.clone();
        async move { handle(&state, request).await }
    })
    .await;
}

async fn handle(state: &State, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_owned();
    let signal = match path.as_str() {
        "/v1/traces" => Some(Signal::Traces),
        "/v1/logs" => Some(Signal::Logs),
        _ => None,
    };
    if let Some(signal) = signal {
        if req.method() != Method::POST {
            return text(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!("use POST for {path}"),
            );
        }
        return export(state, req, signal).await;
    }
    if path == "/api" || path.starts_with("/api/") {
        if req.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "the API only answers GET");
        }
        return api::api_response(&state.store, &path, req.uri().query().unwrap_or_default()).await;
    }
    text(
        StatusCode::NOT_FOUND,
        "not found: try POST /v1/traces, POST /v1/logs or GET /api/services",
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

/// The OTLP signals received over HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signal {
    /// `POST /v1/traces`.
    Traces,
    /// `POST /v1/logs`.
    Logs,
}

/// One OTLP/HTTP export: the body is read (bounded) and decoded, its rows
/// queued; the answer is the signal's response message in the request's
/// encoding, or the status saying why not.
async fn export(state: &State, req: Request<Incoming>, signal: Signal) -> Reply {
    let (encoding, body) = match read_body(state, req).await {
        Ok(read) => read,
        Err(reply) => return reply,
    };
    let queued = match signal {
        Signal::Traces => {
            let request: ExportTraceServiceRequest =
                match otlp::decode(encoding, &body, "ExportTraceServiceRequest") {
                    Ok(r) => r,
                    Err(message) => return text(StatusCode::BAD_REQUEST, &message),
                };
            drop(body);
            state
                .ingest
                .traces(request)
                .map(|response| encoded(encoding, &response))
        }
        Signal::Logs => {
            let request: ExportLogsServiceRequest =
                match otlp::decode(encoding, &body, "ExportLogsServiceRequest") {
                    Ok(r) => r,
                    Err(message) => return text(StatusCode::BAD_REQUEST, &message),
                };
            drop(body);
            state
                .ingest
                .logs(request)
                .map(|response| encoded(encoding, &response))
        }
    };
    queued.unwrap_or_else(refused)
}

/// The answer to an export the queue refused: 503, with `Retry-After`
/// when the queue is full.
pub(crate) fn refused(why: Refused) -> Reply {
    match why {
        Refused::Full => {
            let mut reply = text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the ingest queue is full; retry later",
            );
            reply
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
            reply
        }
        Refused::Stopping => text(StatusCode::SERVICE_UNAVAILABLE, "the collector is stopping"),
    }
}

/// A response message in the request's encoding.
fn encoded<M: prost::Message + serde::Serialize>(encoding: Encoding, message: &M) -> Reply {
    let (body, content_type) = match encoding {
        Encoding::Protobuf => (message.encode_to_vec(), "application/x-protobuf"),
        Encoding::Json => (
            serde_json::to_vec(message).unwrap_or_else(|_| b"{}".to_vec()),
            "application/json",
        ),
    };
    let mut reply = Response::new(Full::new(Bytes::from(body)));
    reply
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply
}

/// The encoding and the (decompressed) body of an OTLP/HTTP export, or
/// the answer refusing it: 415 for a content type or encoding that is not
/// OTLP's, 413 past the body limit, 400 for a body that cannot be read or
/// bad gzip.
async fn read_body(state: &State, req: Request<Incoming>) -> Result<(Encoding, Bytes), Reply> {
    let Some(encoding) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Encoding::from_content_type)
    else {
        return Err(text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/x-protobuf or application/json",
        ));
    };
    Ok((encoding, read_limited(state.body_limit, req).await?))
}

/// The (decompressed) body of a request, whatever its content type, or
/// the answer refusing it: 415 for a `Content-Encoding` other than gzip
/// or identity, 413 past `body_limit` (before or after decompression),
/// 400 for a body that cannot be read or bad gzip.
pub(crate) async fn read_limited(
    body_limit: usize,
    req: Request<Incoming>,
) -> Result<Bytes, Reply> {
    let headers = req.headers();
    let gzip = match headers.get(CONTENT_ENCODING).map(HeaderValue::to_str) {
        None => false,
        Some(Ok(v)) if v.trim().eq_ignore_ascii_case("gzip") => true,
        Some(Ok(v)) if v.trim().eq_ignore_ascii_case("identity") => false,
        Some(_) => {
            return Err(text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Encoding must be gzip or identity",
            ));
        }
    };
    let too_large = format!("the body is larger than {body_limit} bytes");
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(body_limit).unwrap_or(u64::MAX)) {
        return Err(text(StatusCode::PAYLOAD_TOO_LARGE, &too_large));
    }
    let body = match Limited::new(req.into_body(), body_limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(text(StatusCode::PAYLOAD_TOO_LARGE, &too_large));
        }
        Err(e) => {
            return Err(text(
                StatusCode::BAD_REQUEST,
                &format!("reading the body: {e}"),
            ));
        }
    };
    let body = if gzip {
        match gunzip(&body, body_limit) {
            Ok(Some(b)) => Bytes::from(b),
            Ok(None) => {
                return Err(text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("the decompressed {too_large}"),
                ));
            }
            Err(e) => {
                return Err(text(
                    StatusCode::BAD_REQUEST,
                    &format!("bad gzip body: {e}"),
                ));
            }
        }
    } else {
        body
    };
    Ok(body)
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
