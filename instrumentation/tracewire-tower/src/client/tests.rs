//! The client layer with a shared [`ClientOptions`] and a response hook.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Request, Response};
use http_body_util::Full;
use tower::{ServiceBuilder, ServiceExt as _};
use tracewire::http::ClientOptions;
use tracewire::propagation::B3Propagator;
use tracewire::testing::InMemoryExporter;
use tracewire::{SpanExt as _, TracewireLayer, Value};
use tracing_subscriber::prelude::*;

use crate::TraceLayer;

#[tokio::test]
async fn shared_client_options_and_a_response_hook() {
    let exporter = InMemoryExporter::new();
    let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);

    // What an application would give its reqwest middleware too.
    let options = ClientOptions::new()
        .propagator(B3Propagator::new())
        .request_headers([HeaderName::from_static("x-tenant")])
        .response_headers([HeaderName::from_static("x-cache")])
        .legacy_http_attributes(true);
    let seen = Arc::new(Mutex::new(http::HeaderMap::new()));
    let seen_in = seen.clone();
    let layer = TraceLayer::client().options(options).on_response(
        |response: &Response<Full<Bytes>>, latency: Duration, span: &tracing::Span| {
            if let Some(region) = response.headers().get("x-region") {
                span.set_attribute("app.region", region.to_str().unwrap().to_owned());
            }
            span.set_attribute("app.latency_ms", latency.as_secs_f64() * 1000.0);
        },
    );
    let svc = ServiceBuilder::new()
        .layer(layer)
        .service_fn(move |req: Request<Full<Bytes>>| {
            *seen_in.lock().unwrap() = req.headers().clone();
            async {
                Ok::<_, Infallible>(
                    Response::builder()
                        .header("x-cache", "hit")
                        .header("x-region", "eu-west")
                        .body(Full::<Bytes>::default())
                        .unwrap(),
                )
            }
        });
    let req = Request::get("http://inventory.internal/items/7")
        .header("x-tenant", "acme")
        .body(Full::default())
        .unwrap();
    svc.oneshot(req).await.unwrap();

    let span = exporter.span("GET");
    let headers = seen.lock().unwrap();
    assert!(headers.contains_key("b3"), "the options' propagator");
    assert!(!headers.contains_key("traceparent"));
    assert_eq!(
        span.attribute("http.request.header.x-tenant"),
        Some(&Value::from(vec!["acme"]))
    );
    assert_eq!(
        span.attribute("http.response.header.x-cache"),
        Some(&Value::from(vec!["hit"]))
    );
    assert_eq!(span.attribute("http.method"), Some(&Value::from("GET")));
    assert_eq!(span.attribute("http.status_code"), Some(&Value::I64(200)));
    assert_eq!(span.attribute("app.region"), Some(&Value::from("eu-west")));
    assert!(matches!(
        span.attribute("app.latency_ms"),
        Some(Value::F64(_))
    ));
}

#[tokio::test]
async fn propagation_off_keeps_headers_out() {
    let exporter = InMemoryExporter::new();
    let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::client().propagation(false))
        .service_fn(|req: Request<Full<Bytes>>| async move {
            assert!(req.headers().get("traceparent").is_none());
            Ok::<_, Infallible>(Response::new(Full::<Bytes>::default()))
        });
    let req = Request::get("http://partner.example/")
        .body(Full::default())
        .unwrap();
    svc.oneshot(req).await.unwrap();
    assert_eq!(
        exporter.span("GET").attribute("http.response.status_code"),
        Some(&Value::I64(200))
    );
}
