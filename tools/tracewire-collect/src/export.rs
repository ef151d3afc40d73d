//! The forwarding exporters: `otlphttp` (OTLP/HTTP), `otlp` (OTLP/gRPC)
//! and `file` (OTLP/JSON lines), each with its own bounded queue, retries
//! and counts.
//!
//! The writer task offers every batch the processors pass to every
//! exporter ([`Exporters::offer`]) without waiting: a full queue drops
//! that exporter's copy of the batch (counted). One task per exporter
//! sends its queue in order, retrying retryable failures with
//! exponential back-off (or the server's `Retry-After` / `RetryInfo`).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER};
use hyper::{HeaderMap, Method, Request, StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message as _;
use serde_json::{Map, Value as Json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::ConfigError;

/// How long [`Collector::shutdown`](crate::Collector::shutdown) lets the
/// exporters send what is queued (retry waits are cut short: each batch
/// gets one more attempt); what is left then is dropped and counted.
pub const EXPORT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest `sending_queue.queue_size`, in batches.
pub const MAX_QUEUE_SIZE: usize = 100_000;

/// The largest response body read from an OTLP/HTTP server (for its
/// partial success), in bytes.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The longest `Retry-After` honoured; a longer one waits this long.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// What one exporter did, since the collector started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExporterStats {
    /// The exporter's id (`type[/name]`).
    pub id: String,
    /// Spans delivered (the server accepted them).
    pub spans_sent: u64,
    /// Spans given up on: a failure that is not retryable, retries
    /// exhausted, spans the server rejected (partial success), a file
    /// that could not be written.
    pub spans_failed: u64,
    /// Spans dropped without trying: the exporter's queue was full, or
    /// they were still queued when the shutdown's flush time was over.
    pub spans_dropped: u64,
    /// Why the last failed attempt failed (retried or not), if any did.
    pub last_error: Option<String>,
}

/// An exporter's counts, shared by its task and [`crate::Collector`].
#[derive(Debug)]
pub(crate) struct ExporterCounters {
    id: String,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl ExporterCounters {
    fn new(id: &str) -> Self {
        ExporterCounters {
            id: id.to_owned(),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    pub(crate) fn snapshot(&self) -> ExporterStats {
        ExporterStats {
            id: self.id.clone(),
            spans_sent: self.sent.load(Ordering::Relaxed),
            spans_failed: self.failed.load(Ordering::Relaxed),
            spans_dropped: self.dropped.load(Ordering::Relaxed),
            last_error: self.last_error.lock().map_or(None, |e| e.clone()),
        }
    }

    fn error(&self, message: String) {
        if let Ok(mut last) = self.last_error.lock() {
            *last = Some(message);
        }
    }
}

// ---------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------

/// One forwarding exporter's settings, as read from the configuration.
#[derive(Clone, Debug)]
pub(crate) struct ExporterConfig {
    pub(crate) id: String,
    target: Target,
    queue_size: usize,
    retry: Retry,
}

#[derive(Clone, Debug)]
enum Target {
    Http(Box<HttpTarget>),
    Grpc(Box<GrpcTarget>),
    File(FileTarget),
}

#[derive(Clone, Debug)]
struct HttpTarget {
    url: Uri,
    headers: HeaderMap,
    gzip: bool,
    json: bool,
    timeout: Duration,
    /// Used for `https://` URLs.
    tls: TlsSettings,
}

#[derive(Clone, Debug)]
struct GrpcTarget {
    /// `http://…` or `https://…`.
    url: String,
    /// `Some` for TLS.
    tls: Option<TlsSettings>,
    headers: MetadataMap,
    gzip: bool,
    timeout: Duration,
}

/// Where a PEM comes from: `…_file` or `…_pem` in the configuration.
#[derive(Clone, Debug)]
enum Pem {
    File(PathBuf),
    Inline(String),
}

impl Pem {
    fn read(&self, id: &str, what: &str) -> Result<Vec<u8>, ConfigError> {
        match self {
            Pem::File(path) => std::fs::read(path).map_err(|e| {
                invalid(
                    id,
                    format_args!("tls.{what}_file {}: cannot read: {e}", path.display()),
                )
            }),
            Pem::Inline(text) => Ok(text.as_bytes().to_vec()),
        }
    }
}

/// `tls`: the CA to verify the server with (default: the Mozilla roots
/// of `webpki-roots`), and a client certificate.
#[derive(Clone, Debug, Default)]
struct TlsSettings {
    ca: Option<Pem>,
    cert: Option<Pem>,
    key: Option<Pem>,
}

/// The PEM files, read.
struct TlsMaterial {
    ca: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
}

impl TlsSettings {
    fn read(&self, id: &str) -> Result<TlsMaterial, ConfigError> {
        let ca = self.ca.as_ref().map(|p| p.read(id, "ca")).transpose()?;
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => Some((cert.read(id, "cert")?, key.read(id, "key")?)),
            _ => None,
        };
        Ok(TlsMaterial { ca, identity })
    }
}

#[derive(Clone, Debug)]
struct FileTarget {
    path: PathBuf,
    max_bytes: u64,
    max_backups: usize,
    append: bool,
}

/// `retry_on_failure`, with the Collector's defaults.
#[derive(Clone, Copy, Debug)]
struct Retry {
    enabled: bool,
    initial: Duration,
    max_interval: Duration,
    /// Zero: no limit.
    max_elapsed: Duration,
    multiplier: f64,
    randomization: f64,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            enabled: true,
            initial: Duration::from_secs(5),
            max_interval: Duration::from_secs(30),
            max_elapsed: Duration::from_secs(300),
            multiplier: 1.5,
            randomization: 0.5,
        }
    }
}

impl Retry {
    /// `interval` ± the randomization factor.
    fn jittered(&self, interval: Duration) -> Duration {
        let delta = self.randomization * (fastrand::f64() * 2.0 - 1.0);
        interval.mul_f64((1.0 + delta).max(0.0))
    }

    fn next(&self, interval: Duration) -> Duration {
        Duration::try_from_secs_f64(interval.as_secs_f64() * self.multiplier)
            .unwrap_or(self.max_interval)
            .min(self.max_interval)
    }
}

fn invalid(id: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid(format!("exporter {id:?}: {message}"))
}

fn mapping<'a>(id: &str, key: &str, value: &'a Json) -> Result<&'a Map<String, Json>, ConfigError> {
    static EMPTY: std::sync::OnceLock<Map<String, Json>> = std::sync::OnceLock::new();
    match value {
        Json::Object(map) => Ok(map),
        Json::Null => Ok(EMPTY.get_or_init(Map::new)),
        _ => Err(invalid(id, format_args!("{key}: not a mapping"))),
    }
}

