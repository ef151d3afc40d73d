//! The user service: `POST /users/lookup` finds a user by e-mail, in its
//! cache first, else in the database (a full table scan: `email` has no
//! index), and caches what it found.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;

use super::{Config, env, optional, required};
use crate::BoxError;
use crate::db::{Db, User};
use crate::net::{ApiError, Shutdown};

/// Entries the cache holds at most.
const MAX_CACHED: usize = 50_000;

struct UsersState {
    db: Db,
    cache: Mutex<HashMap<String, User>>,
}

#[derive(Debug, Deserialize)]
struct LookupRequest {
    email: String,
}

pub(super) async fn run(config: Config, shutdown: Shutdown) -> Result<(), BoxError> {
    let db = Db::connect(&required(env::DATABASE_URL)?, 4).await?;
    let hot = optional(env::HOT_USERS)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let cache: HashMap<_, _> = db
        .first_users(hot)
        .await?
        .into_iter()
        .map(|user| (user.email.clone(), user))
        .collect();
    tracing::info!(users = cache.len(), "cache warmed");
    let state = Arc::new(UsersState {
        db: db.clone(),
        cache: Mutex::new(cache),
    });
    let routes = Router::new()
        .route("/users/lookup", post(lookup))
        .with_state(state);
    super::serve_then_close(&config, routes, db, shutdown).await
}

impl UsersState {
    /// Looks `email` up in the cache, in a `cache get` span.
    fn cached(&self, email: &str) -> Option<User> {
        let span = tracing::info_span!(
            "cache get",
            otel.kind = "internal",
            cache.hit = tracing::field::Empty
        );
        let _entered = span.enter();
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let user = cache.get(email).cloned();
        span.record("cache.hit", user.is_some());
        user
    }

    fn remember(&self, user: &User) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED
            && let Some(evicted) = cache.keys().next().cloned()
        {
            cache.remove(&evicted);
        }
        cache.insert(user.email.clone(), user.clone());
    }
}

async fn lookup(
    State(state): State<Arc<UsersState>>,
    Json(request): Json<LookupRequest>,
) -> Result<Json<User>, ApiError> {
    if let Some(user) = state.cached(&request.email) {
        tracing::info!(user.id = user.id, "cache hit");
        return Ok(Json(user));
    }
    tracing::info!("cache miss: looking the user up in the database");
    let found = state.db.users_by_email(&request.email).await.map_err(|e| {
        tracing::error!(error = %e, "user lookup failed");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "user lookup failed")
    })?;
    match found.into_iter().next() {
        Some(user) => {
            tracing::info!(user.id = user.id, "loaded from the database and cached");
            state.remember(&user);
            Ok(Json(user))
        }
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "no such user")),
    }
}
