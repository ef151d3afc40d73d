//! One way to start: [`init`] reads the standard `OTEL_*` variables and
//! installs everything; [`Tracewire`] does the same from code.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing_core::metadata::LevelFilter;
use tracing_core::{Metadata, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::layer::Filter;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

use crate::TracewireLayer;
use crate::export::otlp::{OtlpConfig, OtlpError, OtlpExporter};
use crate::export::{
    BatchConfig, BatchSpanProcessor, ConsoleExporter, JsonLinesExporter, PipelineStats, Resource,
    SpanExporter,
};
use crate::processor::{MultiProcessor, NoopProcessor, SpanProcessor};
use crate::propagation::CompositePropagator;
use crate::sampling::{ConfigWarning, Sampler, sampler_from_otel};
use crate::tail::{Policy, PolicyFile, TailConfig, TailSamplingProcessor, policy_file_from_json};

/// Where finished spans go (`OTEL_TRACES_EXPORTER`).
#[derive(Debug)]
#[non_exhaustive]
pub enum TracesExporter {
    /// OTLP, as configured by [`Tracewire::otlp`] (`otlp`, the default).
    Otlp,
    /// A tree per trace on standard output (`console`).
    Console,
    /// OTLP/JSON lines appended to a file (`file`; the path comes from
    /// `TRACEWIRE_TRACES_FILE`, default `traces.jsonl`).
    File(PathBuf),
    /// An exporter of the caller's.
    Custom(Box<dyn SpanExporter>),
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text with ` trace_id=… span_id=… trace_flags=…`
    /// appended (the default).
    #[default]
    Text,
    /// One JSON object per line with top-level `trace_id`, `span_id`,
    /// `trace_flags`.
    Json,
    /// No log output (spans only).
    None,
}

/// Why start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The OTLP exporter could not be created.
    #[error(transparent)]
    Otlp(#[from] OtlpError),
    /// The trace file could not be opened.
    #[error("cannot open the trace file {path}: {source}")]
    File {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Another global subscriber was installed first.
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Flushes and shuts down the span pipeline when dropped (within a
/// timeout, default 5 s), so the last spans of a program are delivered.
/// Keep it alive in `main`.
#[must_use = "dropping the guard shuts the span pipeline down"]
#[derive(Debug)]
pub struct TracingGuard {
    processor: Arc<dyn SpanProcessor>,
    stats: Vec<Arc<PipelineStats>>,
    shutdown_timeout: Duration,
}

impl TracingGuard {
    /// Counters of each export pipeline (one per exporter).
    pub fn stats(&self) -> &[Arc<PipelineStats>] {
        &self.stats
    }

    /// Delivers every span ended so far, waiting at most `timeout`.
    ///
    /// # Errors
    /// When delivery did not finish in time or failed.
    pub fn force_flush(&self, timeout: Duration) -> Result<(), crate::processor::ProcessorError> {
        self.processor.force_flush(timeout)
    }
}

impl Drop for TracingGuard {
    fn drop(&mut self) {
        let _ = self.processor.shutdown(self.shutdown_timeout);
    }
}

/// Reads the `OTEL_*` variables, installs a global subscriber with the
/// tracewire layer and log output with trace correlation, and sets the
/// global propagator.
///
/// The variables: `OTEL_SDK_DISABLED`, `OTEL_SERVICE_NAME`,
/// `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER[_ARG]`,
/// `OTEL_PROPAGATORS`, `OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_*`,
/// `OTEL_BSP_*`, plus `TRACEWIRE_LOG_FORMAT` (`text` or `json`),
/// `TRACEWIRE_TRACES_FILE`, `TRACEWIRE_TAIL_POLICIES` (a tail sampling
/// policy file) and the two filters:
///
/// - `RUST_LOG` (default `info`) filters **log output only**: a log level
///   never decides which spans exist, because a missing span also means a
///   missing `traceparent` downstream.
/// - `TRACEWIRE_TRACES_FILTER` (default `info`, the same `EnvFilter`
///   syntax) decides which of the application's own spans and events are
///   traced. Spans of the instrumentation crates (targets starting with
///   `tracewire_`) are always traced.
///
/// Invalid values (not UTF-8, not a number, out of range, unknown names)
/// are logged as warnings naming the variable, and a default or the
/// nearest value in range is used; a configuration never panics.
///
/// ```no_run
/// fn main() -> Result<(), tracewire::InitError> {
///     let _guard = tracewire::init()?;
///     tracing::info_span!("work").in_scope(|| tracing::info!("traced"));
///     Ok(())
/// }
/// ```
///
/// # Errors
/// When an exporter cannot be created or a subscriber is already installed.
pub fn init() -> Result<TracingGuard, InitError> {
    Tracewire::from_env().install()
}

/// Start-up from code: the settings [`init`] reads from the environment,
/// each overridable.
///
/// ```
/// use tracewire::{LogFormat, TracesExporter, Tracewire};
/// use tracewire::sampling::TraceIdRatio;
///
/// let (layer, guard) = Tracewire::from_otel(|_| None)
///     .service_name("checkout")
///     .sampler(TraceIdRatio::new(0.1))
///     .exporter(TracesExporter::Console)
///     .log_format(LogFormat::Json)
///     .build_layer()
///     .unwrap();
/// # drop((layer, guard));
/// ```
#[derive(Debug)]
pub struct Tracewire {
    resource: Resource,
    /// Whether `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` named the
    /// service (then [`Tracewire::default_service_name`] leaves it).
    service_named_by_env: bool,
    sampler: Arc<dyn Sampler>,
    propagator: CompositePropagator,
    exporters: Vec<TracesExporter>,
    otlp: OtlpConfig,
    batch: BatchConfig,
    disabled: bool,
    log_format: LogFormat,
    log_filter: Option<String>,
    traces_filter: Option<String>,
    shutdown_timeout: Duration,
    tail: Option<(Vec<Policy>, TailConfig)>,
    warnings: Vec<ConfigWarning>,
}

impl Tracewire {
    /// Settings from this process's environment. A variable of ours
    /// (`OTEL_*`, `TRACEWIRE_*`, `RUST_LOG`) whose value is not UTF-8 is
    /// ignored with a warning.
    pub fn from_env() -> Self {
        let mut config = Self::from_otel(|name| std::env::var(name).ok());
        for (name, value) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            if value.to_str().is_none() && is_our_variable(name) {
                config.warnings.push(ConfigWarning {
                    variable: config_variable_name(name),
                    // Not echoed: it may be a secret (a header value).
                    value: String::from("<not UTF-8>"),
                    reason: "not valid UTF-8; ignored (the default is used)",
                });
            }
        }
        config
    }

    /// Settings from the variables `var` returns (empty counts as unset).
    pub fn from_otel(var: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let mut warnings = Vec::new();
        let (resource, w) = Resource::from_otel(
            var("OTEL_SERVICE_NAME").as_deref(),
            var("OTEL_RESOURCE_ATTRIBUTES").as_deref(),
        );
        warnings.extend(w);
        let service_named_by_env = resource.service_name() != Resource::default_service_name();
        let (sampler, w) = sampler_from_otel(
            var("OTEL_TRACES_SAMPLER").as_deref(),
            var("OTEL_TRACES_SAMPLER_ARG").as_deref(),
        );
        warnings.extend(w);
        let propagators = var("OTEL_PROPAGATORS");
        let (mut propagator, errors) =
            CompositePropagator::from_otel_propagators(propagators.as_deref());
        // Nothing known and no `none`: a typo must not turn propagation off.
        let none_asked = propagators
            .iter()
            .flat_map(|v| v.split(','))
            .any(|n| n.trim().eq_ignore_ascii_case("none"));
        let fall_back = propagator.propagators().is_empty() && !errors.is_empty() && !none_asked;
        if fall_back {
            propagator = CompositePropagator::default();
        }
        warnings.extend(errors.into_iter().map(|e| ConfigWarning {
            variable: "OTEL_PROPAGATORS",
            value: e.name.chars().take(64).collect(),
            reason: if fall_back {
                "unknown propagator (known: tracecontext, baggage, b3, b3multi, none); none known: using tracecontext,baggage"
            } else {
                "unknown propagator (known: tracecontext, baggage, b3, b3multi, none); ignored"
            },
        }));
        let (otlp, w) = OtlpConfig::from_otel(var);
        warnings.extend(w);
        let (batch, w) = BatchConfig::from_otel(var);
        warnings.extend(w);
        let disabled = match var("OTEL_SDK_DISABLED") {
            None => false,
            Some(v) if v.trim().eq_ignore_ascii_case("true") => true,
            Some(v) if v.trim().eq_ignore_ascii_case("false") => false,
            Some(v) => {
                warnings.push(ConfigWarning {
                    variable: "OTEL_SDK_DISABLED",
                    value: v.chars().take(64).collect(),
                    reason: "expected true or false; using false",
                });
                false
            }
        };
        let file = var("TRACEWIRE_TRACES_FILE")
            .map_or_else(|| PathBuf::from("traces.jsonl"), PathBuf::from);
        let mut exporters = Vec::new();
        let list = var("OTEL_TRACES_EXPORTER").unwrap_or_else(|| "otlp".to_owned());
        let mut any_known = false;
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "otlp" => exporters.push(TracesExporter::Otlp),
                "console" | "logging" => exporters.push(TracesExporter::Console),
                "file" => exporters.push(TracesExporter::File(file.clone())),
                "none" => {}
                _ => {
                    warnings.push(ConfigWarning {
                        variable: "OTEL_TRACES_EXPORTER",
                        value: name.chars().take(64).collect(),
                        reason: "expected otlp, console, file or none; ignored (with no known name, otlp is used)",
                    });
                    continue;
                }
            }
            any_known = true;
        }
        if !any_known {
            // Only unknown names: a typo must not turn export off.
            exporters.push(TracesExporter::Otlp);
        }
        let tail = var("TRACEWIRE_TAIL_POLICIES").and_then(|path| {
            let path = path.trim();
            match read_policy_file(path) {
                Ok(file) => {
                    warnings.extend(file.warnings.iter().map(|w| ConfigWarning {
                        variable: "TRACEWIRE_TAIL_POLICIES",
                        value: w.to_string(),
                        reason: "a tail sampling policy value was clamped or ignored",
                    }));
                    Some((file.policies, file.config))
                }
                Err(e) => {
                    warnings.push(ConfigWarning {
                        variable: "TRACEWIRE_TAIL_POLICIES",
                        value: format!("{}: {e}", path.chars().take(256).collect::<String>()),
                        reason: "cannot read a tail sampling policy file (JSON in the Collector's tail_sampling shape); no tail sampling",
                    });
                    None
                }
            }
        });
        let log_format = match var("TRACEWIRE_LOG_FORMAT").map(|v| v.trim().to_ascii_lowercase()) {
            None => LogFormat::Text,
            Some(v) if v == "text" => LogFormat::Text,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) if v == "none" => LogFormat::None,
            Some(v) => {
                warnings.push(ConfigWarning {
                    variable: "TRACEWIRE_LOG_FORMAT",
                    value: v.chars().take(64).collect(),
                    reason: "expected text, json or none; using text",
                });
                LogFormat::Text
            }
        };
        Tracewire {
            resource,
            service_named_by_env,
            sampler,
            propagator,
            exporters,
            otlp,
            batch,
            disabled,
            log_format,
            log_filter: var("RUST_LOG"),
            traces_filter: var("TRACEWIRE_TRACES_FILTER"),
            shutdown_timeout: Duration::from_secs(5),
            tail,
            warnings,
        }
    }

    /// Sets `service.name` unless the environment named the service
    /// (`OTEL_SERVICE_NAME`, or `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`): the name a program gives itself, which
    /// a deployment can still override.
    ///
    /// ```
    /// use tracewire::Tracewire;
    ///
    /// let named = |vars: &[(&str, &str)]| {
    ///     let vars: Vec<(String, String)> =
    ///         vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    ///     Tracewire::from_otel(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    ///         .default_service_name("checkout")
    ///         .resource_ref()
    ///         .service_name()
    ///         .to_owned()
    /// };
    /// assert_eq!(named(&[]), "checkout");
    /// assert_eq!(named(&[("OTEL_SERVICE_NAME", "checkout-eu")]), "checkout-eu");
    /// assert_eq!(named(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=co")]), "co");
    /// ```
    pub fn default_service_name(self, name: impl Into<String>) -> Self {
        if self.service_named_by_env {
            self
        } else {
            self.service_name(name)
        }
    }

    /// The resource spans will carry.
    pub fn resource_ref(&self) -> &Resource {
        &self.resource
    }

    /// Sets `service.name`, whatever the environment says (see
    /// [`default_service_name`](Self::default_service_name) for a name the
    /// environment can override).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.resource = self
            .resource
            .with_attribute("service.name", crate::Value::String(name.into().into()));
        self
    }

    /// Replaces the resource.
    pub fn resource(mut self, resource: Resource) -> Self {
        self.resource = resource;
        self
    }

    /// Sets the head sampler.
    pub fn sampler(mut self, sampler: impl Sampler) -> Self {
        self.sampler = Arc::new(sampler);
        self
    }

    /// Sets the propagator installed as the global one.
    pub fn propagator(mut self, propagator: CompositePropagator) -> Self {
        self.propagator = propagator;
        self
    }

    /// Sends spans to `exporter` only.
    pub fn exporter(mut self, exporter: TracesExporter) -> Self {
        self.exporters = vec![exporter];
        self
    }

    /// Sends spans to `exporter` as well.
    pub fn add_exporter(mut self, exporter: TracesExporter) -> Self {
        self.exporters.push(exporter);
        self
    }

    /// Sets the OTLP exporter's settings.
    pub fn otlp(mut self, config: OtlpConfig) -> Self {
        self.otlp = config;
        self
    }

    /// Sets the batch processor's settings.
    pub fn batch(mut self, config: BatchConfig) -> Self {
        self.batch = config;
        self
    }

    /// Keeps or drops whole traces with `policies` before export (see
    /// [`tail`](crate::tail)).
    pub fn tail_sampling(mut self, policies: Vec<Policy>, config: TailConfig) -> Self {
        self.tail = Some((policies, config));
        self
    }

    /// Sets the log output format.
    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.log_format = format;
        self
    }

    /// Sets the `EnvFilter` directives for log output (instead of
    /// `RUST_LOG`). They never change which spans are traced.
    pub fn log_filter(mut self, directives: impl Into<String>) -> Self {
        self.log_filter = Some(directives.into());
        self
    }

    /// Sets the `EnvFilter` directives deciding which of the application's
    /// spans and events are traced (instead of `TRACEWIRE_TRACES_FILTER`;
    /// default `info`). The instrumentation crates' spans (targets starting
    /// with `tracewire_`) are traced whatever these say.
    pub fn traces_filter(mut self, directives: impl Into<String>) -> Self {
        self.traces_filter = Some(directives.into());
        self
    }

    /// Turns tracing off (`OTEL_SDK_DISABLED=true`): nothing is sampled or
    /// exported and no new trace is started, but an incoming trace context
    /// is passed on unchanged (the spans created under it carry it, so it
    /// reaches the next service and the log lines as it came in).
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.disabled = disabled;
        self
    }

    /// How long the guard waits for the pipeline when dropped.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The propagator selected (by `OTEL_PROPAGATORS` or in code).
    pub fn propagator_ref(&self) -> &CompositePropagator {
        &self.propagator
    }

    /// The problems found in the configuration so far.
    pub fn warnings(&self) -> &[ConfigWarning] {
        &self.warnings
    }

    /// Builds the layer and its pipeline without installing anything (for
    /// composing with other layers, or for tests). The propagator is not
    /// made global: see [`propagator`](Self::propagator_ref).
    ///
    /// # Errors
    /// When an exporter cannot be created.
    pub fn build_layer(mut self) -> Result<(TracewireLayer, TracingGuard), InitError> {
        let mut processors: Vec<Box<dyn SpanProcessor>> = Vec::new();
        let mut stats = Vec::new();
        if !self.disabled {
            for exporter in std::mem::take(&mut self.exporters) {
                let exporter: Box<dyn SpanExporter> = match exporter {
                    TracesExporter::Otlp => {
                        Box::new(OtlpExporter::new(self.resource.clone(), self.otlp.clone())?)
                    }
                    TracesExporter::Console => Box::new(ConsoleExporter::stdout()),
                    TracesExporter::File(path) => Box::new(
                        JsonLinesExporter::create(&path, self.resource.clone())
                            .map_err(|source| InitError::File { path, source })?,
                    ),
                    TracesExporter::Custom(exporter) => exporter,
                };
                let processor = BatchSpanProcessor::new(exporter, self.batch);
                stats.push(processor.stats());
                processors.push(Box::new(processor));
            }
        }
        let mut processor: Arc<dyn SpanProcessor> = match processors.len() {
            0 => Arc::new(NoopProcessor),
            1 => Arc::from(processors.remove(0)),
            _ => Arc::new(MultiProcessor::new(processors)),
        };
        if let Some((policies, config)) = self.tail.take()
            && !stats.is_empty()
        {
            processor = Arc::new(TailSamplingProcessor::new(policies, config, processor));
        }
        let layer = TracewireLayer::builder()
            .shared_sampler(self.sampler.clone())
            .shared_processor(processor.clone())
            .pass_through(self.disabled)
            .build();
        let guard = TracingGuard {
            processor,
            stats,
            shutdown_timeout: self.shutdown_timeout,
        };
        Ok((layer, guard))
    }

    /// Installs the global subscriber (the tracewire layer under the traces
    /// filter, the log output under the log filter) and the global
    /// propagator; then logs each configuration warning.
    ///
    /// # Errors
    /// When an exporter cannot be created or a subscriber is already
    /// installed.
    pub fn install(mut self) -> Result<TracingGuard, InitError> {
        let mut warnings = std::mem::take(&mut self.warnings);
        let log_directives = self.log_filter.take();
        let traces_directives = self.traces_filter.take();
        let traces = traces_filter(traces_directives.as_deref(), &mut warnings);
        let log = log_directives.as_deref();
        let traced = traces_directives.as_deref();
        let (text, json) = match self.log_format {
            LogFormat::Text => (
                Some(crate::fmt::text_layer().with_filter(log_filter(log, traced, &mut warnings))),
                None,
            ),
            LogFormat::Json => (
                None,
                Some(crate::fmt::json_layer().with_filter(log_filter(log, traced, &mut warnings))),
            ),
            LogFormat::None => (None, None),
        };
        crate::propagation::set_global(self.propagator.clone());
        let (layer, guard) = self.build_layer()?;
        let installed = tracing_subscriber::registry()
            .with(layer.with_filter(traces))
            .with(text)
            .with(json)
            .try_init();
        installed.map_err(|_| InitError::AlreadyInstalled)?;
        for warning in &warnings {
            tracing::warn!(target: "tracewire::config", "{warning}");
        }
        Ok(guard)
    }
}

