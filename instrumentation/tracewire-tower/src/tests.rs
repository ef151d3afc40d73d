//! Unit tests of both layers over `tower::service_fn`.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use tower::{ServiceBuilder, ServiceExt as _};
use tracewire::sampling::{AlwaysOff, AlwaysOn, ParentBased};
use tracewire::testing::InMemoryExporter;
use tracewire::{SpanKind, Status, TracewireLayer, Value};
use tracing::Instrument as _;
use tracing_subscriber::prelude::*;

use crate::{DisablePropagation, HttpRoute, ResendCount, TraceLayer, TrustBoundary};

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn traced() -> (InMemoryExporter, tracing::subscriber::DefaultGuard) {
    traced_with(ParentBased::new(AlwaysOn))
}

fn traced_with(
    sampler: impl tracewire::sampling::Sampler,
) -> (InMemoryExporter, tracing::subscriber::DefaultGuard) {
    let exporter = InMemoryExporter::new();
    let layer = TracewireLayer::builder()
        .sampler(sampler)
        .processor(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(layer);
    (exporter, tracing::subscriber::set_default(subscriber))
}

async fn ok(_: Request<Full<Bytes>>) -> Result<Response<Full<Bytes>>, Infallible> {
    tracing::info!("handling");
    Ok(Response::new(Full::from("hello")))
}

fn request(uri: &str) -> http::request::Builder {
    Request::get(uri)
        .header("host", "shop.example:8080")
        .header("user-agent", "curl/8.5")
}

fn str_attr<'a>(span: &'a tracewire::SpanData, key: &str) -> &'a str {
    span.attribute(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string attribute {key}: {:?}", span.attributes))
}

#[tokio::test]
async fn server_span_continues_the_callers_trace() {
    let (exporter, _guard) = traced();
    let mut req = request("/users/7?expand=orders&sig=secret&X-Amz-Credential=key")
        .header("traceparent", PARENT)
        .body(Full::default())
        .unwrap();
    req.extensions_mut().insert(HttpRoute::new("/users/{id}"));
    req.extensions_mut()
        .insert(SocketAddr::from(([10, 1, 2, 3], 51000)));
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::server())
        .service_fn(ok);
    let response = svc.oneshot(req).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "hello");

    let span = exporter.span("GET /users/{id}");
    assert_eq!(span.kind, SpanKind::Server);
    assert_eq!(
        span.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(span.parent_is_remote);
    assert_eq!(str_attr(&span, "http.request.method"), "GET");
    assert_eq!(str_attr(&span, "http.route"), "/users/{id}");
    assert_eq!(str_attr(&span, "url.path"), "/users/7");
    assert_eq!(
        str_attr(&span, "url.query"),
        "expand=orders&sig=REDACTED&X-Amz-Credential=REDACTED",
        "signatures and credentials in the query are redacted as in a client's url.full"
    );
    assert_eq!(str_attr(&span, "url.scheme"), "http");
    assert_eq!(str_attr(&span, "server.address"), "shop.example");
    assert_eq!(
        span.attribute("server.port"),
        Some(&Value::I64(8080)),
        "integers stay integers"
    );
    assert_eq!(str_attr(&span, "client.address"), "10.1.2.3");
    assert_eq!(str_attr(&span, "network.peer.address"), "10.1.2.3");
    assert_eq!(
        span.attribute("network.peer.port"),
        Some(&Value::I64(51000))
    );
    assert_eq!(str_attr(&span, "user_agent.original"), "curl/8.5");
    assert_eq!(str_attr(&span, "network.protocol.version"), "1.1");
    assert_eq!(
        span.attribute("http.response.status_code"),
        Some(&Value::I64(200))
    );
    assert_eq!(span.status, Status::Unset);
    assert!(span.attribute("error.type").is_none());
    // The handler's event happened inside the server span.
    assert_eq!(span.events.len(), 1);
    assert_eq!(span.events[0].name, "handling");
}

