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
use tonic::server::{
    ClientStreamingService, NamedService, ServerStreamingService, StreamingService, UnaryService,
};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tower::{Service, ServiceBuilder};
use tracewire::testing::InMemoryExporter;
use tracewire::{SpanData, SpanKind, Status as SpanStatus, TracewireLayer, Value};
use tracewire_tower::{DefaultSpanName, Grpc as GrpcProtocol, Trace, TraceLayer};
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
/// INTERNAL, `Count` streams `count` replies (forever when 0), `Collect`
/// joins a stream of names, `Chat` echoes each name, `Slow` answers after
/// 5 s, `Panic` panics, `Relay` calls `Hello` on the `next` server with a
/// traced client.
#[derive(Clone, Debug, Default)]
struct Greeter {
    next: Option<String>,
}

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
            Ok(greeting) => {
                let mut response = tonic::Response::new(Reply {
                    message: format!("{greeting} {}", request.into_inner().name),
                });
                response
                    .metadata_mut()
                    .insert("x-served-by", "greeter".parse().unwrap());
                Ok(response)
            }
            Err(code) => Err(Status::new(code, "it went wrong")),
        })
    }
}

/// `Slow`: answers after 5 s (callers set a shorter deadline).
struct Slow;

impl UnaryService<Greeting> for Slow {
    type Response = Reply;
    type Future = BoxFuture<Result<tonic::Response<Reply>, Status>>;

    fn call(&mut self, _: tonic::Request<Greeting>) -> Self::Future {
        Box::pin(async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(tonic::Response::new(Reply::default()))
        })
    }
}

/// `Panic`: the handler panics.
struct Panics;

impl UnaryService<Greeting> for Panics {
    type Response = Reply;
    type Future = BoxFuture<Result<tonic::Response<Reply>, Status>>;

    fn call(&mut self, _: tonic::Request<Greeting>) -> Self::Future {
        Box::pin(async { panic!("handler bug") })
    }
}

/// `Relay`: calls `Hello` on the next server with a traced client, inside
/// the handler (so inside this server's span).
struct Relay(String);

impl UnaryService<Greeting> for Relay {
    type Response = Reply;
    type Future = BoxFuture<Result<tonic::Response<Reply>, Status>>;

    fn call(&mut self, _: tonic::Request<Greeting>) -> Self::Future {
        let origin = self.0.clone();
        Box::pin(async move {
            let mut next = client_of(&origin);
            let reply = unary(&mut next, "/test.Greeter/Hello").await?;
            Ok(tonic::Response::new(reply))
        })
    }
}

/// `Collect`: joins the names of a client stream.
struct Collect;

impl ClientStreamingService<Greeting> for Collect {
    type Response = Reply;
    type Future = BoxFuture<Result<tonic::Response<Reply>, Status>>;

    fn call(&mut self, request: tonic::Request<tonic::Streaming<Greeting>>) -> Self::Future {
        Box::pin(async move {
            let mut names = Vec::new();
            let mut stream = request.into_inner();
            while let Some(greeting) = stream.message().await? {
                names.push(greeting.name);
            }
            Ok(tonic::Response::new(Reply {
                message: names.join(","),
            }))
        })
    }
}

/// `Chat`: echoes each name of a client stream; a name `fail` ends the
/// stream with ABORTED.
struct Chat;

impl StreamingService<Greeting> for Chat {
    type Response = Reply;
    type ResponseStream = BoxStream<'static, Result<Reply, Status>>;
    type Future = Ready<Result<tonic::Response<Self::ResponseStream>, Status>>;