/// Reads the tail sampling policy file at `path`, at most 2 MiB of it (the
/// parser refuses more than 1 MiB), so a path to a device or a huge file
/// costs no more than that.
fn read_policy_file(path: &str) -> Result<PolicyFile, String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(2 << 20).read_to_string(&mut text))
        .map_err(|e| e.to_string())?;
    policy_file_from_json(&text, TailConfig::default()).map_err(|e| e.to_string())
}

/// Whether a span or event comes from one of the instrumentation crates
/// (their targets start with `tracewire_`): those are traced whatever the
/// traces filter says, since a missing server or client span breaks the
/// trace for every service after it. [`init`] uses it; it can do the same
/// for a subscriber composed by hand:
///
/// ```
/// use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt};
/// use tracing_subscriber::prelude::*;
///
/// let (layer, _guard) = tracewire::Tracewire::from_otel(|_| None).build_layer().unwrap();
/// let traced = filter_fn(tracewire::is_instrumentation).or(EnvFilter::new("info"));
/// let subscriber = tracing_subscriber::registry().with(layer.with_filter(traced));
/// # drop(subscriber);
/// ```
pub fn is_instrumentation(metadata: &Metadata<'_>) -> bool {
    metadata.target().starts_with("tracewire_")
}

/// Which spans and events are traced: the instrumentation crates' always,
/// the others by the `EnvFilter` of `directives` (default `info`).
fn traces_filter<S>(
    directives: Option<&str>,
    warnings: &mut Vec<ConfigWarning>,
) -> impl Filter<S> + Send + Sync + 'static + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    filter_fn(is_instrumentation)
        .with_max_level_hint(LevelFilter::INFO)
        .or(env_filter("TRACEWIRE_TRACES_FILTER", directives, warnings))
}

