//! What operators and their tools call: health, readiness, metrics and the OpenAPI document.

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::{openapi, AppState};
use crate::payments::Error as PaymentsError;

pub async fn healthz() -> Response {
    (StatusCode::OK, axum::Json(json!({"status": "ok"}))).into_response()
}

/// Ready when the database answers (within 2 s) and can write (a probe row is written and
/// deleted; its answer is reused for a second). The Stripe configuration was loaded at start.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let ledger = &state.payments.ledger;
    let check = async {
        ledger
            .ping()
            .await
            .map_err(|_| ApiError::NotReady("database unreachable"))?;
        let probed = ledger.probe_write().await;
        probed.map_err(|e| ApiError::Payments(PaymentsError::from(e)))
    };
    let outcome = tokio::time::timeout(Duration::from_secs(2), check)
        .await
        .unwrap_or(Err(ApiError::NotReady("database unreachable")));
    match outcome {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({"status": "ready", "database": "ok", "stripe": state.stripe_mode})),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(code = e.code(), error = %e, "not ready");
            e.into_response()
        }
    }
}

pub async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::prometheus::render(),
    )
        .into_response()
}

pub async fn openapi_json() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document_json(),
    )
        .into_response()
}