fn text<'a>(id: &str, key: &str, value: &'a Json) -> Result<&'a str, ConfigError> {
    value
        .as_str()
        .ok_or_else(|| invalid(id, format_args!("{key}: not a string")))
}

fn boolean(id: &str, key: &str, value: &Json) -> Result<bool, ConfigError> {
    value
        .as_bool()
        .ok_or_else(|| invalid(id, format_args!("{key}: not true or false")))
}

fn whole(id: &str, key: &str, value: &Json) -> Result<u64, ConfigError> {
    value
        .as_u64()
        .ok_or_else(|| invalid(id, format_args!("{key}: not a whole number")))
}

fn number(id: &str, key: &str, value: &Json, range: (f64, f64)) -> Result<f64, ConfigError> {
    value
        .as_f64()
        .filter(|n| (range.0..=range.1).contains(n))
        .ok_or_else(|| {
            invalid(
                id,
                format_args!("{key}: not a number from {} to {}", range.0, range.1),
            )
        })
}

fn duration(id: &str, key: &str, value: &Json) -> Result<Duration, ConfigError> {
    // The Collector also takes a bare number of nanoseconds; nobody
    // writes that, and `0` (disabled) is the one that matters.
    if value.as_u64() == Some(0) {
        return Ok(Duration::ZERO);
    }
    value
        .as_str()
        .and_then(|s| humantime::parse_duration(s.trim()).ok())
        .ok_or_else(|| {
            invalid(
                id,
                format_args!("{key}: not a duration such as \"5s\" or \"500ms\""),
            )
        })
}

fn unknown(id: &str, key: &str, warnings: &mut Vec<String>) {
    warnings.push(format!(
        "exporter {id:?}: unknown setting {key:?}, ignored (the Collector would refuse it)"
    ));
}

fn unused(id: &str, key: &str, why: &str, warnings: &mut Vec<String>) {
    warnings.push(format!(
        "exporter {id:?}: {key}: accepted, not used ({why})"
    ));
}

/// Reads an `otlphttp`, `otlp` or `file` exporter's settings (`kind` is
/// the component type).
pub(crate) fn exporter_config(
    kind: &str,
    id: &str,
    settings: &Json,
    warnings: &mut Vec<String>,
) -> Result<ExporterConfig, ConfigError> {
    let settings = mapping(id, id, settings)?;
    match kind {
        "file" => file_config(id, settings, warnings),
        _ => otlp_config(kind == "otlp", id, settings, warnings),
    }
}

