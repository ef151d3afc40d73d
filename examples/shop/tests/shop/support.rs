//! Runs the built `shop` into a temporary directory and reads back what it
//! wrote: the traces of every service, their log lines, and the requests
//! the launcher sent.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tracewire::{SpanKind, Status, Value};
use tracewire_cli::{Span, Trace, Traces};

pub(crate) const SERVICES: [&str; 6] = [
    "gateway",
    "auth",
    "users",
    "orders",
    "payments",
    "notifications",
];

/// One request the launcher sent (a line of `requests.jsonl`).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Request {
    pub(crate) n: u32,
    pub(crate) scenario: String,
    pub(crate) status: Option<u16>,
    pub(crate) trace_id: Option<String>,
}

/// A log line and the service that wrote it.
#[derive(Debug)]
pub(crate) struct LogLine {
    pub(crate) service: &'static str,
    pub(crate) json: serde_json::Value,
}

/// A finished run of the shop.
pub(crate) struct Run {
    _dir: tempfile::TempDir,
    pub(crate) stdout: String,
    pub(crate) traces: Traces,
    pub(crate) requests: Vec<Request>,
    pub(crate) logs: Vec<LogLine>,
}

/// The PostgreSQL server for the PostgreSQL run (an `#[ignore]`d test):
/// `TRACEWIRE_POSTGRES_URL`, else the machine's default server.
pub(crate) fn postgres_url() -> String {
    std::env::var("TRACEWIRE_POSTGRES_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// One exporter's counts of one service, as the report prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExportLine {
    pub(crate) service: String,
    pub(crate) exporter: String,
    pub(crate) exported: u64,
    pub(crate) failed: u64,
    pub(crate) dropped: u64,
    pub(crate) pending: u64,
}

/// Runs `shop --requests <requests> --users <users> --quiet` with the
/// embedded defaults (SQLite unless `database_url` is given, the mock
/// Kafka cluster, no OTLP), and fails the test if it does not finish
/// successfully within `timeout`.
pub(crate) fn run_shop(
    requests: u32,
    users: u32,
    database_url: Option<&str>,
    timeout: Duration,
) -> Run {
    run_shop_with(requests, users, database_url, &[], timeout)
}

/// [`run_shop`] with the variables `env` set for the launcher (and so for
/// every service).
pub(crate) fn run_shop_with(
    requests: u32,
    users: u32,
    database_url: Option<&str>,
    env: &[(&str, &str)],
    timeout: Duration,
) -> Run {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut command = Command::new(env!("CARGO_BIN_EXE_shop"));
    match database_url {
        Some(url) => command.env("DATABASE_URL", url),
        None => command.env_remove("DATABASE_URL"),
    };
    let mut child = command
        .args(["--requests", &requests.to_string()])
        .args(["--users", &users.to_string()])
        .arg("--out")
        .arg(dir.path())
        .arg("--quiet")
        .env_remove("KAFKA_BROKERS")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("OTEL_SDK_DISABLED")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the shop");
    // Drain both pipes while waiting so that the child never blocks on them.
    let mut stdout_pipe = child.stdout.take().expect("stdout");
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout_pipe.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the shop") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Some(status) if status.success() => {}
        Some(status) => panic!("the shop failed ({status})\n{stdout}\n{stderr}"),
        None => panic!(
            "the shop did not finish in {} s\n{stdout}\n{stderr}",
            timeout.as_secs()
        ),
    }

    let out = dir.path();
    let files: Vec<_> = SERVICES
        .iter()
        .map(|s| out.join(format!("traces-{s}.jsonl")))
        .collect();
    for file in &files {
        assert!(file.exists(), "{} was not written", file.display());
    }
    let traces = Traces::from_paths(&files).expect("read the traces");
    assert_eq!(
        traces.stats().bad_lines,
        0,
        "unreadable lines in the trace files: {:?}",
        traces.stats().bad_line_examples
    );
    let requests = read_lines(&out.join("requests.jsonl"))
        .iter()
        .map(|line| serde_json::from_str(line).expect("a request line"))
        .collect();
    let logs = SERVICES
        .iter()
        .flat_map(|&service| {
            read_lines(&out.join(format!("logs-{service}.jsonl")))
                .into_iter()
                .map(move |line| LogLine {
                    service,
                    json: serde_json::from_str(&line).unwrap_or_else(|e| {
                        panic!("{service} wrote a log line that is not JSON ({e}): {line}")
                    }),
                })
        })
        .collect();
    Run {
        _dir: dir,
        stdout,
        traces,
        requests,
        logs,
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

impl Run {
    /// The trace of `request`.
    pub(crate) fn trace(&self, request: &Request) -> &Trace {
        let id = request
            .trace_id
            .as_deref()
            .unwrap_or_else(|| panic!("request {} has no traceresponse", request.n));
        self.traces.find(id).unwrap_or_else(|e| {
            panic!(
                "request {} ({}): trace {id}: {e}",
                request.n, request.scenario
            )
        })
    }

    /// The requests of `scenario`.
    pub(crate) fn requests_of<'a>(
        &'a self,
        scenario: &'a str,
    ) -> impl Iterator<Item = &'a Request> {
        self.requests.iter().filter(move |r| r.scenario == scenario)
    }
}

