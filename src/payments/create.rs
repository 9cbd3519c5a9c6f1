//! Create a PaymentIntent (docs/contract.md, "Create"), safely retried under an Idempotency-Key.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::idempotent::{IdempotentWrite, StripeCall};
use super::request::CreateRequest;
use super::{count_api_write, Error};
use crate::ledger::Scope;
use crate::money::Major;

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

impl IdempotentWrite for CreateRequest {
    const SCOPE: Scope = Scope::Create;
    const BUDGET_FIRST: bool = true;
    type Data = CreatedData;

    /// Creates the PaymentIntent at Stripe and records it in the ledger.
    async fn at_stripe(self, call: StripeCall) -> Result<CreatedData, Error> {
        // The metadata timestamp is the key's first use, so that a retry sends Stripe the very
        // same request.
        let iso = |t: chrono::DateTime<chrono::Utc>| {
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let timestamp =
            iso(chrono::DateTime::from_timestamp_millis(call.first_use).unwrap_or_default());
        let hold_expires_at = self.hold_expires_at(call.first_use).map(iso);
        let form = self.to_form(&timestamp, hold_expires_at.as_deref());
        let read_at = chrono::Utc::now().timestamp();
        let pi = call
            .stripe
            .create_payment_intent(&form, &call.stripe_key)
            .await?;
        call.ledger.record_from_api(&pi, read_at).await?;
        count_api_write(&pi);
        tracing::info!(payment_intent_id = %pi.id, amount = pi.amount, currency = %pi.currency, "PaymentIntent created");
        Ok(CreatedData {
            success: true,
            client_secret: pi.client_secret.clone(),
            amount: Major::of(pi.amount, &pi.currency),
            payment_intent_id: pi.id,
            currency: pi.currency,
            hold_expires_at,
        })
    }
}
