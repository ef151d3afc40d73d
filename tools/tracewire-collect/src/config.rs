//! The OpenTelemetry Collector's YAML configuration, for the parts this
//! collector supports (the README lists them).

use std::io::Read as _;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value as Json};

use crate::export::{ExporterConfig, exporter_config};
use crate::filter::SpanFilter;
use crate::pipeline::{ProcessorConfig, TailSamplingConfig};
use crate::store::Retention;

/// Longest configuration file read, in bytes.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;

/// The embedded store's exporter type, for `exporters:` and the pipeline.
pub const STORE_EXPORTER: &str = "tracewire_store";

/// A configuration file that cannot be used: the message names the
/// component or field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// Not YAML, or not the Collector's shape.
    #[error("{0}")]
    Invalid(String),
}

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

/// The traces pipeline: its processors, in order, and its exporters
/// (the default: no processor, every span received is stored).
#[derive(Clone, Debug)]
pub struct Pipeline {
    pub(crate) processors: Vec<(String, ProcessorConfig)>,
    /// The exporters' ids in pipeline order, the store's included.
    exporter_ids: Vec<String>,
    /// Whether spans go to the embedded store.
    pub(crate) store: bool,
    /// The forwarding exporters, in pipeline order.
    pub(crate) exporters: Vec<ExporterConfig>,
}

impl Default for Pipeline {
    /// No processor; the embedded store as the only exporter.
    fn default() -> Self {
        Pipeline {
            processors: Vec::new(),
            exporter_ids: vec![STORE_EXPORTER.to_owned()],
            store: true,
            exporters: Vec::new(),
        }
    }
}

impl Pipeline {
    /// The processors' ids (`type[/name]`), in pipeline order.
    pub fn processor_ids(&self) -> Vec<&str> {
        self.processors.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// The exporters' ids (`type[/name]`), in pipeline order.
    pub fn exporter_ids(&self) -> Vec<&str> {
        self.exporter_ids.iter().map(String::as_str).collect()
    }

    /// Whether spans are written to the embedded store (the pipeline
    /// names [`STORE_EXPORTER`]); without it the API answers empty.
    pub fn stores(&self) -> bool {
        self.store
    }
}

/// A Collector configuration file, read by [`CollectorFile::from_yaml`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct CollectorFile {
    /// `receivers.otlp.protocols.http.endpoint`, when given.
    pub listen: Option<SocketAddr>,
    /// `receivers.otlp.protocols.grpc.endpoint` (`127.0.0.1:4317` when
    /// `grpc` names none); `None` when the file has no `grpc` protocol:
    /// as in the Collector, only the protocols listed are served.
    pub grpc_listen: Option<SocketAddr>,
    /// The `zipkin` receiver's `endpoint` (`127.0.0.1:9411` when it names
    /// none); `None` unless the traces pipeline uses a `zipkin` receiver:
    /// as in the Collector, receivers no pipeline uses are not started.
    pub zipkin_listen: Option<SocketAddr>,
    /// `service.pipelines.traces`.
    pub pipeline: Pipeline,
    /// `exporters.tracewire_store`'s `max_traces` and `max_bytes`, over
    /// the defaults (`None` without the exporter).
    pub retention: Option<Retention>,
    /// Settings accepted and not used, and values clamped (from the
    /// tail-sampling policy parser).
    pub warnings: Vec<String>,
}

