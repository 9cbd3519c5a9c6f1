//! The client endpoints of the payment functions: each hands the request's `data` to its use
//! case and answers with the success envelope or the error table's answer.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::envelope::{Envelope, Success};
use super::error::{self, ApiError};
use super::{AppState, Authorized, WithinRateLimit};
use crate::ledger::IdempotencyKey;
use crate::payments::{
    ConfirmedData, CreateInput, CreatedData, PaymentIntentData, PaymentIntentInput,
};

#[utoipa::path(
    post,
    path = "/stripe_create_payment_intent",
    tag = "payments",
    request_body = Envelope<CreateInput>,
    params(("Idempotency-Key" = Option<String>, Header,
            description = "1-255 printable ASCII characters; makes a retried create safe (docs/contract.md §7)")),
    responses(
        (status = 200, description = "Created", body = Success<CreatedData>,
         headers(("Idempotent-Replayed" = String, description = "`true` when this is a replay"))),
        (status = 400, description = "Invalid body, amount, currency, description, metadata or Idempotency-Key", body = error::ErrorBody),
        (status = 405, description = "Not POST or OPTIONS", body = error::ErrorBody),
        (status = 409, description = "A request with the same Idempotency-Key is in flight", body = error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = error::ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = error::ErrorBody),
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
    Envelope { data }: Envelope,
) -> Result<Response, ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(IdempotencyKey::parse)
                .ok_or(ApiError::IdempotencyKeyInvalid)?,
        ),
    };
    let created = state.payments.create(&data, key.as_ref()).await?;
    let mut response = Success::new(created.data).into_response();
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
    request_body = Envelope<PaymentIntentInput>,
    security((), ("api_token" = [])),
    responses(
        (status = 200, description = "The payment succeeded", body = Success<ConfirmedData>),
        (status = 400, description = "Invalid body or id, or payment_not_completed", body = error::ErrorBody),
        (status = 401, description = "API_TOKENS is set and the token is missing or wrong", body = error::ErrorBody),
        (status = 405, description = "Not POST or OPTIONS", body = error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = error::ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = error::ErrorBody),
        (status = 500, description = "Stripe failed (stripe_error, stripe_unreachable)", body = error::ErrorBody),
        (status = 503, description = "Database unavailable", body = error::ErrorBody),
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
    _auth: Authorized,
    Envelope { data }: Envelope,
) -> Result<Success<ConfirmedData>, ApiError> {
    Ok(Success::new(state.payments.confirm(&data).await?))
}

#[utoipa::path(
    post,
    path = "/stripe_get_payment_intent",
    tag = "payments",
    request_body = Envelope<PaymentIntentInput>,
    security((), ("api_token" = [])),
    responses(
        (status = 200, description = "The PaymentIntent", body = Success<PaymentIntentData>),
        (status = 400, description = "Invalid body or id", body = error::ErrorBody),
        (status = 401, description = "API_TOKENS is set and the token is missing or wrong", body = error::ErrorBody),
        (status = 405, description = "Not POST or OPTIONS", body = error::ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = error::ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = error::ErrorBody),
        (status = 500, description = "Stripe failed (stripe_error, stripe_unreachable)", body = error::ErrorBody),
        (status = 503, description = "Database unavailable", body = error::ErrorBody),
    )
)]
pub async fn get_payment_intent(
    State(state): State<AppState>,
    _auth: Authorized,
    Envelope { data }: Envelope,
) -> Result<Success<PaymentIntentData>, ApiError> {
    Ok(Success::new(state.payments.get(&data).await?))
}