fn otlp_config(
    grpc: bool,
    id: &str,
    settings: &Map<String, Json>,
    warnings: &mut Vec<String>,
) -> Result<ExporterConfig, ConfigError> {
    let mut endpoint = None;
    let mut traces_endpoint = None;
    let mut headers = Vec::new();
    // The Collector's defaults: gzip, 5 s (gRPC) / 30 s (HTTP).
    let mut gzip = true;
    let mut json = false;
    let mut timeout = Duration::from_secs(if grpc { 5 } else { 30 });
    let mut insecure = false;
    let mut tls = TlsSettings::default();
    let mut queue_size = 1000;
    let mut retry = Retry::default();
    for (key, value) in settings {
        match key.as_str() {
            "endpoint" => endpoint = Some(text(id, key, value)?.trim().to_owned()),
            "traces_endpoint" if !grpc => {
                traces_endpoint = Some(text(id, key, value)?.trim().to_owned());
            }
            "headers" => {
                for (name, v) in mapping(id, key, value)? {
                    let v = match v {
                        Json::String(s) => s.clone(),
                        Json::Number(n) => n.to_string(),
                        Json::Bool(b) => b.to_string(),
                        _ => return Err(invalid(id, format_args!("headers.{name}: not a string"))),
                    };
                    headers.push((name.to_ascii_lowercase(), v));
                }
            }
            "compression" => {
                gzip = match text(id, key, value)?.trim() {
                    "gzip" => true,
                    "" | "none" => false,
                    other => {
                        return Err(invalid(
                            id,
                            format_args!("compression {other:?}: not supported (gzip or none)"),
                        ));
                    }
                };
            }
            "encoding" if !grpc => {
                json = match text(id, key, value)?.trim() {
                    "proto" => false,
                    "json" => true,
                    other => {
                        return Err(invalid(
                            id,
                            format_args!("encoding {other:?}: not proto or json"),
                        ));
                    }
                };
            }
            "timeout" => timeout = duration(id, key, value)?,
            "tls" => {
                for (k, v) in mapping(id, key, value)? {
                    let name = format!("tls.{k}");
                    match k.as_str() {
                        "insecure" => insecure = boolean(id, &name, v)?,
                        "ca_file" => tls.ca = Some(Pem::File(text(id, &name, v)?.into())),
                        "cert_file" => tls.cert = Some(Pem::File(text(id, &name, v)?.into())),
                        "key_file" => tls.key = Some(Pem::File(text(id, &name, v)?.into())),
                        "ca_pem" => tls.ca = Some(Pem::Inline(text(id, &name, v)?.to_owned())),
                        "cert_pem" => tls.cert = Some(Pem::Inline(text(id, &name, v)?.to_owned())),
                        "key_pem" => tls.key = Some(Pem::Inline(text(id, &name, v)?.to_owned())),
                        "insecure_skip_verify" => {
                            if boolean(id, &name, v)? {
                                return Err(invalid(
                                    id,
                                    "tls.insecure_skip_verify: not supported (give the server's \
                                     CA as tls.ca_file instead)",
                                ));
                            }
                        }
                        "server_name_override"
                        | "min_version"
                        | "max_version"
                        | "cipher_suites"
                        | "include_system_ca_certs_pool"
                        | "reload_interval"
                        | "curve_preferences" => unused(
                            id,
                            &name,
                            "rustls's defaults: TLS 1.2 and 1.3, the endpoint's host name, \
                             the Mozilla roots unless ca_file is given",
                            warnings,
                        ),
                        _ => unknown(id, &name, warnings),
                    }
                }
            }
            "sending_queue" => {
                for (k, v) in mapping(id, key, value)? {
                    match k.as_str() {
                        "enabled" => {
                            if !boolean(id, "sending_queue.enabled", v)? {
                                // Sending in the pipeline would make a slow
                                // server slow the store down.
                                queue_size = 1;
                                warnings.push(format!(
                                    "exporter {id:?}: sending_queue.enabled: false: a queue of \
                                     one batch (batches arriving while it is full are dropped \
                                     and counted)"
                                ));
                            }
                        }
                        "queue_size" => {
                            let n = whole(id, "sending_queue.queue_size", v)?;
                            if n == 0 || n > MAX_QUEUE_SIZE as u64 {
                                return Err(invalid(
                                    id,
                                    format_args!(
                                        "sending_queue.queue_size: from 1 to {MAX_QUEUE_SIZE}"
                                    ),
                                ));
                            }
                            queue_size = usize::try_from(n).unwrap_or(MAX_QUEUE_SIZE);
                        }
                        "num_consumers" | "storage" | "blocking" | "sizer" | "batch"
                        | "wait_for_result" => unused(
                            id,
                            &format!("sending_queue.{k}"),
                            "one sender per exporter, batches counted as received, in memory",
                            warnings,
                        ),
                        _ => unknown(id, &format!("sending_queue.{k}"), warnings),
                    }
                }
            }
            "retry_on_failure" => {
                for (k, v) in mapping(id, key, value)? {
                    let name = format!("retry_on_failure.{k}");
                    match k.as_str() {
                        "enabled" => retry.enabled = boolean(id, &name, v)?,
                        "initial_interval" => retry.initial = duration(id, &name, v)?,
                        "max_interval" => retry.max_interval = duration(id, &name, v)?,
                        "max_elapsed_time" => retry.max_elapsed = duration(id, &name, v)?,
                        "multiplier" => retry.multiplier = number(id, &name, v, (1.0, 100.0))?,
                        "randomization_factor" => {
                            retry.randomization = number(id, &name, v, (0.0, 1.0))?;
                        }
                        _ => unknown(id, &name, warnings),
                    }
                }
            }
            "balancer_name"
            | "keepalive"
            | "read_buffer_size"
            | "write_buffer_size"
            | "wait_for_ready"
            | "authority"
            | "auth"
            | "max_idle_conns"
            | "max_idle_conns_per_host"
            | "max_conns_per_host"
            | "idle_conn_timeout"
            | "disable_keep_alives"
            | "http2_read_idle_timeout"
            | "http2_ping_timeout"
            | "proxy_url"
            | "cookies"
            | "batcher" => {
                unused(
                    id,
                    key,
                    "connection tuning of the Collector's clients",
                    warnings,
                );
            }
            _ => unknown(id, key, warnings),
        }
    }
    if tls.cert.is_some() != tls.key.is_some() {
        return Err(invalid(
            id,
            "tls: a client certificate needs both cert_file (or cert_pem) and key_file (or \
             key_pem)",
        ));
    }
    let target = if grpc {
        let endpoint = endpoint.ok_or_else(|| invalid(id, "endpoint: missing"))?;
        let url = grpc_url(id, &endpoint, insecure)?;
        Endpoint::from_shared(url.clone())
            .map_err(|e| invalid(id, format_args!("endpoint {url:?}: {e}")))?;
        let tls = url.starts_with("https://").then_some(tls);
        let mut map = MetadataMap::new();
        for (name, value) in headers {
            let key = AsciiMetadataKey::from_bytes(name.as_bytes())
                .map_err(|_| invalid(id, format_args!("headers.{name}: not a metadata key")))?;
            let value = AsciiMetadataValue::try_from(value.as_str()).map_err(|_| {
                invalid(
                    id,
                    format_args!("headers.{name}: not a printable ASCII value"),
                )
            })?;
            map.insert(key, value);
        }
        Target::Grpc(Box::new(GrpcTarget {
            url,
            tls,
            headers: map,
            gzip,
            timeout,
        }))
    } else {
        let url = match (traces_endpoint, endpoint) {
            (Some(url), _) => url,
            (None, Some(base)) => format!("{}/v1/traces", base.trim_end_matches('/')),
            (None, None) => return Err(invalid(id, "endpoint (or traces_endpoint): missing")),
        };
        let uri = url.parse::<Uri>().ok().filter(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some()
        });
        let Some(uri) = uri else {
            return Err(invalid(
                id,
                format_args!("endpoint {url:?}: not an http:// or https:// URL"),
            ));
        };
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let key = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(id, format_args!("headers.{name}: not a header name")))?;
            let value = HeaderValue::from_str(&value)
                .map_err(|_| invalid(id, format_args!("headers.{name}: not a header value")))?;
            map.insert(key, value);
        }
        Target::Http(Box::new(HttpTarget {
            url: uri,
            headers: map,
            gzip,
            json,
            timeout,
            tls,
        }))
    };
    Ok(ExporterConfig {
        id: id.to_owned(),
        target,
        queue_size,
        retry,
    })
}