    fn call(&mut self, request: tonic::Request<tonic::Streaming<Greeting>>) -> Self::Future {
        let replies = request
            .into_inner()
            .map(|greeting| {
                let name = greeting?.name;
                if name == "fail" {
                    // Trailing metadata, next to the status in the trailers.
                    let mut trailing = tonic::metadata::MetadataMap::new();
                    trailing.insert("x-served-by", "chat-trailer".parse().unwrap());
                    trailing.insert("x-chat-end", "failed".parse().unwrap());
                    return Err(Status::with_metadata(
                        Code::Aborted,
                        "chat failed",
                        trailing,
                    ));
                }
                Ok(Reply { message: name })
            })
            .boxed();
        let mut response = tonic::Response::new(replies);
        response
            .metadata_mut()
            .insert("x-served-by", "chat".parse().unwrap());
        ready(Ok(response))
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
        let next = self.next.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<Reply, Greeting>::default());
            let response = match request.uri().path() {
                "/test.Greeter/Hello" => grpc.unary(Unary(Ok("hello")), request).await,
                "/test.Greeter/Missing" => grpc.unary(Unary(Err(Code::NotFound)), request).await,
                "/test.Greeter/Broken" => grpc.unary(Unary(Err(Code::Internal)), request).await,
                "/test.Greeter/Count" => grpc.server_streaming(Count, request).await,
                "/test.Greeter/Collect" => grpc.client_streaming(Collect, request).await,
                "/test.Greeter/Chat" => grpc.streaming(Chat, request).await,
                "/test.Greeter/Slow" => grpc.unary(Slow, request).await,
                "/test.Greeter/Panic" => grpc.unary(Panics, request).await,
                "/test.Greeter/Relay" => match next {
                    Some(origin) => grpc.unary(Relay(origin), request).await,
                    None => Status::unimplemented("no next server").into_http(),
                },
                _ => Status::unimplemented("no such method").into_http(),
            };
            Ok(response)
        })
    }
}

/// A traced client of a traced server on a loopback port.
type Client = tonic::client::Grpc<Trace<Channel, ClientPreset>>;

type ClientPreset = tracewire_tower::Client<(), (), GrpcProtocol>;
type ServerPreset = tracewire_tower::Server<(), DefaultSpanName, (), (), GrpcProtocol>;

/// Starts the traced server and returns a traced client of it.
async fn serve() -> Client {
    client_of(&start_server())
}

/// Starts the traced server; returns its origin (`http://127.0.0.1:port`).
fn start_server() -> String {
    start_server_with(
        TraceLayer::grpc_server().legacy_rpc_attributes(true),
        Greeter::default(),
    )
}

/// Starts `greeter` behind `layer`; returns its origin.
fn start_server_with(layer: TraceLayer<ServerPreset>, greeter: Greeter) -> String {
    let incoming = TcpIncoming::bind(([127, 0, 0, 1], 0).into()).unwrap();
    let addr = incoming.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .layer(layer)
            .add_service(greeter)
            .serve_with_incoming(incoming),
    );
    format!("http://{addr}")
}

/// A traced client of `origin`. `with_origin` puts the server's address
/// into each request's URI, where the client layer (outside the channel)
/// reads `server.address` and `server.port`.
fn client_of(origin: &str) -> Client {
    client_with(
        origin,
        TraceLayer::grpc_client().legacy_rpc_attributes(true),
    )
}

/// A client of `origin` traced by `layer`.
fn client_with(origin: &str, layer: TraceLayer<ClientPreset>) -> Client {
    let channel = Endpoint::from_shared(origin.to_owned())
        .unwrap()
        .connect_lazy();
    let traced = ServiceBuilder::new().layer(layer).service(channel);
    tonic::client::Grpc::with_origin(traced, origin.parse().unwrap())
}

fn greeting(name: &str) -> Greeting {
    Greeting {
        name: name.into(),
        count: 0,
    }
}

async fn unary(client: &mut Client, method: &'static str) -> Result<Reply, Status> {
    unary_with(client, method, tonic::Request::new(greeting("ada"))).await
}

async fn unary_with(
    client: &mut Client,
    method: &'static str,
    request: tonic::Request<Greeting>,
) -> Result<Reply, Status> {
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    client
        .unary(
            request,
            PathAndQuery::from_static(method),
            ProstCodec::<Greeting, Reply>::default(),
        )
        .await
        .map(tonic::Response::into_inner)
}

/// Calls `method` with its future polled inside a span named `caller`
/// (ended before this returns); returns the reply.
async fn unary_as_caller(client: &mut Client, method: &'static str) -> Reply {
    let caller = tracing::info_span!("caller");
    let _entered = caller.enter();
    unary(client, method).await.unwrap()
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

/// Runs a `Collect` of "ada", "bob" and "cy" on `client` (any traced
/// channel); returns the reply.
async fn collect<T>(client: &mut tonic::client::Grpc<T>) -> Reply
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: std::fmt::Debug,
    T::ResponseBody: http_body::Body + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    client.ready().await.unwrap();
    let names = stream::iter(["ada", "bob", "cy"].map(greeting));
    client
        .client_streaming(
            tonic::Request::new(names),
            PathAndQuery::from_static("/test.Greeter/Collect"),
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
    let reply = unary_as_caller(&mut client, "/test.Greeter/Hello").await;
    assert_eq!(reply.message, "hello ada");

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

/// The attribute `key` of an event.
fn event_attr<'a>(event: &'a tracewire::Event, key: &str) -> Option<&'a Value> {
    event
        .attributes
        .iter()
        .find(|kv| kv.key == key)
        .map(|kv| &kv.value)
}

