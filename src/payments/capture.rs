//! Capture an authorised payment (docs/contract.md §10): with `captureMethod: "manual"` the card
//! is only authorised, so that a buyer whose seats cannot be issued is never charged; the
//! platform captures it when the tickets are issued.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::connect::client_for;
use super::holds::release_expired_hold;
use super::idempotent::{IdempotentWrite, StripeCall};
use super::request::{to_minor, CaptureRequest};
use super::{count_api_write, Error};
use crate::ledger::{HoldCheck, Ledger, Scope};
use crate::money::Major;
use crate::stripe::client::Action;
use crate::stripe::form::Form;
use crate::stripe::types::{PaymentIntentId, PaymentIntentStatus};
use crate::stripe::{StripeClient, StripeError};

/// `data` of a successful capture.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapturedData {
    pub success: bool,
    pub payment_intent_id: String,
    /// Always `succeeded`.
    pub status: PaymentIntentStatus,
    /// Captured, major units.
    pub amount: Major,
    pub currency: String,
}

impl IdempotentWrite for CaptureRequest {
    const SCOPE: Scope = Scope::Capture;
    type Data = CapturedData;

    /// Captures all or part of the authorised payment.
    async fn at_stripe(self, call: StripeCall) -> Result<CapturedData, Error> {
        capture(self, call)
            .await
            .map_err(Error::on_platform_function)
    }
}

async fn capture(request: CaptureRequest, call: StripeCall) -> Result<CapturedData, Error> {
    let StripeCall {
        stripe,
        ledger,
        stripe_key,
        ..
    } = call;
    let id = &request.payment_intent_id;
    // The seats are held until the ledger's hold ends, by this service's clock: once it has,
    // the capture never reaches Stripe.
    let now_ms = || chrono::Utc::now().timestamp_millis();
    if let HoldCheck::Expired { release } = ledger.hold_for_capture(id.as_str(), now_ms()).await? {
        return Err(hold_expired(&stripe, &ledger, id, release).await);
    }
    // The ledger may not know of the authorisation yet: Stripe says what can be captured.
    let on_account = client_for(&stripe, &ledger, id.as_str()).await?;
    let read_at = chrono::Utc::now().timestamp();
    let pi = on_account.retrieve_payment_intent(id).await?;
    ledger.record_from_api(&pi, read_at).await?;
    if pi.status != PaymentIntentStatus::RequiresCapture {
        return Err(Error::PaymentNotCapturable(pi.status));
    }
    let authorised = match pi.amount_capturable {
        0 => pi.amount,
        capturable => capturable,
    };
    let amount = match request.amount {
        None => authorised,
        Some(major) => to_minor(major, &pi.currency, Error::CaptureAmountInvalid)?,
    };
    if amount > authorised {
        return Err(Error::AmountExceedsAuthorized);
    }
    // The last moment: while the hold holds, the capture is marked as asked for in time, so
    // that its success is never taken for a late payment and refunded after the platform was
    // told it succeeded.
    let claimed = ledger.claim_hold_for_capture(id.as_str(), now_ms()).await?;
    if let HoldCheck::Expired { release } = claimed {
        return Err(hold_expired(&stripe, &ledger, id, release).await);
    }
    let mut form = Form::new();
    form.push("amount_to_capture", amount.to_string());
    let read_at = chrono::Utc::now().timestamp();
    let captured = match on_account
        .act_on_payment_intent(id, Action::Capture, &form, &stripe_key)
        .await
    {
        Ok(captured) => captured,
        // Captured or canceled meanwhile (a hold expiring): say what it is now.
        Err(StripeError::Api(refused)) if refused.status == 400 => {
            let now = on_account.retrieve_payment_intent(id).await?;
            ledger.record_from_api(&now, read_at).await?;
            return Err(Error::PaymentNotCapturable(now.status));
        }
        Err(e) => return Err(e.into()),
    };
    ledger.record_from_api(&captured, read_at).await?;
    count_api_write(&captured);
    let received = match captured.amount_received {
        0 => amount,
        received => received,
    };
    tracing::info!(payment_intent_id = %id, amount = received, "PaymentIntent captured");
    Ok(CapturedData {
        success: true,
        payment_intent_id: captured.id,
        status: captured.status,
        amount: Major::of(received, &captured.currency),
        currency: captured.currency,
    })
}

/// A capture refused because the seat hold ended: the authorisation is released as the hold
/// worker would release it (`release`: nothing has yet; the worker tries again if this fails).
async fn hold_expired(
    stripe: &StripeClient,
    ledger: &Ledger,
    id: &PaymentIntentId,
    release: bool,
) -> Error {
    if release {
        if let Err(e) = release_expired_hold(stripe, ledger, id).await {
            tracing::warn!(payment_intent_id = %id, error = %e, "could not release an expired hold; the hold worker will");
        }
    }
    Error::HoldExpired
}
