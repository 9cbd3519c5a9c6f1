//! Create a PaymentIntent (docs/contract.md, "Create"), safely retried under an Idempotency-Key.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::idempotent::Answer;
use super::request::CreateRequest;
use super::{count_api_write, Error, Payments};
use crate::ledger::{IdempotencyKey, Ledger, Scope};
use crate::money::Major;
use crate::stripe::{StripeClient, StripeError};

/// `data` of a successful create.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedData {
    pub success: bool,
    /// For Stripe.js: `confirmPayment` / `confirmCardPayment` in the browser.
    pub client_secret: Option<String>,
    pub payment_intent_id: String,
    /// Major units actually charged, after rounding, with the currency's decimals.
    pub amount: Major,
    pub currency: String,
    /// With `holdSeconds`: when the seats are released (ISO 8601 UTC) and an unpaid payment is
    /// canceled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold_expires_at: Option<String>,
}

impl Payments {
    /// Creates a PaymentIntent, once per caller's Idempotency-Key.
    pub async fn create(
        &self,
        data: &Map<String, Value>,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Result<Answer<CreatedData>, Error> {
        let request = CreateRequest::parse(data)?;
        // On a sale day most creates beyond Stripe's budget are told to come back: before the
        // Idempotency-Key is claimed, which would cost two ledger writes for nothing.
        if let Some(busy) = self.stripe.budget().refuses_now() {
            return Err(StripeError::Busy {
                retry_after: busy.retry_after,
                maybe_reached: false,
            }
            .into());
        }
        // Whatever Stripe creates must be recorded: a ledger that cannot write refuses the
        // create before Stripe is called.
        self.ledger.ensure_writable().await?;
        let (stripe, ledger) = (self.stripe.clone(), self.ledger.clone());
        self.once(
            Scope::Create,
            idempotency_key,
            data,
            move |stripe_key, first_use| async move {
                // The metadata timestamp is the key's first use, so that a retry sends Stripe
                // the very same request.
                let iso = |t: chrono::DateTime<chrono::Utc>| {
                    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                };
                let timestamp =
                    iso(chrono::DateTime::from_timestamp_millis(first_use).unwrap_or_default());
                let hold = request.hold_expires_at(first_use).map(iso);
                create_at_stripe(
                    &stripe,
                    &ledger,
                    &request,
                    &timestamp,
                    hold.as_deref(),
                    &stripe_key,
                )
                .await
            },
        )
        .await
    }
}

/// Creates the PaymentIntent at Stripe and records it in the ledger; the response data.
async fn create_at_stripe(
    stripe: &StripeClient,
    ledger: &Ledger,
    request: &CreateRequest,
    timestamp: &str,
    hold_expires_at: Option<&str>,
    stripe_key: &str,
) -> Result<CreatedData, Error> {
    let form = request.to_form(timestamp, hold_expires_at);
    let read_at = chrono::Utc::now().timestamp();
    let pi = stripe.create_payment_intent(&form, stripe_key).await?;
    ledger.record_from_api(&pi, read_at).await?;
    count_api_write(&pi);
    tracing::info!(payment_intent_id = %pi.id, amount = pi.amount, currency = %pi.currency, "PaymentIntent created");
    Ok(CreatedData {
        success: true,
        client_secret: pi.client_secret.clone(),
        amount: Major::of(pi.amount, &pi.currency),
        payment_intent_id: pi.id,
        currency: pi.currency,
        hold_expires_at: hold_expires_at.map(str::to_string),
    })
}
