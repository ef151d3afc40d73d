//! The server load benchmarks' machinery (HTTP, gRPC): each server variant
//! in a child process pinned to one core with all its threads, the load
//! client in this process on another core, the whole server process's CPU
//! time and context switches per request read from `/proc` ([`usage`]),
//! rounds alternating between the variants ([`alternate`]), and the report.
//!
//! A bench target gives [`main`] a [`Spec`], a function building the server
//! `variant` (in the child) and its load client (in the parent). The child
//! is the same binary, re-executed with `--load-server=<variant>`; it reads
//! its commands from stdin (`flush` → flushes the span pipeline and answers
//! `flushed`), and at the end of stdin stops, shuts the pipeline down and
//! writes `exported <spans>`. It exits when the parent closes its stdin
//! (or dies), and by itself after a deadline covering the whole bench.
//! After the load of a run stops, the server is told to flush its batch
//! processor and answers when done, so the export of the run's spans is in
//! the run's measurement.
//!
//! The variants ([`VARIANTS`]) share their tracing stacks: tracewire
//! ([`tracewire_dispatch`]) or `tracing-opentelemetry` over
//! `opentelemetry_sdk` ([`otel_dispatch`]), each exporting through its
//! batch processor to an exporter that counts and discards.

use std::future::Future;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TracerProvider as _;
use tokio::sync::watch;
use tracewire::TracewireLayer;
use tracewire::export::{BatchConfig, BatchSpanProcessor, ExportFuture, SpanExporter};
use tracewire::processor::SpanProcessor as _;
use tracing::Dispatch;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;

use crate::alternate::{self, Settings, Variant, median, per_round_ratios};
use crate::report::{self, Bar};
use crate::usage::{self, Usage};

/// The sampled W3C context every request of the load clients carries.
pub const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The servers, in the order of the rounds.
pub const VARIANTS: [&str; 5] = [
    "untraced",
    "tracewire_100",
    "tracewire_0",
    "tower_http_otel",
    "tower_http_otel_tuned",
];

/// Re-executes this binary as the server `--load-server=<variant>`.
const SERVER_FLAG: &str = "--load-server=";
/// The core the server process pins itself to.
const CORE_FLAG: &str = "--load-server-core=";
/// Seconds after which the server process exits whatever happens.
const LIFETIME_FLAG: &str = "--load-server-lifetime=";

/// The number in the environment variable `name`, or `default`.
pub fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn flag(prefix: &str) -> Option<String> {
    std::env::args().find_map(|a| a.strip_prefix(prefix).map(str::to_owned))
}

/// Counts and discards what tracewire's batch processor exports.
#[derive(Debug, Clone, Default)]
struct DiscardTracewire(Arc<AtomicU64>);

impl SpanExporter for DiscardTracewire {
    fn export(&mut self, batch: Vec<tracewire::SpanData>) -> ExportFuture<'_> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Box::pin(async { Ok(()) })
    }
}

/// Counts and discards what opentelemetry_sdk's batch processor exports.
#[derive(Debug, Clone, Default)]
struct DiscardOtel(Arc<AtomicU64>);