#[tokio::test]
async fn without_route_the_name_is_the_method_and_unknown_methods_are_other() {
    let (exporter, _guard) = traced();
    let req = Request::builder()
        .method("PURGE")
        .uri("/cache")
        .body(Full::default())
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::server())
        .service_fn(ok);
    svc.oneshot(req).await.unwrap();
    let span = exporter.span("HTTP");
    assert_eq!(str_attr(&span, "http.request.method"), "_OTHER");
    assert_eq!(str_attr(&span, "http.request.method_original"), "PURGE");
    assert!(span.attribute("http.route").is_none());
    assert!(span.attribute("url.query").is_none());
    assert!(span.is_local_root(), "no traceparent: a new trace");
    assert!(!span.parent_span_id.is_valid());
}

#[tokio::test]
async fn status_rules_for_server_spans() {
    let (exporter, _guard) = traced();
    for code in [404u16, 503] {
        let svc = ServiceBuilder::new()
            .layer(TraceLayer::server())
            .service_fn(move |_: Request<Full<Bytes>>| async move {
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(code)
                        .body(Full::<Bytes>::default())
                        .unwrap(),
                )
            });
        let uri = format!("/status/{code}");
        svc.oneshot(request(&uri).body(Full::default()).unwrap())
            .await
            .unwrap();
    }
    let spans = exporter.spans_named("GET");
    assert_eq!(spans.len(), 2);
    let not_found = &spans[0];
    assert_eq!(
        not_found.attribute("http.response.status_code"),
        Some(&Value::I64(404))
    );
    assert_eq!(not_found.status, Status::Unset, "4xx is not a server error");
    assert!(not_found.attribute("error.type").is_none());
    let unavailable = &spans[1];
    assert!(unavailable.status.is_error());
    assert_eq!(str_attr(unavailable, "error.type"), "503");
}

#[derive(Debug)]
struct Boom;
impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("boom")
    }
}

#[tokio::test]
async fn inner_service_errors_set_error_status() {
    let (exporter, _guard) = traced();
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::server())
        .service_fn(|_: Request<Full<Bytes>>| async { Err::<Response<Full<Bytes>>, _>(Boom) });
    let err = svc
        .oneshot(request("/").body(Full::default()).unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "boom");
    let span = exporter.span("GET");
    assert_eq!(
        span.status,
        Status::Error {
            message: "boom".into()
        }
    );
    assert_eq!(
        str_attr(&span, "error.type"),
        "tracewire_tower::tests::Boom"
    );
    assert!(span.attribute("http.response.status_code").is_none());
}

/// A body fed by a channel: a streaming response.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(http_body::Frame::data(b))))
    }
}

/// A traced server whose one response streams what `rx` receives.
fn streaming_server(
    rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl tower::Service<
    Request<Full<Bytes>>,
    Response = Response<crate::ResponseBody<ChannelBody>>,
    Error = Infallible,
> {
    let body = std::sync::Mutex::new(Some(rx));
    ServiceBuilder::new()
        .layer(TraceLayer::server())
        .service_fn(move |_: Request<Full<Bytes>>| {
            let rx = body.lock().unwrap().take().expect("one request");
            async move { Ok::<_, Infallible>(Response::new(ChannelBody(rx))) }
        })
}

#[tokio::test]
async fn the_span_ends_when_a_streaming_body_ends() {
    let (exporter, _guard) = traced();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    let response = streaming_server(rx)
        .oneshot(request("/events").body(Full::default()).unwrap())
        .await
        .unwrap();
    let mut body = response.into_body();
    tx.send(Bytes::from("a")).await.unwrap();
    let first = body.frame().await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "a");
    assert!(exporter.is_empty(), "the span stays open while streaming");
    tx.send(Bytes::from("b")).await.unwrap();
    body.frame().await.unwrap().unwrap();
    assert!(exporter.is_empty());
    drop(tx);
    assert!(body.frame().await.is_none());
    assert_eq!(
        exporter.len(),
        1,
        "the span ends with the body, not on drop"
    );
    let span = exporter.span("GET");
    assert!(span.duration() > std::time::Duration::ZERO);
    drop(body);
    assert_eq!(exporter.len(), 1);
}

