//! The gRPC presets with a real tonic server and client over loopback TCP:
//! a small service written by hand (no generated code) with prost
//! messages, `tonic::server::Grpc` and a router by path.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::stream::{self, BoxStream, StreamExt as _};
use http::uri::PathAndQuery;
use tonic::server::{NamedService, ServerStreamingService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tower::{Service, ServiceBuilder};
use tracewire::testing::InMemoryExporter;
use tracewire::{SpanData, SpanKind, Status as SpanStatus, TracewireLayer, Value};
use tracewire_tower::{Grpc as GrpcProtocol, Trace, TraceLayer};
use tracing_subscriber::prelude::*;

/// The request message.
#[derive(Clone, PartialEq, prost::Message)]
struct Greeting {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(uint32, tag = "2")]
    count: u32,
}

/// The response message.
#[derive(Clone, PartialEq, prost::Message)]
struct Reply {
    #[prost(string, tag = "1")]
    message: String,
}

/// `test.Greeter`: `Hello` answers, `Missing` is NOT_FOUND, `Broken` is
/// INTERNAL, `Count` streams `count` replies (forever when 0).
#[derive(Clone, Debug)]
struct Greeter;

impl NamedService for Greeter {
    const NAME: &'static str = "test.Greeter";
}

/// A unary method answering with `outcome`.
struct Unary(Result<&'static str, Code>);

impl UnaryService<Greeting> for Unary {
    type Response = Reply;
    type Future = Ready<Result<tonic::Response<Reply>, Status>>;

    fn call(&mut self, request: tonic::Request<Greeting>) -> Self::Future {
        tracing::info!("handling");
        ready(match self.0 {
            Ok(greeting) => Ok(tonic::Response::new(Reply {
                message: format!("{greeting} {}", request.into_inner().name),
            })),
            Err(code) => Err(Status::new(code, "it went wrong")),
        })
    }
}

/// The server-streaming method: an event per message, inside the span.
struct Count;

impl ServerStreamingService<Greeting> for Count {
    type Response = Reply;
    type ResponseStream = BoxStream<'static, Result<Reply, Status>>;
    type Future = Ready<Result<tonic::Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: tonic::Request<Greeting>) -> Self::Future {
        let count = request.into_inner().count;
        let replies = stream::iter(0u32..)
            .take_while(move |&i| ready(count == 0 || i < count))
            .then(|i| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                tracing::info!(i, "streaming");
                Ok(Reply {
                    message: i.to_string(),
                })
            })
            .boxed();
        ready(Ok(tonic::Response::new(replies)))
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<http::Request<tonic::body::Body>> for Greeter {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Reply, Greeting>::default());
            let response = match request.uri().path() {
                "/test.Greeter/Hello" => grpc.unary(Unary(Ok("hello")), request).await,
                "/test.Greeter/Missing" => grpc.unary(Unary(Err(Code::NotFound)), request).await,
                "/test.Greeter/Broken" => grpc.unary(Unary(Err(Code::Internal)), request).await,
                "/test.Greeter/Count" => grpc.server_streaming(Count, request).await,
                _ => Status::unimplemented("no such method").into_http(),
            };
            Ok(response)
        })
    }
}

/// A traced client of a traced server on a loopback port.
type Client = tonic::client::Grpc<Trace<Channel, tracewire_tower::Client<(), (), GrpcProtocol>>>;

/// Starts the traced server and returns a traced client of it.
async fn serve() -> Client {
    client_of(&start_server())
}

/// Starts the traced server; returns its origin (`http://127.0.0.1:port`).
fn start_server() -> String {
    let incoming = TcpIncoming::bind(([127, 0, 0, 1], 0).into()).unwrap();
    let addr = incoming.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .layer(TraceLayer::grpc_server().legacy_rpc_attributes(true))
            .add_service(Greeter)
            .serve_with_incoming(incoming),
    );
    format!("http://{addr}")
}

/// A traced client of `origin`. `with_origin` puts the server's address
/// into each request's URI, where the client layer (outside the channel)
/// reads `server.address` and `server.port`.
fn client_of(origin: &str) -> Client {
    let channel = Endpoint::from_shared(origin.to_owned())
        .unwrap()
        .connect_lazy();
    let traced = ServiceBuilder::new()
        .layer(TraceLayer::grpc_client().legacy_rpc_attributes(true))
        .service(channel);
    tonic::client::Grpc::with_origin(traced, origin.parse().unwrap())
}

