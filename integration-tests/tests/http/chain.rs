//! A three-hop chain over real sockets: a reqwest client with the
//! middleware → service A (axum + server layer) → a hyper-util client with
//! the client layer → service B (axum + server layer).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use reqwest_retry::RetryTransientMiddleware;
use reqwest_retry::policies::ExponentialBackoff;
use tower::ServiceExt as _;
use tracewire::{SpanExt as _, SpanKind, Status, Value};
use tracewire_reqwest::TracingMiddleware;
use tracewire_tower::TraceLayer;
use tracing::Instrument as _;

use crate::support::{self, HyperClient, int_attr, one, str_attr};

/// Service B: stock levels. `broken` fails with 500.
fn service_b() -> Router {
    Router::new()
        .route(
            "/stock/{sku}",
            get(|Path(sku): Path<String>| async move {
                tracing::info!(sku, "reading stock");
                if sku == "broken" {
                    (StatusCode::INTERNAL_SERVER_ERROR, "no stock service")
                } else {
                    (StatusCode::OK, "7")
                }
            }),
        )
        .layer(TraceLayer::server())
}

#[derive(Clone)]
struct A {
    client: HyperClient,
    b: String,
}

/// Service A: orders, asking B for stock with the hyper client.
fn service_a(b: String) -> Router {
    async fn order(State(a): State<A>, Path(id): Path<String>) -> Result<String, StatusCode> {
        let trace_id = tracewire::current_span_context()
            .map(|cx| cx.trace_id().to_string())
            .unwrap_or_default();
        let request = http::Request::get(format!("{}/stock/{id}", a.b))
            .body(Full::<Bytes>::default())
            .expect("request");
        let response = a
            .client
            .clone()
            .oneshot(request)
            .await
            .map_err(|_| StatusCode::BAD_GATEWAY)?;
        if !response.status().is_success() {
            return Err(StatusCode::BAD_GATEWAY);
        }
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|_| StatusCode::BAD_GATEWAY)?
            .to_bytes();
        // Its own view of the trace, and B's answer.
        Ok(format!("{trace_id} {}", String::from_utf8_lossy(&body)))
    }
    Router::new()
        .route("/orders/{id}", get(order))
        .with_state(A {
            client: support::hyper_client(),
            b,
        })
        .layer(TraceLayer::server())
}