impl Run {
    /// The report's span export section: one line per service and
    /// exporter (`<service> <exporter> exported N  failed N  dropped N
    /// pending N`).
    pub(crate) fn export_lines(&self) -> Vec<ExportLine> {
        let section = self
            .stdout
            .split("\n== ")
            .find(|s| s.starts_with("Span export"))
            .unwrap_or_else(|| panic!("the report has no span export section:\n{}", self.stdout));
        section
            .lines()
            .filter_map(|line| {
                let words: Vec<&str> = line.split_whitespace().collect();
                let number = |i: usize| words[i].parse::<u64>().ok();
                match words[..] {
                    [
                        service,
                        exporter,
                        "exported",
                        _,
                        "failed",
                        _,
                        "dropped",
                        _,
                        "pending",
                        _,
                    ] => Some(ExportLine {
                        service: service.to_owned(),
                        exporter: exporter.to_owned(),
                        exported: number(3)?,
                        failed: number(5)?,
                        dropped: number(7)?,
                        pending: number(9)?,
                    }),
                    _ => None,
                }
            })
            .collect()
    }

    /// The spans `service` wrote to its traces file.
    pub(crate) fn spans_of(&self, service: &str) -> usize {
        self.traces
            .iter()
            .flat_map(|t| t.spans())
            .filter(|s| s.service == service)
            .count()
    }
}

/// The services that wrote spans of `trace`.
pub(crate) fn services(trace: &Trace) -> BTreeSet<&str> {
    trace.spans().iter().map(|s| s.service.as_str()).collect()
}

/// The spans of `trace` named `name` in `service`.
pub(crate) fn spans<'t>(trace: &'t Trace, service: &str, name: &str) -> Vec<&'t Span> {
    trace
        .spans()
        .iter()
        .filter(|s| s.service == service && s.name == name)
        .collect()
}

/// The only span of `trace` named `name` in `service`.
pub(crate) fn span<'t>(trace: &'t Trace, service: &str, name: &str) -> &'t Span {
    match spans(trace, service, name)[..] {
        [span] => span,
        ref found => panic!(
            "trace {}: {} spans named {name:?} in {service}, expected one:\n{}",
            trace.id().to_hex(),
            found.len(),
            describe(trace)
        ),
    }
}

/// The parent span of `span` in `trace`.
pub(crate) fn parent<'t>(trace: &'t Trace, span: &Span) -> &'t Span {
    let parent = span
        .parent_span_id
        .unwrap_or_else(|| panic!("{} is a root", span.name));
    let index = trace
        .index_of(parent)
        .unwrap_or_else(|| panic!("the parent of {} is not in the trace", span.name));
    trace.span(index)
}

/// The integer attribute `key` of `span`.
pub(crate) fn int(span: &Span, key: &str) -> Option<i64> {
    match span.attribute(key)? {
        Value::I64(n) => Some(*n),
        other => panic!("{} {key} is not an integer: {other:?}", span.name),
    }
}

/// The string attribute `key` of `span`.
pub(crate) fn string<'s>(span: &'s Span, key: &str) -> Option<&'s str> {
    span.attribute(key).and_then(Value::as_str)
}

pub(crate) fn is_unset(span: &Span) -> bool {
    matches!(span.status, Status::Unset)
}

/// The trace as lines, for failure messages.
pub(crate) fn describe(trace: &Trace) -> String {
    trace
        .tree_order()
        .iter()
        .map(|&(index, depth)| {
            let s = trace.span(index);
            format!(
                "{:indent$}{} {} {:?} {:?}",
                "",
                s.service,
                s.name,
                s.kind,
                s.status,
                indent = depth * 2
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether a span of `kind` may have a parent in another process.
pub(crate) fn receives_remote_parent(kind: &SpanKind) -> bool {
    matches!(kind, SpanKind::Server | SpanKind::Consumer)
}
