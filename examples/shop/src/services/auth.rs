//! The auth service: `POST /login` asks the user service who the user is
//! and issues a session token.
//!
//! A request carrying `x-shop-fault: flaky-auth` plays an overloaded
//! instance: the first attempt of its trace is shed with 503, so the
//! gateway's retry shows up in the trace.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use reqwest_middleware::ClientWithMiddleware;
use serde::{Deserialize, Serialize};
use tracewire::TraceId;
use tracewire_tower::TraceLayer;

use super::{Config, Service, peer_url};
use crate::BoxError;
use crate::db::User;
use crate::net::{self, ApiError, Ready, Shutdown};

/// The header that asks for a simulated fault.
pub(crate) const FAULT_HEADER: &str = "x-shop-fault";
/// Its value asking auth to shed the first attempt.
pub(crate) const FLAKY_AUTH: &str = "flaky-auth";
/// How many shed traces are remembered (then the memory starts again).
const MAX_SHED: usize = 10_000;

struct AuthState {
    users: ClientWithMiddleware,
    users_url: String,
    shed: Mutex<HashSet<TraceId>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LoginRequest {
    pub(crate) email: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LoginResponse {
    pub(crate) token: String,
    pub(crate) user_id: i64,
    pub(crate) name: String,
}

pub(super) async fn run(config: Config, shutdown: Shutdown) -> Result<(), BoxError> {
    let state = Arc::new(AuthState {
        users: net::client()?,
        users_url: peer_url(Service::Users)?,
        shed: Mutex::new(HashSet::new()),
    });
    let routes = Router::new().route("/login", post(login)).with_state(state);
    net::serve(
        config.addr,
        routes,
        TraceLayer::server(),
        Ready::now(),
        shutdown,
    )
    .await
}

/// Whether to shed this attempt: the first one of each trace that asked.
fn shed_first_attempt(state: &AuthState, headers: &HeaderMap) -> bool {
    let asked = headers
        .get(FAULT_HEADER)
        .is_some_and(|v| v.as_bytes() == FLAKY_AUTH.as_bytes());
    let Some(cx) = tracewire::current_span_context().filter(|_| asked) else {
        return false;
    };
    let mut shed = state.shed.lock().unwrap_or_else(|e| e.into_inner());
    if shed.len() >= MAX_SHED {
        shed.clear();
    }
    shed.insert(cx.trace_id())
}

async fn login(
    State(state): State<Arc<AuthState>>,
    headers: HeaderMap,
    Json(request): Json<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    if shed_first_attempt(&state, &headers) {
        tracing::warn!("overloaded: shedding this attempt with 503");
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "auth is overloaded, try again",
        ));
    }
    let response = state
        .users
        .post(format!("{}/users/lookup", state.users_url))
        .json(&request)
        .send()
        .await
        .map_err(|e| ApiError::unreachable("users", &e))?;
    match response.status() {
        status if status.is_success() => {}
        StatusCode::NOT_FOUND => {
            tracing::info!("login refused: no such user");
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unknown user"));
        }
        status => {
            tracing::error!(%status, "the user service failed");
            return Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("users answered {status}"),
            ));
        }
    }
    let user: User = response.json().await.map_err(|e| {
        tracing::error!(error = %e, "the user service sent a user that cannot be read");
        ApiError::new(StatusCode::BAD_GATEWAY, "users answered badly")
    })?;
    tracing::info!(user.id = user.id, "issued a session token");
    Ok(Json(LoginResponse {
        token: format!("{:032x}", fastrand::u128(..)),
        user_id: user.id,
        name: user.name,
    }))
}
