//! The platform back end's functions about organisers paid through Stripe Connect
//! (docs/contract.md §15): onboarding and reading one.

use axum::extract::State;

use super::envelope::{Envelope, Success};
use super::error::{self, ApiError};
use super::payments::{ClientRouteErrors, TokenErrors};
use super::AppState;
use crate::payments::connect::{OnboardInput, OnboardedData, OrganizerData, OrganizerInput};

#[utoipa::path(
    post,
    path = "/stripe_onboard_organizer",
    tag = "organizers",
    request_body = Envelope<OnboardInput>,
    security((), ("api_token" = [])),
    responses(
        (status = 200, description = "The organiser's connected account (created by its first onboarding, once) and a fresh onboarding link", body = Success<OnboardedData>),
        (status = 400, description = "Invalid body; organizer_id_invalid, country_invalid, email_invalid, url_invalid, fee_invalid", body = error::ErrorBody),
        (status = 409, description = "connect_disabled: CONNECT_CHARGE_TYPE is not set", body = error::ErrorBody),
        (status = 503, description = "Database unavailable or not writable, or no turn in the Stripe call budget (stripe_busy, with Retry-After)", body = error::ErrorBody),
        TokenErrors, ClientRouteErrors,
    )
)]
pub async fn onboard(
    State(state): State<AppState>,
    Envelope { data }: Envelope,
) -> Result<Success<OnboardedData>, ApiError> {
    Ok(Success::new(state.payments.onboard_organizer(&data).await?))
}

#[utoipa::path(
    post,
    path = "/stripe_get_organizer",
    tag = "organizers",
    request_body = Envelope<OrganizerInput>,
    security((), ("api_token" = [])),
    responses(
        (status = 200, description = "The organiser's Connect status, from the ledger, and the fee policy in force for it", body = Success<OrganizerData>),
        (status = 400, description = "Invalid body; organizer_id_invalid", body = error::ErrorBody),
        (status = 404, description = "organizer_not_found", body = error::ErrorBody),
        (status = 503, description = "Database unavailable", body = error::ErrorBody),
        TokenErrors, ClientRouteErrors,
    )
)]
pub async fn get_organizer(
    State(state): State<AppState>,
    Envelope { data }: Envelope,
) -> Result<Success<OrganizerData>, ApiError> {
    Ok(Success::new(state.payments.organizer(&data).await?))
}
