//! What the user sees at the end: one normal and the slowest cache-miss
//! trace as waterfalls, the slow one's critical path and bottleneck, the
//! slow trace compared with the normal one, a checkout as one trace across
//! all six services (its gRPC hop's spans), the failed payment's error
//! spans, the slow trace's log lines gathered from every service by its
//! `trace_id`, and what became of each service's spans (exported, failed,
//! dropped, per exporter).

use std::io::{BufRead as _, IsTerminal as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tracewire::{SpanKind, Value};
use tracewire_cli::{RenderOptions, Trace, Traces, render};

use crate::BoxError;
use crate::services::Service;
use crate::telemetry::{logs_file, read_export_counts, traces_file};
use crate::traffic::{Outcome, Scenario};

/// What the report picked, for the viewer's links.
#[derive(Debug, Default)]
pub(crate) struct Picked {
    /// The slowest cache-miss login.
    pub(crate) slow: Option<String>,
    /// A normal login.
    pub(crate) normal: Option<String>,
    /// A checkout across all six services.
    pub(crate) checkout: Option<String>,
}

/// Prints the report for a run whose files are in `out`.
pub(crate) fn print(out: &Path, outcomes: &[Outcome]) -> Result<Picked, BoxError> {
    let files: Vec<PathBuf> = Service::ALL
        .iter()
        .map(|&s| traces_file(out, s))
        .filter(|p| p.exists())
        .collect();
    let traces = Traces::from_paths(&files)?;
    let spans: usize = traces.iter().map(|t| t.spans().len()).sum();
    println!(
        "\n{} traces, {spans} spans, from {} services' files",
        traces.len(),
        files.len()
    );

    let options = RenderOptions::new().with_color(std::io::stdout().is_terminal());
    let normal = pick(&traces, outcomes, Scenario::Login, Pick::Median);
    let slow = pick(&traces, outcomes, Scenario::LoginCacheMiss, Pick::Slowest);

    if let Some(normal) = normal {
        heading(&format!(
            "A normal login: the user is in the user service's cache ({})",
            render::format_duration(normal.duration_nanos())
        ));
        print!("{}", render::view(normal, &options));
    }
    if let Some(slow) = slow {
        heading(&format!(
            "The slowest cache miss: the user service scans the users table ({})",
            render::format_duration(slow.duration_nanos())
        ));
        print!("{}", render::view(slow, &options));
        heading("Where the time went (critical path; the bottleneck is marked)");
        let path = tracewire_cli::critical_path(slow);
        print!("{}", render::critical_path(slow, &path, &options));
    }
    if let (Some(normal), Some(slow)) = (normal, slow) {
        heading("The slow login compared with the normal one (changes of 1 ms or more)");
        let diff = tracewire_cli::diff(normal, slow);
        let options = options.with_min_delta(Duration::from_millis(1));
        print!("{}", render::diff(&diff, &options));
    }
    if let Some(slow) = slow {
        let id = slow.id().to_hex().to_string();
        heading(&format!(
            "Log lines of the slow trace, gathered from every service by trace_id={id}"
        ));
        print_logs(out, &id)?;
    }
    let order = pick(&traces, outcomes, Scenario::Order, Pick::Median);
    let id = |t: Option<&Trace>| t.map(|t| t.id().to_hex().to_string());
    let picked = Picked {
        slow: id(slow),
        normal: id(normal),
        checkout: id(order),
    };
    if let Some(order) = order {
        heading(&format!(
            "A checkout: one trace through HTTP, gRPC, SQL and the Kafka topic {}",
            crate::kafka::TOPIC
        ));
        print_checkout(order);
        print!("{}", render::view(order, &options));
    }
    if let Some(failed) = pick(&traces, outcomes, Scenario::OrderPaymentFails, Pick::Median) {
        heading("A declined card: the spans with status Error");
        print_errors(failed);
    }
    if let Some(retried) = pick(&traces, outcomes, Scenario::LoginRetried, Pick::Median) {
        heading("An overloaded auth: the gateway's attempts");
        print_attempts(retried);
    }

    heading("Span export: each service's counts after it flushed");
    print_export_counts(out);

    heading("Files");
    for file in &files {
        println!("  {}", file.display());
    }
    println!("  {}", out.join("logs-<service>.jsonl").display());
    println!("  {}", out.join("requests.jsonl").display());
    if let Some(slow) = slow {
        let all = out.join("traces-*.jsonl");
        println!("\nExplore further:");
        println!("  cargo run -p tracewire-cli -- list {}", all.display());
        println!(
            "  cargo run -p tracewire-cli -- view {} {}",
            slow.id().to_hex(),
            all.display()
        );
        if let Some(checkout) = &picked.checkout {
            println!(
                "  cargo run -p tracewire-cli -- view {checkout} {}   # the checkout",
                all.display()
            );
        }
        println!("  cargo run --release -p shop -- --ui   # the same run in the web viewer");
    }
    Ok(picked)
}

/// Prints, per service and exporter, the spans exported, failed and
/// dropped, and those still pending (being exported when the service
/// stopped). Then whether every span was exported.
fn print_export_counts(out: &Path) {
    let mut lost = 0;
    let mut unknown = Vec::new();
    let mut disabled = Vec::new();
    for service in Service::ALL {
        match read_export_counts(out, service) {
            Ok(counts) if counts.is_empty() => {
                println!("  {:<14} no exporter (OTEL_SDK_DISABLED)", service.name());
                disabled.push(service.name());
            }
            Ok(counts) => {
                for c in counts {
                    println!(
                        "  {:<14} {:<5} exported {:>6}  failed {:>6}  dropped {:>6}  pending {:>6}",
                        service.name(),
                        c.exporter,
                        c.exported,
                        c.failed,
                        c.dropped,
                        c.pending
                    );
                    lost += c.lost();
                }
            }
            Err(why) => {
                println!("  {:<14} {why}", service.name());
                unknown.push(service.name());
            }
        }
    }
    println!();
    if lost > 0 {
        println!(
            "  warning: {lost} spans were not exported (failed, dropped, or still pending when the service stopped); the services' log lines say why"
        );
    }
    if !unknown.is_empty() {
        println!(
            "  warning: no export counts from {}: whether their spans were exported is unknown",
            unknown.join(", ")
        );
    }
    if !disabled.is_empty() {
        println!(
            "  warning: {} exported nothing: tracing is disabled",
            disabled.join(", ")
        );
    }
    if lost == 0 && unknown.is_empty() && disabled.is_empty() {
        println!("  every span was exported");
    }
}

fn heading(title: &str) {
    println!("\n== {title}\n");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pick {
    Median,
    Slowest,
}

/// The trace of a request of `scenario` that got its expected answer: the
/// median or the slowest by trace duration.
fn pick<'t>(
    traces: &'t Traces,
    outcomes: &[Outcome],
    scenario: Scenario,
    how: Pick,
) -> Option<&'t Trace> {
    let mut found: Vec<&Trace> = outcomes
        .iter()
        .filter(|o| o.scenario == scenario && o.as_expected())
        .filter_map(|o| traces.find(o.trace_id.as_deref()?).ok())
        .collect();
    found.sort_by_key(|t| t.duration_nanos());
    match how {
        Pick::Median => found.get(found.len() / 2).copied(),
        Pick::Slowest => found.last().copied(),
    }
}