/// The URL of a gRPC endpoint: the Collector writes `host:port` (TLS
/// unless `tls.insecure`), or a URL whose scheme decides.
fn grpc_url(id: &str, endpoint: &str, insecure: bool) -> Result<String, ConfigError> {
    let endpoint = endpoint.strip_prefix("dns:///").unwrap_or(endpoint);
    if endpoint.starts_with("https://") || endpoint.starts_with("http://") {
        return Ok(endpoint.to_owned());
    }
    if endpoint.contains("://") {
        return Err(invalid(
            id,
            format_args!("endpoint {endpoint:?}: not host:port, http:// or https://"),
        ));
    }
    let scheme = if insecure { "http" } else { "https" };
    Ok(format!("{scheme}://{endpoint}"))
}

fn file_config(
    id: &str,
    settings: &Map<String, Json>,
    warnings: &mut Vec<String>,
) -> Result<ExporterConfig, ConfigError> {
    let mut path = None;
    let mut rotation = false;
    let mut max_megabytes = 100u64;
    let mut max_backups = None;
    let mut append = false;
    for (key, value) in settings {
        match key.as_str() {
            "path" => path = Some(PathBuf::from(text(id, key, value)?)),
            "rotation" => {
                rotation = true;
                for (k, v) in mapping(id, key, value)? {
                    let name = format!("rotation.{k}");
                    match k.as_str() {
                        "max_megabytes" => {
                            max_megabytes = whole(id, &name, v)?;
                            if max_megabytes == 0 || max_megabytes > 1 << 20 {
                                return Err(invalid(id, format_args!("{name}: from 1 to 1048576")));
                            }
                        }
                        "max_backups" => {
                            max_backups = Some(
                                usize::try_from(whole(id, &name, v)?.min(10_000)).unwrap_or(0),
                            );
                        }
                        "max_days" | "localtime" => {
                            unused(id, &name, "backups are kept by count", warnings);
                        }
                        _ => unknown(id, &name, warnings),
                    }
                }
            }
            "format" => {
                let format = text(id, key, value)?;
                if format != "json" {
                    return Err(invalid(
                        id,
                        format_args!("format {format:?}: not supported (json)"),
                    ));
                }
            }
            "compression" => {
                let c = text(id, key, value)?;
                if !c.is_empty() && c != "none" {
                    return Err(invalid(
                        id,
                        format_args!("compression {c:?}: not supported (lines are plain JSON)"),
                    ));
                }
            }
            "append" => append = boolean(id, key, value)?,
            "flush_interval" => {
                duration(id, key, value)?;
                unused(id, key, "every batch is written as it comes", warnings);
            }
            "group_by" => {
                let enabled = mapping(id, key, value)?
                    .get("enabled")
                    .and_then(Json::as_bool)
                    .unwrap_or(false);
                if enabled {
                    return Err(invalid(id, "group_by: not supported yet"));
                }
            }
            _ => unknown(id, key, warnings),
        }
    }
    let path = path.ok_or_else(|| invalid(id, "path: missing"))?;
    Ok(ExporterConfig {
        id: id.to_owned(),
        target: Target::File(FileTarget {
            path,
            max_bytes: max_megabytes * 1024 * 1024,
            // The Collector keeps 100 backups when `rotation` is given;
            // without it, the file is still capped here (one backup).
            max_backups: max_backups.unwrap_or(if rotation { 100 } else { 1 }),
            append,
        }),
        queue_size: 1000,
        retry: Retry {
            enabled: false,
            ..Retry::default()
        },
    })
}

