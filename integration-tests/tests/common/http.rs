//! HTTP pieces the grouped test binaries share (included with `#[path]`).

use std::net::SocketAddr;

use axum::Router;
use tracewire_reqwest::TracingMiddleware;

/// Serves `app` on a fresh local port with `ConnectInfo<SocketAddr>`;
/// returns its base URL. The server stops with the runtime.
pub(crate) async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("server");
    });
    format!("http://{addr}")
}

/// A reqwest client with the tracing middleware.
pub(crate) fn reqwest_client() -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(TracingMiddleware::default())
        .build()
}
