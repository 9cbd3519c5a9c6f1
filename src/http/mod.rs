//! The HTTP surface: routes, CORS, method and size rules, and the four handlers.

pub mod envelope;
pub mod error;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{post, MethodRouter};
use axum::Router;
use serde_json::json;

use crate::payments::Payments;
use envelope::{Envelope, Success, CLIENT_BODY_LIMIT};
use error::ApiError;

/// Stripe events can carry large objects; they get more room than client bodies.
pub const WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// Which origins may call the client endpoints from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    Any,
    List(Vec<String>),
}

#[derive(Clone)]
pub struct AppState {
    pub payments: Arc<Payments>,
    pub cors: Arc<CorsOrigins>,
}

pub fn router(state: AppState) -> Router {
    let client = |route: MethodRouter<AppState>| {
        route
            .options(preflight)
            .fallback(|| async { ApiError::MethodNotAllowed("POST, OPTIONS") })
            .layer(DefaultBodyLimit::max(CLIENT_BODY_LIMIT))
    };
    Router::new()
        .route("/stripe_create_payment_intent", client(post(create)))
        .route("/stripe_confirm_payment", client(post(confirm)))
        .route("/stripe_get_payment_intent", client(post(get)))
        .route(
            "/stripe_webhook",
            post(webhook)
                .fallback(|| async { ApiError::MethodNotAllowed("POST") })
                .layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), cors))
        .with_state(state)
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Envelope(data): Envelope,
) -> Result<Response, ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(crate::payments::check_idempotency_key(
            v.to_str().map_err(|_| ApiError::IdempotencyKeyInvalid)?,
        )?),
    };
    let created = state.payments.create(&data, key).await?;
    let mut response = Success(created.data).into_response();
    if created.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

async fn confirm(
    State(state): State<AppState>,
    Envelope(data): Envelope,
) -> Result<Success, ApiError> {
    state.payments.confirm(&data).await.map(Success)
}

async fn get(State(state): State<AppState>, Envelope(data): Envelope) -> Result<Success, ApiError> {
    state.payments.get(&data).await.map(Success)
}

/// Raw bytes, never `Json`: the signature covers the exact body.
async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // A header that is there but not text is malformed, not missing.
    let signature = headers
        .get("stripe-signature")
        .map(|v| v.to_str().unwrap_or(""));
    let now = chrono::Utc::now().timestamp();
    match state.payments.webhook(signature, &body, now).await {
        Ok(_) => (StatusCode::OK, axum::Json(json!({"received": true}))).into_response(),
        Err(e) => {
            if e.status().is_client_error() {
                tracing::warn!(code = e.code(), "webhook rejected");
            }
            e.into_response()
        }
    }
}

async fn preflight() -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    let h = response.headers_mut();
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("Content-Type, Authorization, Idempotency-Key"),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Every response, errors included, carries the CORS origin header (SPEC §2).
async fn cors(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let origin = request.headers().get(header::ORIGIN).cloned();
    let is_options = request.method() == Method::OPTIONS;
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // Lets browser code read whether a create was a replay.
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Idempotent-Replayed"),
    );
    match state.cors.as_ref() {
        CorsOrigins::Any => {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        CorsOrigins::List(allowed) => {
            headers.append(header::VARY, HeaderValue::from_static("Origin"));
            if let Some(origin) = origin.filter(|o| {
                o.to_str()
                    .map(|o| allowed.iter().any(|a| a == o))
                    .unwrap_or(false)
            }) {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            } else if is_options {
                // A preflight from an origin that is not allowed gets no CORS grant at all.
                headers.remove(header::ACCESS_CONTROL_ALLOW_METHODS);
                headers.remove(header::ACCESS_CONTROL_ALLOW_HEADERS);
            }
        }
    }
    response
}
