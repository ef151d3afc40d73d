//! The payment service: the gRPC method `shop.Payments/Charge` charges a
//! card. It is written by hand with prost messages and
//! `tonic::server::Grpc` (no generated code, no protoc); the proto it
//! mirrors:
//!
//! ```proto
//! package shop;
//! service Payments { rpc Charge(ChargeRequest) returns (ChargeReply); }
//! message ChargeRequest { int64 order_id = 1; int64 amount_cents = 2; string card = 3; }
//! message ChargeReply { string payment_id = 1; string status = 2; }
//! ```
//!
//! Each call is a SERVER span made by `TraceLayer::grpc_server()`; the
//! order service calls it through a tonic `Channel` wrapped with
//! `TraceLayer::grpc_client()`. The same port serves the launcher's
//! `GET /health` over HTTP/1.1.
//!
//! The card checks are real ones (digits, length, the Luhn checksum);
//! the well-known test card numbers `4000 0000 0000 0002` (declined) and
//! `4000 0000 0000 9995` (insufficient funds) are refused the way a card
//! processor refuses them. A refusal is a business outcome, not a fault of
//! the service: it answers `FAILED_PRECONDITION` (an invalid card number
//! or amount: `INVALID_ARGUMENT`) with the reason as the message, and sets
//! status Error on the `charge card` span. The server span stays Unset
//! (the RPC conventions make a server span Error only for codes that mean
//! the server failed); the caller's CLIENT span is Error, as for every code
//! but `OK`.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::http::uri::PathAndQuery;
use axum::http::{Request, Response};
use tonic::server::{NamedService, UnaryService};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use tonic_prost::ProstCodec;
use tower::{Service, ServiceBuilder};
use tracewire_tower::{Trace, TraceLayer};

use super::Config;
use crate::BoxError;
use crate::net::{self, Ready as Readiness, Shutdown};

/// A card the processor declines.
pub(crate) const DECLINED_CARD: &str = "4000000000000002";
/// A card without the funds.
const NO_FUNDS_CARD: &str = "4000000000009995";
/// The one method's path.
pub(crate) const CHARGE_PATH: &str = "/shop.Payments/Charge";
/// How long the order service waits for a charge (sent as `grpc-timeout`).
const CHARGE_DEADLINE: Duration = Duration::from_secs(10);

/// `shop.ChargeRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ChargeRequest {
    #[prost(int64, tag = "1")]
    pub(crate) order_id: i64,
    #[prost(int64, tag = "2")]
    pub(crate) amount_cents: i64,
    #[prost(string, tag = "3")]
    pub(crate) card: String,
}

/// `shop.ChargeReply`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ChargeReply {
    #[prost(string, tag = "1")]
    pub(crate) payment_id: String,
    #[prost(string, tag = "2")]
    pub(crate) status: String,
}

/// Why a charge was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
enum Refusal {
    #[error("the card number is not valid")]
    InvalidNumber,
    #[error("the amount must be positive")]
    InvalidAmount,
    #[error("the card was declined")]
    Declined,
    #[error("the card has insufficient funds")]
    InsufficientFunds,
}

impl Refusal {
    /// The `error.type` value.
    const fn code(self) -> &'static str {
        match self {
            Refusal::InvalidNumber => "invalid_number",
            Refusal::InvalidAmount => "invalid_amount",
            Refusal::Declined => "card_declined",
            Refusal::InsufficientFunds => "insufficient_funds",
        }
    }

    /// The gRPC status code answering it: the request was wrong, or the
    /// card cannot be charged. Neither is a failure of the server.
    const fn grpc_code(self) -> Code {
        match self {
            Refusal::InvalidNumber | Refusal::InvalidAmount => Code::InvalidArgument,
            Refusal::Declined | Refusal::InsufficientFunds => Code::FailedPrecondition,
        }
    }
}

pub(super) async fn run(config: Config, shutdown: Shutdown) -> Result<(), BoxError> {
    let grpc = ServiceBuilder::new()
        .layer(TraceLayer::grpc_server())
        .service(Payments);
    // Every method of the service goes to `Payments`, which answers
    // UNIMPLEMENTED for those it does not have.
    let routes = Router::new().route_service(&format!("/{}/{{method}}", Payments::NAME), grpc);
    net::serve_traced(config.addr, routes, Readiness::now(), shutdown).await
}

/// `shop.Payments`, over HTTP/2.
#[derive(Clone, Copy, Debug)]
struct Payments;

impl NamedService for Payments {
    const NAME: &'static str = "shop.Payments";
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<Request<axum::body::Body>> for Payments {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<axum::body::Body>) -> Self::Future {
        Box::pin(async move {
            if request.uri().path() != CHARGE_PATH {
                return Ok(Status::unimplemented("no such method").into_http());
            }
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<ChargeReply, ChargeRequest>::default());
            Ok(grpc.unary(Charge, request).await)
        })
    }
}

/// `Charge`: charges the card, inside the server span.
struct Charge;

impl UnaryService<ChargeRequest> for Charge {
    type Response = ChargeReply;
    type Future = Ready<Result<tonic::Response<ChargeReply>, Status>>;

    fn call(&mut self, request: tonic::Request<ChargeRequest>) -> Self::Future {
        ready(pay(&request.into_inner()).map(tonic::Response::new))
    }
}

/// A traced client of the payment service.
pub(crate) type PaymentsClient =
    tonic::client::Grpc<Trace<Channel, tracewire_tower::Client<(), (), tracewire_tower::Grpc>>>;