async fn unary(client: &mut Client, method: &'static str) -> Result<Reply, Status> {
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let request = tonic::Request::new(Greeting {
        name: "ada".into(),
        count: 0,
    });
    client
        .unary(
            request,
            PathAndQuery::from_static(method),
            ProstCodec::<Greeting, Reply>::default(),
        )
        .await
        .map(tonic::Response::into_inner)
}

async fn count(client: &mut Client, count: u32) -> tonic::codec::Streaming<Reply> {
    client.ready().await.unwrap();
    let request = tonic::Request::new(Greeting {
        name: "ada".into(),
        count,
    });
    client
        .server_streaming(
            request,
            PathAndQuery::from_static("/test.Greeter/Count"),
            ProstCodec::<Greeting, Reply>::default(),
        )
        .await
        .unwrap()
        .into_inner()
}

fn traced() -> (InMemoryExporter, tracing::subscriber::DefaultGuard) {
    let exporter = InMemoryExporter::new();
    let subscriber = tracing_subscriber::registry().with(TracewireLayer::new(exporter.clone()));
    (exporter, tracing::subscriber::set_default(subscriber))
}

/// The span named `name` of `kind`, once it has ended: the server's span
/// ends when hyper is done with the response body, which may be after the
/// client has its answer.
async fn ended(exporter: &InMemoryExporter, name: &str, kind: SpanKind) -> SpanData {
    for _ in 0..500 {
        if let Some(span) = exporter
            .spans_named(name)
            .into_iter()
            .find(|s| s.kind == kind)
        {
            return span;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no {kind:?} span {name}: {}", exporter.tree());
}

fn str_attr<'a>(span: &'a SpanData, key: &str) -> &'a str {
    span.attribute(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string attribute {key}: {:?}", span.attributes))
}

fn is_error(span: &SpanData) -> bool {
    matches!(span.status, SpanStatus::Error { .. })
}

#[tokio::test]
async fn unary_ok_one_trace_client_parent_of_server() {
    let (exporter, _guard) = traced();
    let mut client = serve().await;
    let caller = tracing::info_span!("caller");
    let reply = {
        let _entered = caller.enter();
        // The future is polled inside the caller's span.
        unary(&mut client, "/test.Greeter/Hello").await.unwrap()
    };
    assert_eq!(reply.message, "hello ada");
    drop(caller);

    let name = "test.Greeter/Hello";
    let server = ended(&exporter, name, SpanKind::Server).await;
    let client_span = ended(&exporter, name, SpanKind::Client).await;
    let caller = exporter.span("caller");
    let trace = caller.span_context.trace_id();
    assert_eq!(client_span.span_context.trace_id(), trace);
    assert_eq!(server.span_context.trace_id(), trace, "one trace id");
    assert_eq!(client_span.parent_span_id, caller.span_context.span_id());
    assert_eq!(
        server.parent_span_id,
        client_span.span_context.span_id(),
        "the client span is the server span's parent"
    );
    assert!(server.parent_is_remote);

    for span in [&server, &client_span] {
        assert_eq!(str_attr(span, "rpc.system.name"), "grpc");
        assert_eq!(str_attr(span, "rpc.method"), name, "fully qualified");
        assert_eq!(str_attr(span, "rpc.response.status_code"), "OK");
        assert_eq!(str_attr(span, "server.address"), "127.0.0.1");
        assert!(matches!(span.attribute("server.port"), Some(Value::I64(_))));
        assert_eq!(span.status, SpanStatus::Unset);
        assert!(span.attribute("error.type").is_none());
        // rpc/dup (on in these layers): the older names too.
        assert_eq!(str_attr(span, "rpc.system"), "grpc");
        assert_eq!(str_attr(span, "rpc.service"), "test.Greeter");
        assert_eq!(span.attribute("rpc.grpc.status_code"), Some(&Value::I64(0)));
    }
    assert_eq!(server.kind, SpanKind::Server);
    assert_eq!(client_span.kind, SpanKind::Client);
    assert!(
        server.events.iter().any(|e| e.name == "handling"),
        "the handler ran inside the server span"
    );
}

#[tokio::test]
async fn not_found_is_an_error_on_the_client_only() {
    let (exporter, _guard) = traced();
    let mut client = serve().await;
    let status = unary(&mut client, "/test.Greeter/Missing")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);

    let name = "test.Greeter/Missing";
    let server = ended(&exporter, name, SpanKind::Server).await;
    let client_span = ended(&exporter, name, SpanKind::Client).await;
    assert_eq!(str_attr(&server, "rpc.response.status_code"), "NOT_FOUND");
    assert_eq!(server.status, SpanStatus::Unset);
    assert!(server.attribute("error.type").is_none());
    assert_eq!(
        str_attr(&client_span, "rpc.response.status_code"),
        "NOT_FOUND"
    );
    assert!(is_error(&client_span));
    assert_eq!(str_attr(&client_span, "error.type"), "NOT_FOUND");
    assert_eq!(
        client_span.attribute("rpc.grpc.status_code"),
        Some(&Value::I64(5))
    );
}

