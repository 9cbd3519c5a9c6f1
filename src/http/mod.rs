//! The HTTP surface: routes, CORS, method, media type and size rules, access control, request
//! ids and metrics. The handlers live in `payments` (client endpoints), `webhook` (Stripe) and
//! `ops` (operators); `error` decides every failure's status, code and message.

pub mod access;
pub mod bodies;
pub mod envelope;
pub mod error;
pub mod openapi;
pub mod ops;
pub mod organizers;
pub mod payments;
pub mod server;
pub mod webhook;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tracing::Instrument;

use crate::payments::Payments;
use access::Access;
use envelope::CLIENT_BODY_LIMIT;
use error::ApiError;
use ops::{healthz, metrics, openapi_json, readyz};
use organizers::{get_organizer, onboard};
use payments::{cancel, capture, confirm, create, get_payment_intent, refund};
use webhook::webhook;

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

/// A client function's path and whether it needs one of `API_TOKENS` (when that is set). The
/// router enforces the token from here, and the start-up warning without `API_TOKENS` names
/// the functions it leaves open from here: the two cannot disagree.
pub struct ClientRoute {
    pub path: &'static str,
    pub needs_token: bool,
}

pub const CLIENT_ROUTES: [ClientRoute; 8] = [
    ClientRoute {
        path: "/stripe_create_payment_intent",
        needs_token: false,
    },
    ClientRoute {
        path: "/stripe_confirm_payment",
        needs_token: true,
    },
    ClientRoute {
        path: "/stripe_get_payment_intent",
        needs_token: true,
    },
    ClientRoute {
        path: "/stripe_refund_payment",
        needs_token: true,
    },
    ClientRoute {
        path: "/stripe_cancel_payment_intent",
        needs_token: true,
    },
    ClientRoute {
        path: "/stripe_capture_payment",
        needs_token: true,
    },
    ClientRoute {
        path: "/stripe_onboard_organizer",
        needs_token: true,
    },
    ClientRoute {
        path: "/stripe_get_organizer",
        needs_token: true,
    },
];

/// The functions that answer anyone when `API_TOKENS` is unset, by name.
pub fn open_without_tokens() -> Vec<&'static str> {
    CLIENT_ROUTES
        .iter()
        .filter(|r| r.needs_token)
        .map(|r| r.path.trim_start_matches('/'))
        .collect()
}

/// A router being built, and the path of every route mounted on it. Every route of the service
/// is mounted through one, so that [`crate::app::Application::paths`] lists them all (a test
/// walks each, so that no route can forget a rule that holds for all).
pub struct Routes<S> {
    router: Router<S>,
    paths: Vec<String>,
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Routes {
            router: Router::new(),
            paths: Vec::new(),
        }
    }

    pub fn route(mut self, path: &str, route: MethodRouter<S>) -> Self {
        self.paths.push(path.to_string());
        self.router = self.router.route(path, route);
        self
    }

    /// The router, to give layers and state to, and the paths it has.
    pub fn into_parts(self) -> (Router<S>, Vec<String>) {
        (self.router, self.paths)
    }
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

/// The service's routes, and their paths. `bodies` bounds the time and memory of request
/// bodies; it sits under CORS and the access log so that its refusals carry both.
pub fn router(state: AppState, bodies: bodies::BodyLimits) -> (Router, Vec<String>) {
    let token = middleware::from_fn_with_state(state.clone(), require_token);
    let client = |route: &ClientRoute, handler: MethodRouter<AppState>| {
        // The token is asked of the function only: a preflight carries none.
        let handler = if route.needs_token {
            handler.route_layer(token.clone())
        } else {
            handler
        };
        handler
            .options(preflight)
            .fallback(|| async { ApiError::MethodNotAllowed("POST, OPTIONS") })
            .layer(DefaultBodyLimit::max(CLIENT_BODY_LIMIT))
            .layer(middleware::from_fn(require_json))
    };
    // In the order of CLIENT_ROUTES.
    let handlers = [
        post(create),
        post(confirm),
        post(get_payment_intent),
        post(refund),
        post(cancel),
        post(capture),
        post(onboard),
        post(get_organizer),
    ];
    let mut routes = Routes::new();
    for (route, handler) in CLIENT_ROUTES.iter().zip(handlers) {
        routes = routes.route(route.path, client(route, handler));
    }
    let (router, paths) = routes
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
        .into_parts();
    let router = router
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(bodies, bodies::limit_bodies))
        .layer(middleware::from_fn_with_state(state.clone(), cors))
        .layer(middleware::from_fn(observe))
        .with_state(state);
    (router, paths)
}