// ---------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Batch {
    request: Arc<ExportTraceServiceRequest>,
    spans: u64,
}

#[derive(Debug)]
struct Outlet {
    queue: mpsc::Sender<Batch>,
    counters: Arc<ExporterCounters>,
}

/// The exporters' queues, held by the writer task; dropping it lets the
/// exporters finish what is queued.
#[derive(Debug, Default)]
pub(crate) struct Exporters {
    outlets: Vec<Outlet>,
}

impl Exporters {
    /// Whether there is no forwarding exporter.
    pub(crate) fn is_empty(&self) -> bool {
        self.outlets.is_empty()
    }

    /// Queues `request` (of `spans` spans) for every exporter; where a
    /// queue is full (or the exporter gone), its copy is dropped and
    /// counted.
    pub(crate) fn offer(&self, request: ExportTraceServiceRequest, spans: u64) {
        let batch = Batch {
            request: Arc::new(request),
            spans,
        };
        for outlet in &self.outlets {
            if outlet.queue.try_send(batch.clone()).is_err() {
                outlet.counters.dropped.fetch_add(spans, Ordering::Relaxed);
            }
        }
    }
}

/// The exporters' tasks, held by [`crate::Collector`].
#[derive(Debug)]
pub(crate) struct Tasks {
    tasks: Vec<JoinHandle<()>>,
    stop: watch::Sender<Option<tokio::time::Instant>>,
    pub(crate) counters: Vec<Arc<ExporterCounters>>,
}

/// Starts one task per exporter (on the current runtime); fails when a
/// `file` exporter's file cannot be opened.
pub(crate) fn start(configs: &[ExporterConfig]) -> Result<(Exporters, Tasks), ConfigError> {
    let (stop, stopped) = watch::channel(None);
    let mut exporters = Exporters::default();
    let mut tasks = Tasks {
        tasks: Vec::new(),
        stop,
        counters: Vec::new(),
    };
    for config in configs {
        let sink = Sink::new(config)?;
        let counters = Arc::new(ExporterCounters::new(&config.id));
        let (queue, batches) = mpsc::channel(config.queue_size.max(1));
        tasks.tasks.push(tokio::spawn(run(
            batches,
            sink,
            config.retry,
            counters.clone(),
            stopped.clone(),
        )));
        exporters.outlets.push(Outlet {
            queue,
            counters: counters.clone(),
        });
        tasks.counters.push(counters);
    }
    Ok((exporters, tasks))
}

impl Tasks {
    /// Once the writer has dropped [`Exporters`]: gives the exporters
    /// [`EXPORT_FLUSH_TIMEOUT`] to send what is queued and waits for
    /// them.
    pub(crate) async fn finish(self) {
        let deadline = tokio::time::Instant::now() + EXPORT_FLUSH_TIMEOUT;
        let _ = self.stop.send(Some(deadline));
        for mut task in self.tasks {
            // Each task stops by itself at the deadline; this is a
            // safety net (a file write stuck in the kernel).
            let waited =
                tokio::time::timeout_at(deadline + Duration::from_secs(1), &mut task).await;
            if waited.is_err() {
                task.abort();
            }
        }
    }
}

/// Sends one exporter's queue until it is closed and empty.
async fn run(
    mut batches: mpsc::Receiver<Batch>,
    mut sink: Sink,
    retry: Retry,
    counters: Arc<ExporterCounters>,
    mut stop: watch::Receiver<Option<tokio::time::Instant>>,
) {
    while let Some(batch) = batches.recv().await {
        let over = (*stop.borrow()).is_some_and(|d| d <= tokio::time::Instant::now());
        if over {
            counters.dropped.fetch_add(batch.spans, Ordering::Relaxed);
            continue;
        }
        match deliver(&mut sink, &batch, &retry, &counters, &mut stop).await {
            Outcome::Sent { rejected } => {
                let rejected = rejected.min(batch.spans);
                counters
                    .sent
                    .fetch_add(batch.spans - rejected, Ordering::Relaxed);
                counters.failed.fetch_add(rejected, Ordering::Relaxed);
            }
            Outcome::Failed => {
                counters.failed.fetch_add(batch.spans, Ordering::Relaxed);
            }
            Outcome::OutOfTime => {
                counters.dropped.fetch_add(batch.spans, Ordering::Relaxed);
            }
        }
    }
}