#[test]
fn three_hops_make_one_trace() {
    support::run(|exporter| async move {
        let b = support::serve(service_b()).await;
        let a = support::serve(service_a(b.clone())).await;
        let client = support::reqwest_client();

        let root = tracing::info_span!("checkout");
        let order = async {
            client
                .get(format!("{a}/orders/42?expand=stock"))
                .header("user-agent", "chain-test/1.0")
                .send()
                .await
                .expect("send")
                .error_for_status()
                .expect("200")
                .text()
                .await
                .expect("body")
        }
        .instrument(root.clone())
        .await;
        let trace = root.span_context().expect("traced").trace_id();
        drop(root);

        let spans = support::wait_for_spans(&exporter, 5).await;
        assert_eq!(spans.len(), 5, "{}", exporter.tree());
        assert!(spans.iter().all(|s| s.span_context.trace_id() == trace));
        assert_eq!(order, format!("{trace} 7"), "A's handler ran in the trace");
        assert_eq!(
            exporter.tree(),
            "checkout\n  GET [client]\n    GET /orders/{id} [server]\n      GET [client]\n        GET /stock/{sku} [server]\n"
        );

        let checkout = one(&spans, trace, "checkout");
        let server_a = one(&spans, trace, "GET /orders/{id}");
        let server_b = one(&spans, trace, "GET /stock/{sku}");
        let clients: Vec<_> = spans
            .iter()
            .filter(|s| s.kind == SpanKind::Client)
            .collect();
        assert_eq!(clients.len(), 2);
        let reqwest_span = clients
            .iter()
            .find(|s| s.parent_span_id == checkout.span_context.span_id())
            .expect("reqwest span under checkout");
        let hyper_span = clients
            .iter()
            .find(|s| s.parent_span_id == server_a.span_context.span_id())
            .expect("hyper span under service A");

        // Parents: each hop's server span is the child of the caller's client span.
        assert_eq!(server_a.parent_span_id, reqwest_span.span_context.span_id());
        assert!(server_a.parent_is_remote);
        assert_eq!(server_b.parent_span_id, hyper_span.span_context.span_id());
        assert!(server_b.parent_is_remote);
        assert!(!reqwest_span.parent_is_remote && !hyper_span.parent_is_remote);

        // Kinds and statuses.
        assert_eq!(server_a.kind, SpanKind::Server);
        assert_eq!(server_b.kind, SpanKind::Server);
        for span in [server_a, server_b, *reqwest_span, *hyper_span] {
            assert_eq!(span.status, Status::Unset, "{}", span.name);
            assert_eq!(int_attr(span, "http.response.status_code"), 200);
            assert_eq!(str_attr(span, "http.request.method"), "GET");
            assert!(span.attribute("error.type").is_none());
        }

        // Server attributes, with their types.
        let port_a: i64 = a.rsplit(':').next().unwrap().parse().unwrap();
        assert_eq!(str_attr(server_a, "http.route"), "/orders/{id}");
        assert_eq!(str_attr(server_a, "url.path"), "/orders/42");
        assert_eq!(str_attr(server_a, "url.query"), "expand=stock");
        assert_eq!(str_attr(server_a, "url.scheme"), "http");
        assert_eq!(str_attr(server_a, "server.address"), "127.0.0.1");
        assert_eq!(server_a.attribute("server.port"), Some(&Value::I64(port_a)));
        assert_eq!(str_attr(server_a, "client.address"), "127.0.0.1");
        assert_eq!(str_attr(server_a, "network.peer.address"), "127.0.0.1");
        assert!(int_attr(server_a, "network.peer.port") > 0);
        assert_eq!(str_attr(server_a, "user_agent.original"), "chain-test/1.0");
        assert_eq!(str_attr(server_a, "network.protocol.version"), "1.1");
        assert_eq!(str_attr(server_b, "http.route"), "/stock/{sku}");
        assert_eq!(
            server_b.events.len(),
            1,
            "the handler's event joined B's span"
        );

        // Client attributes.
        assert_eq!(
            str_attr(reqwest_span, "url.full"),
            format!("{a}/orders/42?expand=stock")
        );
        assert_eq!(str_attr(reqwest_span, "server.address"), "127.0.0.1");
        assert_eq!(int_attr(reqwest_span, "server.port"), port_a);
        assert_eq!(str_attr(hyper_span, "url.full"), format!("{b}/stock/42"));
        assert!(
            reqwest_span
                .attribute("http.request.resend_count")
                .is_none()
        );
    });
}

#[test]
fn status_rules_across_the_chain() {
    support::run(|exporter| async move {
        let b = support::serve(service_b()).await;
        let a = support::serve(service_a(b)).await;
        let client = support::reqwest_client();

        // B fails with 500, A answers 502.
        let root = tracing::info_span!("broken order");
        let status = client
            .get(format!("{a}/orders/broken"))
            .send()
            .instrument(root.clone())
            .await
            .expect("send")
            .status();
        assert_eq!(status, 502);
        let trace = root.span_context().unwrap().trace_id();
        drop(root);
        let spans = support::wait_for_spans(&exporter, 5).await;
        let server_b = one(&spans, trace, "GET /stock/{sku}");
        assert!(server_b.status.is_error());
        assert_eq!(str_attr(server_b, "error.type"), "500");
        assert_eq!(int_attr(server_b, "http.response.status_code"), 500);
        let server_a = one(&spans, trace, "GET /orders/{id}");
        assert!(server_a.status.is_error());
        assert_eq!(str_attr(server_a, "error.type"), "502");
        let clients: Vec<_> = spans
            .iter()
            .filter(|s| s.span_context.trace_id() == trace && s.kind == SpanKind::Client)
            .collect();
        assert_eq!(clients.len(), 2);
        for client_span in &clients {
            assert!(client_span.status.is_error(), "5xx is a client error");
        }
        exporter.clear();

        // An unknown path: 404 from A's fallback; a client error, not a server one.
        let root = tracing::info_span!("lost");
        let status = client
            .get(format!("{a}/nowhere/7"))
            .send()
            .instrument(root.clone())
            .await
            .expect("send")
            .status();
        assert_eq!(status, 404);
        let trace = root.span_context().unwrap().trace_id();
        drop(root);
        let spans = support::wait_for_spans(&exporter, 3).await;
        let server = spans
            .iter()
            .find(|s| s.span_context.trace_id() == trace && s.kind == SpanKind::Server)
            .expect("server span");
        assert_eq!(
            server.status,
            Status::Unset,
            "4xx leaves a server span unset"
        );
        assert!(server.attribute("http.route").is_none());
        assert_eq!(server.name, "GET", "no route: never the raw path");
        let client_span = spans
            .iter()
            .find(|s| s.span_context.trace_id() == trace && s.kind == SpanKind::Client)
            .expect("client span");
        assert_eq!(client_span.name, "GET");
        assert!(client_span.status.is_error());
        assert_eq!(str_attr(client_span, "error.type"), "404");
    });
}

