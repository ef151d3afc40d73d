//! `tracewire`: list, view, critical path and diff of traces in OTLP/JSON
//! lines files or in a running collector (`--from URL`); `collect` runs an OTLP/HTTP collector with a trace store
//! (the `tracewire-collect` crate).

use std::io::{self, IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use tracewire_cli::remote::{self, RemoteError};
use tracewire_cli::{FindError, LoadError, Loader, RenderOptions, Traces, json, render};

/// View and analyse traces exported as OTLP/JSON lines (tracewire's
/// `OTEL_TRACES_EXPORTER=file`, the Collector's file exporter).
///
/// Spans from every file are merged by trace id, so give the files of all
/// the services of a system together. Without a file, spans are read from
/// standard input. A trace id may be shortened to any unique prefix.
///
/// With `--from http://HOST:PORT`, traces are read from a running
/// `tracewire collect` over its JSON API instead: `list` shows the most
/// recent ones (`--limit`), and a shortened trace id is looked up among
/// the 1000 most recent (give the full 32 digits for older traces).
#[derive(Debug, Parser)]
#[command(name = "tracewire", version)]
struct Cli {
    /// An OTLP/JSON lines file to read (repeatable; `-` reads standard
    /// input). Files may also be given after the command's arguments.
    #[arg(short = 'f', long = "file", value_name = "FILE", global = true)]
    file: Vec<PathBuf>,

    /// Read traces from the collector at this URL (`http://HOST:PORT`, as
    /// `tracewire collect` prints it) instead of from files.
    #[arg(long, value_name = "URL", global = true)]
    from: Option<String>,

    /// Print JSON (stable field names, listed in the README) instead of
    /// text.
    #[arg(long, global = true)]
    json: bool,

    /// When to colour the text output.
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = ColorChoice::Auto, global = true)]
    color: ColorChoice,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the traces: id, start, duration, span and error counts, root
    /// span and services.
    List {
        /// OTLP/JSON lines files to read.
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
        /// With `--from`: how many of the most recent traces to list
        /// (at most 1000).
        #[arg(long, value_name = "N", default_value_t = 20,
              value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
    },
    /// Show one trace as a waterfall: a row per span with its service,
    /// operation, offset, duration and a bar; errors, orphans, clock skew
    /// and the bottleneck marked.
    View {
        /// The trace id, or a unique prefix of it.
        trace_id: String,
        /// OTLP/JSON lines files to read.
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Width of the timeline bars, in columns.
        #[arg(long, default_value_t = 40)]
        width: usize,
    },
    /// Show the critical path of a trace: the chain of spans that
    /// determines its end-to-end latency, with each span's self-time and
    /// the bottleneck (the largest self-time).
    #[command(name = "critical-path")]
    CriticalPath {
        /// The trace id, or a unique prefix of it.
        trace_id: String,
        /// OTLP/JSON lines files to read.
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Compare trace B with trace A: spans missing from B, new in B, and
    /// slower or faster in B, aligned by service, operation and position.
    Diff {
        /// Trace A (the baseline): an id or a unique prefix.
        a: String,
        /// Trace B: an id or a unique prefix.
        b: String,
        /// OTLP/JSON lines files to read.
        #[arg(value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Hide changes smaller than this (`500us`, `2ms`, `1.5s`, `1min 30s`;
        /// units ns, us/µs, ms, s, min, h, ...).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "0")]
        min_delta: Duration,
    },
    /// Run a trace collector until Ctrl-C or SIGTERM: OTLP/HTTP in
    /// (`POST /v1/traces` and `/v1/logs`, protobuf or JSON, gzip) and
    /// OTLP/gRPC (`--grpc-listen`), every span and log record into an
    /// embedded SQLite store, and a JSON API to search it
    /// (`/api/services`, `/api/traces`, `/api/traces/{trace_id}`); the
    /// web viewer on http://127.0.0.1:16686 (`--ui-listen`). On stop, what
    /// is queued is stored before exiting.
    Collect {
        /// A Collector-shaped YAML configuration: the OTLP receiver's HTTP
        /// and gRPC endpoints, the batch, filter and tail_sampling
        /// processors, the traces and logs pipelines (see
        /// tracewire-collect's README for what is supported; anything else
        /// is an error naming it).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The address for OTLP/HTTP and the API [default: the config's
        /// receiver endpoint, else 127.0.0.1:4318].
        #[arg(long, value_name = "ADDR")]
        listen: Option<SocketAddr>,
        /// The store's directory (created if missing) [default:
        /// tracewire-data in the OS's temporary directory].
        #[arg(long, value_name = "DIR")]
        data: Option<PathBuf>,
        /// The address for OTLP/gRPC (traces and logs), or `off` [default:
        /// with --config, the file's grpc endpoint (off without one), else
        /// 127.0.0.1:4317].
        #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
        grpc_listen: Option<Listen>,
        #[command(flatten)]
        retention: RetentionArgs,
        /// Where to serve the web viewer (search, waterfall, critical
        /// path, compare, service map), or `off` [default: 127.0.0.1:16686;
        /// when that port is busy, a warning and no viewer].
        #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
        ui_listen: Option<Listen>,
    },
}