#[tokio::test]
async fn a_dropped_body_ends_the_span() {
    let (exporter, _guard) = traced();
    let (_tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let response = streaming_server(rx)
        .oneshot(request("/").body(Full::default()).unwrap())
        .await
        .unwrap();
    assert!(exporter.is_empty());
    drop(response);
    assert_eq!(exporter.len(), 1);
}

#[tokio::test]
async fn filtered_requests_get_no_span() {
    let (exporter, _guard) = traced();
    let layer =
        TraceLayer::server().filter(|req: &Request<Full<Bytes>>| req.uri().path() != "/health");
    let svc = ServiceBuilder::new().layer(layer).service_fn(ok);
    let response = svc
        .clone()
        .oneshot(
            request("/health")
                .header("traceparent", PARENT)
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "hello"
    );
    assert!(exporter.is_empty(), "{:?}", exporter.spans());
    svc.oneshot(request("/orders").body(Full::default()).unwrap())
        .await
        .unwrap();
    assert_eq!(exporter.tree(), "GET [server]\n");
}

#[tokio::test]
async fn panics_are_recorded_and_resumed() {
    let (exporter, _guard) = traced();
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::server())
        .service_fn(|_: Request<Full<Bytes>>| async {
            if true {
                panic!("handler exploded");
            }
            Ok::<Response<Full<Bytes>>, Infallible>(Response::new(Full::default()))
        });
    let fut = svc.oneshot(request("/").body(Full::default()).unwrap());
    let caught = futures_catch(fut).await;
    let payload = caught.expect_err("the panic goes on unwinding");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"handler exploded"));
    let span = exporter.span("GET");
    assert_eq!(
        span.status,
        Status::Error {
            message: "handler exploded".into()
        }
    );
    assert_eq!(str_attr(&span, "error.type"), "panic");
    let exception = span.events.iter().find(|e| e.name == "exception").unwrap();
    assert!(
        exception.attributes.iter().any(
            |kv| kv.key == "exception.message" && kv.value.as_str() == Some("handler exploded")
        )
    );
}

/// Polls `fut` inside `catch_unwind`, as tower-http's `CatchPanic` does.
async fn futures_catch<F: Future>(fut: F) -> Result<F::Output, Box<dyn std::any::Any + Send>> {
    let mut fut = std::pin::pin!(fut);
    std::future::poll_fn(move |cx| {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    })
    .await
}