impl opentelemetry_sdk::trace::SpanExporter for DiscardOtel {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// `opentelemetry`'s view of an `http::HeaderMap` (gRPC metadata included).
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The caller's W3C context in `headers`, by `opentelemetry_sdk`'s
/// propagator, for the tower-http servers' spans.
pub fn otel_parent(headers: &http::HeaderMap) -> opentelemetry::Context {
    opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// A server's span pipeline, to flush after each run and count what it
/// exported.
#[derive(Debug)]
pub enum Pipeline {
    /// No tracing.
    None,
    /// tracewire's batch processor.
    Tracewire(Arc<BatchSpanProcessor>, Arc<AtomicU64>),
    /// `opentelemetry_sdk`'s provider (batch processor).
    Otel(opentelemetry_sdk::trace::SdkTracerProvider, Arc<AtomicU64>),
}

impl Pipeline {
    fn flush(&self) {
        match self {
            Pipeline::None => {}
            Pipeline::Tracewire(processor, _) => {
                let _ = processor.force_flush(Duration::from_secs(10));
            }
            Pipeline::Otel(provider, _) => {
                let _ = provider.force_flush();
            }
        }
    }

    /// Shuts the pipeline down; returns how many spans it exported.
    fn shutdown(&self) -> u64 {
        match self {
            Pipeline::None => 0,
            Pipeline::Tracewire(processor, exported) => {
                let _ = processor.shutdown(Duration::from_secs(10));
                exported.load(Ordering::Relaxed)
            }
            Pipeline::Otel(provider, exported) => {
                let _ = provider.shutdown();
                exported.load(Ordering::Relaxed)
            }
        }
    }
}

/// `TracewireLayer` with `sampler`, exporting through `BatchSpanProcessor`
/// (default `BatchConfig`) to an exporter that discards; behind `filter`
/// if any.
pub fn tracewire_dispatch(
    sampler: impl tracewire::sampling::Sampler,
    filter: Option<Targets>,
) -> (Dispatch, Pipeline) {
    let exporter = DiscardTracewire::default();
    let processor = Arc::new(BatchSpanProcessor::new(
        exporter.clone(),
        BatchConfig::default(),
    ));
    let layer = TracewireLayer::builder()
        .sampler(sampler)
        .processor(Arc::clone(&processor))
        .build();
    (
        Dispatch::new(tracing_subscriber::registry().with(filter).with(layer)),
        Pipeline::Tracewire(processor, exporter.0),
    )
}

/// tracing-opentelemetry's layer over `opentelemetry_sdk` (ParentBased
/// AlwaysOn, its batch processor with its defaults, to an exporter that
/// discards), with the layer's defaults or tuned (`with_location(false)`,
/// `with_threads(false)`, `with_tracked_inactivity(false)`); behind
/// `filter` if any.
pub fn otel_dispatch(tuned: bool, filter: Option<Targets>) -> (Dispatch, Pipeline) {
    let exporter = DiscardOtel::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(opentelemetry_sdk::trace::Sampler::ParentBased(Box::new(
            opentelemetry_sdk::trace::Sampler::AlwaysOn,
        )))
        .with_batch_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
    let layer = if tuned {
        layer
            .with_location(false)
            .with_threads(false)
            .with_tracked_inactivity(false)
    } else {
        layer
    };
    (
        Dispatch::new(tracing_subscriber::registry().with(filter).with(layer)),
        Pipeline::Otel(provider, exporter.0),
    )
}

/// Resolves when the server is to stop.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Serves on the listener until the shutdown resolves (run on the server
/// process's current-thread runtime).
pub type ServeFn =
    Box<dyn FnOnce(tokio::net::TcpListener, Shutdown) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// A server variant, as its process builds it.
pub struct Server {
    /// The global subscriber, if any.
    pub dispatch: Option<Dispatch>,
    /// Its span pipeline.
    pub pipeline: Pipeline,
    /// Serves the requests.
    pub serve: ServeFn,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("pipeline", &self.pipeline)
            .finish_non_exhaustive()
    }
}

/// The server process: pins itself, builds the server `variant`, serves on
/// loopback and follows its commands on stdin (see the module docs).
fn serve(label: &str, variant: &str, build: fn(&str) -> Server) {
    // First: the threads started below inherit the pinning.
    if let Some(core) = flag(CORE_FLAG).and_then(|c| c.parse().ok())
        && let Err(e) = usage::pin_current_thread(core)
    {
        let _ = writeln!(
            std::io::stderr(),
            "{label} server {variant}: not pinned to core {core}: {e}"
        );
    }
    let lifetime = flag(LIFETIME_FLAG)
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let name = format!("{label} server {variant}");
    thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            thread::sleep(Duration::from_secs(lifetime));
            let _ = writeln!(
                std::io::stderr(),
                "{name}: still running after {lifetime} s, exiting"
            );
            std::process::exit(3);
        })
        .expect("the watchdog thread");

    let Server {
        dispatch,
        pipeline,
        serve,
    } = build(variant);
    if let Some(dispatch) = dispatch {
        tracing::dispatcher::set_global_default(dispatch).expect("the first subscriber");
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("an address");
    let (stop, stopped) = watch::channel(false);
    let runtime_thread = thread::Builder::new()
        .name("server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let mut stopping = stopped.clone();
                let shutdown = Box::pin(async move {
                    let _ = stopping.wait_for(|stop| *stop).await;
                });
                // A graceful shutdown waits for the clients to close their
                // connections, which an idle client runtime may never do:
                // 2 s after the stop, the server stops whatever happens.
                let mut stopping = stopped;
                let grace = async move {
                    let _ = stopping.wait_for(|stop| *stop).await;
                    tokio::time::sleep(Duration::from_secs(2)).await;
                };
                tokio::select! {
                    () = serve(listener, shutdown) => {}
                    () = grace => {}
                }
            });
        })
        .expect("the server thread");

    println!("listening {addr}");
    for line in std::io::stdin().lines() {
        match line.as_deref().map(str::trim) {
            Ok("flush") => {
                pipeline.flush();
                println!("flushed");
            }
            _ => break,
        }
    }
    let _ = stop.send(true);
    let _ = runtime_thread.join();
    println!("exported {}", pipeline.shutdown());
}