/// The store's bounds on the command line; each overrides the config's
/// `exporters.tracewire_store` setting of the same name.
#[derive(Debug, clap::Args)]
struct RetentionArgs {
    /// The most traces the store keeps; past it, the oldest (by first
    /// span start) are deleted whole [default: the config's
    /// exporters.tracewire_store.max_traces, else 100000].
    #[arg(long, value_name = "N")]
    max_traces: Option<u64>,
    /// The most bytes of span data the store keeps (see
    /// tracewire-collect's README); past it, the oldest traces are
    /// deleted whole [default: the config's
    /// exporters.tracewire_store.max_bytes, else 1073741824 (1 GiB)].
    #[arg(long, value_name = "BYTES")]
    max_bytes: Option<u64>,
    /// The most log records the store keeps; past it, the oldest (by
    /// time) are deleted [default: the config's
    /// exporters.tracewire_store.max_logs, else 1000000].
    #[arg(long, value_name = "N")]
    max_logs: Option<u64>,
    /// The most bytes of log records the store keeps; past it, the oldest
    /// are deleted [default: the config's
    /// exporters.tracewire_store.max_log_bytes, else 268435456 (256 MiB)].
    #[arg(long, value_name = "BYTES")]
    max_log_bytes: Option<u64>,
}

impl RetentionArgs {
    /// `retention` with the bounds given on the command line.
    fn apply(&self, retention: &mut tracewire_collect::Retention) {
        let bounds = [
            (self.max_traces, &mut retention.max_traces),
            (self.max_bytes, &mut retention.max_bytes),
            (self.max_logs, &mut retention.max_logs),
            (self.max_log_bytes, &mut retention.max_log_bytes),
        ];
        for (given, bound) in bounds {
            if let Some(n) = given {
                *bound = n;
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ColorChoice {
    /// Colours when standard output is a terminal (and `NO_COLOR` is unset).
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Find(#[from] FindError),
    #[error(
        "no input: give OTLP/JSON lines files (`tracewire list traces.jsonl`, `-f FILE`) or pipe them on standard input"
    )]
    NoInput,
    #[error("cannot write the output: {0}")]
    Output(io::Error),
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("give either files or --from URL, not both")]
    FilesAndUrl,
    #[error("{0:?} is a URL, not a file: read from a collector with --from {0}")]
    UrlAsFile(String),
    #[error("collect: {0}")]
    Collect(#[from] tracewire_collect::Error),
    #[error("collect: the trace viewer {0}")]
    Ui(tracewire_cli::web::WebError),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr().lock(), "tracewire: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--ui-listen` and `--grpc-listen`: an address, or `off`.
#[derive(Clone, Copy, Debug)]
struct Listen(Option<SocketAddr>);

fn parse_listen(text: &str) -> Result<Listen, String> {
    if text.trim().eq_ignore_ascii_case("off") {
        return Ok(Listen(None));
    }
    text.trim()
        .parse()
        .map(|addr| Listen(Some(addr)))
        .map_err(|_| format!("{text:?} is not HOST:PORT (an IP address and port) or `off`"))
}

/// Runs the collector until a stop signal; the final counts as output.
fn collect(
    config_file: Option<PathBuf>,
    listen: Option<SocketAddr>,
    data: Option<PathBuf>,
    grpc_listen: Option<Listen>,
    retention: &RetentionArgs,
    ui_listen: Option<Listen>,
) -> Result<String, CliError> {
    let data_dir = data.unwrap_or_else(tracewire_collect::default_data_dir);
    let database = data_dir.join(tracewire_collect::DATABASE_FILE);
    let mut config = tracewire_collect::Config {
        data_dir,
        ..tracewire_collect::Config::default()
    };
    if let Some(path) = config_file {
        let file = tracewire_collect::CollectorFile::load(&path)
            .map_err(tracewire_collect::Error::from)?;
        let mut stderr = io::stderr().lock();
        for warning in &file.warnings {
            let _ = writeln!(stderr, "tracewire collect: {}: {warning}", path.display());
        }
        config = config.apply(file);
    }
    if let Some(listen) = listen {
        config.listen = listen;
    }
    if let Some(Listen(grpc)) = grpc_listen {
        config.grpc_listen = grpc;
    }
    retention.apply(&mut config.retention);
    // Bound before the collector starts: an explicit --ui-listen that
    // cannot be bound is an error; the default port being busy only costs
    // the viewer.
    let ui = match ui_listen {
        Some(Listen(None)) => None,
        Some(Listen(Some(addr))) => Some(std::net::TcpListener::bind(addr).map_err(|source| {
            CliError::Ui(tracewire_cli::web::WebError::Listen { addr, source })
        })?),
        None => {
            let addr = tracewire_cli::web::DEFAULT_LISTEN;
            std::net::TcpListener::bind(addr)
                .inspect_err(|e| {
                    let _ = writeln!(
                        io::stderr().lock(),
                        "tracewire collect: no trace viewer: cannot listen on {addr}: {e} (--ui-listen ADDR for another address, off for none)"
                    );
                })
                .ok()
        }
    };
    let stats = tracewire_collect::run_until_signal(config, |collector| {
        let addr = collector.local_addr();
        let _ = writeln!(
            io::stderr().lock(),
            "tracewire collect: OTLP/HTTP on http://{addr}/v1/traces, API on http://{addr}/api/services, {}{}, store {}; Ctrl-C stops",
            collector.grpc_addr().map_or_else(
                || "no OTLP/gRPC".to_owned(),
                |grpc| format!("OTLP/gRPC on http://{grpc}")
            ),
            collector
                .zipkin_addr()
                .map(|zipkin| format!(", Zipkin on http://{zipkin}/api/v2/spans"))
                .unwrap_or_default(),
            database.display()
        );
        if let Some(listener) = ui {
            match tracewire_cli::web::serve_listener(collector.store().clone(), listener) {
                // Runs until the runtime ends with the collector.
                Ok(viewer) => {
                    let _ = writeln!(
                        io::stderr().lock(),
                        "tracewire collect: trace viewer on {}",
                        viewer.url()
                    );
                    tokio::spawn(async move {
                        let _viewer = viewer;
                        std::future::pending::<()>().await;
                    });
                }
                Err(e) => {
                    let _ = writeln!(
                        io::stderr().lock(),
                        "tracewire collect: no trace viewer: {e}"
                    );
                }
            }
        }
    })?;
    Ok(format!(
        "stored {} spans ({} rejected, {} lost, {} requests refused with a full queue) and {} log records ({} lost); {} traces evicted by retention\n",
        stats.spans_stored,
        stats.spans_rejected,
        stats.spans_lost,
        stats.requests_throttled,
        stats.logs_stored,
        stats.logs_lost,
        stats.traces_evicted
    ))
}

fn run(cli: Cli) -> Result<(), CliError> {
    let mut files = cli.file;
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
        }
    };
    let mut options = RenderOptions::new().with_color(color);
    let output = match cli.command {
        Command::List { files: more, limit } => {
            files.extend(more);
            let traces = match source(cli.from, &files)? {
                Some(client) => report(client.recent(limit.into())?),
                None => load(&files)?,
            };
            if cli.json {
                pretty(&json::list(&traces))
            } else {
                render::list(&traces, &options)
            }
        }
        Command::View {
            trace_id,
            files: more,
            width,
        } => {
            files.extend(more);
            let traces = load_ids(cli.from, &files, &[&trace_id])?;
            let trace = traces.find(&trace_id)?;
            if cli.json {
                pretty(&json::view(trace))
            } else {
                render::view(trace, &options.with_width(width))
            }
        }
        Command::CriticalPath {
            trace_id,
            files: more,
        } => {
            files.extend(more);
            let traces = load_ids(cli.from, &files, &[&trace_id])?;
            let trace = traces.find(&trace_id)?;
            let path = tracewire_cli::critical_path(trace);
            if cli.json {
                pretty(&json::critical_path(trace, &path))
            } else {
                render::critical_path(trace, &path, &options)
            }
        }
        Command::Diff {
            a,
            b,
            files: more,
            min_delta,
        } => {
            files.extend(more);
            let traces = load_ids(cli.from, &files, &[&a, &b])?;
            let diff = tracewire_cli::diff(traces.find(&a)?, traces.find(&b)?);
            options = options.with_min_delta(min_delta);
            if cli.json {
                pretty(&json::diff(&diff, options.min_delta_nanos))
            } else {
                render::diff(&diff, &options)
            }
        }
        Command::Collect {
            config,
            listen,
            data,
            grpc_listen,
            retention,
            ui_listen,
        } => collect(config, listen, data, grpc_listen, &retention, ui_listen)?,
    };
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(output.as_bytes())
        .and_then(|()| stdout.flush())
    {
        // `tracewire list | head`: the reader is gone, nothing to report.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CliError::Output(e)),
        Ok(()) => Ok(()),
    }
}

/// The collector to read from, when `--from` is given (and no file).
fn source(from: Option<String>, files: &[PathBuf]) -> Result<Option<remote::Client>, CliError> {
    let Some(url) = from else {
        if let Some(url) = files
            .iter()
            .filter_map(|f| f.to_str())
            .find(|f| f.starts_with("http://") || f.starts_with("https://"))
        {
            return Err(CliError::UrlAsFile(url.to_owned()));
        }
        return Ok(None);
    };
    if !files.is_empty() {
        return Err(CliError::FilesAndUrl);
    }
    Ok(Some(remote::Client::new(&url)?))
}

/// The traces named by `ids` from the collector (`--from`), or every
/// trace of the files.
fn load_ids(from: Option<String>, files: &[PathBuf], ids: &[&str]) -> Result<Traces, CliError> {
    match source(from, files)? {
        Some(client) => Ok(report(client.traces(ids)?)),
        None => load(files),
    }
}

/// Reads the files (standard input for `-`, or when none is given and
/// standard input is not a terminal) and reports skipped input on stderr.
fn load(files: &[PathBuf]) -> Result<Traces, CliError> {
    let mut loader = Loader::new();
    if files.is_empty() {
        if io::stdin().is_terminal() {
            return Err(CliError::NoInput);
        }
        loader.read(io::stdin().lock(), "<stdin>")?;
    }
    for file in files {
        if file.as_os_str() == "-" {
            loader.read(io::stdin().lock(), "<stdin>")?;
        } else {
            loader.read_path(file)?;
        }
    }
    Ok(report(loader.finish()))
}

/// Reports skipped input on stderr.
fn report(traces: Traces) -> Traces {
    let stats = traces.stats();
    let mut stderr = io::stderr().lock();
    if stats.bad_lines > 0 {
        let first = stats
            .bad_line_examples
            .first()
            .map(|b| format!(" (first: {b})"))
            .unwrap_or_default();
        let _ = writeln!(
            stderr,
            "tracewire: skipped {} bad line{}{first}",
            stats.bad_lines,
            plural(stats.bad_lines)
        );
    }
    if stats.invalid_spans > 0 {
        let _ = writeln!(
            stderr,
            "tracewire: skipped {} span{} with a missing or invalid trace or span id",
            stats.invalid_spans,
            plural(stats.invalid_spans)
        );
    }
    if stats.duplicate_spans > 0 {
        let _ = writeln!(
            stderr,
            "tracewire: ignored {} duplicate span{} (same trace and span id)",
            stats.duplicate_spans,
            plural(stats.duplicate_spans)
        );
    }
    traces
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn pretty(value: &serde_json::Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    text.push('\n');
    text
}

/// `--min-delta`: a duration as `humantime` reads it (`0`, `250ns`,
/// `500us` or `500µs`, `2ms`, `1.5s`, `1min 30s`), surrounding spaces
/// ignored.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    humantime::parse_duration(text).map_err(|e| match e {
        humantime::DurationError::UnknownUnit { unit, .. } if unit.is_empty() => {
            format!("{text:?} needs a unit: ns, us, ms, s (or min, h)")
        }
        e => format!("{text:?}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250ns"), Ok(Duration::from_nanos(250)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("500µs"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_duration(" 2s "), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1min 30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("5").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("5parsecs").is_err());
        assert!(parse_duration("1.5ns").is_err(), "below a nanosecond");
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("1.2.3ms").is_err());
        assert!(parse_duration("99999999999999999999999s").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
