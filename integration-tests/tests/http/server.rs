//! The server layer over real sockets: streaming bodies, the health-check
//! filter, panics, response headers, and many concurrent traces.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Path;
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use tower::ServiceExt as _;
use tracewire::{SpanExt as _, SpanKind, TraceId};
use tracewire_tower::TraceLayer;
use tracing::Instrument as _;

use crate::support::{self, int_attr, str_attr};

#[test]
fn a_streaming_body_ends_the_span_when_it_ends() {
    support::run(|exporter| async move {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(4);
        let rx = std::sync::Arc::new(std::sync::Mutex::new(Some(rx)));
        let app = Router::new()
            .route(
                "/events",
                get(move || {
                    let rx = rx.lock().unwrap().take().expect("one stream");
                    async move {
                        Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx))
                    }
                }),
            )
            .layer(TraceLayer::server());
        let url = support::serve(app).await;
        let mut response = reqwest::get(format!("{url}/events")).await.expect("sent");
        tx.send(Ok(Bytes::from("data: one\n\n"))).await.unwrap();
        assert_eq!(response.chunk().await.unwrap().unwrap(), "data: one\n\n");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(exporter.is_empty(), "the span is open while events stream");
        tx.send(Ok(Bytes::from("data: two\n\n"))).await.unwrap();
        assert_eq!(response.chunk().await.unwrap().unwrap(), "data: two\n\n");
        drop(tx);
        assert!(response.chunk().await.unwrap().is_none());
        let spans = support::wait_for_spans(&exporter, 1).await;
        let span = &spans[0];
        assert_eq!(span.name, "GET /events");
        assert!(
            span.duration() >= Duration::from_millis(50),
            "ended with the body, not with the headers: {:?}",
            span.duration()
        );
    });
}