/// What the log output sees: the spans that are traced (so that a line
/// finds its span's ids even when `RUST_LOG` hides that span's level) and
/// the events the `log` directives (`RUST_LOG`) allow. Warnings about the
/// traces directives are given by [`traces_filter`] alone.
fn log_filter<S>(
    log: Option<&str>,
    traces: Option<&str>,
    warnings: &mut Vec<ConfigWarning>,
) -> impl Filter<S> + Send + Sync + 'static + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let traced_spans = filter_fn(|metadata: &Metadata<'_>| metadata.is_span())
        .and(traces_filter(traces, &mut Vec::new()));
    env_filter("RUST_LOG", log, warnings).or(traced_spans)
}

/// The `EnvFilter` of `directives` (default `info`); invalid directives
/// give a warning naming `variable` and the default.
fn env_filter(
    variable: &'static str,
    directives: Option<&str>,
    warnings: &mut Vec<ConfigWarning>,
) -> EnvFilter {
    const DEFAULT: &str = "info";
    let Some(directives) = directives else {
        return EnvFilter::new(DEFAULT);
    };
    EnvFilter::builder().parse(directives).unwrap_or_else(|_| {
        warnings.push(ConfigWarning {
            variable,
            value: directives.chars().take(64).collect(),
            reason: "not valid filter directives; using info",
        });
        EnvFilter::new(DEFAULT)
    })
}

/// The variables tracewire reads, by prefix or name.
fn is_our_variable(name: &str) -> bool {
    name.starts_with("OTEL_") || name.starts_with("TRACEWIRE_") || name == "RUST_LOG"
}

/// Every variable [`init`] reads (`OTEL_*`, `TRACEWIRE_*`, `RUST_LOG`).
///
/// ```
/// assert!(tracewire::CONFIGURATION_VARIABLES.contains(&"OTEL_BSP_MAX_QUEUE_SIZE"));
/// ```
pub const CONFIGURATION_VARIABLES: &[&str] = &[
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PROPAGATORS",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "TRACEWIRE_TRACES_FILE",
    "TRACEWIRE_LOG_FORMAT",
    "TRACEWIRE_TAIL_POLICIES",
    "TRACEWIRE_TRACES_FILTER",
    "RUST_LOG",
];

/// `name` as the `&'static str` a warning carries: the known variable with
/// that name, or a generic label for the others (an unknown `OTEL_*` name
/// is not ours to name).
fn config_variable_name(name: &str) -> &'static str {
    CONFIGURATION_VARIABLES
        .iter()
        .find(|known| **known == name)
        .copied()
        .unwrap_or("an OTEL_*/TRACEWIRE_* variable")
}
