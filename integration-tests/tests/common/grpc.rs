//! gRPC pieces the grouped test binaries share (included with `#[path]`):
//! a traced tonic server on a free loopback port, a traced tonic client,
//! and a unary call with prost messages written by hand (no protoc).

use std::net::SocketAddr;

use http::uri::PathAndQuery;
use tonic::Status;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint, Server};
use tonic_prost::ProstCodec;
use tower::ServiceBuilder;
use tracewire_tower::{Grpc as GrpcProtocol, Trace, TraceLayer};

/// Serves `routes` behind `TraceLayer::grpc_server()` on a free loopback
/// port (a task of the current runtime); returns its address.
pub(crate) fn start_server(routes: Routes) -> SocketAddr {
    let incoming = TcpIncoming::bind(([127, 0, 0, 1], 0).into()).expect("bind 127.0.0.1:0");
    let addr = incoming.local_addr().expect("local address");
    tokio::spawn(
        Server::builder()
            .layer(TraceLayer::grpc_server())
            .add_routes(routes)
            .serve_with_incoming(incoming),
    );
    addr
}

/// A tonic client whose channel is traced by `TraceLayer::grpc_client()`.
pub(crate) type Client =
    tonic::client::Grpc<Trace<Channel, tracewire_tower::Client<(), (), GrpcProtocol>>>;

/// A traced client of the server at `addr`.
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

/// Calls the unary method at `path` (`/package.Service/Method`).
pub(crate) async fn unary<Req, Reply>(
    client: &mut Client,
    path: &'static str,
    request: Req,
) -> Result<Reply, Status>
where
    Req: prost::Message + Send + 'static,
    Reply: prost::Message + Default + Send + 'static,
{
    client
        .ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    client
        .unary(
            tonic::Request::new(request),
            PathAndQuery::from_static(path),
            ProstCodec::<Req, Reply>::default(),
        )
        .await
        .map(tonic::Response::into_inner)
}
