//! `POST /stripe_webhook`, called by Stripe.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::envelope;
use super::error::{self, ApiError};
use super::AppState;
use crate::payments::Error as PaymentsError;

/// The webhook's answer once an event is on disk.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Received {
    pub received: bool,
}

/// Raw bytes, never `Json`: the signature covers the exact body.
#[utoipa::path(
    post,
    path = "/stripe_webhook",
    tag = "webhooks",
    request_body(content = Object, description = "A Stripe Event, as Stripe sent it", content_type = "application/json"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix seconds>,v1=<hex>[,v1=<hex>…]")),
    responses(
        (status = 200, description = "Recorded (or already recorded)", body = Received),
        (status = 400, description = "Signature missing, unparseable, without v1, not matching, outside the tolerance, or body not an Event", body = error::ErrorBody),
        (status = 405, description = "Not POST", body = error::ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = error::ErrorBody),
        (status = 500, description = "Not recorded; Stripe retries", body = error::ErrorBody),
    )
)]
/// Stripe's events, signed. Under Stripe Connect, two Stripe endpoints point here: the
/// platform's ("Events on your account") and the Connect one ("Events on Connected accounts":
/// `account.updated`, `account.application.deauthorized`, and under direct charges the payment
/// events of the organisers' accounts, which carry `account`); each has its own signing
/// secret, and `STRIPE_WEBHOOK_SECRET` lists both.
pub async fn webhook(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Read here rather than rejected by axum, whose 413 would be text/plain.
    let outcome = match body {
        Ok(body) => {
            // A header that is there but not text is malformed, not missing.
            let signature = headers
                .get("stripe-signature")
                .map(|v| v.to_str().unwrap_or(""));
            let now = chrono::Utc::now().timestamp();
            state
                .payments
                .webhook(signature, &body, now)
                .await
                .map_err(ApiError::from)
        }
        Err(rejection) => Err(envelope::unreadable_body(
            rejection,
            ApiError::from(PaymentsError::EventInvalid),
        )),
    };
    match outcome {
        Ok(_) => axum::Json(Received { received: true }).into_response(),
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
