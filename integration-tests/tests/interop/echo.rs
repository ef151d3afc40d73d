//! `interop.Echo` on the Rust side: the messages of `proto/interop.proto`
//! mirrored by hand with prost derives (keep them in step with the
//! `.proto`: the Python peer generates its stubs from it), a hand-written
//! tonic service, and a traced tonic client.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::uri::PathAndQuery;
use tonic::Status;
use tonic::server::{NamedService, UnaryService};
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_prost::ProstCodec;
use tower::{Service, ServiceBuilder};
use tracewire_tower::{Grpc as GrpcProtocol, Trace, TraceLayer};

/// `interop.EchoRequest` (same tags as the `.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct EchoRequest {
    #[prost(string, tag = "1")]
    pub(crate) message: String,
    #[prost(string, tag = "2")]
    pub(crate) forward_to: String,
}

/// `interop.EchoReply` (same tags as the `.proto`).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct EchoReply {
    #[prost(string, tag = "1")]
    pub(crate) message: String,
}

/// The span name of `interop.Echo/Say` (the RPC conventions).
pub(crate) const SAY: &str = "interop.Echo/Say";

/// `interop.Echo`: `Say` answers `rust(<message>)` (it never forwards).
#[derive(Clone, Debug)]
struct Echo;

impl NamedService for Echo {
    const NAME: &'static str = "interop.Echo";
}

struct Say;

impl UnaryService<EchoRequest> for Say {
    type Response = EchoReply;
    type Future = Ready<Result<tonic::Response<EchoReply>, Status>>;

    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        let message = request.into_inner().message;
        ready(Ok(tonic::Response::new(EchoReply {
            message: format!("rust({message})"),
        })))
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<http::Request<tonic::body::Body>> for Echo {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
            let response = match request.uri().path() {
                "/interop.Echo/Say" => grpc.unary(Say, request).await,
                _ => Status::unimplemented("no such method").into_http(),
            };
            Ok(response)
        })
    }
}

/// Starts the traced tonic server on a free loopback port (a task of the
/// current runtime); returns its address.
pub(crate) fn start_server() -> SocketAddr {
    let incoming = TcpIncoming::bind(([127, 0, 0, 1], 0).into()).expect("bind 127.0.0.1:0");
    let addr = incoming.local_addr().expect("local address");
    tokio::spawn(
        Server::builder()
            .layer(TraceLayer::grpc_server())
            .add_service(Echo)
            .serve_with_incoming(incoming),
    );
    addr
}

/// A traced tonic client.
pub(crate) type Client =
    tonic::client::Grpc<Trace<Channel, tracewire_tower::Client<(), (), GrpcProtocol>>>;

/// A traced client of the Echo service at `addr`.
pub(crate) fn client_of(addr: SocketAddr) -> Client {
    let origin = format!("http://{addr}");
    let channel = Endpoint::from_shared(origin.clone())
        .expect("endpoint")
        .connect_lazy();
    let traced = ServiceBuilder::new()
        .layer(TraceLayer::grpc_client())
        .service(channel);
    tonic::client::Grpc::with_origin(traced, origin.parse().expect("origin"))
}

/// Calls `Say`.
pub(crate) async fn say(
    client: &mut Client,
    message: &str,
    forward_to: &str,
) -> Result<String, Status> {
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let request = tonic::Request::new(EchoRequest {
        message: message.to_owned(),
        forward_to: forward_to.to_owned(),
    });
    client
        .unary(
            request,
            PathAndQuery::from_static("/interop.Echo/Say"),
            ProstCodec::<EchoRequest, EchoReply>::default(),
        )
        .await
        .map(|reply| reply.into_inner().message)
}