#[tokio::test]
async fn internal_is_an_error_on_both_sides() {
    let (exporter, _guard) = traced();
    let mut client = serve().await;
    let status = unary(&mut client, "/test.Greeter/Broken")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Internal);

    let name = "test.Greeter/Broken";
    for kind in [SpanKind::Server, SpanKind::Client] {
        let span = ended(&exporter, name, kind).await;
        assert_eq!(str_attr(&span, "rpc.response.status_code"), "INTERNAL");
        assert_eq!(str_attr(&span, "error.type"), "INTERNAL");
        assert_eq!(
            span.status,
            SpanStatus::Error {
                message: "it went wrong".into()
            },
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn unknown_paths_are_other_and_unimplemented() {
    let (exporter, _guard) = traced();
    let mut client = serve().await;
    let status = unary(&mut client, "/nonsense").await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);

    let server = ended(&exporter, "_OTHER", SpanKind::Server).await;
    let client_span = ended(&exporter, "_OTHER", SpanKind::Client).await;
    for span in [&server, &client_span] {
        assert_eq!(str_attr(span, "rpc.method"), "_OTHER");
        assert_eq!(str_attr(span, "rpc.method_original"), "/nonsense");
        // A trailers-only response: the status is in the headers.
        assert_eq!(str_attr(span, "rpc.response.status_code"), "UNIMPLEMENTED");
        assert!(is_error(span));
    }
}

#[tokio::test]
async fn server_streaming_spans_end_after_the_last_message() {
    let (exporter, _guard) = traced();
    let mut client = serve().await;
    let mut replies = count(&mut client, 3).await;
    let first = replies.message().await.unwrap().unwrap();
    assert_eq!(first.message, "0");
    let name = "test.Greeter/Count";
    assert!(
        !exporter
            .spans_named(name)
            .iter()
            .any(|s| s.kind == SpanKind::Client),
        "the client span is open while the stream is"
    );
    let mut received = 1;
    while replies.message().await.unwrap().is_some() {
        received += 1;
    }
    assert_eq!(received, 3);

    let client_span = ended(&exporter, name, SpanKind::Client).await;
    assert_eq!(str_attr(&client_span, "rpc.response.status_code"), "OK");
    assert_eq!(client_span.status, SpanStatus::Unset);
    let server = ended(&exporter, name, SpanKind::Server).await;
    assert_eq!(str_attr(&server, "rpc.response.status_code"), "OK");
    // Every message was produced inside the server span: it was still
    // open after the last one, and its status came from the trailers.
    let streamed = server.events.iter().filter(|e| e.name == "streaming");
    assert_eq!(streamed.count(), 3, "{:?}", server.events);
    assert_eq!(server.parent_span_id, client_span.span_context.span_id());
}

#[tokio::test]
async fn a_dropped_client_stream_ends_both_spans() {
    let (exporter, _guard) = traced();
    let mut client = serve().await;
    // An endless stream: only dropping it ends the call.
    let mut replies = count(&mut client, 0).await;
    replies.message().await.unwrap().unwrap();
    drop(replies);

    let name = "test.Greeter/Count";
    let client_span = ended(&exporter, name, SpanKind::Client).await;
    assert_eq!(
        client_span.status,
        SpanStatus::Unset,
        "a cancelled call is not an error"
    );
    assert!(client_span.attribute("rpc.response.status_code").is_none());
    let server = ended(&exporter, name, SpanKind::Server).await;
    assert!(server.attribute("rpc.response.status_code").is_none());
    assert!(server.events.iter().any(|e| e.name == "streaming"));
}

#[tokio::test]
async fn a_transport_error_is_unavailable() {
    let (exporter, _guard) = traced();
    // Nothing listens on a port we bound and released.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut client = client_of(&format!("http://{addr}"));
    let status = unary(&mut client, "/test.Greeter/Hello").await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);

    let span = ended(&exporter, "test.Greeter/Hello", SpanKind::Client).await;
    assert_eq!(str_attr(&span, "rpc.response.status_code"), "UNAVAILABLE");
    assert_eq!(str_attr(&span, "error.type"), "UNAVAILABLE");
    assert_eq!(
        span.attribute("rpc.grpc.status_code"),
        Some(&Value::I64(14))
    );
    assert!(is_error(&span));
}

