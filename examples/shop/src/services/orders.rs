//! The order service: `POST /orders` stores the order, charges the card
//! through the payment service's gRPC method `shop.Payments/Charge`, and
//! publishes `order.created` to Kafka;
//! `POST /orders/{id}/notified` is the notification service's callback.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use rdkafka::producer::FutureRecord;
use serde::{Deserialize, Serialize};
use tracewire_rdkafka::TracedFutureProducer;

use super::payments::{self, ChargeRequest, PaymentsClient};
use super::{Config, Service, env, peer_url, required};
use crate::BoxError;
use crate::db::Db;
use crate::kafka::{self, OrderCreated, TOPIC};
use crate::net::{ApiError, Shutdown};

struct OrdersState {
    db: Db,
    payments: PaymentsClient,
    producer: TracedFutureProducer,
    run_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OrderRequest {
    pub(crate) user_id: i64,
    pub(crate) amount_cents: i64,
    pub(crate) card: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct OrderResponse {
    pub(crate) order_id: i64,
    pub(crate) status: String,
}

pub(super) async fn run(config: Config, shutdown: Shutdown) -> Result<(), BoxError> {
    let db = Db::connect(&required(env::DATABASE_URL)?, 4).await?;
    let brokers = required(env::KAFKA_BROKERS)?;
    let producer = TracedFutureProducer::from_config(&kafka::producer_config(&brokers))
        .map_err(|e| format!("cannot create the Kafka producer: {e}"))?;
    let state = Arc::new(OrdersState {
        db: db.clone(),
        payments: payments::client(&peer_url(Service::Payments)?)?,
        producer,
        run_id: config.run_id.clone(),
    });
    let routes = Router::new()
        .route("/orders", post(place))
        .route("/orders/{id}/notified", post(notified))
        .with_state(state);
    super::serve_then_close(&config, routes, db, shutdown).await
}

fn db_error(error: &sqlx::Error) -> ApiError {
    tracing::error!(error = %error, "database error");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "database error")
}

async fn place(
    State(state): State<Arc<OrdersState>>,
    Json(request): Json<OrderRequest>,
) -> Result<(StatusCode, Json<OrderResponse>), ApiError> {
    if request.amount_cents <= 0 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "amount_cents must be positive",
        ));
    }
    let order_id = state
        .db
        .insert_order(request.user_id, request.amount_cents)
        .await
        .map_err(|e| db_error(&e))?;
    tracing::info!(order.id = order_id, "order stored, charging the card");

    let charge = ChargeRequest {
        order_id,
        amount_cents: request.amount_cents,
        card: request.card,
    };
    // A clone of the client shares its channel (one HTTP/2 connection).
    let refused = match payments::charge_card(&mut state.payments.clone(), charge).await {
        Ok(reply) => {
            tracing::info!(order.id = order_id, payment.id = %reply.payment_id, "card charged");
            None
        }
        // A refusal's message is its reason ("the card was declined").
        Err(status) if status.message().is_empty() => {
            Some(format!("payments answered {:?}", status.code()))
        }
        Err(status) => Some(status.message().to_owned()),
    };
    if let Some(reason) = refused {
        state
            .db
            .set_order_status(order_id, "payment_failed")
            .await
            .map_err(|e| db_error(&e))?;
        tracing::error!(order.id = order_id, reason = %reason, "payment failed");
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("payment failed: {reason}"),
        ));
    }
    state
        .db
        .set_order_status(order_id, "paid")
        .await
        .map_err(|e| db_error(&e))?;

    let event = OrderCreated {
        order_id,
        user_id: request.user_id,
        amount_cents: request.amount_cents,
        run_id: state.run_id.clone(),
    };
    let payload = serde_json::to_vec(&event).map_err(|e| {
        tracing::error!(error = %e, "cannot encode the event");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "cannot encode the event")
    })?;
    let key = order_id.to_string();
    match state
        .producer
        .send(
            FutureRecord::to(TOPIC).key(&key).payload(&payload),
            Duration::from_secs(5),
        )
        .await
    {
        Ok(_) => tracing::info!(order.id = order_id, "order paid, {TOPIC} published"),
        // The order is paid: answer so, and say that the notification is lost.
        Err((error, _)) => {
            tracing::error!(order.id = order_id, error = %error, "cannot publish {TOPIC}");
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(OrderResponse {
            order_id,
            status: "paid".to_owned(),
        }),
    ))
}

async fn notified(
    State(state): State<Arc<OrdersState>>,
    Path(order_id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    if state
        .db
        .mark_notified(order_id)
        .await
        .map_err(|e| db_error(&e))?
    {
        tracing::info!(order.id = order_id, "customer notified");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(StatusCode::NOT_FOUND, "no such order"))
    }
}