fn print_errors(trace: &Trace) {
    println!("  trace {}", trace.id().to_hex());
    for &(index, depth) in trace.tree_order() {
        let span = trace.span(index);
        if !span.is_error() {
            continue;
        }
        let why = match (span.error_message(), span.attribute("error.type")) {
            (Some(message), _) => message.to_owned(),
            (None, Some(kind)) => format!("error.type={}", kind.as_str().unwrap_or_default()),
            (None, None) => "(no message)".to_owned(),
        };
        let name = format!("{:indent$}{}", "", span.name, indent = depth * 2);
        println!("  {:<14} {name:<28} {why}", span.service);
    }
}

/// Says which services the checkout trace crosses (one trace id for all)
/// and how its gRPC hop went.
fn print_checkout(trace: &Trace) {
    let mut crossed: Vec<&str> = Vec::new();
    for &(index, _) in trace.tree_order() {
        let service = trace.span(index).service.as_str();
        if !crossed.contains(&service) {
            crossed.push(service);
        }
    }
    let all = if crossed.len() == Service::ALL.len() {
        "all six services".to_owned()
    } else {
        format!("{} of the {} services", crossed.len(), Service::ALL.len())
    };
    println!(
        "  one trace, {}: {} spans across {all}: {}",
        trace.id().to_hex(),
        trace.spans().len(),
        crossed.join(" → ")
    );
    for span in trace.spans() {
        let text = |key: &str| {
            span.attribute(key)
                .and_then(Value::as_str)
                .unwrap_or("-")
                .to_owned()
        };
        if text("rpc.system.name") == "grpc" {
            println!(
                "  gRPC {:<6} {:<9} rpc.method={}  rpc.response.status_code={}",
                if span.kind == SpanKind::Client {
                    "CLIENT"
                } else {
                    "SERVER"
                },
                span.service,
                text("rpc.method"),
                text("rpc.response.status_code"),
            );
        }
    }
    println!();
}

