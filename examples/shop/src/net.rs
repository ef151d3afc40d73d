//! What every service shares: serving HTTP (and gRPC) with a server span per request,
//! traced HTTP clients, stopping on request, and error responses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracewire_tower::{Server, TraceLayer};

use crate::BoxError;
use crate::services::{env, optional};

/// Resolves when the service is asked to stop: SIGINT, SIGTERM, or (when
/// the launcher runs it) its standard input closing.
#[derive(Clone, Debug)]
pub(crate) struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Watches the signals (and standard input when `SHOP_STOP_ON_STDIN_EOF`
    /// is `1`). Call inside the runtime.
    pub(crate) fn from_signals() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        let tx = Arc::new(tx);
        if optional(env::STOP_ON_EOF).as_deref() == Some("1") {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut stdin = tokio::io::stdin();
                let mut buf = [0_u8; 64];
                while let Ok(1..) = stdin.read(&mut buf).await {}
                tx.send_replace(true);
            });
        }
        tokio::spawn(async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                () = terminated() => {}
            }
            tx.send_replace(true);
        });
        Shutdown(rx)
    }

    /// Waits until the service should stop.
    pub(crate) async fn wait(mut self) {
        // An error means the sender is gone: stop as well.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

#[cfg(unix)]
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn terminated() {
    std::future::pending().await;
}

/// Whether a service is ready for requests: its `GET /health` answers 200
/// then, 503 before.
#[derive(Clone, Debug)]
pub(crate) struct Ready(Arc<AtomicBool>);

impl Ready {
    /// Ready as soon as it listens.
    pub(crate) fn now() -> Ready {
        Ready(Arc::new(AtomicBool::new(true)))
    }

    /// Ready once [`set`](Self::set) is called.
    pub(crate) fn later() -> Ready {
        Ready(Arc::new(AtomicBool::new(false)))
    }

    pub(crate) fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Serves `routes` on `addr`, each request in a server span made by
/// `trace` (usually `TraceLayer::server()`), plus an untraced
/// `GET /health` telling whether it is `ready`, until `shutdown`;
/// in-flight requests finish.
pub(crate) async fn serve(
    addr: SocketAddr,
    routes: Router,
    trace: TraceLayer<Server>,
    ready: Ready,
    shutdown: Shutdown,
) -> Result<(), BoxError> {
    serve_traced(addr, routes.layer(trace), ready, shutdown).await
}

/// As [`serve`], for `routes` that carry their own tracing (the payment
/// service's gRPC method behind `TraceLayer::grpc_server()`). HTTP/1.1 and
/// HTTP/2 (gRPC) are both accepted on the one port.
pub(crate) async fn serve_traced(
    addr: SocketAddr,
    routes: Router,
    ready: Ready,
    shutdown: Shutdown,
) -> Result<(), BoxError> {
    let health = move || async move {
        if ready.is_set() {
            (StatusCode::OK, "ok")
        } else {
            (StatusCode::SERVICE_UNAVAILABLE, "starting")
        }
    };
    // Added after the routes' layers: health checks make no span.
    let app = routes.route("/health", get(health));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    // The peer address becomes the server span's `client.address`.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.wait())
        .await?;
    Ok(())
}

fn http_client() -> Result<reqwest::Client, BoxError> {
    Ok(reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(20))
        .build()?)
}

/// An HTTP client whose requests are CLIENT spans carrying the trace to
/// the next service.
pub(crate) fn client() -> Result<ClientWithMiddleware, BoxError> {
    Ok(ClientBuilder::new(http_client()?)
        .with(tracewire_reqwest::TracingMiddleware::default())
        .build())
}

/// As [`client`], retrying transient failures (5xx, 408, 429, connection
/// errors) up to twice with a short back-off; each attempt is its own span
/// with `http.request.resend_count` from the second on.
pub(crate) fn retrying_client() -> Result<ClientWithMiddleware, BoxError> {
    let policy = ExponentialBackoff::builder()
        .retry_bounds(Duration::from_millis(10), Duration::from_millis(200))
        .build_with_max_retries(2);
    Ok(ClientBuilder::new(http_client()?)
        .with(RetryTransientMiddleware::new_with_policy(policy))
        .with(tracewire_reqwest::TracingMiddleware::default())
        .build())
}

/// An error answer: a status and `{"error": message}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// A call to `peer` failed before it answered.
    pub(crate) fn unreachable(peer: &str, error: &reqwest_middleware::Error) -> ApiError {
        tracing::error!(error = %error, "{peer} did not answer");
        ApiError::new(StatusCode::BAD_GATEWAY, format!("{peer} did not answer"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(serde_json::json!({ "error": self.message }));
        (self.status, body).into_response()
    }
}

/// A peer's answer passed on as it is: its status and JSON body.
pub(crate) async fn relay(peer: &str, response: reqwest::Response) -> Response {
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    match response.json::<serde_json::Value>().await {
        Ok(body) => (status, Json(body)).into_response(),
        Err(error) => {
            tracing::error!(error = %error, "{peer} answered {status} with a body that is not JSON");
            ApiError::new(StatusCode::BAD_GATEWAY, format!("{peer} answered badly")).into_response()
        }
    }
}
