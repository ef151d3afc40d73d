//! The trace viewer as a web page, served next to a collector's store.
//!
//! One HTTP/1.1 listener answers:
//!
//! - the page itself (`/`, `/app.js`, `/app.css`): hand-written HTML, CSS
//!   and JavaScript embedded in the binary, nothing fetched from elsewhere;
//! - the collector's JSON API (`/api/services`, `/api/traces`, …), by
//!   delegating to [`tracewire_collect::api_response`], so the page reads
//!   exactly what `tracewire list --from` reads;
//! - the viewer's own answers, computed with this crate's code:
//!   `GET /api/traces/{id}/view` ([`json::view`](crate::json::view): spans
//!   in tree order with depth, offset, critical-path self-time and the
//!   bottleneck; and `critical_path`, as the next), `GET /api/traces/{id}/critical-path`
//!   ([`json::critical_path`](crate::json::critical_path)) and
//!   `GET /api/compare?a=ID&b=ID` ([`json::diff`](crate::json::diff) of B
//!   against A).
//!
//! ```no_run
//! # async fn example(store: tracewire_collect::Store) -> Result<(), tracewire_cli::web::WebError> {
//! let viewer = tracewire_cli::web::serve(store, tracewire_cli::web::DEFAULT_LISTEN).await?;
//! println!("trace viewer on {}", viewer.url());
//! // … later
//! viewer.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Bounds: at most [`MAX_CONNECTIONS`] connections at once (more wait),
//! request headers within [`HEADER_TIMEOUT`] (the collector's HTTP/1.1
//! loop, [`tracewire_collect::serve_http1`]); requests have no body to
//! read. Every answer of the viewer's own endpoints comes from one trace
//! read from the store, at most [`MAX_TRACE_SPANS`] spans.

mod handler;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;

use tokio::sync::watch;
use tracewire_collect::Store;
pub use tracewire_collect::{DRAIN_TIMEOUT, HEADER_TIMEOUT};

pub use handler::respond;

/// The default address of the viewer: Jaeger's UI port (16686), on the
/// loopback interface.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 16686));

/// Connections served at once; more wait to be accepted.
pub const MAX_CONNECTIONS: usize = 64;

/// The most spans of a trace the viewer's own endpoints analyse (a larger
/// trace answers `413`); the collector's `GET /api/traces/{id}` is not
/// limited by it.
pub const MAX_TRACE_SPANS: usize = 200_000;

/// Why the viewer could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// A running viewer; [`shutdown`](Self::shutdown) stops it. Dropping it
/// without shutting down also stops accepting connections.
#[derive(Debug)]
pub struct WebServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl WebServer {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The page's URL: `http://ADDR/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The URL of one trace's page (`trace_id`: 32 hex digits).
    pub fn trace_url(&self, trace_id: &str) -> String {
        format!("http://{}/#/trace/{trace_id}", self.addr)
    }

    /// Stops accepting connections and lets those in progress finish (at
    /// most [`DRAIN_TIMEOUT`]).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Binds `addr` (port 0: any free port) and serves the viewer over
/// `store` on the current tokio runtime.
///
/// # Errors
/// When the address cannot be bound.
pub async fn serve(store: Store, addr: SocketAddr) -> Result<WebServer, WebError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| WebError::Listen { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| WebError::Listen { addr, source })?;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept(listener, Arc::new(store), stopped));
    Ok(WebServer { addr, stop, task })
}

/// Serves the viewer over `store` on an already bound listener (so that
/// a program can report a busy port before it starts its runtime). Must
/// be called within a tokio runtime.
///
/// # Errors
/// When the listener cannot be made non-blocking or handed to tokio.
pub fn serve_listener(
    store: Store,
    listener: std::net::TcpListener,
) -> Result<WebServer, WebError> {
    let addr = listener.local_addr().map_err(|source| WebError::Listen {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source,
    })?;
    let listener = listener
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpListener::from_std(listener))
        .map_err(|source| WebError::Listen { addr, source })?;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(accept(listener, Arc::new(store), stopped));
    Ok(WebServer { addr, stop, task })
}

/// Serves the viewer's requests on `listener` until `stopped` turns true
/// (the collector's own bounded HTTP/1.1 loop).
async fn accept(
    listener: tokio::net::TcpListener,
    store: Arc<Store>,
    stopped: watch::Receiver<bool>,
) {
    tracewire_collect::serve_http1(listener, MAX_CONNECTIONS, stopped, move |request| {
        let store = store.clone();
        async move { handler::handle(&store, &request).await }
    })
    .await;
}