#[test]
fn health_checks_are_filtered_out() {
    support::run(|exporter| async move {
        let app = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route("/orders", get(|| async { "[]" }))
            .layer(
                TraceLayer::server()
                    .filter(|req: &http::Request<Body>| req.uri().path() != "/health"),
            );
        let url = support::serve(app).await;
        for _ in 0..3 {
            let body = reqwest::get(format!("{url}/health"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert_eq!(body, "ok");
        }
        reqwest::get(format!("{url}/orders")).await.unwrap();
        let spans = support::wait_for_spans(&exporter, 1).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(exporter.len(), 1, "{}", exporter.tree());
        assert_eq!(spans[0].name, "GET /orders");
    });
}

#[test]
fn a_panicking_handler_is_recorded() {
    support::run(|exporter| async move {
        let app = Router::new()
            .route(
                "/explode",
                get(|| async {
                    if true {
                        panic!("the handler blew up");
                    }
                    "unreachable"
                }),
            )
            .layer(TraceLayer::server());
        let url = support::serve(app).await;
        // With nothing catching the panic, the connection is dropped.
        assert!(reqwest::get(format!("{url}/explode")).await.is_err());
        let spans = support::wait_for_spans(&exporter, 1).await;
        let span = &spans[0];
        assert_eq!(span.name, "GET /explode");
        assert!(span.status.is_error());
        assert_eq!(str_attr(span, "error.type"), "panic");
        assert!(span.events.iter().any(|e| e.name == "exception"));
    });
}

#[test]
fn traceresponse_tells_the_caller_its_trace() {
    support::run(|exporter| async move {
        let app = Router::new().route("/", get(|| async { "hi" })).layer(
            TraceLayer::server()
                .traceresponse_header(true)
                .server_timing_header(true),
        );
        let url = support::serve(app).await;
        let response = reqwest::get(&url).await.unwrap();
        let traceresponse = response.headers()["traceresponse"]
            .to_str()
            .unwrap()
            .to_owned();
        let timing = response.headers()["server-timing"]
            .to_str()
            .unwrap()
            .to_owned();
        response.text().await.unwrap();
        let spans = support::wait_for_spans(&exporter, 1).await;
        let cx = &spans[0].span_context;
        let expected = format!("00-{}-{}-03", cx.trace_id(), cx.span_id());
        assert_eq!(traceresponse, expected);
        assert_eq!(timing, format!("traceparent;desc=\"{expected}\""));
    });
}

#[test]
fn the_hyper_client_layer_talks_to_the_server_layer() {
    support::run(|exporter| async move {
        let app = Router::new()
            .route(
                "/items/{id}",
                get(|Path(id): Path<u32>| async move { format!("item {id}") }),
            )
            .layer(TraceLayer::server());
        let url = support::serve(app).await;
        let client = support::hyper_client();
        let root = tracing::info_span!("lookup");
        let body = async {
            let request = http::Request::get(format!("{url}/items/9"))
                .body(Full::<Bytes>::default())
                .unwrap();
            let response = client.clone().oneshot(request).await.expect("response");
            response.into_body().collect().await.unwrap().to_bytes()
        }
        .instrument(root.clone())
        .await;
        assert_eq!(body, "item 9");
        drop(root);
        let spans = support::wait_for_spans(&exporter, 3).await;
        assert_eq!(
            exporter.tree(),
            "lookup\n  GET [client]\n    GET /items/{id} [server]\n"
        );
        let client_span = spans.iter().find(|s| s.kind == SpanKind::Client).unwrap();
        assert_eq!(int_attr(client_span, "http.response.status_code"), 200);
        assert_eq!(str_attr(client_span, "network.protocol.version"), "1.1");

        // A transport error: nothing listens there any more.
        let dead = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        exporter.clear();
        let request = http::Request::get(format!("http://{dead}/"))
            .body(Full::<Bytes>::default())
            .unwrap();
        assert!(client.clone().oneshot(request).await.is_err());
        let spans = support::wait_for_spans(&exporter, 1).await;
        assert!(spans[0].status.is_error());
        assert_eq!(
            str_attr(&spans[0], "error.type"),
            "hyper_util::client::legacy::client::Error"
        );
    });
}

#[test]
fn parallel_requests_never_mix_traces() {
    const N: usize = 200;
    support::run(|exporter| async move {
        let app = Router::new()
            .route(
                "/work/{n}",
                get(|Path(n): Path<usize>| async move {
                    // Yield so that requests interleave on the workers.
                    tokio::task::yield_now().await;
                    let inner = tracing::info_span!("work", n);
                    async {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    .instrument(inner)
                    .await;
                    let cx = tracewire::current_span_context().expect("in a span");
                    format!("{} {n}", cx.trace_id())
                }),
            )
            .layer(TraceLayer::server());
        let url = support::serve(app).await;
        let client = support::reqwest_client();
        let mut tasks = Vec::new();
        for n in 0..N {
            let client = client.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                let root = tracing::info_span!("caller", n);
                let trace = root.span_context().unwrap().trace_id();
                let body = client
                    .get(format!("{url}/work/{n}"))
                    .send()
                    .instrument(root.clone())
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                (n, trace, body)
            }));
        }
        let mut traces = Vec::new();
        for task in tasks {
            let (n, trace, body) = task.await.unwrap();
            assert_eq!(
                body,
                format!("{trace} {n}"),
                "the handler saw its caller's trace"
            );
            traces.push((n, trace));
        }
        let spans = support::wait_for_spans(&exporter, 4 * N).await;
        let mut distinct: Vec<TraceId> = traces.iter().map(|(_, t)| *t).collect();
        distinct.sort_by_key(|t| t.to_u128());
        distinct.dedup();
        assert_eq!(distinct.len(), N);
        for (n, trace) in traces {
            let in_trace: Vec<_> = spans
                .iter()
                .filter(|s| s.span_context.trace_id() == trace)
                .collect();
            assert_eq!(in_trace.len(), 4, "caller, client, server, work for {n}");
            let server = in_trace
                .iter()
                .find(|s| s.kind == SpanKind::Server)
                .unwrap();
            assert_eq!(str_attr(server, "url.path"), format!("/work/{n}"));
            let work = in_trace.iter().find(|s| s.name == "work").unwrap();
            assert_eq!(work.attribute("n").and_then(|v| v.as_i64()), Some(n as i64));
            assert_eq!(work.parent_span_id, server.span_context.span_id());
        }
    });
}