/// The `rpc.message` events of `span`: (type, id, size).
fn message_events(span: &SpanData) -> Vec<(String, i64, i64)> {
    span.events
        .iter()
        .filter(|e| e.name == "rpc.message")
        .map(|e| {
            let kind = event_attr(e, "rpc.message.type").and_then(Value::as_str);
            let id = event_attr(e, "rpc.message.id");
            let size = event_attr(e, "rpc.message.uncompressed_size");
            match (kind, id, size) {
                (Some(kind), Some(Value::I64(id)), Some(Value::I64(size))) => {
                    (kind.to_owned(), *id, *size)
                }
                _ => panic!("incomplete rpc.message event: {e:?}"),
            }
        })
        .collect()
}

#[tokio::test]
async fn client_streaming_ends_with_the_reply_one_trace() {
    let (exporter, _guard) = traced();
    let mut client = serve().await;
    let reply = collect(&mut client).await;
    assert_eq!(reply.message, "ada,bob,cy");

    let name = "test.Greeter/Collect";
    let client_span = ended(&exporter, name, SpanKind::Client).await;
    let server = ended(&exporter, name, SpanKind::Server).await;
    assert_eq!(server.parent_span_id, client_span.span_context.span_id());
    for span in [&server, &client_span] {
        assert_eq!(str_attr(span, "rpc.response.status_code"), "OK");
        assert_eq!(span.status, SpanStatus::Unset);
    }
}

/// Runs a `Chat` with `names`; returns the echoed names and the final
/// status (`Ok` when the stream ended with OK).
async fn chat(client: &mut Client, names: &[&str]) -> (Vec<String>, Result<(), Status>) {
    client.ready().await.unwrap();
    let names: Vec<Greeting> = names.iter().map(|n| greeting(n)).collect();
    let mut replies = client
        .streaming(
            tonic::Request::new(stream::iter(names)),
            PathAndQuery::from_static("/test.Greeter/Chat"),
            ProstCodec::<Greeting, Reply>::default(),
        )
        .await
        .unwrap()
        .into_inner();
    let mut echoed = Vec::new();
    loop {
        match replies.message().await {
            Ok(Some(reply)) => echoed.push(reply.message),
            Ok(None) => return (echoed, Ok(())),
            Err(status) => return (echoed, Err(status)),
        }
    }
}

#[tokio::test]
async fn bidirectional_streaming_spans_end_with_the_response_stream() {
    let (exporter, _guard) = traced();
    let mut client = serve().await;
    let (echoed, end) = chat(&mut client, &["ada", "bob"]).await;
    assert_eq!(echoed, ["ada", "bob"]);
    end.unwrap();

    let name = "test.Greeter/Chat";
    let client_span = ended(&exporter, name, SpanKind::Client).await;
    let server = ended(&exporter, name, SpanKind::Server).await;
    assert_eq!(server.parent_span_id, client_span.span_context.span_id());
    for span in [&server, &client_span] {
        assert_eq!(str_attr(span, "rpc.response.status_code"), "OK");
        assert_eq!(span.status, SpanStatus::Unset);
    }
    // The spans lasted until the last message: no message events by
    // default, and no metadata attributes either.
    for span in [&server, &client_span] {
        assert!(message_events(span).is_empty());
        assert!(
            !span
                .attributes
                .iter()
                .any(|kv| kv.key.starts_with("rpc.request.metadata.")
                    || kv.key.starts_with("rpc.response.metadata.")),
            "{:?}",
            span.attributes
        );
    }
}

#[tokio::test]
async fn a_bidirectional_stream_ending_in_an_error_status() {
    let (exporter, _guard) = traced();
    let mut client = serve().await;
    let (echoed, end) = chat(&mut client, &["ada", "fail", "bob"]).await;
    assert_eq!(echoed, ["ada"]);
    assert_eq!(end.unwrap_err().code(), Code::Aborted);

    let name = "test.Greeter/Chat";
    let client_span = ended(&exporter, name, SpanKind::Client).await;
    assert_eq!(
        str_attr(&client_span, "rpc.response.status_code"),
        "ABORTED"
    );
    assert!(is_error(&client_span));
    let server = ended(&exporter, name, SpanKind::Server).await;
    assert_eq!(str_attr(&server, "rpc.response.status_code"), "ABORTED");
    assert_eq!(
        server.status,
        SpanStatus::Unset,
        "ABORTED is not a server error"
    );
}

