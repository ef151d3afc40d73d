//! `tracewire collect`: an OTLP trace and log receiver (OTLP/HTTP and
//! OTLP/gRPC) writing into an embedded SQLite store, with a small JSON API
//! to search it, and forwarding to OTLP backends or files (the `otlp`,
//! `otlphttp` and `file` exporters of the Collector's configuration).
//!
//! ```no_run
//! # async fn example() -> Result<(), tracewire_collect::Error> {
//! use tracewire_collect::{Collector, Config};
//!
//! let collector = Collector::start(Config::default()).await?;
//! println!("OTLP/HTTP on http://{}/v1/traces", collector.local_addr());
//! if let Some(grpc) = collector.grpc_addr() {
//!     println!("OTLP/gRPC on http://{grpc}");
//! }
//! // … later: stop accepting, store what is queued, close the store.
//! collector.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Everything from outside is bounded: request bodies (compressed and
//! decompressed) by [`Config::body_limit`], accepted batches waiting for
//! the store by [`Config::queue_capacity`] (a full queue answers 503 with
//! `Retry-After`, over gRPC `UNAVAILABLE` with `RetryInfo`), connections
//! by [`Config::max_connections`], batches waiting for each exporter by
//! its `sending_queue.queue_size` (a full queue drops that exporter's
//! copy, counted in [`ExporterStats`]). The README lists every answer.
//!
//! An optional `zipkin` receiver ([`Config::zipkin_listen`], off by
//! default) takes Zipkin v2 JSON spans on `POST /api/v2/spans` on a
//! listener of its own and queues them as OTLP spans: the processors,
//! the store and the exporters see them as any OTLP export.
//!
//! Log records (`/v1/logs`, `LogsService/Export`) go through the same
//! queue but skip the pipeline's processors (`filter` and `tail_sampling`
//! are trace processors): every log record received is stored, in the
//! `logs` table ([`LogRow`]), and a trace's records are answered with its
//! spans.

mod api;
mod config;
mod export;
mod filter;
mod grpc;
mod http1;
mod ingest;
mod logs;
mod otlp;
mod pipeline;
mod retry_info;
mod server;
mod store;
mod zipkin;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use api::api_response;
pub use config::{CollectorFile, ConfigError, MAX_CONFIG_BYTES, Pipeline, STORE_EXPORTER};
pub use export::{EXPORT_FLUSH_TIMEOUT, ExporterStats, MAX_QUEUE_SIZE};
pub use grpc::{
    MAX_CONNECTION_AGE, MAX_CONNECTION_AGE_GRACE, MAX_STREAMS_PER_CONNECTION, REQUEST_TIMEOUT,
};
pub use http1::{HEADER_TIMEOUT, serve_http1};
pub use logs::{LogRow, MAX_TRACE_LOGS};
pub use otlp::UNKNOWN_SERVICE;
pub use server::Reply;
pub use store::{
    DATABASE_FILE, DEFAULT_LIMIT, Edge, MAX_ATTRIBUTE_BYTES, MAX_ATTRIBUTE_CONDITIONS, MAX_LIMIT,
    Operation, Retention, SPAN_OVERHEAD_BYTES, SpanRow, Store, StoreError, TimeRange, TraceQuery,
    TraceSummary, Usage,
};

/// The default listen address: 127.0.0.1:4318 (OTLP/HTTP's port).
pub const DEFAULT_LISTEN: SocketAddr = loopback(4318);

/// The default OTLP/gRPC listen address: 127.0.0.1:4317 (OTLP/gRPC's
/// port).
pub const DEFAULT_GRPC_LISTEN: SocketAddr = loopback(4317);

/// The `zipkin` receiver's listen address when the configuration names
/// none: 127.0.0.1:9411 (Zipkin's port).
pub const DEFAULT_ZIPKIN_LISTEN: SocketAddr = loopback(9411);

/// `port` on the IPv4 loopback address.
const fn loopback(port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
}

