//! The API gateway: the shop's public entry. `POST /api/login` goes to
//! auth (retried on transient failures), `POST /api/orders` to orders.
//! Every answer carries a `traceresponse` header (W3C Trace Context
//! Level 2 draft) naming the trace the request became.

use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use axum::{Json, Router};
use reqwest_middleware::ClientWithMiddleware;
use tracewire_tower::TraceLayer;

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

async fn order(
    State(state): State<Arc<GatewayState>>,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let response = state
        .orders
        .post(format!("{}/orders", state.orders_url))
        .json(&body)
        .send()
        .await
        .map_err(|e| ApiError::unreachable("orders", &e))?;
    tracing::info!(status = response.status().as_u16(), "order answered");
    Ok(net::relay("orders", response).await)
}