#[tokio::test]
async fn a_deadline_exceeded_is_an_error_on_both_sides() {
    let (exporter, _guard) = traced();
    let mut client = serve().await;
    let mut request = tonic::Request::new(greeting("ada"));
    // `grpc-timeout: 1000m`: tonic's channel and server both enforce it
    // (long enough that the server's timer starting before the layer sees
    // the request stays within the layer's slack on a busy machine).
    request.set_timeout(Duration::from_secs(1));
    let status = unary_with(&mut client, "/test.Greeter/Slow", request)
        .await
        .unwrap_err();
    // tonic reports its own deadline as CANCELLED ("Timeout expired"); the
    // spans say what happened by gRPC's rules.
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");

    let name = "test.Greeter/Slow";
    for kind in [SpanKind::Client, SpanKind::Server] {
        let span = ended(&exporter, name, kind).await;
        assert_eq!(
            str_attr(&span, "rpc.response.status_code"),
            "DEADLINE_EXCEEDED",
            "{kind:?}"
        );
        assert_eq!(str_attr(&span, "error.type"), "DEADLINE_EXCEEDED");
        assert!(is_error(&span), "{kind:?}");
        assert_eq!(span.attribute("rpc.grpc.status_code"), Some(&Value::I64(4)));
    }
}

#[tokio::test]
async fn a_panicking_handler_is_an_error_and_the_server_keeps_serving() {
    let (exporter, _guard) = traced();
    let mut client = serve().await;
    let status = unary(&mut client, "/test.Greeter/Panic").await.unwrap_err();
    // hyper resets the HTTP/2 stream of the panicked task (RST_STREAM
    // CANCEL): tonic's client reports CANCELLED ("h2 protocol error"), and
    // the client span, which sees a transport error without any
    // `grpc-status`, is UNAVAILABLE as the conventions say.
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");

    let name = "test.Greeter/Panic";
    let server = ended(&exporter, name, SpanKind::Server).await;
    assert!(is_error(&server));
    assert_eq!(str_attr(&server, "error.type"), "panic");
    assert!(server.events.iter().any(|e| e.name == "exception"));
    let client_span = ended(&exporter, name, SpanKind::Client).await;
    assert!(is_error(&client_span));
    assert_eq!(
        str_attr(&client_span, "rpc.response.status_code"),
        "UNAVAILABLE"
    );
    assert_eq!(server.parent_span_id, client_span.span_context.span_id());

    // The same server (and client) still answer.
    let reply = unary(&mut client, "/test.Greeter/Hello").await.unwrap();
    assert_eq!(reply.message, "hello ada");
}

#[tokio::test]
async fn context_crosses_two_grpc_hops() {
    let (exporter, _guard) = traced();
    let b = start_server();
    let a = start_server_with(
        TraceLayer::grpc_server(),
        Greeter {
            next: Some(b.clone()),
        },
    );
    let mut client = client_of(&a);
    let reply = unary_as_caller(&mut client, "/test.Greeter/Relay").await;
    assert_eq!(reply.message, "hello ada");

    let relay = "test.Greeter/Relay";
    let hello = "test.Greeter/Hello";
    let caller = exporter.span("caller");
    let client_a = ended(&exporter, relay, SpanKind::Client).await;
    let server_a = ended(&exporter, relay, SpanKind::Server).await;
    let client_b = ended(&exporter, hello, SpanKind::Client).await;
    let server_b = ended(&exporter, hello, SpanKind::Server).await;
    let trace = caller.span_context.trace_id();
    let chain = [&caller, &client_a, &server_a, &client_b, &server_b];
    for span in chain {
        assert_eq!(
            span.span_context.trace_id(),
            trace,
            "one trace: {}",
            exporter.tree()
        );
    }
    for pair in chain.windows(2) {
        assert_eq!(
            pair[1].parent_span_id,
            pair[0].span_context.span_id(),
            "{} under {}: {}",
            pair[1].name,
            pair[0].name,
            exporter.tree()
        );
    }
    assert!(server_a.parent_is_remote && server_b.parent_is_remote);
    assert!(
        !client_b.parent_is_remote,
        "the relay's client is a local child"
    );
}