impl CollectorFile {
    /// Reads the file at `path` ([`CollectorFile::from_yaml`]).
    ///
    /// # Errors
    /// When it cannot be read (or is over [`MAX_CONFIG_BYTES`]) or is
    /// invalid.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let read_error = |source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        };
        // Read one byte past the limit at most, so that a huge file (or an
        // endless one such as a device) is refused without reading it all.
        let file = std::fs::File::open(path).map_err(read_error)?;
        let mut text = Vec::new();
        (&file)
            .take(
                u64::try_from(MAX_CONFIG_BYTES)
                    .unwrap_or(u64::MAX)
                    .saturating_add(1),
            )
            .read_to_end(&mut text)
            .map_err(read_error)?;
        if text.len() > MAX_CONFIG_BYTES {
            let size = file
                .metadata()
                .map_or(0, |m| m.len())
                .max(u64::try_from(text.len()).unwrap_or(u64::MAX));
            return Err(invalid(format!(
                "{}: {size} bytes, more than the {MAX_CONFIG_BYTES} read",
                path.display(),
            )));
        }
        let text = String::from_utf8(text)
            .map_err(|_| invalid(format!("{}: not UTF-8", path.display())))?;
        Self::from_yaml(&text)
    }

    /// Reads the Collector's YAML configuration: `receivers` (`otlp`, and
    /// `zipkin` for a traces pipeline), `processors`, `exporters` and
    /// `service.pipelines.traces`.
    ///
    /// # Errors
    /// When the text is not YAML; a component's type is unknown or not
    /// supported yet (the message names it); the pipeline names a
    /// component not defined; a setting is malformed.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        if text.len() > MAX_CONFIG_BYTES {
            return Err(invalid(format!(
                "{} bytes, more than the {MAX_CONFIG_BYTES} read",
                text.len()
            )));
        }
        let yaml: serde_norway::Value =
            serde_norway::from_str(text).map_err(|e| invalid(format!("not valid YAML: {e}")))?;
        let root = serde_json::to_value(yaml)
            .map_err(|e| invalid(format!("not the Collector's shape: {e}")))?;
        let root = object(&root, "the file")?;
        let mut warnings = Vec::new();
        for key in root.keys() {
            match key.as_str() {
                "receivers" | "processors" | "exporters" | "service" => {}
                "extensions" | "connectors" => {
                    return Err(invalid(format!("{key}: not supported yet")));
                }
                _ => return Err(invalid(format!("unknown top-level section {key:?}"))),
            }
        }
        let empty = Json::Object(Map::new());
        let receivers = object(root.get("receivers").unwrap_or(&empty), "receivers")?;
        let processors = object(root.get("processors").unwrap_or(&empty), "processors")?;
        let exporters = object(root.get("exporters").unwrap_or(&empty), "exporters")?;

        // Every defined component is checked, used or not.
        let mut listen = None;
        let mut grpc_listen = None;
        let mut zipkin_receivers = std::collections::HashMap::new();
        for (id, settings) in receivers {
            match component_type(id) {
                "otlp" => (listen, grpc_listen) = otlp_receiver(id, settings)?,
                "zipkin" => {
                    zipkin_receivers.insert(id.clone(), zipkin_receiver(id, settings)?);
                }
                "jaeger" | "kafka" | "prometheus" => {
                    return Err(invalid(format!("receiver {id:?}: not supported yet")));
                }
                _ => return Err(invalid(format!("unknown receiver {id:?}"))),
            }
        }
        let mut parsed = std::collections::HashMap::new();
        for (id, settings) in processors {
            let processor = match component_type(id) {
                "batch" => {
                    batch_settings(id, settings, &mut warnings)?;
                    ProcessorConfig::Batch
                }
                "filter" => {
                    ProcessorConfig::Filter(Arc::new(SpanFilter::from_settings(id, settings)?))
                }
                "tail_sampling" => {
                    ProcessorConfig::TailSampling(tail_sampling(id, settings, &mut warnings)?)
                }
                "memory_limiter"
                | "attributes"
                | "resource"
                | "transform"
                | "span"
                | "probabilistic_sampler"
                | "groupbytrace"
                | "k8sattributes"
                | "resourcedetection" => {
                    return Err(invalid(format!("processor {id:?}: not supported yet")));
                }
                _ => return Err(invalid(format!("unknown processor {id:?}"))),
            };
            parsed.insert(id.clone(), processor);
        }
        let mut retention = None;
        let mut forwarding = std::collections::HashMap::new();
        for (id, settings) in exporters {
            match component_type(id) {
                STORE_EXPORTER => retention = Some(store_retention(id, settings)?),
                kind @ ("otlp" | "otlphttp" | "file") => {
                    forwarding.insert(
                        id.clone(),
                        exporter_config(kind, id, settings, &mut warnings)?,
                    );
                }
                "debug" | "logging" => {
                    return Err(invalid(format!(
                        "exporter {id:?}: not supported yet (supported: {STORE_EXPORTER:?}, \
                         otlp, otlphttp, file)"
                    )));
                }
                "loadbalancing" | "kafka" | "zipkin" | "prometheus" => {
                    return Err(invalid(format!(
                        "exporter {id:?}: not supported (supported: {STORE_EXPORTER:?}, \
                         otlp, otlphttp, file)"
                    )));
                }
                _ => return Err(invalid(format!("unknown exporter {id:?}"))),
            }
        }

        let service = object(root.get("service").unwrap_or(&empty), "service")?;
        for key in service.keys() {
            match key.as_str() {
                "pipelines" => {}
                "telemetry" | "extensions" => {
                    warnings.push(format!("service.{key}: accepted, not used"));
                }
                _ => return Err(invalid(format!("unknown setting service.{key}"))),
            }
        }
        let pipelines = object(
            service.get("pipelines").unwrap_or(&empty),
            "service.pipelines",
        )?;
        let mut pipeline = Pipeline::default();
        let mut zipkin_listen = None;
        let mut zipkin_used: Option<String> = None;
        let (mut seen_traces, mut seen_logs) = (false, false);
        for (id, settings) in pipelines {
            let signal = component_type(id);
            let seen = match signal {
                "traces" => &mut seen_traces,
                "logs" => &mut seen_logs,
                _ => {
                    return Err(invalid(format!(
                        "pipeline {id:?}: not supported yet (only traces and logs)"
                    )));
                }
            };
            if *seen {
                return Err(invalid(format!(
                    "pipeline {id:?}: only one {signal} pipeline is supported yet"
                )));
            }
            *seen = true;
            let settings = object(settings, id)?;
            for key in settings.keys() {
                if !matches!(key.as_str(), "receivers" | "processors" | "exporters") {
                    return Err(invalid(format!("pipeline {id:?}: unknown setting {key:?}")));
                }
            }
            let used = |section: &str| -> Result<Vec<String>, ConfigError> {
                match settings.get(section) {
                    None | Some(Json::Null) => Ok(Vec::new()),
                    Some(Json::Array(items)) => items
                        .iter()
                        .map(|v| {
                            v.as_str().map(str::to_owned).ok_or_else(|| {
                                invalid(format!("pipeline {id:?}: {section}: not a list of names"))
                            })
                        })
                        .collect(),
                    Some(_) => Err(invalid(format!("pipeline {id:?}: {section}: not a list"))),
                }
            };
            let used_receivers = used("receivers")?;
            if used_receivers.is_empty() {
                return Err(invalid(format!("pipeline {id:?}: no receivers")));
            }
            for r in &used_receivers {
                if !receivers.contains_key(r) {
                    return Err(invalid(format!(
                        "pipeline {id:?}: receiver {r:?} is not defined under receivers"
                    )));
                }
                if let Some(endpoint) = zipkin_receivers.get(r) {
                    if signal != "traces" {
                        return Err(invalid(format!(
                            "pipeline {id:?}: receiver {r:?}: zipkin receives traces only"
                        )));
                    }
                    if zipkin_used.as_ref().is_some_and(|used| used != r) {
                        return Err(invalid(format!(
                            "pipeline {id:?}: receiver {r:?}: only one zipkin receiver is \
                             supported yet"
                        )));
                    }
                    zipkin_used = Some(r.clone());
                    zipkin_listen = Some(*endpoint);
                }
            }
            for p in used("processors")? {
                let Some(processor) = parsed.get(&p) else {
                    return Err(invalid(format!(
                        "pipeline {id:?}: processor {p:?} is not defined under processors"
                    )));
                };
                if signal == "logs" {
                    // Log records are stored as received; batch is
                    // accepted (and unused) as in a traces pipeline.
                    if !matches!(processor, ProcessorConfig::Batch) {
                        return Err(invalid(format!(
                            "pipeline {id:?}: processor {p:?} is a trace processor; a logs \
                             pipeline takes only batch"
                        )));
                    }
                    continue;
                }
                pipeline.processors.push((p.clone(), processor.clone()));
            }
            let used_exporters = used("exporters")?;
            if used_exporters.is_empty() {
                return Err(invalid(format!("pipeline {id:?}: no exporters")));
            }
            if signal == "logs" {
                // Log records go to the store only.
                for e in &used_exporters {
                    if !exporters.contains_key(e) {
                        return Err(invalid(format!(
                            "pipeline {id:?}: exporter {e:?} is not defined under exporters"
                        )));
                    }
                    if component_type(e) != STORE_EXPORTER {
                        return Err(invalid(format!(
                            "pipeline {id:?}: exporter {e:?}: log records are only stored \
                             ({STORE_EXPORTER:?}); forwarding exporters take traces"
                        )));
                    }
                }
                continue;
            }
            pipeline.store = false;
            pipeline.exporter_ids.clear();
            for e in &used_exporters {
                if !exporters.contains_key(e) {
                    return Err(invalid(format!(
                        "pipeline {id:?}: exporter {e:?} is not defined under exporters"
                    )));
                }
                if pipeline.exporter_ids.contains(e) {
                    continue;
                }
                pipeline.exporter_ids.push(e.clone());
                match forwarding.get(e) {
                    Some(config) => pipeline.exporters.push(config.clone()),
                    None => pipeline.store = true,
                }
            }
        }
        if !seen_traces && !seen_logs {
            return Err(invalid("service.pipelines: no traces or logs pipeline"));
        }
        Ok(CollectorFile {
            listen,
            grpc_listen,
            zipkin_listen,
            pipeline,
            retention,
            warnings,
        })
    }
}