#[tokio::test]
async fn trust_boundary_restart_links_the_caller() {
    let (exporter, _guard) = traced();
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::server().trust_boundary(TrustBoundary::Restart))
        .service_fn(ok);
    svc.oneshot(
        request("/")
            .header("traceparent", PARENT)
            .header("baggage", "user=mallory")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    let span = exporter.span("GET");
    assert_ne!(
        span.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert!(!span.parent_span_id.is_valid());
    assert_eq!(span.links.len(), 1);
    assert_eq!(
        span.links[0].span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(
        span.links[0].span_context.span_id().to_string(),
        "00f067aa0ba902b7"
    );
}

#[tokio::test]
async fn trust_boundary_can_ignore_the_sampled_flag() {
    // The caller says "sampled"; our root sampler says no.
    let (exporter, _guard) = traced_with(ParentBased::new(AlwaysOff));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen_in = seen.clone();
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::server().trust_boundary(TrustBoundary::IgnoreSampledFlag))
        .service_fn(move |_: Request<Full<Bytes>>| {
            *seen_in.lock().unwrap() = tracewire::current_span_context();
            async { Ok::<_, Infallible>(Response::new(Full::<Bytes>::default())) }
        });
    svc.oneshot(
        request("/")
            .header("traceparent", PARENT)
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert!(
        exporter.is_empty(),
        "not recorded: the caller's flag was ignored"
    );
    let cx = seen
        .lock()
        .unwrap()
        .clone()
        .expect("the span had a context");
    assert_eq!(
        cx.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert!(!cx.is_sampled());

    // Trusting the caller, the same request is recorded.
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::server())
        .service_fn(ok);
    svc.oneshot(
        request("/")
            .header("traceparent", PARENT)
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(exporter.len(), 1);
}

#[tokio::test]
async fn traceresponse_and_server_timing_headers() {
    let (exporter, _guard) = traced();
    let svc = ServiceBuilder::new()
        .layer(
            TraceLayer::server()
                .traceresponse_header(true)
                .server_timing_header(true),
        )
        .service_fn(ok);
    let response = svc
        .oneshot(
            request("/")
                .header("traceparent", PARENT)
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    let traceresponse = response.headers()["traceresponse"]
        .to_str()
        .unwrap()
        .to_owned();
    let timing = response.headers()["server-timing"]
        .to_str()
        .unwrap()
        .to_owned();
    drop(response);
    let span = exporter.span("GET");
    // Flags as received: sampled, and no random bit the caller did not set.
    let expected = format!(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
        span.span_context.span_id()
    );
    assert_eq!(traceresponse, expected);
    assert_eq!(timing, format!("traceparent;desc=\"{expected}\""));
}

#[tokio::test]
async fn allow_listed_headers_are_recorded() {
    let (exporter, _guard) = traced();
    let svc = ServiceBuilder::new()
        .layer(
            TraceLayer::server()
                .request_headers([http::HeaderName::from_static("x-request-id")])
                .response_headers([http::header::CONTENT_TYPE]),
        )
        .service_fn(|_: Request<Full<Bytes>>| async {
            Ok::<_, Infallible>(
                Response::builder()
                    .header("content-type", "text/plain")
                    .body(Full::<Bytes>::default())
                    .unwrap(),
            )
        });
    svc.oneshot(
        request("/")
            .header("x-request-id", "r-1")
            .header("x-request-id", "r-2")
            .header("authorization", "Bearer secret")
            .body(Full::default())
            .unwrap(),
    )
    .await
    .unwrap();
    let span = exporter.span("GET");
    assert_eq!(
        span.attribute("http.request.header.x-request-id"),
        Some(&Value::from(vec!["r-1", "r-2"])),
        "one array element per header line"
    );
    assert_eq!(
        span.attribute("http.response.header.content-type"),
        Some(&Value::from(vec!["text/plain"]))
    );
    assert!(
        span.attributes
            .iter()
            .all(|kv| !kv.key.contains("authorization")),
        "only allow-listed headers"
    );
}

#[tokio::test]
async fn hooks_run_inside_the_span() {
    use tracewire::SpanExt as _;
    let (exporter, _guard) = traced();
    let layer = TraceLayer::server()
        .span_name(|req: &Request<Full<Bytes>>, _: Option<&str>| format!("custom {}", req.method()))
        .on_request(|_: &Request<Full<Bytes>>, span: &tracing::Span| {
            span.set_attribute("app.stage", "request");
            tracing::info!("on request");
        })
        .on_response(
            |res: &Response<Full<Bytes>>, _: std::time::Duration, span: &tracing::Span| {
                span.set_attribute("app.bytes", res.headers().len() as i64);
            },
        );
    let svc = ServiceBuilder::new().layer(layer).service_fn(ok);
    svc.oneshot(request("/").body(Full::default()).unwrap())
        .await
        .unwrap();
    let span = exporter.span("custom GET");
    assert_eq!(str_attr(&span, "app.stage"), "request");
    assert_eq!(span.attribute("app.bytes"), Some(&Value::I64(0)));
    assert_eq!(span.events[0].name, "on request");
}

/// A helper that returns a layer with custom hooks, as an application
/// would write it.
fn boxed_server_layer() -> crate::BoxedServerLayer<Full<Bytes>> {
    TraceLayer::server()
        .filter(|req: &Request<Full<Bytes>>| req.uri().path() != "/health")
        .span_name(|req: &Request<Full<Bytes>>, _: Option<&str>| format!("boxed {}", req.method()))
        .on_request(crate::LogOnRequest::new().level(tracing::Level::INFO))
        .on_response(
            |res: &Response<Full<Bytes>>, _: std::time::Duration, span: &tracing::Span| {
                span.record(
                    "http.response.status_code",
                    i64::from(res.status().as_u16()) + 1,
                );
            },
        )
        .boxed()
}

#[tokio::test]
async fn boxed_hooks_do_what_the_hooks_do() {
    let (exporter, _guard) = traced();
    let svc = ServiceBuilder::new()
        .layer(boxed_server_layer())
        .service_fn(ok);
    for path in ["/health", "/orders"] {
        svc.clone()
            .oneshot(request(path).body(Full::default()).unwrap())
            .await
            .unwrap();
    }
    assert_eq!(exporter.tree(), "boxed GET [server]\n");
    let span = exporter.span("boxed GET");
    assert_eq!(span.events[0].name, "started processing request");
    assert_eq!(
        span.attribute("http.response.status_code"),
        Some(&Value::I64(201)),
        "the response hook ran after the status was recorded"
    );

    let client: crate::BoxedClientLayer<Full<Bytes>> = TraceLayer::client()
        .on_request(|_: &Request<Full<Bytes>>, span: &tracing::Span| {
            span.record("http.request.resend_count", 3);
        })
        .boxed();
    ServiceBuilder::new()
        .layer(client)
        .service_fn(ok)
        .oneshot(
            request("http://inventory/items")
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    let span = exporter.span("GET");
    assert_eq!(
        span.attribute("http.request.resend_count"),
        Some(&Value::I64(3))
    );
}

// ---- client ----

#[tokio::test]
async fn client_span_is_injected_and_named_after_the_method() {
    let (exporter, _guard) = traced();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen_in = seen.clone();
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::client())
        .service_fn(move |req: Request<Full<Bytes>>| {
            *seen_in.lock().unwrap() = req
                .headers()
                .get("traceparent")
                .map(|v| v.to_str().unwrap().to_owned());
            async {
                Ok::<_, Infallible>(
                    Response::builder()
                        .status(StatusCode::NOT_FOUND)
                        .body(Full::<Bytes>::default())
                        .unwrap(),
                )
            }
        });
    let parent = tracing::info_span!("checkout");
    {
        let _entered = parent.enter();
        let req = Request::post("https://user:pw@api.example/v1/pay?sig=abc&id=3")
            .body(Full::default())
            .unwrap();
        let response = svc.oneshot(req).await.unwrap();
        assert_eq!(response.status(), 404);
    }
    drop(parent);
    let span = exporter.span("POST");
    let parent = exporter.span("checkout");
    assert_eq!(span.kind, SpanKind::Client);
    assert_eq!(span.parent_span_id, parent.span_context.span_id());
    assert_eq!(
        seen.lock().unwrap().as_deref(),
        Some(
            format!(
                "00-{}-{}-03",
                span.span_context.trace_id(),
                span.span_context.span_id()
            )
            .as_str()
        ),
    );
    assert_eq!(
        str_attr(&span, "url.full"),
        "https://REDACTED:REDACTED@api.example/v1/pay?sig=REDACTED&id=3"
    );
    assert_eq!(str_attr(&span, "server.address"), "api.example");
    assert_eq!(span.attribute("server.port"), Some(&Value::I64(443)));
    assert_eq!(
        span.attribute("http.response.status_code"),
        Some(&Value::I64(404))
    );
    assert!(span.status.is_error(), "4xx is an error for clients");
    assert_eq!(str_attr(&span, "error.type"), "404");
    assert!(span.attribute("http.request.resend_count").is_none());
}

#[tokio::test]
async fn client_opt_out_resend_count_and_errors() {
    let (exporter, _guard) = traced();
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::client())
        .service_fn(|req: Request<Full<Bytes>>| async move {
            assert!(
                req.headers().get("traceparent").is_none(),
                "propagation disabled"
            );
            Err::<Response<Full<Bytes>>, _>(Boom)
        });
    let mut req = Request::get("http://third-party.example/")
        .body(Full::default())
        .unwrap();
    req.extensions_mut().insert(DisablePropagation);
    req.extensions_mut().insert(ResendCount(2));
    assert!(svc.oneshot(req).await.is_err());
    let span = exporter.span("GET");
    assert_eq!(
        span.attribute("http.request.resend_count"),
        Some(&Value::I64(2))
    );
    assert_eq!(
        span.status,
        Status::Error {
            message: "boom".into()
        }
    );
    assert_eq!(
        str_attr(&span, "error.type"),
        "tracewire_tower::tests::Boom"
    );
}

#[tokio::test]
async fn a_cancelled_client_request_is_not_an_error() {
    let (exporter, _guard) = traced();
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::client())
        .service_fn(|_: Request<Full<Bytes>>| async {
            std::future::pending::<()>().await;
            Ok::<Response<Full<Bytes>>, Infallible>(Response::new(Full::default()))
        });
    let req = Request::get("http://slow.example/")
        .body(Full::default())
        .unwrap();
    let timed_out =
        tokio::time::timeout(std::time::Duration::from_millis(10), svc.oneshot(req)).await;
    assert!(timed_out.is_err());
    let span = exporter.span("GET");
    assert_eq!(span.status, Status::Unset);
    assert!(span.attribute("error.type").is_none());
    assert!(span.attribute("http.response.status_code").is_none());
}

#[test]
fn no_subscriber_means_no_work_and_no_failure() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::server().traceresponse_header(true))
        .service_fn(ok);
    let response = rt
        .block_on(
            svc.oneshot(
                request("/")
                    .header("traceparent", PARENT)
                    .body(Full::default())
                    .unwrap(),
            ),
        )
        .unwrap();
    assert!(response.headers().get("traceresponse").is_none());
}