/// The default largest request body: 16 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// How long connections still busy at shutdown get to finish their
/// requests before they are cut.
pub const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// How the collector runs.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen for OTLP/HTTP and the API (port 0: any free port).
    pub listen: SocketAddr,
    /// Where to listen for OTLP/gRPC (port 0: any free port); `None`: no
    /// gRPC listener.
    pub grpc_listen: Option<SocketAddr>,
    /// Where to listen for Zipkin v2 JSON spans on `POST /api/v2/spans`
    /// (port 0: any free port); `None` (the default): no Zipkin listener.
    /// A configuration file sets it when its traces pipeline uses a
    /// `zipkin` receiver.
    pub zipkin_listen: Option<SocketAddr>,
    /// The directory of the store (created if missing).
    pub data_dir: PathBuf,
    /// The largest request body, before and after gzip decompression;
    /// larger bodies get 413.
    pub body_limit: usize,
    /// Accepted batches waiting to be written; when full, exports get 503
    /// with `Retry-After`.
    pub queue_capacity: usize,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
    /// The processors between the receiver and the exporters, and the
    /// exporters (default: no processor, every span is stored); see
    /// [`Config::apply`].
    pub pipeline: Pipeline,
    /// The store's bounds (default: 100,000 traces, 1 GiB); past either,
    /// the oldest traces are deleted whole.
    pub retention: Retention,
}

impl Config {
    /// Takes a Collector configuration file's settings: its OTLP/HTTP
    /// endpoint (when it names one), its OTLP/gRPC endpoint (gRPC is off
    /// when the file lists no `grpc` protocol) and its traces pipeline.
    ///
    /// ```
    /// use tracewire_collect::{CollectorFile, Config};
    ///
    /// let file = CollectorFile::from_yaml(
    ///     "receivers: {otlp: {protocols: {http: {endpoint: 127.0.0.1:0}}}}\n\
    ///      exporters: {tracewire_store: {}}\n\
    ///      service: {pipelines: {traces: {receivers: [otlp], exporters: [tracewire_store]}}}\n",
    /// )
    /// .unwrap();
    /// let config = Config::default().apply(file);
    /// assert_eq!(config.listen.port(), 0);
    /// assert_eq!(config.grpc_listen, None);
    /// ```
    #[must_use]
    pub fn apply(mut self, file: CollectorFile) -> Self {
        if let Some(listen) = file.listen {
            self.listen = listen;
        }
        self.grpc_listen = file.grpc_listen;
        self.zipkin_listen = file.zipkin_listen;
        self.pipeline = file.pipeline;
        if let Some(retention) = file.retention {
            self.retention = retention;
        }
        self
    }
}

impl Default for Config {
    /// Listening on [`DEFAULT_LISTEN`], storing in
    /// [`default_data_dir`], 16 MiB bodies, 64 queued batches, 128
    /// connections.
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN,
            grpc_listen: Some(DEFAULT_GRPC_LISTEN),
            zipkin_listen: None,
            data_dir: default_data_dir(),
            body_limit: DEFAULT_BODY_LIMIT,
            queue_capacity: 64,
            max_connections: 128,
            pipeline: Pipeline::default(),
            retention: Retention::default(),
        }
    }
}

/// The default data directory: `tracewire-data` in the OS's temporary
/// directory.
pub fn default_data_dir() -> PathBuf {
    std::env::temp_dir().join("tracewire-data")
}

/// Why the collector could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration file could not be used (or an exporter's file
    /// opened).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The async runtime could not be built.
    #[error("cannot start the runtime: {0}")]
    Runtime(std::io::Error),
}