/// `exporters.tracewire_store: {max_traces: N, max_bytes: N, max_logs: N,
/// max_log_bytes: N}` (each optional, a non-negative integer; no other
/// setting).
fn store_retention(id: &str, settings: &Json) -> Result<Retention, ConfigError> {
    let mut retention = Retention::default();
    for (key, value) in object(settings, id)? {
        let n = value.as_u64().ok_or_else(|| {
            invalid(format!(
                "exporter {id:?}: {key} must be a non-negative integer"
            ))
        })?;
        match key.as_str() {
            "max_traces" => retention.max_traces = n,
            "max_bytes" => retention.max_bytes = n,
            "max_logs" => retention.max_logs = n,
            "max_log_bytes" => retention.max_log_bytes = n,
            _ => return Err(invalid(format!("exporter {id:?}: unknown setting {key:?}"))),
        }
    }
    Ok(retention)
}

/// `type/name` → `type`.
fn component_type(id: &str) -> &str {
    id.split_once('/').map_or(id, |(t, _)| t)
}

fn object<'a>(value: &'a Json, what: &str) -> Result<&'a Map<String, Json>, ConfigError> {
    static EMPTY: std::sync::OnceLock<Map<String, Json>> = std::sync::OnceLock::new();
    match value {
        Json::Object(map) => Ok(map),
        // `batch:` with nothing after it.
        Json::Null => Ok(EMPTY.get_or_init(Map::new)),
        _ => Err(invalid(format!("{what}: not a mapping"))),
    }
}