/// A server process, seen from the bench.
struct ServerProcess {
    name: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    addr: SocketAddr,
    /// Responses received from it, warm-up included.
    requests: u64,
}

impl ServerProcess {
    fn start(name: &'static str, core: Option<usize>, lifetime: Duration) -> Self {
        let mut command = Command::new(std::env::current_exe().expect("this binary"));
        command
            .arg(format!("{SERVER_FLAG}{name}"))
            .arg(format!("{LIFETIME_FLAG}{}", lifetime.as_secs()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(core) = core {
            command.arg(format!("{CORE_FLAG}{core}"));
        }
        let mut child = command.spawn().expect("the server process");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("its stdout"));
        let mut server = ServerProcess {
            name,
            child,
            stdin,
            stdout,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            requests: 0,
        };
        let line = server.read_line();
        server.addr = line
            .strip_prefix("listening ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("{name}: unexpected {line:?}"));
        server
    }

    fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .expect("the server's answer");
        line.trim().to_owned()
    }

    /// Flushes its span pipeline, waiting for the end.
    fn flush(&mut self) {
        let stdin = self.stdin.as_mut().expect("running");
        writeln!(stdin, "flush").expect("the server reads");
        stdin.flush().expect("the server reads");
        let line = self.read_line();
        assert_eq!(line, "flushed", "{}", self.name);
    }

    fn usage(&self) -> Usage {
        Usage::of(self.child.id()).expect("the server's /proc")
    }

    /// Stops it; returns how many spans it exported.
    fn finish(mut self) -> u64 {
        drop(self.stdin.take());
        let line = self.read_line();
        let _ = self.child.wait();
        line.strip_prefix("exported ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}: unexpected {line:?}", self.name))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What a run of the load client does, from the environment
/// (`BENCH_<LABEL>_SECONDS`, `_CONNECTIONS`, `_STREAMS`, `_MAX_REQUESTS`).
#[derive(Clone, Copy, Debug)]
pub struct LoadSettings {
    /// Connections to the server.
    pub connections: u64,
    /// Requests in flight at once, over those connections (HTTP/1.1: one
    /// per connection).
    pub streams: u64,
    /// How long a run lasts.
    pub duration: Duration,
    /// At most this many requests per run.
    pub max_requests: u64,
}

/// A load bench: its name, its report's title and bars, its defaults.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// The bench's name (`http`, `grpc`): the prefix of its output lines
    /// and of its environment variables (upper case).
    pub label: &'static str,
    /// The report's title.
    pub title: &'static str,
    /// What the traced servers run (`tracewire-tower`, …).
    pub subject: &'static str,
    /// tracewire at 0% / untraced.
    pub bar_0: Bar,
    /// tracewire at 100% / untraced.
    pub bar_100: Bar,
    /// tracewire at 100% / tower-http + tracing-opentelemetry tuned.
    pub bar_tuned: Bar,
    /// Default connections.
    pub connections: u64,
    /// Default requests in flight (`_STREAMS` in the environment); `None`:
    /// one per connection (HTTP/1.1).
    pub streams: Option<u64>,
}

impl Spec {
    fn env(&self, what: &str, default: u64) -> u64 {
        env(
            &format!("BENCH_{}_{what}", self.label.to_uppercase()),
            default,
        )
    }
}

/// The measurements of a round, per request, after the wall time.
const CPU_NS: usize = 0;
const CONTEXT_SWITCHES: usize = 1;
const CPU_TICKS_NS: usize = 2;
const BUSY: usize = 3;
const THREADS: usize = 4;

/// One run against `server` with `load`: its wall time per request and,
/// per request, the server's CPU time (ns, all threads), context switches,
/// CPU time by clock ticks (ns); the fraction of the run's wall time its
/// core was busy with it; its thread count.
fn run<F: Future<Output = u64>>(
    client: &tokio::runtime::Runtime,
    server: &mut ServerProcess,
    load: F,
) -> (Duration, Vec<f64>) {
    let before = server.usage();
    let start = Instant::now();
    let requests = client.block_on(load);
    server.flush();
    let elapsed = start.elapsed();
    let used = server.usage().since(&before);
    server.requests += requests;
    let n = requests.max(1) as f64;
    let wall = elapsed.div_f64(n);
    (
        wall,
        vec![
            used.cpu.as_nanos() as f64 / n,
            used.context_switches as f64 / n,
            used.cpu_ticks.as_nanos() as f64 / n,
            used.cpu.as_secs_f64() / elapsed.as_secs_f64(),
            used.threads as f64,
        ],
    )
}

/// The ratio rows of `subject` against `baseline`: CPU per request
/// (baseline's / subject's: higher is cheaper) and requests per second
/// (subject's / baseline's), each with its bar.
fn compare(label: &str, subject: &Variant<'_>, baseline: &Variant<'_>, bar: Bar) -> String {
    let cpu = |v: &Variant<'_>| v.metric(CPU_NS);
    let wall =
        |v: &Variant<'_>| -> Vec<f64> { v.times().iter().map(Duration::as_secs_f64).collect() };
    let (subject_cpu, baseline_cpu) = (cpu(subject), cpu(baseline));
    let mut rows = alternate::ratio_row(
        &format!("{label}: CPU per request (baseline's / subject's)"),
        "CPU efficiency",
        &format!(
            "median {:.2} µs vs {:.2} µs of CPU per request, all server threads",
            median(subject_cpu.clone()) / 1e3,
            median(baseline_cpu.clone()) / 1e3
        ),
        per_round_ratios(&baseline_cpu, &subject_cpu),
        bar,
    );
    let (subject_wall, baseline_wall) = (wall(subject), wall(baseline));
    rows.push_str(&alternate::ratio_row(
        &format!("{label}: requests/s, server pinned to one core"),
        "throughput",
        &format!(
            "median {:.0} vs {:.0} requests/s",
            1.0 / median(subject_wall.clone()),
            1.0 / median(baseline_wall.clone())
        ),
        per_round_ratios(&baseline_wall, &subject_wall),
        bar,
    ));
    rows
}

/// The report's rows: each variant's medians, then the ratios.
fn rows(spec: &Spec, variants: &[Variant<'_>]) -> String {
    let mut rows = String::new();
    for v in variants {
        let m = |i: usize| median(v.metric(i));
        rows.push_str(&report::row(
            &format!("`{}`", v.name),
            &format!(
                "{:.0} requests/s; {:.2} µs CPU per request, all server threads ({:.2} µs by utime+stime); \
                 {:.4} context switches per request; server core busy {:.0}%; {} threads",
                1e9 / v.median_ns(),
                m(CPU_NS) / 1e3,
                m(CPU_TICKS_NS) / 1e3,
                m(CONTEXT_SWITCHES),
                m(BUSY) * 100.0,
                m(THREADS)
            ),
            "(context)",
            None,
        ));
    }
    let [untraced, tracewire_100, tracewire_0, otel, otel_tuned] = variants else {
        unreachable!("five variants");
    };
    let subject = spec.subject;
    let otel_name = "tower-http + tracing-opentelemetry";
    let comparisons = [
        (
            format!("{subject} at 0% / no layer"),
            tracewire_0,
            untraced,
            spec.bar_0,
        ),
        (
            format!("{subject} at 100% with export / no layer"),
            tracewire_100,
            untraced,
            spec.bar_100,
        ),
        (
            format!("{subject} at 100% / {otel_name} tuned (similar attributes)"),
            tracewire_100,
            otel_tuned,
            spec.bar_tuned,
        ),
        (
            format!("{subject} at 100% / {otel_name} defaults"),
            tracewire_100,
            otel,
            Bar::Info,
        ),
        (
            format!("{otel_name} tuned / no layer"),
            otel_tuned,
            untraced,
            Bar::Info,
        ),
        (
            format!("{otel_name} defaults / no layer"),
            otel,
            untraced,
            Bar::Info,
        ),
    ];
    for (label, subject, baseline, bar) in comparisons {
        rows.push_str(&compare(&label, subject, baseline, bar));
    }
    rows
}

/// Runs the load bench `spec`: in a server process, builds and serves the
/// variant it was started for (with `build`); otherwise starts a server
/// process per variant and drives them with `load` (the requests it got
/// answers to in a run) in alternating rounds, then prints the report.
pub fn main<F>(spec: &Spec, build: fn(&str) -> Server, load: impl Fn(SocketAddr, LoadSettings) -> F)
where
    F: Future<Output = u64>,
{
    let label = spec.label;
    if let Some(variant) = flag(SERVER_FLAG) {
        serve(label, &variant, build);
        return;
    }
    let settings = Settings::from_args();
    if !settings.wants(&format!("{label}/")) {
        return;
    }
    let seconds = spec.env("SECONDS", 2);
    let settings = Settings {
        rounds: env("BENCH_ROUNDS", 5) as usize,
        warm_up_rounds: 1,
        ..settings
    };
    let connections = spec.env("CONNECTIONS", spec.connections);
    let load_settings = LoadSettings {
        connections,
        streams: spec
            .streams
            .map_or(connections, |streams| spec.env("STREAMS", streams)),
        duration: Duration::from_secs(seconds),
        max_requests: spec.env("MAX_REQUESTS", 5_000_000),
    };

    // The client on one core, every server process on another.
    let cores = usage::allowed_cores().unwrap_or_default();
    let (client_core, server_core) = match cores.as_slice() {
        [client, server, ..] => (Some(*client), Some(*server)),
        _ => (None, None),
    };
    match (client_core, server_core) {
        (Some(client), Some(server)) => {
            usage::pin_current_thread(client).expect("pinning the client");
            println!("{label}: load client pinned to core {client}, servers to core {server}");
        }
        _ => {
            println!("{label}: fewer than 2 cores: nothing pinned, CPU per request still measured");
        }
    }
    let lifetime = Duration::from_secs(
        (settings.rounds + settings.warm_up_rounds) as u64 * VARIANTS.len() as u64 * (seconds + 10)
            + 120,
    );
    let mut servers: Vec<ServerProcess> = VARIANTS
        .iter()
        .map(|name| ServerProcess::start(name, server_core, lifetime))
        .collect();
    let client = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");

    let mut variants: Vec<Variant<'_>> = servers
        .iter_mut()
        .map(|server| {
            let (client, load) = (&client, &load);
            Variant::metered(server.name, move || {
                let addr = server.addr;
                run(client, server, load(addr, load_settings))
            })
        })
        .collect();
    alternate::run(&settings, label, 1, &mut variants);
    let mut rows = rows(spec, &variants);
    drop(variants);

    for server in servers {
        let (name, requests) = (server.name, server.requests);
        let exported = server.finish();
        println!("{label}/{name}: {requests} requests served, {exported} spans exported");
        // Every request was sampled and exported: a span dropped on a full
        // queue would make tracing look cheaper than it is.
        let complete = match name {
            "untraced" => continue,
            "tracewire_0" => exported == 0,
            _ => exported >= requests,
        };
        rows.push_str(&report::row(
            &format!("`{name}`: spans exported"),
            &format!("{exported} of {requests} requests"),
            if name == "tracewire_0" { "none" } else { "all" },
            Some(complete),
        ));
    }
    report::print_rows(spec.title, &rows);
}
