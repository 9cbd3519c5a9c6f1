//! Create a PaymentIntent (docs/contract.md, "Create"), safely retried under an Idempotency-Key.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::connect::charge::prepare;
use super::delayed::customers::customer_for;
use super::delayed::methods::Deadlines;
use super::idempotent::{IdempotentWrite, StripeCall};
use super::request::CreateRequest;
use super::{count_api_write, Error};
use crate::ledger::{next_action_of, NextActionData, Scope};
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
    /// The organiser the payment is for (Stripe Connect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organizer_id: Option<String>,
    /// The platform's fee, major units (Stripe Connect): within `amount`, or on top of the
    /// price when the buyer pays it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_fee: Option<Major>,
    /// A direct charge's connected account: Stripe.js must be initialised with it
    /// (`Stripe(publishableKey, {stripeAccount})`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe_account: Option<String>,
    /// A bank transfer's instructions, when the create confirmed it (docs/contract.md, "Cash
    /// and bank transfers").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextActionData>,
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
        // For an organiser: checked in the ledger before Stripe, and charged as its type says.
        let charge = prepare(
            &call.connect,
            &call.ledger,
            self.organizer.as_ref(),
            self.money,
        )
        .await?;
        let mut request = self;
        let mut stripe = call.stripe.clone();
        if let Some(charge) = &charge {
            request.money.minor = charge.charged;
            stripe = stripe.on_account(charge.direct_account());
        }
        let mut form = request.to_form(&timestamp, hold_expires_at.as_deref());
        if let Some(charge) = &charge {
            charge.add_to(&mut form);
        }
        if let Some(methods) = &request.methods {
            // A bank transfer's Customer lives where the payment does.
            let customer = match &methods.customer_email {
                Some(email) => Some(customer_for(&stripe, &call.ledger, email).await?),
                None => None,
            };
            let deadlines = Deadlines {
                first_use: call.first_use,
                held: hold_expires_at.is_some(),
            };
            let money = request.money;
            methods.add_to(
                &mut form,
                &call.delayed,
                money,
                customer.as_deref(),
                deadlines,
            );
        }
        let read_at = chrono::Utc::now().timestamp();
        let pi = stripe
            .create_payment_intent(&form, &call.stripe_key)
            .await?;
        call.ledger.record_from_api(&pi, read_at).await?;
        if let Some(charge) = &charge {
            call.ledger.note_connect(&pi.id, &charge.note()).await?;
        }
        count_api_write(&pi);
        tracing::info!(payment_intent_id = %pi.id, amount = pi.amount, currency = %pi.currency, "PaymentIntent created");
        let next_action = next_action_of(&pi);
        Ok(CreatedData {
            next_action,
            success: true,
            client_secret: pi.client_secret.clone(),
            amount: Major::of(pi.amount, &pi.currency),
            payment_intent_id: pi.id,
            organizer_id: charge.as_ref().map(|c| c.organizer_id.clone()),
            application_fee: charge.as_ref().map(|c| Major::of(c.fee, &pi.currency)),
            stripe_account: charge
                .as_ref()
                .and_then(|c| c.direct_account().map(str::to_string)),
            currency: pi.currency,
            hold_expires_at,
        })
    }
}
