//! Refund a succeeded payment, fully or in part (docs/contract.md §9).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::connect::refunds::RefundTerms;
use super::connect::{client_for, Connect};
use super::idempotent::{IdempotentWrite, StripeCall};
use super::request::RefundRequest;
use super::Error;
use crate::ledger::{Ledger, Refusal, Scope};
use crate::money::Major;
use crate::stripe::types::{ErrorCode, PaymentIntentStatus, Refund, RefundStatus};
use crate::stripe::{StripeClient, StripeError};

/// How long a refund's reservation counts against what is left when its outcome stays unknown
/// (Stripe did not answer): long enough for the refund's webhook to arrive, short enough that a
/// refund Stripe never made does not block the rest for long.
pub const RESERVATION_TTL: Duration = Duration::from_secs(15 * 60);

/// `data` of a successful refund.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundedData {
    pub success: bool,
    pub refund_id: String,
    pub payment_intent_id: String,
    /// The refund's status: `pending`, `succeeded`, `failed`, `requires_action`, `canceled`.
    pub status: RefundStatus,
    pub amount: Major,
    pub currency: String,
    /// Refunded so far for the payment (pending and succeeded refunds), this one included
    /// unless it failed.
    pub amount_refunded: Major,
    pub fully_refunded: bool,
    /// A payment made for an organiser (Stripe Connect): what of the platform's fee went back,
    /// in all so far, major units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub application_fee_refunded: Option<Major>,
}

/// Stripe's refusal of a refund because too much would be refunded.
fn is_over_refund(e: &StripeError) -> bool {
    matches!(e, StripeError::Api(refused) if matches!(
        refused.code,
        Some(ErrorCode::ChargeAlreadyRefunded | ErrorCode::AmountTooLarge)
    ))
}

/// The reservation a request's refund is made under: derived from its Stripe-side key, so a
/// retry of the same request finds it again.
fn reservation_id(stripe_key: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "rsv_{}",
        &hex::encode(Sha256::digest(stripe_key.as_bytes()))[..32]
    )
}

impl IdempotentWrite for RefundRequest {
    const SCOPE: Scope = Scope::Refund;
    type Data = RefundedData;

    /// Refunds all or part of the succeeded payment.
    async fn at_stripe(self, call: StripeCall) -> Result<RefundedData, Error> {
        let (stripe, ledger) = (&call.stripe, &call.ledger);
        let done = refund_at_stripe(stripe, ledger, &call.connect, &self, &call.stripe_key).await?;
        Ok(done.data())
    }
}

/// A refund as Stripe made it, with the payment's totals after it.
pub(super) struct Refunded {
    pub refund: Refund,
    pub payment_intent_id: String,
    pub currency: String,
    /// What the payment charged (after a partial capture, what was captured) and what it counts
    /// as refunded now, minor units.
    pub payment_amount: i64,
    pub refunded: i64,
    /// A payment made for an organiser: what of the platform's fee went back in all, minor
    /// units.
    pub application_fee_refunded: Option<i64>,
}

impl Refunded {
    fn data(&self) -> RefundedData {
        RefundedData {
            success: true,
            refund_id: self.refund.id.clone(),
            payment_intent_id: self.payment_intent_id.clone(),
            status: self.refund.status.clone(),
            amount: Major::of(self.refund.amount, &self.currency),
            currency: self.currency.clone(),
            amount_refunded: Major::of(self.refunded, &self.currency),
            fully_refunded: self.refunded >= self.payment_amount,
            application_fee_refunded: self
                .application_fee_refunded
                .map(|fee| Major::of(fee, &self.currency)),
        }
    }
}

