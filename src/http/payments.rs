//! The client endpoints of the payment functions: each hands the request's `data` to its use
//! case and answers with the success envelope or the error table's answer.

use std::collections::BTreeMap;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};
use utoipa::openapi::{RefOr, Response as Documented};
use utoipa::IntoResponses;

use super::envelope::{Envelope, Success};
use super::error::{self, ApiError};
use super::{AppState, WithinRateLimit};
use crate::ledger::IdempotencyKey;
use crate::payments::{
    CancelInput, CanceledData, CaptureInput, CaptureRequest, CapturedData, ConfirmedData,
    CreateInput, CreateRequest, CreatedData, Error as PaymentsError, IdempotentWrite,
    PaymentIntentData, PaymentIntentInput, RefundInput, RefundRequest, RefundedData,
};

/// The `Idempotency-Key` header, when there is one: 1–255 printable ASCII characters.
pub struct OptionalIdempotencyKey(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for OptionalIdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts.headers.get("idempotency-key") {
            None => Ok(OptionalIdempotencyKey(None)),
            Some(v) => v
                .to_str()
                .ok()
                .and_then(IdempotencyKey::parse)
                .map(|key| OptionalIdempotencyKey(Some(key)))
                .ok_or(ApiError::IdempotencyKeyInvalid),
        }
    }
}

/// The answers every client route can give whatever its use case, for the OpenAPI document:
/// the router's refusals (method, size, media type) and Stripe failing.
pub struct ClientRouteErrors;

/// The answer of a route that takes an API token, when the token is missing or wrong.
pub struct TokenErrors;

/// The answers of a write that takes an Idempotency-Key, when the key is busy or reused.
pub struct KeyErrors;

impl IntoResponses for ClientRouteErrors {
    fn responses() -> BTreeMap<String, RefOr<Documented>> {
        error::documented(&[
            (405, "Not POST or OPTIONS"),
            (413, "Body over 64 KiB"),
            (415, "Content-Type is not application/json"),
            (500, "Stripe failed (stripe_error, stripe_unreachable)"),
        ])
    }
}

impl IntoResponses for TokenErrors {
    fn responses() -> BTreeMap<String, RefOr<Documented>> {
        error::documented(&[(401, "API_TOKENS is set and the token is missing or wrong")])
    }
}

impl IntoResponses for KeyErrors {
    fn responses() -> BTreeMap<String, RefOr<Documented>> {
        error::documented(&[
            (409, "A request with the same Idempotency-Key is in flight"),
            (422, "Idempotency-Key used with other data"),
        ])
    }
}

/// Makes the write that `parse` reads from `data`, once per Idempotency-Key; its answer in the
/// success envelope, marked when it is a replay.
async fn write<W: IdempotentWrite>(
    state: &AppState,
    data: &Map<String, Value>,
    key: Option<IdempotencyKey>,
    parse: fn(&Map<String, Value>) -> Result<W, PaymentsError>,
) -> Result<Response, ApiError> {
    let answer = state.payments.write(data, key.as_ref(), parse).await?;
    let mut response = Success::new(answer.data).into_response();
    if answer.replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

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
        (status = 400, description = "Invalid body, amount, currency, description, metadata or Idempotency-Key; Stripe Connect: organizer_required, organizer_invalid, tickets_invalid, fee_invalid (feePaidBy); delayed methods: payment_method_invalid (paymentMethodTypes that do not fit the currency or amount), capture_method_invalid (a manual capture of one), customer_email_required, email_invalid (customerEmail)", body = error::ErrorBody),
        (status = 429, description = "Over CREATE_RATE_LIMIT", body = error::ErrorBody,
         headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "Database unavailable, or no turn in the Stripe call budget (stripe_busy, with Retry-After)", body = error::ErrorBody),
        KeyErrors, ClientRouteErrors,
        (status = 409, description = "idempotency_key_in_progress (a request with the same Idempotency-Key is in flight); Stripe Connect: organizer_not_ready (the organiser cannot take payments yet, or left the platform), connect_disabled (organizerId while Connect is off)", body = error::ErrorBody),
    )
)]
pub async fn create(
    State(state): State<AppState>,
    _limit: WithinRateLimit,
    OptionalIdempotencyKey(key): OptionalIdempotencyKey,
    Envelope { data }: Envelope,
) -> Result<Response, ApiError> {
    write(&state, &data, key, CreateRequest::parse).await
}