/// A client of the payment service at `origin` (`http://host:port`): a
/// tonic `Channel` (connecting on first use) wrapped with
/// `TraceLayer::grpc_client()`, so every call is a CLIENT span whose
/// context travels in the request metadata.
pub(crate) fn client(origin: &str) -> Result<PaymentsClient, BoxError> {
    let uri: axum::http::Uri = origin
        .parse()
        .map_err(|e| format!("{origin:?} is not a URI: {e}"))?;
    let channel = Endpoint::from(uri.clone())
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy();
    let traced = ServiceBuilder::new()
        .layer(TraceLayer::grpc_client())
        .service(channel);
    // `with_origin` puts the server's address into each request's URI,
    // where the client layer reads `server.address` and `server.port`.
    Ok(tonic::client::Grpc::with_origin(traced, uri))
}

/// Calls `shop.Payments/Charge`.
pub(crate) async fn charge_card(
    client: &mut PaymentsClient,
    charge: ChargeRequest,
) -> Result<ChargeReply, Status> {
    client.ready().await.map_err(|e| {
        let e: BoxError = e.into();
        Status::unavailable(e.to_string())
    })?;
    let mut request = tonic::Request::new(charge);
    request.set_timeout(CHARGE_DEADLINE);
    client
        .unary(
            request,
            PathAndQuery::from_static(CHARGE_PATH),
            ProstCodec::<ChargeRequest, ChargeReply>::default(),
        )
        .await
        .map(tonic::Response::into_inner)
}

/// The Luhn checksum of a card number (digits only, 12 to 19 of them).
fn luhn_valid(card: &str) -> bool {
    let digits: Option<Vec<u32>> = card.chars().map(|c| c.to_digit(10)).collect();
    let Some(digits) = digits.filter(|d| (12..=19).contains(&d.len())) else {
        return false;
    };
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| match (i % 2, d * 2) {
            (0, _) => d,
            (_, doubled) if doubled > 9 => doubled - 9,
            (_, doubled) => doubled,
        })
        .sum();
    sum.is_multiple_of(10)
}

/// What the card processor says about charging `amount_cents` to `card`.
fn charge(card: &str, amount_cents: i64) -> Result<String, Refusal> {
    let card: String = card.chars().filter(|c| *c != ' ' && *c != '-').collect();
    if amount_cents <= 0 {
        return Err(Refusal::InvalidAmount);
    }
    if !luhn_valid(&card) {
        return Err(Refusal::InvalidNumber);
    }
    match card.as_str() {
        DECLINED_CARD => Err(Refusal::Declined),
        NO_FUNDS_CARD => Err(Refusal::InsufficientFunds),
        _ => Ok(format!("pay_{:016x}", fastrand::u64(..))),
    }
}

fn pay(request: &ChargeRequest) -> Result<ChargeReply, Status> {
    let span = tracing::info_span!(
        "charge card",
        otel.kind = "internal",
        payment.amount_cents = request.amount_cents,
        order.id = request.order_id,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    let result = span.in_scope(|| charge(&request.card, request.amount_cents));
    match result {
        Ok(payment_id) => {
            span.in_scope(|| tracing::info!(payment.id = %payment_id, "charge captured"));
            Ok(ChargeReply {
                payment_id,
                status: "captured".to_owned(),
            })
        }
        Err(refusal) => {
            span.record("otel.status_code", "error");
            span.record("otel.status_message", refusal.to_string());
            span.record("error.type", refusal.code());
            span.in_scope(|| tracing::warn!(reason = refusal.code(), "charge refused: {refusal}"));
            Err(Status::new(refusal.grpc_code(), refusal.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_real_test_numbers_and_refuses_typos() {
        for card in ["4242424242424242", "4000000000000002", "5555555555554444"] {
            assert!(luhn_valid(card), "{card}");
        }
        for card in [
            "4242424242424241",
            "42424242",
            "4242x24242424242",
            "",
            "٤٢٤٢",
        ] {
            assert!(!luhn_valid(card), "{card}");
        }
    }

    #[test]
    fn charges_are_refused_for_the_processors_reasons() {
        assert!(charge("4242 4242 4242 4242", 1999).is_ok());
        assert_eq!(charge(DECLINED_CARD, 1999), Err(Refusal::Declined));
        assert_eq!(charge(NO_FUNDS_CARD, 1999), Err(Refusal::InsufficientFunds));
        assert_eq!(
            charge("4242424242424241", 1999),
            Err(Refusal::InvalidNumber)
        );
        assert_eq!(charge("4242424242424242", 0), Err(Refusal::InvalidAmount));
    }

    #[test]
    fn refusals_are_business_statuses_not_server_failures() {
        let declined = ChargeRequest {
            order_id: 1,
            amount_cents: 1999,
            card: DECLINED_CARD.to_owned(),
        };
        let status = pay(&declined).unwrap_err();
        assert_eq!(status.code(), Code::FailedPrecondition);
        assert_eq!(status.message(), "the card was declined");
        let typo = ChargeRequest {
            card: "4242424242424241".to_owned(),
            ..declined
        };
        assert_eq!(pay(&typo).unwrap_err().code(), Code::InvalidArgument);
        let good = ChargeRequest {
            card: "4242424242424242".to_owned(),
            ..declined
        };
        let reply = pay(&good).unwrap();
        assert_eq!(reply.status, "captured");
        assert!(reply.payment_id.starts_with("pay_"), "{}", reply.payment_id);
    }
}