/// Counts of what the collector did, since it started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Spans accepted into the queue.
    pub spans_accepted: u64,
    /// Spans rejected for bad ids (reported as a partial success).
    pub spans_rejected: u64,
    /// Spans written to the store.
    pub spans_stored: u64,
    /// Spans lost because writing their batch failed.
    pub spans_lost: u64,
    /// Export requests (HTTP or gRPC, spans or logs) refused because the
    /// queue was full.
    pub requests_throttled: u64,
    /// Spans dropped by a `filter` processor.
    pub spans_filtered: u64,
    /// Spans dropped by a `tail_sampling` processor (their trace was not
    /// kept, or it had more spans than are buffered per trace).
    pub spans_not_sampled: u64,
    /// Traces deleted whole from the store by its [`Retention`].
    pub traces_evicted: u64,
    /// Log records accepted into the queue.
    pub logs_accepted: u64,
    /// Log records written to the store.
    pub logs_stored: u64,
    /// Log records lost because writing their batch failed (or because
    /// the pipeline does not store).
    pub logs_lost: u64,
    /// Each forwarding exporter's counts, in pipeline order (the store's
    /// are the fields above).
    pub exporters: Vec<ExporterStats>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) spans_accepted: AtomicU64,
    pub(crate) spans_rejected: AtomicU64,
    pub(crate) spans_stored: AtomicU64,
    pub(crate) spans_lost: AtomicU64,
    pub(crate) requests_throttled: AtomicU64,
    pub(crate) spans_filtered: AtomicU64,
    pub(crate) spans_not_sampled: AtomicU64,
    pub(crate) logs_accepted: AtomicU64,
    pub(crate) logs_stored: AtomicU64,
    pub(crate) logs_lost: AtomicU64,
    exporters: Vec<Arc<export::ExporterCounters>>,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Stats {
            spans_accepted: get(&self.spans_accepted),
            spans_rejected: get(&self.spans_rejected),
            spans_stored: get(&self.spans_stored),
            spans_lost: get(&self.spans_lost),
            requests_throttled: get(&self.requests_throttled),
            spans_filtered: get(&self.spans_filtered),
            spans_not_sampled: get(&self.spans_not_sampled),
            // Counted by the store (Collector::stats fills it in).
            traces_evicted: 0,
            logs_accepted: get(&self.logs_accepted),
            logs_stored: get(&self.logs_stored),
            logs_lost: get(&self.logs_lost),
            exporters: self.exporters.iter().map(|e| e.snapshot()).collect(),
        }
    }
}

/// A running collector. Dropping it without [`shutdown`](Self::shutdown)
/// stops accepting (its stop signal is gone) but does not wait for the
/// queue to be stored.
#[derive(Debug)]
pub struct Collector {
    addr: SocketAddr,
    grpc_addr: Option<SocketAddr>,
    store: Store,
    counters: Arc<Counters>,
    stop: tokio::sync::watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
    grpc: Option<tokio::task::JoinHandle<()>>,
    zipkin_addr: Option<SocketAddr>,
    zipkin: Option<tokio::task::JoinHandle<()>>,
    close_queue: tokio::sync::oneshot::Sender<()>,
    writer: tokio::task::JoinHandle<()>,
    exporters: export::Tasks,
}

impl Collector {
    /// Opens the store (in memory when the pipeline does not store),
    /// binds the listeners (HTTP; gRPC unless [`Config::grpc_listen`]
    /// is `None`; Zipkin when [`Config::zipkin_listen`] is set), starts the exporters and starts serving (on the current
    /// tokio runtime).
    ///
    /// # Errors
    /// When the store cannot be opened, a `file` exporter's file opened or
    /// the address bound.
    pub async fn start(config: Config) -> Result<Self, Error> {
        let store = if config.pipeline.store {
            Store::open_with(&config.data_dir, config.retention).await?
        } else {
            Store::in_memory().await?
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Listen {
            addr: config.listen,
            source,
        })?;
        let grpc_listener = match config.grpc_listen {
            Some(grpc_listen) => Some(bind(grpc_listen).await?),
            None => None,
        };
        let zipkin_listener = match config.zipkin_listen {
            Some(zipkin_listen) => Some(bind(zipkin_listen).await?),
            None => None,
        };
        // After binding, so that a busy port leaves a `file` exporter's
        // file as it was.
        let (exporters, export_tasks) = export::start(&config.pipeline.exporters)?;
        let counters = Arc::new(Counters {
            exporters: export_tasks.counters.clone(),
            ..Counters::default()
        });
        let (queue, batches) = tokio::sync::mpsc::channel(config.queue_capacity.max(1));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (close_queue, queue_closed) = tokio::sync::oneshot::channel();
        let writer = tokio::spawn(server::write(
            batches,
            queue_closed,
            server::Outputs {
                store: config.pipeline.store.then(|| store.clone()),
                exporters,
            },
            counters.clone(),
            pipeline::Processors::new(&config.pipeline),
        ));
        let ingest = ingest::Ingest {
            queue,
            counters: counters.clone(),
        };
        let grpc_addr = grpc_listener.as_ref().map(|(_, addr)| *addr);
        let grpc = grpc_listener.map(|(listener, _)| {
            tokio::spawn(grpc::serve(
                listener,
                ingest.clone(),
                stopped.clone(),
                config.body_limit,
                config.max_connections.max(1),
            ))
        });
        let zipkin_addr = zipkin_listener.as_ref().map(|(_, addr)| *addr);
        let zipkin = zipkin_listener.map(|(listener, _)| {
            tokio::spawn(zipkin::serve(
                listener,
                ingest.clone(),
                config.body_limit,
                stopped.clone(),
                config.max_connections.max(1),
            ))
        });
        let state = Arc::new(server::State {
            store: store.clone(),
            ingest,
            body_limit: config.body_limit,
        });
        let server = tokio::spawn(server::serve(
            listener,
            state,
            stopped,
            config.max_connections.max(1),
        ));
        Ok(Collector {
            addr,
            grpc_addr,
            store,
            counters,
            stop,
            server,
            grpc,
            zipkin_addr,
            zipkin,
            close_queue,
            writer,
            exporters: export_tasks,
        })
    }