#[utoipa::path(
    post,
    path = "/stripe_confirm_payment",
    tag = "payments",
    request_body = Envelope<PaymentIntentInput>,
    security((), ("api_token" = [])),
    responses(
        (status = 200, description = "The payment succeeded (and is not refunded in full)", body = Success<ConfirmedData>),
        (status = 400, description = "Invalid body or id; payment_not_completed; payment_refunded (it succeeded, but its money is all going back)", body = error::ErrorBody),
        (status = 503, description = "Database unavailable, or no turn in the Stripe call budget (stripe_busy, with Retry-After)", body = error::ErrorBody),
        TokenErrors, ClientRouteErrors,
    )
)]
pub async fn confirm(
    State(state): State<AppState>,
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
        (status = 503, description = "Database unavailable, or no turn in the Stripe call budget (stripe_busy, with Retry-After)", body = error::ErrorBody),
        TokenErrors, ClientRouteErrors,
    )
)]
pub async fn get_payment_intent(
    State(state): State<AppState>,
    Envelope { data }: Envelope,
) -> Result<Success<PaymentIntentData>, ApiError> {
    Ok(Success::new(state.payments.get(&data).await?))
}

#[utoipa::path(
    post,
    path = "/stripe_refund_payment",
    tag = "payments",
    request_body = Envelope<RefundInput>,
    params(("Idempotency-Key" = Option<String>, Header,
            description = "1-255 printable ASCII characters; makes a retried refund safe (keys are per function)")),
    security((), ("api_token" = [])),
    responses(
        (status = 200, description = "Refunded (the refund's own status says whether it went through)", body = Success<RefundedData>,
         headers(("Idempotent-Replayed" = String, description = "`true` when this is a replay"))),
        (status = 400, description = "Invalid body, id, amount (amount_invalid, amount_too_large), reason, metadata, refundApplicationFee or reverseTransfer (refund_option_invalid) or Idempotency-Key; payment_not_refundable; refund_exceeds_remaining (with what is really left)", body = error::ErrorBody),
        (status = 404, description = "payment_not_found: Stripe has no such PaymentIntent", body = error::ErrorBody),
        (status = 503, description = "Database unavailable or not writable, or no turn in the Stripe call budget (stripe_busy, with Retry-After)", body = error::ErrorBody),
        TokenErrors, KeyErrors, ClientRouteErrors,
        (status = 409, description = "payment_disputed or balance_insufficient (Stripe refused the refund); refund_not_supported (an OXXO payment, before Stripe); idempotency_key_in_progress (a request with the same Idempotency-Key is in flight)", body = error::ErrorBody),
    )
)]
pub async fn refund(
    State(state): State<AppState>,
    OptionalIdempotencyKey(key): OptionalIdempotencyKey,
    Envelope { data }: Envelope,
) -> Result<Response, ApiError> {
    write(&state, &data, key, RefundRequest::parse).await
}

#[utoipa::path(
    post,
    path = "/stripe_cancel_payment_intent",
    tag = "payments",
    request_body = Envelope<CancelInput>,
    security((), ("api_token" = [])),
    responses(
        (status = 200, description = "Canceled (also when it already was)", body = Success<CanceledData>),
        (status = 400, description = "Invalid body, id or reason; payment_already_succeeded; payment_processing", body = error::ErrorBody),
        (status = 404, description = "payment_not_found: Stripe has no such PaymentIntent", body = error::ErrorBody),
        (status = 409, description = "payment_disputed or balance_insufficient: Stripe refused the cancel so (its refusals on refund, cancel and capture are named alike)", body = error::ErrorBody),
        (status = 503, description = "Database unavailable or not writable, or no turn in the Stripe call budget (stripe_busy, with Retry-After)", body = error::ErrorBody),
        TokenErrors, ClientRouteErrors,
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    Envelope { data }: Envelope,
) -> Result<Success<CanceledData>, ApiError> {
    Ok(Success::new(state.payments.cancel(&data).await?))
}

#[utoipa::path(
    post,
    path = "/stripe_capture_payment",
    tag = "payments",
    request_body = Envelope<CaptureInput>,
    params(("Idempotency-Key" = Option<String>, Header,
            description = "1-255 printable ASCII characters; makes a retried capture safe (keys are per function)")),
    security((), ("api_token" = [])),
    responses(
        (status = 200, description = "Captured", body = Success<CapturedData>,
         headers(("Idempotent-Replayed" = String, description = "`true` when this is a replay"))),
        (status = 400, description = "Invalid body, id or amount (amount_invalid, amount_too_large); payment_not_capturable; amount_exceeds_authorized", body = error::ErrorBody),
        (status = 404, description = "payment_not_found: Stripe has no such PaymentIntent", body = error::ErrorBody),
        (status = 503, description = "Database unavailable or not writable, or no turn in the Stripe call budget (stripe_busy, with Retry-After)", body = error::ErrorBody),
        TokenErrors, KeyErrors, ClientRouteErrors,
        (status = 409, description = "hold_expired: the seat hold ended, nothing was sent to Stripe and the authorisation is released; payment_disputed or balance_insufficient (Stripe refused the capture); idempotency_key_in_progress (a request with the same Idempotency-Key is in flight)", body = error::ErrorBody),
    )
)]
pub async fn capture(
    State(state): State<AppState>,
    OptionalIdempotencyKey(key): OptionalIdempotencyKey,
    Envelope { data }: Envelope,
) -> Result<Response, ApiError> {
    write(&state, &data, key, CaptureRequest::parse).await
}