/// Prints the gateway's calls to auth in `trace`, one line per attempt.
fn print_attempts(trace: &Trace) {
    println!("  trace {}", trace.id().to_hex());
    let root = trace.root();
    for (attempt, &index) in trace
        .children(root)
        .iter()
        .filter(|&&i| trace.span(i).kind == SpanKind::Client)
        .enumerate()
    {
        let span = trace.span(index);
        let int = |key: &str| match span.attribute(key) {
            Some(Value::I64(n)) => n.to_string(),
            _ => "-".to_owned(),
        };
        println!(
            "  attempt {}  {} {}  status {}  http.request.resend_count={}  {}",
            attempt + 1,
            span.name,
            int("http.response.status_code"),
            if span.is_error() { "Error" } else { "Unset" },
            int("http.request.resend_count"),
            render::format_duration(span.duration_nanos()),
        );
    }
}

/// A log line of one service.
struct LogLine {
    /// The full timestamp, to sort by.
    timestamp: String,
    /// The time of day, to show: every line is from the same run.
    time: String,
    service: &'static str,
    level: String,
    span: String,
    text: String,
}

/// Prints the log lines of every service that carry `trace_id`, in time
/// order.
fn print_logs(out: &Path, trace_id: &str) -> Result<(), BoxError> {
    let mut lines = Vec::new();
    for service in Service::ALL {
        let path = logs_file(out, service);
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        for line in std::io::BufReader::new(file).lines() {
            let line = line?;
            let Ok(json) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if json["trace_id"].as_str() != Some(trace_id) {
                continue;
            }
            lines.push(log_line(service, &json));
        }
    }
    lines.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
    if lines.is_empty() {
        println!("  (none)");
    }
    for line in lines {
        println!(
            "  {} {:<14} {:<5} {:<22} {}",
            line.time, line.service, line.level, line.span, line.text
        );
    }
    Ok(())
}

/// The parts of a JSON log line worth showing: time, level, span, message
/// and the other fields as `key=value`.
fn log_line(service: Service, json: &serde_json::Value) -> LogLine {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let fields = json["fields"].as_object();
    let mut message = fields
        .and_then(|f| f.get("message"))
        .map(text)
        .unwrap_or_default();
    for (key, value) in fields.into_iter().flatten() {
        if key != "message" {
            message.push_str(&format!(" {key}={}", text(value)));
        }
    }
    let timestamp = json["timestamp"].as_str().unwrap_or_default();
    LogLine {
        timestamp: timestamp.to_owned(),
        time: timestamp
            .split_once('T')
            .map_or(timestamp, |(_, time)| time)
            .to_owned(),
        service: service.name(),
        level: json["level"].as_str().unwrap_or_default().to_owned(),
        // `otel.name` is the exported span's name; `name` the `tracing` one.
        span: json["span"]["otel.name"]
            .as_str()
            .or_else(|| json["span"]["name"].as_str())
            .unwrap_or_default()
            .to_owned(),
        text: message,
    }
}
