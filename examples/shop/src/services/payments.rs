//! The payment service: `POST /payments` charges a card.
//!
//! The card checks are real ones (digits, length, the Luhn checksum);
//! the well-known test card numbers `4000 0000 0000 0002` (declined) and
//! `4000 0000 0000 9995` (insufficient funds) are refused the way a card
//! processor refuses them. A refusal answers 402 Payment Required and sets
//! status Error on the `charge card` span (the server span stays Unset, as
//! for every 4xx answer).

use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tracewire_tower::TraceLayer;

use super::Config;
use crate::BoxError;
use crate::net::{self, ApiError, Ready, Shutdown};

/// A card the processor declines.
pub(crate) const DECLINED_CARD: &str = "4000000000000002";
/// A card without the funds.
const NO_FUNDS_CARD: &str = "4000000000009995";

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PaymentRequest {
    pub(crate) order_id: i64,
    pub(crate) amount_cents: i64,
    pub(crate) card: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PaymentResponse {
    pub(crate) payment_id: String,
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
}

pub(super) async fn run(config: Config, shutdown: Shutdown) -> Result<(), BoxError> {
    let routes = Router::new().route("/payments", post(pay));
    net::serve(
        config.addr,
        routes,
        TraceLayer::server(),
        Ready::now(),
        shutdown,
    )
    .await
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

async fn pay(Json(request): Json<PaymentRequest>) -> Result<Json<PaymentResponse>, ApiError> {
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
            Ok(Json(PaymentResponse {
                payment_id,
                status: "captured".to_owned(),
            }))
        }
        Err(refusal) => {
            span.record("otel.status_code", "error");
            span.record("otel.status_message", refusal.to_string());
            span.record("error.type", refusal.code());
            span.in_scope(|| tracing::warn!(reason = refusal.code(), "charge refused: {refusal}"));
            Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                refusal.to_string(),
            ))
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
}
