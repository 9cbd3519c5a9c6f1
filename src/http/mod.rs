//! The HTTP surface: routes, CORS, method and size rules, and the four handlers.

pub mod access;
pub mod bodies;
pub mod envelope;
pub mod error;
pub mod openapi;
pub mod server;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use serde_json::json;
use tracing::Instrument;

use crate::payments::Payments;
use access::Access;
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
    pub access: Arc<Access>,
    /// What `/readyz` reports about Stripe: `configured` or `sandbox`.
    pub stripe_mode: &'static str,
}

const CLIENT_ROUTES: [&str; 3] = [
    "/stripe_create_payment_intent",
    "/stripe_confirm_payment",
    "/stripe_get_payment_intent",
];

/// The service's routes. `bodies` bounds the time and memory of request bodies; it sits under
/// CORS and the access log so that its refusals carry both.
pub fn router(state: AppState, bodies: bodies::BodyLimits) -> Router {
    let client = |route: MethodRouter<AppState>| {
        route
            .options(preflight)
            .fallback(|| async { ApiError::MethodNotAllowed("POST, OPTIONS") })
            .layer(DefaultBodyLimit::max(CLIENT_BODY_LIMIT))
    };
    Router::new()
        .route(CLIENT_ROUTES[0], client(post(create)))
        .route(CLIENT_ROUTES[1], client(post(confirm)))
        .route(CLIENT_ROUTES[2], client(post(get_payment_intent)))
        .route(
            "/stripe_webhook",
            post(webhook)
                .fallback(|| async { ApiError::MethodNotAllowed("POST") })
                .layer(DefaultBodyLimit::max(WEBHOOK_BODY_LIMIT)),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi_json))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(bodies, bodies::limit_bodies))
        .layer(middleware::from_fn_with_state(state.clone(), cors))
        .layer(middleware::from_fn(observe))
        .with_state(state)
}

/// Passes only requests that carry a configured API token (when `API_TOKENS` is set).
pub struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state
            .access
            .check_token(&parts.headers)
            .map(|()| Authorized)
    }
}

/// Counts the request against the client's create limit (when `CREATE_RATE_LIMIT` is set).
pub struct WithinRateLimit;

impl FromRequestParts<AppState> for WithinRateLimit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let client = state.access.client_ip(peer, &parts.headers);
        state.access.check_rate(client).map(|()| WithinRateLimit)
    }
}

#[utoipa::path(
    post,
    path = "/stripe_create_payment_intent",
    tag = "payments",
    request_body = openapi::CreateRequest,
    params(("Idempotency-Key" = Option<String>, Header,
            description = "1-255 printable ASCII characters; makes a retried create safe (SPEC §7)")),
    responses(
        (status = 200, description = "Created", body = openapi::CreatedEnvelope,
         headers(("Idempotent-Replayed" = String, description = "`true` when this is a replay"))),
        (status = 400, description = "Invalid body, amount, currency, description, metadata or Idempotency-Key", body = error::ErrorBody),
        (status = 405, description = "Not POST or OPTIONS", body = error::ErrorBody),
        (status = 409, description = "A request with the same Idempotency-Key is in flight", body = error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = error::ErrorBody),
        (status = 422, description = "Idempotency-Key used with other data", body = error::ErrorBody),
        (status = 429, description = "Over CREATE_RATE_LIMIT", body = error::ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 500, description = "Stripe failed (stripe_error, stripe_unreachable)", body = error::ErrorBody),
        (status = 503, description = "Database unavailable", body = error::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    _limit: WithinRateLimit,
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

#[utoipa::path(
    post,
    path = "/stripe_confirm_payment",
    tag = "payments",
    request_body = openapi::PaymentIntentRequest,
    security((), ("api_token" = [])),
    responses(
        (status = 200, description = "The payment succeeded", body = openapi::ConfirmedEnvelope),
        (status = 400, description = "Invalid body or id, or payment_not_completed", body = error::ErrorBody),
        (status = 401, description = "API_TOKENS is set and the token is missing or wrong", body = error::ErrorBody),
        (status = 405, description = "Not POST or OPTIONS", body = error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = error::ErrorBody),
        (status = 500, description = "Stripe failed (stripe_error, stripe_unreachable)", body = error::ErrorBody),
        (status = 503, description = "Database unavailable", body = error::ErrorBody),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    _auth: Authorized,
    Envelope(data): Envelope,
) -> Result<Success, ApiError> {
    state.payments.confirm(&data).await.map(Success)
}

#[utoipa::path(
    post,
    path = "/stripe_get_payment_intent",
    tag = "payments",
    request_body = openapi::PaymentIntentRequest,
    security((), ("api_token" = [])),
    responses(
        (status = 200, description = "The PaymentIntent", body = openapi::PaymentIntentEnvelope),
        (status = 400, description = "Invalid body or id", body = error::ErrorBody),
        (status = 401, description = "API_TOKENS is set and the token is missing or wrong", body = error::ErrorBody),
        (status = 405, description = "Not POST or OPTIONS", body = error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = error::ErrorBody),
        (status = 500, description = "Stripe failed (stripe_error, stripe_unreachable)", body = error::ErrorBody),
        (status = 503, description = "Database unavailable", body = error::ErrorBody),
    )
)]
pub async fn get_payment_intent(
    State(state): State<AppState>,
    _auth: Authorized,
    Envelope(data): Envelope,
) -> Result<Success, ApiError> {
    state.payments.get(&data).await.map(Success)
}