#[tokio::test]
async fn allow_listed_metadata_is_captured_on_both_sides() {
    use http::HeaderName;

    let (exporter, _guard) = traced();
    let keys = || {
        [
            HeaderName::from_static("x-tenant"),
            HeaderName::from_static("x-token-bin"),
        ]
    };
    let served_by = || [HeaderName::from_static("x-served-by")];
    let origin = start_server_with(
        TraceLayer::grpc_server()
            .request_metadata(keys())
            .response_metadata(served_by()),
        Greeter::default(),
    );
    let mut client = client_with(
        &origin,
        TraceLayer::grpc_client()
            .request_metadata(keys())
            .response_metadata(served_by()),
    );
    let mut request = tonic::Request::new(greeting("ada"));
    let metadata = request.metadata_mut();
    metadata.append("x-tenant", "acme".parse().unwrap());
    metadata.append("x-tenant", "globex".parse().unwrap());
    metadata.insert_bin(
        "x-token-bin",
        tonic::metadata::MetadataValue::from_bytes(b"\0secret"),
    );
    metadata.insert("x-other", "not captured".parse().unwrap());
    unary_with(&mut client, "/test.Greeter/Hello", request)
        .await
        .unwrap();

    let name = "test.Greeter/Hello";
    for kind in [SpanKind::Server, SpanKind::Client] {
        let span = ended(&exporter, name, kind).await;
        assert_eq!(
            span.attribute("rpc.request.metadata.x-tenant"),
            Some(&Value::from(vec!["acme".to_owned(), "globex".to_owned()])),
            "{kind:?}: {:?}",
            span.attributes
        );
        assert_eq!(
            span.attribute("rpc.response.metadata.x-served-by"),
            Some(&Value::from(vec!["greeter".to_owned()])),
            "{kind:?}"
        );
        assert!(
            span.attribute("rpc.request.metadata.x-token-bin").is_none(),
            "binary keys are left out"
        );
        assert!(span.attribute("rpc.request.metadata.x-other").is_none());
    }
}

#[tokio::test]
async fn message_events_count_the_response_stream_when_enabled() {
    let (exporter, _guard) = traced();
    let origin = start_server_with(
        TraceLayer::grpc_server().message_events(true),
        Greeter::default(),
    );
    let mut client = client_with(&origin, TraceLayer::grpc_client().message_events(true));
    let mut replies = count(&mut client, 3).await;
    let mut received = 0;
    while replies.message().await.unwrap().is_some() {
        received += 1;
    }
    assert_eq!(received, 3);

    let name = "test.Greeter/Count";
    let client_span = ended(&exporter, name, SpanKind::Client).await;
    let server = ended(&exporter, name, SpanKind::Server).await;
    // Replies "0", "1", "2": a 3-byte protobuf message each.
    let expected = |kind: &str| -> Vec<(String, i64, i64)> {
        (1..=3).map(|id| (kind.to_owned(), id, 3)).collect()
    };
    assert_eq!(message_events(&server), expected("SENT"));
    assert_eq!(message_events(&client_span), expected("RECEIVED"));

    // A unary reply of ~100 kB, split across HTTP/2 data frames (16 kB
    // each by default): one message.
    let big = tonic::Request::new(greeting(&"a".repeat(100_000)));
    unary_with(&mut client, "/test.Greeter/Hello", big)
        .await
        .unwrap();
    let name = "test.Greeter/Hello";
    // "hello " + 100,000 bytes: tag, 3-byte length, 100,006 bytes.
    let one = |kind: &str| vec![(kind.to_owned(), 1, 100_010)];
    let client_span = ended(&exporter, name, SpanKind::Client).await;
    assert_eq!(message_events(&client_span), one("RECEIVED"));
    let server = ended(&exporter, name, SpanKind::Server).await;
    assert_eq!(message_events(&server), one("SENT"));
}