/// The `otlp` receiver's endpoints: HTTP's (when it names one) and
/// gRPC's (when `grpc` is listed; its default when it names none).
fn otlp_receiver(
    id: &str,
    settings: &Json,
) -> Result<(Option<SocketAddr>, Option<SocketAddr>), ConfigError> {
    let settings = object(settings, id)?;
    let empty = Json::Null;
    let protocols = object(settings.get("protocols").unwrap_or(&empty), id)?;
    if let Some(key) = settings.keys().find(|k| k.as_str() != "protocols") {
        return Err(invalid(format!("receiver {id:?}: unknown setting {key:?}")));
    }
    let (mut listen, mut grpc_listen) = (None, None);
    for (protocol, p) in protocols {
        let slot = match protocol.as_str() {
            "grpc" => {
                grpc_listen = Some(crate::DEFAULT_GRPC_LISTEN);
                &mut grpc_listen
            }
            "http" => &mut listen,
            _ => {
                return Err(invalid(format!(
                    "receiver {id:?}: unknown protocol {protocol:?}"
                )));
            }
        };
        for (key, value) in object(p, &format!("protocols.{protocol}"))? {
            match key.as_str() {
                "endpoint" => {
                    let text = value.as_str().ok_or_else(|| {
                        invalid(format!(
                            "receiver {id:?}: protocols.{protocol}.endpoint: not a string"
                        ))
                    })?;
                    *slot = Some(endpoint(id, protocol, text)?);
                }
                _ => {
                    return Err(invalid(format!(
                        "receiver {id:?}: protocols.{protocol}.{key}: not supported yet"
                    )));
                }
            }
        }
    }
    Ok((listen, grpc_listen))
}