#[test]
fn retries_are_one_span_per_attempt() {
    support::run(|exporter| async move {
        let calls = Arc::new(AtomicU32::new(0));
        let counter = calls.clone();
        let app = Router::new()
            .route(
                "/flaky",
                get(move || {
                    let n = counter.fetch_add(1, Ordering::SeqCst);
                    async move {
                        if n < 2 {
                            StatusCode::SERVICE_UNAVAILABLE
                        } else {
                            StatusCode::OK
                        }
                    }
                }),
            )
            .layer(TraceLayer::server());
        let url = support::serve(app).await;
        let policy = ExponentialBackoff::builder()
            .retry_bounds(Duration::from_millis(1), Duration::from_millis(5))
            .build_with_max_retries(3);
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(RetryTransientMiddleware::new_with_policy(policy))
            .with(TracingMiddleware::default())
            .build();

        let root = tracing::info_span!("pay");
        let status = client
            .get(format!("{url}/flaky"))
            .send()
            .instrument(root.clone())
            .await
            .expect("send")
            .status();
        assert_eq!(status, 200);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let trace = root.span_context().unwrap().trace_id();
        let root_id = root.span_context().unwrap().span_id();
        drop(root);

        let spans = support::wait_for_spans(&exporter, 7).await;
        let mut attempts: Vec<_> = spans
            .iter()
            .filter(|s| s.span_context.trace_id() == trace && s.kind == SpanKind::Client)
            .collect();
        attempts.sort_by_key(|s| s.start_time);
        assert_eq!(attempts.len(), 3, "{}", exporter.tree());
        let resends: Vec<_> = attempts
            .iter()
            .map(|s| s.attribute("http.request.resend_count").cloned())
            .collect();
        assert_eq!(
            resends,
            vec![None, Some(Value::I64(1)), Some(Value::I64(2))]
        );
        for attempt in &attempts {
            assert_eq!(attempt.parent_span_id, root_id, "attempts are siblings");
        }
        assert!(attempts[0].status.is_error() && attempts[1].status.is_error());
        assert_eq!(attempts[2].status, Status::Unset);
        // Every attempt reached the server as its own child.
        for attempt in &attempts {
            let children = exporter.children_of(attempt);
            assert_eq!(children.len(), 1);
            assert_eq!(children[0].name, "GET /flaky");
        }
    });
}

#[test]
fn propagation_can_be_disabled_per_request() {
    support::run(|exporter| async move {
        let app = Router::new()
            .route(
                "/headers",
                get(|headers: http::HeaderMap| async move {
                    headers.contains_key("traceparent").to_string()
                }),
            )
            .layer(TraceLayer::server());
        let url = support::serve(app).await;
        let client = support::reqwest_client();
        let root = tracing::info_span!("third party");
        let sent = async {
            let with = client
                .get(format!("{url}/headers"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let without = client
                .get(format!("{url}/headers"))
                .with_extension(tracewire_reqwest::DisablePropagation)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            (with, without)
        }
        .instrument(root.clone())
        .await;
        assert_eq!(sent, ("true".to_owned(), "false".to_owned()));
        let trace = root.span_context().unwrap().trace_id();
        drop(root);
        let spans = support::wait_for_spans(&exporter, 5).await;
        let servers: Vec<_> = spans
            .iter()
            .filter(|s| s.kind == SpanKind::Server)
            .collect();
        assert_eq!(servers.len(), 2);
        let continued = servers
            .iter()
            .filter(|s| s.span_context.trace_id() == trace)
            .count();
        assert_eq!(continued, 1, "only the propagated request joined the trace");
    });
}