/// Raw bytes, never `Json`: the signature covers the exact body.
#[utoipa::path(
    post,
    path = "/stripe_webhook",
    tag = "webhooks",
    request_body(content = Object, description = "A Stripe Event, as Stripe sent it", content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex>[,v1=<hex>…]")),
    responses(
        (status = 200, description = "Recorded (or already recorded)", body = openapi::Received),
        (status = 400, description = "Signature missing, unparseable, without v1, not matching, outside the tolerance, or body not an Event", body = error::ErrorBody),
        (status = 405, description = "Not POST", body = error::ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = error::ErrorBody),
        (status = 500, description = "Not recorded; Stripe retries", body = error::ErrorBody),
    )
)]
pub async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    // A header that is there but not text is malformed, not missing.
    let signature = headers
        .get("stripe-signature")
        .map(|v| v.to_str().unwrap_or(""));
    let now = chrono::Utc::now().timestamp();
    match state.payments.webhook(signature, &body, now).await {
        Ok(_) => (StatusCode::OK, axum::Json(json!({"received": true}))).into_response(),
        Err(e) => {
            if e.status().is_client_error() {
                metrics::counter!("tmt_webhook_rejections_total", "reason" => e.code())
                    .increment(1);
                tracing::warn!(code = e.code(), "webhook rejected");
            }
            e.into_response()
        }
    }
}

async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
}

/// Ready when the database answers (within 2 s) and the Stripe configuration is loaded.
async fn readyz(State(state): State<AppState>) -> Response {
    let ping = tokio::time::timeout(Duration::from_secs(2), state.payments.ledger.ping()).await;
    let database = match ping {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("database: {e}")),
        Err(_) => Err("database: no answer within 2 s".to_string()),
    };
    match database {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({"status": "ready", "database": "ok", "stripe": state.stripe_mode})),
        )
            .into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({
                    "status": 503,
                    "error": "Servicio no disponible",
                    "code": "not_ready",
                    "reason": "database unreachable",
                })),
            )
                .into_response()
        }
    }
}

async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::prometheus::render(),
    )
        .into_response()
}

async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document_json(),
    )
        .into_response()
}

/// Request id, access log line and request metrics for every request.
async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let path = request.uri().path();
    // Known routes only, so that scanners cannot grow the label set.
    let route = CLIENT_ROUTES
        .iter()
        .chain(&[
            "/stripe_webhook",
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
        ])
        .find(|r| **r == path)
        .copied()
        .unwrap_or(if path.starts_with("/sandbox/") {
            "/sandbox"
        } else {
            "other"
        });
    let method = request.method().clone();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    let span = tracing::info_span!("request", request_id = %request_id, route);
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let latency = started.elapsed();
    metrics::counter!("tmt_http_requests_total", "route" => route, "method" => method.to_string(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("tmt_http_request_duration_seconds", "route" => route)
        .record(latency.as_secs_f64());
    span.in_scope(|| {
        tracing::info!(
            method = %method,
            status,
            latency_ms = latency.as_secs_f64() * 1000.0,
            "request completed"
        )
    });
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
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