/// The refund itself: the amount is reserved in the ledger (so that concurrent refunds can
/// never together exceed the payment), then asked of Stripe under `stripe_key`, then recorded.
/// Stripe's refusals are named as the platform's functions name them.
pub(super) async fn refund_at_stripe(
    stripe: &StripeClient,
    ledger: &Ledger,
    connect: &Connect,
    request: &RefundRequest,
    stripe_key: &str,
) -> Result<Refunded, Error> {
    let refund = async {
        let id = &request.payment_intent_id;
        let stripe = &client_for(stripe, ledger, id.as_str()).await?;
        let row = match ledger.payment(id.as_str()).await? {
            Some(row) if row.status == PaymentIntentStatus::Succeeded => row,
            _ => {
                // The ledger may lag behind Stripe (the succeeded webhook is on its way).
                let read_at = chrono::Utc::now().timestamp();
                let pi = stripe.retrieve_payment_intent(id).await?;
                ledger.record_from_api(&pi, read_at).await?;
                if pi.status != PaymentIntentStatus::Succeeded {
                    return Err(Error::PaymentNotRefundable(pi.status));
                }
                match ledger.payment(id.as_str()).await? {
                    Some(row) => row,
                    // Not ours: another application's payment.
                    None => return Err(Error::PaymentNotRefundable(pi.status)),
                }
            }
        };
        // Stripe's rule: OXXO payments cannot be refunded. Said before anything is reserved.
        if row.method.as_deref() == Some("oxxo") {
            return Err(Error::RefundNotSupported);
        }
        let wanted = request.minor_amount(&row.currency)?;
        let exceeds = |remaining: i64, currency: &str| Error::RefundExceedsRemaining {
            remaining: Major::of(remaining, currency).to_string(),
            currency: currency.to_ascii_uppercase(),
        };
        let reservation_id = reservation_id(stripe_key);
        let reservation = match ledger
            .reserve_refund(&reservation_id, id.as_str(), wanted, RESERVATION_TTL)
            .await?
        {
            Ok(reservation) => reservation,
            Err(Refusal::Unknown) => return Err(Error::PaymentNotRefundable(row.status)),
            Err(Refusal::NotRefundable(status)) => return Err(Error::PaymentNotRefundable(status)),
            Err(Refusal::ExceedsRemaining {
                remaining,
                currency,
            }) => {
                metrics::counter!("tmt_refunds_total", "outcome" => "exceeds_remaining")
                    .increment(1);
                return Err(exceeds(remaining, &currency));
            }
        };
        let mut form = request.to_form(reservation.amount, &reservation.id);
        let terms = RefundTerms::of(ledger, id.as_str(), request, connect).await?;
        if let Some(terms) = &terms {
            terms.add_to(&mut form);
        }
        let read_at = chrono::Utc::now().timestamp();
        let refund = match stripe.create_refund(&form, stripe_key).await {
            Ok(refund) => refund,
            Err(e) => {
                // Stripe answered: nothing was refunded, the reservation ends. No answer: the refund
                // may exist; the reservation stands until its webhook or its expiry.
                if matches!(e, StripeError::Api(_)) || e.never_reached_stripe() {
                    ledger.release_reservation(&reservation.id).await?;
                }
                let outcome = if is_over_refund(&e) {
                    "exceeds_remaining"
                } else if matches!(e, StripeError::Api(_)) {
                    "refused"
                } else {
                    "unanswered"
                };
                metrics::counter!("tmt_refunds_total", "outcome" => outcome).increment(1);
                if is_over_refund(&e) {
                    // The ledger thought there was room: a refund made elsewhere (the Dashboard)
                    // has not reached it yet. Stripe's own list says what was really refunded (if
                    // it cannot be read, the refusal stands with what the ledger knows).
                    let read_at = chrono::Utc::now().timestamp();
                    match stripe.list_refunds(id).await {
                        Ok(refunds) => {
                            for refund in refunds {
                                ledger.record_refund(&refund, read_at).await?;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(payment_intent_id = %id, error = %e, "could not list the refunds of an over-refunded payment")
                        }
                    }
                    let remaining = ledger.refundable(id.as_str()).await?;
                    return Err(exceeds(remaining, &row.currency));
                }
                return Err(e.into());
            }
        };
        ledger.record_refund(&refund, read_at).await?;
        let refunded = ledger.amount_refunded(id.as_str()).await?;
        let application_fee_refunded = match &terms {
            Some(terms) => Some(
                terms
                    .settle(stripe, ledger, id.as_str(), refund.charge_id())
                    .await?,
            ),
            None => None,
        };
        metrics::counter!("tmt_refunds_total", "outcome" => refund.status.to_string()).increment(1);
        tracing::info!(
            payment_intent_id = %id,
            refund_id = %refund.id,
            amount = refund.amount,
            status = %refund.status,
            "refund created"
        );
        Ok(Refunded {
            refund,
            payment_intent_id: id.to_string(),
            payment_amount: row.charged(),
            currency: row.currency,
            refunded,
            application_fee_refunded,
        })
    };
    refund.await.map_err(Error::on_platform_function)
}
