//! Running the probe and reading what it printed and exported.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The `traceparent` the probe's caller sends.
pub(crate) const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
pub(crate) const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
pub(crate) const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// What one run of the probe showed.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) success: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    /// The probe's result line (`status`, `downstream_traceparent`).
    pub(crate) result: Value,
    /// The spans of the traces file (OTLP/JSON lines), if any.
    pub(crate) spans: Vec<Value>,
}

impl Run {
    pub(crate) fn status(&self) -> u64 {
        self.result["status"].as_u64().unwrap_or(0)
    }

    pub(crate) fn downstream_traceparent(&self) -> Option<&str> {
        self.result["downstream_traceparent"].as_str()
    }

    /// Log lines written by `tracewire::config` that name `variable`.
    pub(crate) fn warns_about(&self, variable: &str) -> bool {
        self.stdout
            .lines()
            .any(|l| l.contains("tracewire::config") && l.contains(variable))
    }

    pub(crate) fn span(&self, name: &str) -> Option<&Value> {
        self.spans.iter().find(|s| s["name"] == name)
    }
}

/// Runs the probe in `dir` with a clean tracewire environment plus `vars`
/// (file export to `dir/traces.jsonl` unless `vars` say otherwise); the
/// caller sends `traceparent` (`None`: no header).
pub(crate) fn probe(dir: &Path, traceparent: Option<&str>, vars: &[(&str, OsString)]) -> Run {
    let traces = dir.join("traces.jsonl");
    let mut command = Command::new(env!("CARGO_BIN_EXE_startup-probe"));
    command.current_dir(dir).arg(traceparent.unwrap_or("-"));
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("OTEL_") || name.starts_with("TRACEWIRE_") || name == "RUST_LOG" {
            command.env_remove(&*name);
        }
    }
    command
        .env("OTEL_TRACES_EXPORTER", "file")
        .env("TRACEWIRE_TRACES_FILE", &traces)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "probe");
    for (name, value) in vars {
        command.env(name, value);
    }
    let output = command.output().expect("run the probe");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let result = stdout
        .lines()
        .find_map(|l| l.strip_prefix("PROBE "))
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    Run {
        success: output.status.success(),
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        result,
        spans: read_spans(&traces),
    }
}

/// Every span in an OTLP/JSON lines file (none when it does not exist).
fn read_spans(path: &PathBuf) -> Vec<Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut spans = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let batch: Value = serde_json::from_str(line).expect("an OTLP/JSON line");
        for resource in batch["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                spans.extend(scope["spans"].as_array().into_iter().flatten().cloned());
            }
        }
    }
    spans
}

/// The trace id and parent id of a `traceparent`.
pub(crate) fn ids(traceparent: &str) -> (&str, &str) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    (parts[1], parts[2])
}
