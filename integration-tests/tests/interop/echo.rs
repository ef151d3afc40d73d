//! `interop.Echo` on the Rust side: the messages of `proto/interop.proto`
//! mirrored by hand with prost derives (keep them in step with the
//! `.proto`: the Python peer generates its stubs from it), a hand-written
//! tonic service, and a traced tonic client.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::Status;
use tonic::server::{NamedService, UnaryService};
use tonic::service::Routes;
use tonic_prost::ProstCodec;
use tower::Service;

#[path = "../common/grpc.rs"]
mod grpc_common;
pub(crate) use grpc_common::{Client, client_of};

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
    grpc_common::start_server(Routes::new(Echo))
}

/// Calls `Say`.
pub(crate) async fn say(
    client: &mut Client,
    message: &str,
    forward_to: &str,
) -> Result<String, Status> {
    let request = EchoRequest {
        message: message.to_owned(),
        forward_to: forward_to.to_owned(),
    };
    grpc_common::unary::<_, EchoReply>(client, "/interop.Echo/Say", request)
        .await
        .map(|reply| reply.message)
}
