//! The reqwest middleware's options and failure modes over real sockets.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tracewire::{SpanKind, Status};
use tracewire_reqwest::TracingMiddleware;
use tracewire_tower::TraceLayer;
use tracing::Instrument as _;

use crate::support::{self, int_attr, str_attr};

fn app() -> Router {
    Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        )
        .route(
            "/tagged",
            get(|| async { ([("x-served-by", "node-3")], "ok") }),
        )
        .layer(TraceLayer::server())
}

#[test]
fn headers_and_legacy_names_are_recorded_on_request() {
    support::run(|exporter| async move {
        let url = support::serve(app()).await;
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(
                TracingMiddleware::default()
                    .request_headers([http::HeaderName::from_static("x-request-id")])
                    .response_headers([http::HeaderName::from_static("x-served-by")])
                    .legacy_http_attributes(true),
            )
            .build();
        client
            .get(format!("{url}/tagged?page=2&X-Amz-Signature=s3cr3t"))
            .header("x-request-id", "req-17")
            .header("authorization", "Bearer secret")
            .send()
            .await
            .unwrap();
        let spans = support::wait_for_spans(&exporter, 2).await;
        let span = spans.iter().find(|s| s.kind == SpanKind::Client).unwrap();
        assert_eq!(
            span.attribute("http.request.header.x-request-id"),
            Some(&tracewire::Value::from(vec!["req-17"]))
        );
        assert_eq!(
            span.attribute("http.response.header.x-served-by"),
            Some(&tracewire::Value::from(vec!["node-3"]))
        );
        assert!(
            span.attributes
                .iter()
                .all(|kv| !kv.key.contains("authorization"))
        );
        let full = format!("{url}/tagged?page=2&X-Amz-Signature=REDACTED");
        assert_eq!(str_attr(span, "url.full"), full);
        assert_eq!(str_attr(span, "http.url"), full);
        assert_eq!(str_attr(span, "http.method"), "GET");
        assert_eq!(str_attr(span, "net.peer.name"), "127.0.0.1");
        assert_eq!(int_attr(span, "http.status_code"), 200);
        assert_eq!(str_attr(span, "network.protocol.version"), "1.1");
    });
}

#[test]
fn transport_errors_timeouts_and_cancellation() {
    support::run(|exporter| async move {
        let url = support::serve(app()).await;
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let client = reqwest_middleware::ClientBuilder::new(
            reqwest::Client::builder()
                .timeout(Duration::from_millis(200))
                .build()
                .unwrap(),
        )
        .with(TracingMiddleware::default())
        .build();

        // Connection refused.
        let refused = tracing::info_span!("refused");
        assert!(
            client
                .get(format!("http://{dead}/"))
                .send()
                .instrument(refused)
                .await
                .is_err()
        );
        // reqwest's own timeout fails the request.
        let timed_out = tracing::info_span!("timed out");
        assert!(
            client
                .get(format!("{url}/slow"))
                .send()
                .instrument(timed_out)
                .await
                .is_err()
        );
        // The caller giving up drops the request: cancelled, not failed.
        let cancelled = tracing::info_span!("cancelled");
        let gave_up = tokio::time::timeout(
            Duration::from_millis(50),
            client
                .get(format!("{url}/slow"))
                .send()
                .instrument(cancelled),
        )
        .await;
        assert!(gave_up.is_err());

        let spans = support::wait_for_spans(&exporter, 6).await;
        let client_under = |root: &str| {
            let root = spans.iter().find(|s| s.name == root).unwrap();
            spans
                .iter()
                .find(|s| s.parent_span_id == root.span_context.span_id())
                .unwrap()
                .clone()
        };
        let refused = client_under("refused");
        assert!(refused.status.is_error());
        assert_eq!(str_attr(&refused, "error.type"), "connect");
        let timed_out = client_under("timed out");
        assert!(timed_out.status.is_error());
        assert_eq!(str_attr(&timed_out, "error.type"), "timeout");
        let cancelled = client_under("cancelled");
        assert_eq!(cancelled.status, Status::Unset);
        assert!(cancelled.attribute("error.type").is_none());
    });
}