    /// The address it listens on for OTLP/HTTP and the API.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address it listens on for OTLP/gRPC (`None`: no gRPC
    /// listener).
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The address it listens on for Zipkin v2 JSON spans (`None`: no
    /// Zipkin listener, see [`Config::zipkin_listen`]).
    pub fn zipkin_addr(&self) -> Option<SocketAddr> {
        self.zipkin_addr
    }

    /// What it did so far.
    pub fn stats(&self) -> Stats {
        Stats {
            traces_evicted: self.store.traces_evicted(),
            ..self.counters.snapshot()
        }
    }

    /// The store it writes to (for queries in-process).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops accepting connections on every listener, lets requests in
    /// progress finish (connections still busy after [`DRAIN_TIMEOUT`] are
    /// cut), writes every queued batch to the store and closes it, and
    /// gives the exporters [`EXPORT_FLUSH_TIMEOUT`] to send what they
    /// hold. Returns the final counts.
    pub async fn shutdown(self) -> Stats {
        let _ = self.stop.send(true);
        // The listeners drain at once; the HTTP ones (OTLP/HTTP, Zipkin)
        // cut connections still busy after DRAIN_TIMEOUT themselves.
        let grpc = async {
            if let Some(mut grpc) = self.grpc
                && tokio::time::timeout(DRAIN_TIMEOUT, &mut grpc)
                    .await
                    .is_err()
            {
                grpc.abort();
            }
        };
        let zipkin = async {
            if let Some(zipkin) = self.zipkin {
                let _ = zipkin.await;
            }
        };
        let _ = tokio::join!(self.server, grpc, zipkin);
        // Then the queue takes no more batches (a request still running on
        // a cut connection is told the collector is stopping); the writer
        // stores what is queued and ends, closing the exporters' queues.
        let _ = self.close_queue.send(());
        let _ = self.writer.await;
        self.exporters.finish().await;
        self.store.close().await;
        Stats {
            traces_evicted: self.store.traces_evicted(),
            ..self.counters.snapshot()
        }
    }
}

/// Binds a listener: it and the address it got.
async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), Error> {
    let bind_error = |source| Error::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

/// Runs a collector on a new multi-threaded runtime until Ctrl-C or (on
/// Unix) SIGTERM, then shuts it down ([`Collector::shutdown`]). `ready`
/// is called once it listens.
///
/// # Errors
/// When the runtime, the store or the listener cannot be set up.
pub fn run_until_signal(config: Config, ready: impl FnOnce(&Collector)) -> Result<Stats, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    runtime.block_on(async {
        let collector = Collector::start(config).await?;
        // Listening before `ready` says so: a signal sent as soon as the
        // banner is out stops the collector cleanly instead of killing it.
        let stop = stop_signal();
        ready(&collector);
        stop.await;
        Ok(collector.shutdown().await)
    })
}

/// Listens for Ctrl-C (SIGINT) and, on Unix, SIGTERM from the moment it
/// is called (within the runtime); the future resolves on either. If a
/// signal cannot be listened for, only the other one stops the collector.
fn stop_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{Signal, SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt()).ok();
        let terminate = signal(SignalKind::terminate()).ok();
        let wait = |signal: Option<Signal>| async move {
            match signal {
                Some(mut signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        async move {
            tokio::select! {
                () = wait(interrupt) => {}
                () = wait(terminate) => {}
            }
        }
    }
    #[cfg(not(unix))]
    async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
