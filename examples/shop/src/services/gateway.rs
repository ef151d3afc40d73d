//! The API gateway: the shop's public entry. `POST /api/login` goes to
//! auth (retried on transient failures). `POST /api/orders` is a checkout:
//! the customer is authenticated through auth first (which asks users,
//! cache then database), then the order goes to orders for the user id
//! auth answered, so one checkout is one trace across all six services.
//! Every answer carries a `traceresponse` header (W3C Trace Context
//! Level 2 draft) naming the trace the request became.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use reqwest_middleware::ClientWithMiddleware;
use serde::Deserialize;
use tracewire_tower::TraceLayer;

use super::auth::{LoginRequest, LoginResponse};
use super::orders::OrderRequest;
use super::{Config, FAULT_HEADER, Service, peer_url};
use crate::BoxError;
use crate::net::{self, ApiError, Ready, Shutdown};

/// The response header naming the request's trace.
pub(crate) const TRACE_RESPONSE: &str = "traceresponse";

struct GatewayState {
    auth: ClientWithMiddleware,
    auth_url: String,
    orders: ClientWithMiddleware,
    orders_url: String,
}

pub(super) async fn run(config: Config, shutdown: Shutdown) -> Result<(), BoxError> {
    let state = Arc::new(GatewayState {
        auth: net::retrying_client()?,
        auth_url: peer_url(Service::Auth)?,
        orders: net::client()?,
        orders_url: peer_url(Service::Orders)?,
    });
    let routes = Router::new()
        .route("/api/login", post(login))
        .route("/api/orders", post(order))
        .with_state(state);
    // The public edge tells callers the trace of their request.
    let trace = TraceLayer::server().traceresponse_header(true);
    net::serve(config.addr, routes, trace, Ready::now(), shutdown).await
}

async fn login(
    State(state): State<Arc<GatewayState>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let mut request = state
        .auth
        .post(format!("{}/login", state.auth_url))
        .json(&body);
    if let Some(fault) = headers.get(FAULT_HEADER) {
        request = request.header(FAULT_HEADER, fault.as_bytes());
    }
    let response = request
        .send()
        .await
        .map_err(|e| ApiError::unreachable("auth", &e))?;
    tracing::info!(status = response.status().as_u16(), "login answered");
    Ok(net::relay("auth", response).await)
}

/// A checkout: who the customer is, and what to charge.
#[derive(Debug, Deserialize)]
struct Checkout {
    email: String,
    amount_cents: i64,
    card: String,
}

async fn order(
    State(state): State<Arc<GatewayState>>,
    Json(checkout): Json<Checkout>,
) -> Result<Response, ApiError> {
    // Authenticate the customer's session through auth (→ users).
    let login = state
        .auth
        .post(format!("{}/login", state.auth_url))
        .json(&LoginRequest {
            email: checkout.email,
        })
        .send()
        .await
        .map_err(|e| ApiError::unreachable("auth", &e))?;
    if !login.status().is_success() {
        tracing::info!(
            status = login.status().as_u16(),
            "checkout refused: not authenticated"
        );
        return Ok(net::relay("auth", login).await);
    }
    let session: LoginResponse = login.json().await.map_err(|e| {
        tracing::error!(error = %e, "auth sent a session that cannot be read");
        ApiError::new(axum::http::StatusCode::BAD_GATEWAY, "auth answered badly")
    })?;
    tracing::info!(user.id = session.user_id, "checkout authenticated");
    let response = state
        .orders
        .post(format!("{}/orders", state.orders_url))
        .json(&OrderRequest {
            user_id: session.user_id,
            amount_cents: checkout.amount_cents,
            card: checkout.card,
        })
        .send()
        .await
        .map_err(|e| ApiError::unreachable("orders", &e))?;
    tracing::info!(status = response.status().as_u16(), "order answered");
    Ok(net::relay("orders", response).await)
}
