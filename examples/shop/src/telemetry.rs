//! Each service's tracing: spans to `traces-<service>.jsonl` (and to OTLP
//! when an endpoint is configured), JSON log lines with `trace_id`,
//! `span_id` and `trace_flags` on standard output (the launcher sends them
//! to `logs-<service>.jsonl`). At the end each service writes what became
//! of its spans, per exporter, to `export-<service>.json` for the report.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tracewire::export::PipelineStats;
use tracewire::{InitError, LogFormat, TracesExporter, Tracewire, TracingGuard};

use crate::BoxError;
use crate::services::{Service, optional};

/// The file a service's spans go to.
pub(crate) fn traces_file(out: &Path, service: Service) -> PathBuf {
    out.join(format!("traces-{}.jsonl", service.name()))
}

/// The file the launcher sends a service's log lines to.
pub(crate) fn logs_file(out: &Path, service: Service) -> PathBuf {
    out.join(format!("logs-{}.jsonl", service.name()))
}

/// The file a service writes its export counts to when it stops.
pub(crate) fn export_file(out: &Path, service: Service) -> PathBuf {
    out.join(format!("export-{}.json", service.name()))
}

/// A service's tracing, installed: the guard that flushes the spans when
/// dropped, and the counters of each exporter.
#[derive(Debug)]
pub(crate) struct Telemetry {
    guard: TracingGuard,
    /// Each exporter's name, with its counters (in the order of
    /// [`TracingGuard::stats`]).
    pipelines: Vec<(&'static str, Arc<PipelineStats>)>,
}

/// What became of the spans given to one exporter of one service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExportCounts {
    /// `file` or `otlp`.
    pub(crate) exporter: String,
    /// Spans the exporter accepted.
    pub(crate) exported: u64,
    /// Spans whose export failed.
    pub(crate) failed: u64,
    /// Spans dropped: the queue was full, or they were still queued when
    /// the pipeline shut down.
    pub(crate) dropped: u64,
    /// Spans still being exported when the service stopped (the shutdown
    /// timed out): never delivered.
    pub(crate) pending: u64,
}

impl ExportCounts {
    /// Spans not delivered: failed, dropped or pending.
    pub(crate) fn lost(&self) -> u64 {
        self.failed + self.dropped + self.pending
    }
}

/// Installs tracewire for `service` from the `OTEL_*` environment, with
/// this example's choices: the JSON-lines file always, OTLP only when
/// `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` is set (so the demo needs no
/// collector), JSON log lines, and `service.name` defaulting to the
/// service's name.
pub(crate) fn init(service: Service, out: &Path) -> Result<Telemetry, InitError> {
    let mut exporters = vec!["file"];
    let mut config = Tracewire::from_env()
        .default_service_name(service.name())
        .log_format(LogFormat::Json)
        .exporter(TracesExporter::File(traces_file(out, service)));
    if optional("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
    {
        config = config.add_exporter(TracesExporter::Otlp);
        exporters.push("otlp");
    }
    let guard = config.install()?;
    // One pipeline per exporter, in order; none when the SDK is disabled.
    let pipelines = exporters
        .into_iter()
        .zip(guard.stats().iter().cloned())
        .collect();
    Ok(Telemetry { guard, pipelines })
}

impl Telemetry {
    /// Flushes and shuts down the span pipelines (dropping the guard), then
    /// writes each exporter's final counts to [`export_file`].
    pub(crate) fn finish(self, service: Service, out: &Path) -> Result<(), BoxError> {
        drop(self.guard);
        let counts: Vec<ExportCounts> = self
            .pipelines
            .iter()
            .map(|(exporter, stats)| ExportCounts {
                exporter: (*exporter).to_owned(),
                exported: stats.exported(),
                failed: stats.failed(),
                dropped: stats.dropped(),
                pending: stats.pending(),
            })
            .collect();
        let path = export_file(out, service);
        std::fs::write(&path, serde_json::to_string(&counts)?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(())
    }
}

/// The counts `service` wrote when it stopped: `Err` says why there are
/// none (it did not stop cleanly, or the file is unreadable).
pub(crate) fn read_export_counts(
    out: &Path,
    service: Service,
) -> Result<Vec<ExportCounts>, String> {
    let path = export_file(out, service);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("no counts ({}: {e})", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("unreadable counts in {}: {e}", path.display()))
}