#[tokio::test]
async fn the_server_continues_a_traceparent_from_plain_metadata() {
    let (exporter, _guard) = traced();
    let origin = start_server();
    let mut request = tonic::Request::new(Greeting {
        name: "ada".into(),
        count: 0,
    });
    request.metadata_mut().insert(
        "traceparent",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            .parse()
            .unwrap(),
    );
    // The traced client would replace the metadata's context with its own
    // span's: call through the bare channel instead.
    let channel = Endpoint::from_shared(origin).unwrap().connect_lazy();
    let mut plain = tonic::client::Grpc::new(channel);
    plain.ready().await.unwrap();
    plain
        .unary(
            request,
            PathAndQuery::from_static("/test.Greeter/Hello"),
            ProstCodec::<Greeting, Reply>::default(),
        )
        .await
        .unwrap();
    let server = ended(&exporter, "test.Greeter/Hello", SpanKind::Server).await;
    assert_eq!(
        server.span_context.trace_id().to_string(),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(server.parent_span_id.to_string(), "00f067aa0ba902b7");
    assert!(server.parent_is_remote);
}

#[tokio::test]
async fn a_response_without_grpc_status_is_unknown_on_the_client_only() {
    use http_body_util::{BodyExt as _, Full};
    use tower::ServiceExt as _;

    let (exporter, _guard) = traced();
    // An HTTP/2 peer that answers without any `grpc-status`.
    let not_grpc = || {
        tower::service_fn(|_: http::Request<Full<bytes::Bytes>>| async {
            Ok::<_, Infallible>(http::Response::new(Full::new(bytes::Bytes::from("hi"))))
        })
    };
    let request = || {
        http::Request::post("http://peer.internal:50051/test.Greeter/Hello")
            .body(Full::default())
            .unwrap()
    };
    let server = ServiceBuilder::new()
        .layer(TraceLayer::grpc_server())
        .service(not_grpc());
    let body = server.oneshot(request()).await.unwrap().into_body();
    body.collect().await.unwrap();
    let client = ServiceBuilder::new()
        .layer(TraceLayer::grpc_client())
        .service(not_grpc());
    let body = client.oneshot(request()).await.unwrap().into_body();
    body.collect().await.unwrap();

    let name = "test.Greeter/Hello";
    let server = ended(&exporter, name, SpanKind::Server).await;
    assert_eq!(server.status, SpanStatus::Unset);
    assert!(server.attribute("rpc.response.status_code").is_none());
    let client = ended(&exporter, name, SpanKind::Client).await;
    assert_eq!(str_attr(&client, "rpc.response.status_code"), "UNKNOWN");
    assert_eq!(str_attr(&client, "error.type"), "UNKNOWN");
    assert_eq!(str_attr(&client, "server.address"), "peer.internal");
    assert_eq!(client.attribute("server.port"), Some(&Value::I64(50051)));
    assert!(is_error(&client));
}
