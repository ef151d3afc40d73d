//! Serving HTTP/1.1 with bounds: the collector's OTLP/HTTP and API
//! listener and the web viewer (in `tracewire-cli`) use the same loop.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::DRAIN_TIMEOUT;
use crate::server::Reply;

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts HTTP/1.1 connections on `listener` and answers every request
/// with `handle`, until `stopped` turns true (or its sender is gone). Then
/// it stops accepting, lets the open connections finish their requests for
/// at most [`DRAIN_TIMEOUT`], cuts those still open, and returns (dropping
/// `handle` and what it holds).
///
/// At most `max_connections` connections are served at once (more wait to
/// be accepted); request headers must arrive within [`HEADER_TIMEOUT`].
///
/// ```no_run
/// use http_body_util::Full;
/// use hyper::Response;
///
/// # async fn example() -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let (stop, stopped) = tokio::sync::watch::channel(false);
/// let server = tokio::spawn(tracewire_collect::serve_http1(listener, 64, stopped, |_request| async {
///     Response::new(Full::from("hello\n"))
/// }));
/// // … later:
/// let _ = stop.send(true);
/// let _ = server.await;
/// # Ok(())
/// # }
/// ```
pub async fn serve_http1<H, F>(
    listener: tokio::net::TcpListener,
    max_connections: usize,
    mut stopped: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Reply> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopping(&mut stopped) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors and the like: wait a little
                // rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopping(&mut stopped) => break,
        };
        while connections.try_join_next().is_some() {}
        let handle = handle.clone();
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request| {
                let answer = handle(request);
                async move { Ok::<_, Infallible>(answer.await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stopping(&mut stopped) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    drop(handle);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
}

/// Resolves when the flag turns true, or its sender is gone.
async fn stopping(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}
