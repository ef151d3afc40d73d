//! A traced service started by `tracewire::init()` from the environment,
//! for the start-up tests (`tests/startup`): they run it with hostile or
//! production settings and read what it prints and exports.
//!
//! It serves `GET /work` behind `TraceLayer::server()`; the handler logs at
//! INFO and ERROR inside a DEBUG span, calls a plain (untraced) downstream server through the
//! traced reqwest client and answers 200. The probe calls `/work` once with
//! the `traceparent` given as its first argument (none when the argument is
//! `-`), drops the guard (which flushes), and prints one line
//! `PROBE {"status":…,"downstream_traceparent":…,"handler_trace_id":…}`
//! (the trace id `tracewire::current_span_context()` gives inside the
//! handler's DEBUG span).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use http::HeaderMap;
use tracewire_tower::TraceLayer;
use tracing::Instrument as _;

type Seen = Arc<Mutex<Option<String>>>;

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("server") });
    format!("http://{addr}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let guard = match tracewire::init() {
        Ok(guard) => guard,
        Err(e) => {
            println!(
                "PROBE {}",
                serde_json::json!({ "init_error": e.to_string() })
            );
            std::process::exit(3);
        }
    };
    let incoming = std::env::args().nth(1).filter(|a| a != "-");

    let seen: Seen = Arc::default();
    let record = Arc::clone(&seen);
    let downstream = serve(Router::new().route(
        "/",
        get(move |headers: HeaderMap| async move {
            *record.lock().expect("lock") = headers
                .get("traceparent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            "ok"
        }),
    ))
    .await;

    let handler_trace: Seen = Arc::default();
    let handler = Arc::clone(&handler_trace);
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(tracewire_reqwest::TracingMiddleware::default())
        .build();
    let service = serve(
        Router::new()
            .route(
                "/work",
                get(move || {
                    async move {
                        tracing::info!("handling the request");
                        tracing::error!("a logged error that does not fail the request");
                        // The context the handler's own work belongs to.
                        *handler.lock().expect("lock") =
                            tracewire::current_span_context().map(|cx| cx.trace_id().to_string());
                        let answer = client.get(&downstream).send().await;
                        if answer.is_ok_and(|a| a.status().is_success()) {
                            http::StatusCode::OK
                        } else {
                            http::StatusCode::BAD_GATEWAY
                        }
                    }
                    // A DEBUG span: traced or not depending on the filters.
                    .instrument(tracing::debug_span!("handler work"))
                }),
            )
            .layer(TraceLayer::server()),
    )
    .await;

    let mut request = reqwest::Client::new().get(format!("{service}/work"));
    if let Some(traceparent) = incoming {
        request = request.header("traceparent", traceparent);
    }
    let status = match request.send().await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    };
    drop(guard);
    let downstream_traceparent = seen.lock().expect("lock").clone();
    println!(
        "PROBE {}",
        serde_json::json!({
            "status": status,
            "downstream_traceparent": downstream_traceparent,
            "handler_trace_id": handler_trace.lock().expect("lock").clone(),
        })
    );
}
