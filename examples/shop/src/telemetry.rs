//! Each service's tracing: spans to `traces-<service>.jsonl` (and to OTLP
//! when an endpoint is configured), JSON log lines with `trace_id`,
//! `span_id` and `trace_flags` on standard output (the launcher sends them
//! to `logs-<service>.jsonl`).

use std::path::Path;

use tracewire::{InitError, LogFormat, TracesExporter, Tracewire, TracingGuard};

use crate::services::{Service, optional};

/// The file a service's spans go to.
pub(crate) fn traces_file(out: &Path, service: Service) -> std::path::PathBuf {
    out.join(format!("traces-{}.jsonl", service.name()))
}

/// The file the launcher sends a service's log lines to.
pub(crate) fn logs_file(out: &Path, service: Service) -> std::path::PathBuf {
    out.join(format!("logs-{}.jsonl", service.name()))
}

/// Installs tracewire for `service` from the `OTEL_*` environment, with
/// this example's choices: the JSON-lines file always, OTLP only when
/// `OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT` is set (so the demo needs no
/// collector), JSON log lines, and `service.name` defaulting to the
/// service's name.
pub(crate) fn init(service: Service, out: &Path) -> Result<TracingGuard, InitError> {
    let mut config = Tracewire::from_env()
        .log_format(LogFormat::Json)
        .exporter(TracesExporter::File(traces_file(out, service)));
    if optional("OTEL_SERVICE_NAME").is_none() {
        config = config.service_name(service.name());
    }
    if optional("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || optional("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
    {
        config = config.add_exporter(TracesExporter::Otlp);
    }
    config.install()
}