#[tokio::test]
async fn legacy_attribute_names_on_request() {
    let (exporter, _guard) = traced();
    let server = ServiceBuilder::new()
        .layer(TraceLayer::server().legacy_http_attributes(true))
        .service_fn(ok);
    server
        .oneshot(request("/a?b=1").body(Full::default()).unwrap())
        .await
        .unwrap();
    let client = ServiceBuilder::new()
        .layer(TraceLayer::client().legacy_http_attributes(true))
        .service_fn(ok);
    client
        .oneshot(
            Request::get("http://u:p@api.example/x")
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    let spans = exporter.spans_named("GET");
    let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
    assert_eq!(str_attr(server, "http.method"), "GET");
    assert_eq!(str_attr(server, "http.target"), "/a?b=1");
    assert_eq!(str_attr(server, "net.host.name"), "shop.example");
    assert_eq!(server.attribute("http.status_code"), Some(&Value::I64(200)));
    let client = spans.iter().find(|s| s.kind == SpanKind::Client).unwrap();
    assert_eq!(
        str_attr(client, "http.url"),
        "http://REDACTED:REDACTED@api.example/x"
    );
    assert_eq!(str_attr(client, "net.peer.name"), "api.example");
    assert_eq!(client.attribute("http.status_code"), Some(&Value::I64(200)));

    // Off (the default without OTEL_SEMCONV_STABILITY_OPT_IN=http/dup).
    exporter.clear();
    let server = ServiceBuilder::new()
        .layer(TraceLayer::server().legacy_http_attributes(false))
        .service_fn(ok);
    server
        .oneshot(request("/").body(Full::default()).unwrap())
        .await
        .unwrap();
    let span = exporter.span("GET");
    assert!(span.attribute("http.method").is_none());
    assert!(span.attribute("http.status_code").is_none());
}

#[test]
fn legacy_opt_in_parsing() {
    use tracewire::http::legacy_opt_in;
    assert!(legacy_opt_in(Some("http/dup")));
    assert!(legacy_opt_in(Some("database, HTTP/DUP")));
    assert!(!legacy_opt_in(Some("http")));
    assert!(!legacy_opt_in(Some("")));
    assert!(!legacy_opt_in(None));
}

#[tokio::test]
async fn a_filtered_out_client_span_still_propagates_the_current_trace() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    let exporter = InMemoryExporter::new();
    let subscriber = tracing_subscriber::registry()
        .with(TracewireLayer::new(exporter.clone()))
        .with(
            Targets::new()
                .with_default(LevelFilter::INFO)
                .with_target("tracewire_tower", LevelFilter::OFF),
        );
    let _guard = tracing::subscriber::set_default(subscriber);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen_in = seen.clone();
    let svc = ServiceBuilder::new()
        .layer(TraceLayer::client())
        .service_fn(move |req: Request<Full<Bytes>>| {
            *seen_in.lock().unwrap() = req
                .headers()
                .get("traceparent")
                .map(|v| v.to_str().unwrap().to_owned());
            async { Ok::<_, Infallible>(Response::new(Full::<Bytes>::default())) }
        });
    let parent = tracing::info_span!(target: "app", "job");
    let cx = {
        use tracewire::SpanExt as _;
        parent.span_context().unwrap()
    };
    svc.oneshot(
        Request::get("http://x.example/")
            .body(Full::default())
            .unwrap(),
    )
    .instrument(parent)
    .await
    .unwrap();
    assert_eq!(
        seen.lock().unwrap().as_deref(),
        Some(format!("00-{}-{}-03", cx.trace_id(), cx.span_id()).as_str())
    );
    assert_eq!(exporter.tree(), "job\n", "no client span was created");
}