/// A client endpoint reads only `application/json`. A page on any site may POST `text/plain`
/// or a form across origins without a CORS preflight; refusing those makes every browser call
/// a preflighted one, so that `CORS_ORIGINS` really decides who can call (docs/contract.md §2). This runs
/// before any extractor: a refused request counts against no rate limit and reaches neither
/// Stripe nor the ledger.
async fn require_json(request: Request, next: Next) -> Response {
    if request.method() == Method::POST && !envelope::is_json(request.headers()) {
        return ApiError::UnsupportedMediaType.into_response();
    }
    next.run(request).await
}

/// Passes only requests that carry a configured API token (when `API_TOKENS` is set), before
/// anything of the request is read.
async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.access.check_token(request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// Counts the request against the client's create limit (when `CREATE_RATE_LIMIT` is set).
pub struct WithinRateLimit;

impl FromRequestParts<AppState> for WithinRateLimit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = state.access.client(&parts.extensions, &parts.headers);
        state.access.check_rate(client).map(|()| WithinRateLimit)
    }
}

/// Every error the service answers is the JSON error of docs/contract.md §2, on every route,
/// whoever made it. Routes answer their own failures with [`ApiError`]; what the framework
/// answers by itself (its 405 with `Allow` on a route without a fallback, its 413 past a
/// route's body limit, its 400 for a path it cannot decode) has no body or a text one, and is
/// turned here into the table's error of that status, keeping the answer's headers (`Allow`,
/// CORS, the request id). Pages for people (HTML) and JSON answers pass as they are: the
/// sandbox's errors are Stripe's own JSON. The outermost layer, over every route.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let typed = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json") || t.starts_with("text/html"));
    if typed {
        return response;
    }
    let (parts, _) = response.into_parts();
    let mut answer = ApiError::of_status(status).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

/// Request id, access log line and request metrics for every request of the routers it is a
/// layer of. The route is the one the request matched, as it was declared (`/dashboard/payments/{id}`,
/// not the payment's id), so that the label set is the route table's and scanners cannot grow
/// it; a request no route matched is `other`.
pub(crate) async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "other".to_string(), |p| p.as_str().to_string());
    let method = request.method().clone();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    let span = tracing::info_span!("request", request_id = %request_id, route = route.as_str());
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status().as_u16();
    let latency = started.elapsed();
    metrics::counter!("tmt_http_requests_total", "route" => route.clone(), "method" => method.to_string(), "status" => status.to_string())
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

/// Every response, errors included, carries the CORS origin header (docs/contract.md §2).
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenAPI document's `security` is written by hand on each function; it must say what
    /// the router enforces from `CLIENT_ROUTES`.
    #[test]
    fn the_openapi_document_asks_a_token_of_the_functions_that_need_one() {
        let doc: serde_json::Value = serde_json::from_str(&openapi::document_json()).unwrap();
        for route in &CLIENT_ROUTES {
            let security = &doc["paths"][route.path]["post"]["security"];
            let asks = security
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.get("api_token").is_some()));
            assert_eq!(asks, route.needs_token, "{}", route.path);
        }
        assert_eq!(
            open_without_tokens(),
            [
                "stripe_confirm_payment",
                "stripe_get_payment_intent",
                "stripe_refund_payment",
                "stripe_cancel_payment_intent",
                "stripe_capture_payment",
                "stripe_onboard_organizer",
                "stripe_get_organizer"
            ]
        );
    }
}