/// The `zipkin` receiver's `endpoint` (the default: `127.0.0.1:9411`,
/// Zipkin's port on the loopback interface, as this collector's other
/// default addresses); no other setting is supported yet.
fn zipkin_receiver(id: &str, settings: &Json) -> Result<SocketAddr, ConfigError> {
    let mut listen = crate::DEFAULT_ZIPKIN_LISTEN;
    for (key, value) in object(settings, id)? {
        match key.as_str() {
            "endpoint" => {
                let text = value
                    .as_str()
                    .ok_or_else(|| invalid(format!("receiver {id:?}: endpoint: not a string")))?;
                listen = resolve(text).ok_or_else(|| {
                    invalid(format!("receiver {id:?}: endpoint {text:?}: not host:port"))
                })?;
            }
            _ => {
                return Err(invalid(format!(
                    "receiver {id:?}: {key}: not supported yet (supported: endpoint)"
                )));
            }
        }
    }
    Ok(listen)
}

/// `host:port` (an IP address, or a name resolved) as a socket address.
fn resolve(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse() {
        return Some(addr);
    }
    text.to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
}

fn endpoint(id: &str, protocol: &str, text: &str) -> Result<SocketAddr, ConfigError> {
    resolve(text).ok_or_else(|| {
        invalid(format!(
            "receiver {id:?}: protocols.{protocol}.endpoint {text:?}: not host:port"
        ))
    })
}

fn batch_settings(
    id: &str,
    settings: &Json,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    for (key, value) in object(settings, id)? {
        match key.as_str() {
            "timeout" => {
                duration(id, key, value)?;
            }
            "send_batch_size" | "send_batch_max_size" => {
                if value.as_u64().is_none() {
                    return Err(invalid(format!(
                        "processor {id:?}: {key}: not a whole number"
                    )));
                }
            }
            "metadata_keys" | "metadata_cardinality_limit" => {}
            _ => {
                return Err(invalid(format!(
                    "processor {id:?}: unknown setting {key:?}"
                )));
            }
        }
        warnings.push(format!(
            "processor {id:?}: {key}: accepted, not used (batches are written as received)"
        ));
    }
    Ok(())
}

fn duration(id: &str, key: &str, value: &Json) -> Result<Duration, ConfigError> {
    value
        .as_str()
        .and_then(|s| humantime::parse_duration(s.trim()).ok())
        .ok_or_else(|| {
            invalid(format!(
                "processor {id:?}: {key}: not a duration such as \"2s\" or \"500ms\""
            ))
        })
}

fn tail_sampling(
    id: &str,
    settings: &Json,
    warnings: &mut Vec<String>,
) -> Result<TailSamplingConfig, ConfigError> {
    let mut settings = object(settings, id)?.clone();
    // The core's parser reads `decision_wait_ms`; the Collector writes a
    // duration string.
    if let Some(value) = settings.remove("decision_wait") {
        let wait = duration(id, "decision_wait", &value)?;
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        settings.insert("decision_wait_ms".into(), Json::from(ms));
    }
    let text = Json::Object(settings).to_string();
    let file =
        tracewire::tail::policy_file_from_json(&text, tracewire::tail::TailConfig::default())
            .map_err(|e| invalid(format!("processor {id:?}: {e}")))?;
    warnings.extend(
        file.warnings
            .iter()
            .map(|w| format!("processor {id:?}: {w}")),
    );
    Ok(TailSamplingConfig {
        decision_wait: file.config.decision_wait,
        num_traces: file.config.max_traces.max(1),
        max_spans_per_trace: file.config.max_spans_per_trace.max(1),
        decision_cache: file.config.decision_cache.max(1),
        policies: Arc::new(file.policies),
    })
}