#[tokio::test]
async fn ignoring_the_sampled_flag_ignores_a_bare_b3_deny_too() {
    use tracewire::propagation::B3Propagator;
    let (exporter, _guard) = traced();
    for trust in [TrustBoundary::Trust, TrustBoundary::IgnoreSampledFlag] {
        let svc = ServiceBuilder::new()
            .layer(
                TraceLayer::server()
                    .propagator(B3Propagator::new())
                    .trust_boundary(trust),
            )
            .service_fn(ok);
        svc.oneshot(
            request("/")
                .header("b3", "0")
                .body(Full::default())
                .unwrap(),
        )
        .await
        .unwrap();
    }
    // Trusted, `b3: 0` suppresses recording; ignored, the sampler records it.
    assert_eq!(exporter.len(), 1);
}

#[tokio::test]
async fn forwarded_headers_only_when_trusted() {
    let (exporter, _guard) = traced();
    let peer = SocketAddr::from(([10, 0, 0, 9], 4000));
    for trusted in [false, true] {
        let svc = ServiceBuilder::new()
            .layer(TraceLayer::server().trust_forwarded_headers(trusted))
            .service_fn(ok);
        let mut req = request("/")
            .header("x-forwarded-for", "203.0.113.7, 10.0.0.9")
            .header("x-forwarded-proto", "https")
            .body(Full::default())
            .unwrap();
        req.extensions_mut().insert(peer);
        svc.oneshot(req).await.unwrap();
    }
    let spans = exporter.spans_named("GET");
    assert_eq!(str_attr(&spans[0], "client.address"), "10.0.0.9");
    assert_eq!(str_attr(&spans[0], "url.scheme"), "http");
    assert_eq!(str_attr(&spans[1], "client.address"), "203.0.113.7");
    assert_eq!(str_attr(&spans[1], "url.scheme"), "https");
    assert_eq!(spans[1].attribute("server.port"), Some(&Value::I64(8080)));
    // The socket peer stays the socket peer.
    assert_eq!(str_attr(&spans[1], "network.peer.address"), "10.0.0.9");
}