#[tokio::test]
async fn trailing_metadata_is_merged_after_the_initial_metadata() {
    use http::HeaderName;

    let (exporter, _guard) = traced();
    let keys = || {
        [
            HeaderName::from_static("x-served-by"),
            HeaderName::from_static("x-chat-end"),
        ]
    };
    let origin = start_server_with(
        TraceLayer::grpc_server().response_metadata(keys()),
        Greeter::default(),
    );
    let mut client = client_with(&origin, TraceLayer::grpc_client().response_metadata(keys()));
    let (echoed, end) = chat(&mut client, &["ada", "fail"]).await;
    assert_eq!(echoed, ["ada"]);
    assert_eq!(end.unwrap_err().code(), Code::Aborted);

    let name = "test.Greeter/Chat";
    for kind in [SpanKind::Server, SpanKind::Client] {
        let span = ended(&exporter, name, kind).await;
        assert_eq!(
            span.attribute("rpc.response.metadata.x-served-by"),
            Some(&Value::from(vec![
                "chat".to_owned(),
                "chat-trailer".to_owned()
            ])),
            "{kind:?}: headers first, then trailers: {:?}",
            span.attributes
        );
        assert_eq!(
            span.attribute("rpc.response.metadata.x-chat-end"),
            Some(&Value::from(vec!["failed".to_owned()])),
            "{kind:?}: a key only in the trailers"
        );
        assert_eq!(str_attr(&span, "rpc.response.status_code"), "ABORTED");
        assert!(
            span.attribute("rpc.response.metadata.grpc-status")
                .is_none(),
            "only allow-listed keys"
        );
    }
}

/// With the `tonic` feature, `for_tonic()` hands the request body on as a
/// `tonic::body::Body`: request messages are counted too (server
/// RECEIVED, client SENT), each direction with its own ids.
#[cfg(feature = "tonic")]
#[tokio::test]
async fn for_tonic_also_counts_the_request_stream() {
    let (exporter, _guard) = traced();
    let incoming = TcpIncoming::bind(([127, 0, 0, 1], 0).into()).unwrap();
    let origin = format!("http://{}", incoming.local_addr().unwrap());
    tokio::spawn(
        Server::builder()
            .layer(TraceLayer::grpc_server().message_events(true).for_tonic())
            .add_service(Greeter::default())
            .serve_with_incoming(incoming),
    );
    let channel = Endpoint::from_shared(origin.clone())
        .unwrap()
        .connect_lazy();
    let traced_channel = ServiceBuilder::new()
        .layer(TraceLayer::grpc_client().for_tonic().message_events(true))
        .service(channel.clone());
    let mut client = tonic::client::Grpc::with_origin(traced_channel, origin.parse().unwrap());
    let reply = collect(&mut client).await;
    assert_eq!(reply.message, "ada,bob,cy");

    let name = "test.Greeter/Collect";
    let server = ended(&exporter, name, SpanKind::Server).await;
    let client_span = ended(&exporter, name, SpanKind::Client).await;
    // Greetings "ada", "bob", "cy": tag, length, name (5, 5 and 4 bytes);
    // the reply "ada,bob,cy": 12 bytes.
    let expected = |request: &str, response: &str| -> Vec<(String, i64, i64)> {
        vec![
            (request.to_owned(), 1, 5),
            (request.to_owned(), 2, 5),
            (request.to_owned(), 3, 4),
            (response.to_owned(), 1, 12),
        ]
    };
    assert_eq!(message_events(&server), expected("RECEIVED", "SENT"));
    assert_eq!(message_events(&client_span), expected("SENT", "RECEIVED"));
    assert_eq!(server.parent_span_id, client_span.span_context.span_id());
    for span in [&server, &client_span] {
        assert_eq!(str_attr(span, "rpc.response.status_code"), "OK");
    }

    // Without message events the body is handed on as it is, and a unary
    // call works as before.
    let plain = ServiceBuilder::new()
        .layer(TraceLayer::grpc_client().for_tonic())
        .service(channel);
    let mut client = tonic::client::Grpc::with_origin(plain, origin.parse().unwrap());
    client.ready().await.unwrap();
    let reply = client
        .unary(
            tonic::Request::new(greeting("bob")),
            PathAndQuery::from_static("/test.Greeter/Hello"),
            ProstCodec::<Greeting, Reply>::default(),
        )
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.message, "hello bob");
    let name = "test.Greeter/Hello";
    let client_span = ended(&exporter, name, SpanKind::Client).await;
    assert!(message_events(&client_span).is_empty());
    // The server layer still counts (RECEIVED 1, SENT 1).
    let server = ended(&exporter, name, SpanKind::Server).await;
    let kinds: Vec<String> = message_events(&server).into_iter().map(|e| e.0).collect();
    assert_eq!(kinds, ["RECEIVED", "SENT"]);
}