enum Outcome {
    /// Delivered; the server rejected this many spans of it.
    Sent { rejected: u64 },
    /// Given up on.
    Failed,
    /// The shutdown's flush time ended first.
    OutOfTime,
}

/// A failed attempt.
#[derive(Debug)]
struct Failure {
    retryable: bool,
    /// How long the server asked to wait.
    after: Option<Duration>,
    message: String,
}

impl Failure {
    fn permanent(message: impl Into<String>) -> Self {
        Failure {
            retryable: false,
            after: None,
            message: message.into(),
        }
    }

    fn retryable(message: impl Into<String>, after: Option<Duration>) -> Self {
        Failure {
            retryable: true,
            after,
            message: message.into(),
        }
    }
}

/// Resolves at the shutdown's flush deadline (never before shutdown).
async fn deadline(stop: &mut watch::Receiver<Option<tokio::time::Instant>>) {
    let at = match stop.wait_for(Option::is_some).await {
        Ok(at) => *at,
        Err(_) => None,
    };
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Resolves when the collector stops.
async fn stopping(stop: &mut watch::Receiver<Option<tokio::time::Instant>>) {
    if stop.wait_for(Option::is_some).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Sends `batch`, retrying retryable failures as `retry` says (at
/// shutdown: one more attempt, no more waiting).
async fn deliver(
    sink: &mut Sink,
    batch: &Batch,
    retry: &Retry,
    counters: &ExporterCounters,
    stop: &mut watch::Receiver<Option<tokio::time::Instant>>,
) -> Outcome {
    let payload = match sink.payload(&batch.request) {
        Ok(p) => p,
        Err(message) => {
            counters.error(message);
            return Outcome::Failed;
        }
    };
    let started = Instant::now();
    let mut interval = retry.initial;
    loop {
        let attempt = tokio::select! {
            result = sink.send(&payload) => result,
            () = deadline(stop) => return Outcome::OutOfTime,
        };
        let failure = match attempt {
            Ok(rejected) => return Outcome::Sent { rejected },
            Err(failure) => failure,
        };
        counters.error(failure.message);
        if !failure.retryable || !retry.enabled || stop.borrow().is_some() {
            return Outcome::Failed;
        }
        let wait = failure.after.unwrap_or_else(|| retry.jittered(interval));
        interval = retry.next(interval);
        if !retry.max_elapsed.is_zero() && started.elapsed() + wait > retry.max_elapsed {
            return Outcome::Failed;
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = stopping(stop) => {}
        }
    }
}

/// A batch ready to send (encoded once for every attempt).
enum Payload {
    Body(Bytes),
    Message(Arc<ExportTraceServiceRequest>),
}

enum Sink {
    Http(Box<HttpSink>),
    Grpc(Box<GrpcSink>),
    File(FileSink),
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sink::Http(_) => "Sink::Http",
            Sink::Grpc(_) => "Sink::Grpc",
            Sink::File(_) => "Sink::File",
        })
    }
}

impl Sink {
    fn new(config: &ExporterConfig) -> Result<Self, ConfigError> {
        Ok(match &config.target {
            Target::Http(t) => Sink::Http(Box::new(HttpSink {
                client: http_client(&config.id, &t.tls)?,
                target: (**t).clone(),
            })),
            Target::Grpc(t) => {
                let mut endpoint = Endpoint::from_shared(t.url.clone())
                    .map_err(|e| invalid(&config.id, format_args!("endpoint {:?}: {e}", t.url)))?
                    .connect_timeout(t.timeout);
                if let Some(tls) = &t.tls {
                    let material = tls.read(&config.id)?;
                    let mut settings = ClientTlsConfig::new();
                    settings = match material.ca {
                        Some(ca) => settings.ca_certificate(Certificate::from_pem(ca)),
                        None => settings.with_webpki_roots(),
                    };
                    if let Some((cert, key)) = material.identity {
                        settings = settings.identity(Identity::from_pem(cert, key));
                    }
                    endpoint = endpoint
                        .tls_config(settings)
                        .map_err(|e| invalid(&config.id, format_args!("tls: {e}")))?;
                }
                let channel = endpoint.connect_lazy();
                let mut client =
                    TraceServiceClient::new(channel).max_decoding_message_size(MAX_RESPONSE_BYTES);
                if t.gzip {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                Sink::Grpc(Box::new(GrpcSink {
                    client,
                    headers: t.headers.clone(),
                    timeout: t.timeout,
                }))
            }
            Target::File(t) => Sink::File(FileSink::open(t).map_err(|e| {
                invalid(
                    &config.id,
                    format_args!("cannot open {}: {e}", t.path.display()),
                )
            })?),
        })
    }

    fn payload(&self, request: &Arc<ExportTraceServiceRequest>) -> Result<Payload, String> {
        match self {
            Sink::Http(s) => {
                let body = if s.target.json {
                    serde_json::to_vec(&**request).map_err(|e| format!("encoding JSON: {e}"))?
                } else {
                    request.encode_to_vec()
                };
                let body = if s.target.gzip {
                    let mut gz =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    gz.write_all(&body)
                        .and_then(|()| gz.finish())
                        .map_err(|e| format!("gzip: {e}"))?
                } else {
                    body
                };
                Ok(Payload::Body(Bytes::from(body)))
            }
            Sink::Grpc(_) => Ok(Payload::Message(request.clone())),
            Sink::File(_) => {
                let mut line =
                    serde_json::to_vec(&**request).map_err(|e| format!("encoding JSON: {e}"))?;
                line.push(b'\n');
                Ok(Payload::Body(Bytes::from(line)))
            }
        }
    }

    /// One attempt; `Ok` holds how many spans the server rejected.
    async fn send(&mut self, payload: &Payload) -> Result<u64, Failure> {
        match (self, payload) {
            (Sink::Http(s), Payload::Body(body)) => s.send(body.clone()).await,
            (Sink::Grpc(s), Payload::Message(request)) => s.send(request).await,
            (Sink::File(s), Payload::Body(line)) => s.write(line.clone()).await,
            _ => Err(Failure::permanent("internal: payload of another exporter")),
        }
    }
}

struct HttpSink {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    target: HttpTarget,
}

/// A client for `http://` and `https://` URLs: rustls with the ring
/// provider, verifying servers with `tls`'s CA (the Mozilla roots
/// without one), sending its client certificate if any.
fn http_client(
    id: &str,
    tls: &TlsSettings,
) -> Result<Client<HttpsConnector<HttpConnector>, Full<Bytes>>, ConfigError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let material = tls.read(id)?;
    let tls_error =
        |what: &str, e: &dyn std::fmt::Display| invalid(id, format_args!("tls: {what}: {e}"));
    let mut roots = rustls::RootCertStore::empty();
    match &material.ca {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| tls_error("the CA", &e))?;
                roots.add(cert).map_err(|e| tls_error("the CA", &e))?;
            }
            if roots.is_empty() {
                return Err(invalid(id, "tls: the CA holds no PEM certificate"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_error("protocol versions", &e))?
    .with_root_certificates(roots);
    let config = match material.identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(&cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_error("the client certificate", &e))?;
            let key =
                PrivateKeyDer::from_pem_slice(&key).map_err(|e| tls_error("the client key", &e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_error("the client certificate", &e))?
        }
        None => builder.with_no_client_auth(),
    };
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let connector = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

impl HttpSink {
    async fn send(&self, body: Bytes) -> Result<u64, Failure> {
        let t = &self.target;
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = t.url.clone();
        let headers = request.headers_mut();
        headers.extend(t.headers.clone());
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static(if t.json {
                "application/json"
            } else {
                "application/x-protobuf"
            }),
        );
        if t.gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| Failure::retryable(format!("POST {}: {e}", t.url), None))?;
            let status = response.status();
            let after = retry_after(response.headers());
            let json = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with("application/json"));
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            if status.is_success() {
                return Ok(rejected_http(&body, json));
            }
            let message = format!(
                "POST {}: {status}: {}",
                t.url,
                String::from_utf8_lossy(&body[..body.len().min(200)]).trim()
            );
            // OTLP/HTTP: 429, 502, 503 and 504 are retryable.
            if matches!(
                status,
                StatusCode::TOO_MANY_REQUESTS
                    | StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            ) {
                Err(Failure::retryable(message, after))
            } else {
                Err(Failure::permanent(message))
            }
        };
        tokio::time::timeout(t.timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(Failure::retryable(
                    format!("POST {}: no answer within {:?}", t.url, t.timeout),
                    None,
                ))
            })
    }
}

/// The spans a successful OTLP/HTTP answer says were rejected.
fn rejected_http(body: &[u8], json: bool) -> u64 {
    let response: Option<ExportTraceServiceResponse> = if json {
        serde_json::from_slice(body).ok()
    } else {
        ExportTraceServiceResponse::decode(body).ok()
    };
    response
        .and_then(|r| r.partial_success)
        .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0))
}

/// `Retry-After`: seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    retry_after_at(headers, SystemTime::now())
}

/// [`retry_after`] with an HTTP date counted from `now`.
fn retry_after_at(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

struct GrpcSink {
    client: TraceServiceClient<Channel>,
    headers: MetadataMap,
    timeout: Duration,
}

impl GrpcSink {
    async fn send(&self, request: &ExportTraceServiceRequest) -> Result<u64, Failure> {
        let mut message = tonic::Request::new(request.clone());
        *message.metadata_mut() = self.headers.clone();
        message.set_timeout(self.timeout);
        let mut client = self.client.clone();
        let answer = tokio::time::timeout(self.timeout, client.export(message)).await;
        let status = match answer {
            Ok(Ok(response)) => {
                return Ok(response
                    .into_inner()
                    .partial_success
                    .map_or(0, |p| u64::try_from(p.rejected_spans).unwrap_or(0)));
            }
            Ok(Err(status)) => status,
            Err(_) => {
                return Err(Failure::retryable(
                    format!("Export: no answer within {:?}", self.timeout),
                    None,
                ));
            }
        };
        let message = format!("Export: {:?}: {}", status.code(), status.message());
        let after = retry_delay(status.details());
        use tonic::Code;
        // The OTLP specification's retryable codes; RESOURCE_EXHAUSTED
        // only when the server says when to retry.
        match status.code() {
            Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unavailable
            | Code::DataLoss => Err(Failure::retryable(message, after)),
            Code::ResourceExhausted if after.is_some() => Err(Failure::retryable(message, after)),
            _ => Err(Failure::permanent(message)),
        }
    }
}

/// The `RetryInfo.retry_delay` of a status's details, if any, at most
/// [`MAX_RETRY_AFTER`].
fn retry_delay(details: &[u8]) -> Option<Duration> {
    crate::retry_info::retry_delay(details).map(|wait| wait.min(MAX_RETRY_AFTER))
}

struct FileSink {
    target: FileTarget,
    /// The open file and its size; `None` while a write runs (or after
    /// one failed to reopen it: the next write tries again).
    file: Option<(std::fs::File, u64)>,
}

impl FileSink {
    fn open(target: &FileTarget) -> std::io::Result<Self> {
        if let Some(dir) = target.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(target.append)
            .write(true)
            .truncate(!target.append)
            .open(&target.path)?;
        let size = file.metadata()?.len();
        Ok(FileSink {
            target: target.clone(),
            file: Some((file, size)),
        })
    }

    async fn write(&mut self, line: Bytes) -> Result<u64, Failure> {
        let target = self.target.clone();
        let file = self.file.take();
        let done = tokio::task::spawn_blocking(move || {
            let mut file = match file {
                Some(f) => f,
                None => reopen(&target)?,
            };
            let len = u64::try_from(line.len()).unwrap_or(u64::MAX);
            // A line is never split: one longer than the cap gets a file
            // of its own.
            if file.1 > 0 && file.1.saturating_add(len) > target.max_bytes {
                drop(file);
                rotate(&target)?;
                file = reopen(&target)?;
            }
            file.0.write_all(&line)?;
            file.1 += len;
            Ok::<_, std::io::Error>(file)
        })
        .await;
        match done {
            Ok(Ok(file)) => {
                self.file = Some(file);
                Ok(0)
            }
            Ok(Err(e)) => Err(Failure::permanent(format!(
                "writing {}: {e}",
                self.target.path.display()
            ))),
            Err(e) => Err(Failure::permanent(format!("the file writer failed: {e}"))),
        }
    }
}

fn reopen(target: &FileTarget) -> std::io::Result<(std::fs::File, u64)> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&target.path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

/// `path` → `path.1` → `path.2` … up to `max_backups` (the oldest is
/// removed); with no backups, `path` is removed.
fn rotate(target: &FileTarget) -> std::io::Result<()> {
    let backup = |n: usize| {
        let mut name = target.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    };
    let ignore_missing = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    if target.max_backups == 0 {
        return ignore_missing(std::fs::remove_file(&target.path));
    }
    ignore_missing(std::fs::remove_file(backup(target.max_backups)))?;
    for n in (1..target.max_backups).rev() {
        ignore_missing(std::fs::rename(backup(n), backup(n + 1)))?;
    }
    std::fs::rename(&target.path, backup(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates_and_is_capped() {
        let header = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
            h
        };
        assert_eq!(retry_after(&header("3")), Some(Duration::from_secs(3)));
        assert_eq!(retry_after(&header("999999")), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after(&header("Wed, 21 Oct 2015 07:28:00 GMT")),
            Some(Duration::ZERO)
        );
        // A date two minutes after `now` (whole seconds: HTTP dates have no
        // fractions) is a wait of exactly two minutes.
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_765_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(120));
        assert_eq!(
            retry_after_at(&header(&later), now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(retry_after(&header("soon")), None);
        assert_eq!(retry_after(&HeaderMap::new()), None);
    }

    #[test]
    fn back_off_grows_to_its_maximum_with_bounded_jitter() {
        let retry = Retry::default();
        let mut interval = retry.initial;
        let mut seen = Vec::new();
        for _ in 0..8 {
            seen.push(interval);
            interval = retry.next(interval);
        }
        assert_eq!(seen[1], Duration::from_millis(7500));
        assert_eq!(*seen.last().unwrap(), retry.max_interval);
        for _ in 0..100 {
            let j = retry.jittered(Duration::from_secs(10));
            assert!(
                j >= Duration::from_secs(5) && j <= Duration::from_secs(15),
                "{j:?}"
            );
        }
    }

    #[test]
    fn grpc_endpoints_use_tls_unless_insecure_or_http() {
        assert_eq!(grpc_url("otlp", "b:4317", true).unwrap(), "http://b:4317");
        assert_eq!(
            grpc_url("otlp", "dns:///b:4317", true).unwrap(),
            "http://b:4317"
        );
        assert_eq!(
            grpc_url("otlp", "http://b:4317", false).unwrap(),
            "http://b:4317"
        );
        assert_eq!(grpc_url("otlp", "b:4317", false).unwrap(), "https://b:4317");
        assert_eq!(
            grpc_url("otlp", "https://b:4317", true).unwrap(),
            "https://b:4317"
        );
        assert!(grpc_url("otlp", "unix:///tmp/s", true).is_err());
    }
}
