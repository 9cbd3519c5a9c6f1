//! What happens when a seat hold expires (docs/contract.md §10): a payment that has not
//! succeeded is read from Stripe and, if it still can be, canceled (`abandoned`), so the buyer
//! can no longer pay for seats the platform has released. One that succeeded meanwhile (or is
//! processing) goes on and is late, unless a capture asked for before the hold ended is what
//! made it succeed; under `LATE_PAYMENT_POLICY=refund` a late one is refunded instead (one still
//! processing, once it succeeds).

use super::cancel::cancel_at_stripe;
use super::idempotent::derived_key;
use super::read::read_at_stripe;
use super::refunds::refund_at_stripe;
use super::request::{RefundReason, RefundRequest};
use super::{Error, Payments};
use crate::ledger::{HoldState, Ledger};
use crate::stripe::types::{PaymentIntentId, PaymentIntentStatus};
use crate::stripe::StripeClient;

/// What became of an expired hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// Canceled now, or found canceled.
    Released,
    /// It had succeeded through a capture asked for before the hold ended: it was in time.
    Captured,
    /// It had succeeded or was processing: it goes on, late.
    Late(PaymentIntentStatus),
    /// A debit processing since before the hold ended: its outcome decides.
    Debiting,
}

impl Payments {
    /// Deals with one payment whose hold expired.
    pub async fn expire_hold(&self, id: &str) -> Result<Expiry, Error> {
        let id = PaymentIntentId::parse(id)
            .ok_or_else(|| Error::Internal(format!("not a PaymentIntent id: {id}")))?;
        release_expired_hold(&self.stripe, &self.ledger, &id).await
    }

    /// Refunds a payment that succeeded after its hold expired (`LATE_PAYMENT_POLICY=refund`),
    /// once: the Stripe-side key derives from the payment.
    pub async fn refund_late_payment(&self, id: &str) -> Result<(), Error> {
        let payment_intent_id = PaymentIntentId::parse(id)
            .ok_or_else(|| Error::Internal(format!("not a PaymentIntent id: {id}")))?;
        let request = RefundRequest {
            payment_intent_id,
            amount: None,
            reason: Some(RefundReason::RequestedByCustomer),
            metadata: Vec::new(),
            service_reason: Some("hold_expired"),
            refund_application_fee: None,
            reverse_transfer: None,
        };
        let key = derived_key(&[b"late-refund", id.as_bytes()]);
        match refund_at_stripe(&self.stripe, &self.ledger, &self.connect, &request, &key).await {
            Ok(_) | Err(Error::RefundExceedsRemaining { .. }) => {
                self.ledger
                    .set_hold_state(id, HoldState::Refunded, true)
                    .await?;
                tracing::info!(payment_intent_id = id, "late payment refunded");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// Deals with one payment whose hold expired, as the hold worker does (and a capture asked for
/// too late): read from Stripe, canceled if it still can be, the hold's outcome recorded.
pub(super) async fn release_expired_hold(
    stripe: &StripeClient,
    ledger: &Ledger,
    id: &PaymentIntentId,
) -> Result<Expiry, Error> {
    let pi = read_at_stripe(stripe, ledger, id).await?;
    let status = match pi.status {
        PaymentIntentStatus::Succeeded
        | PaymentIntentStatus::Processing
        | PaymentIntentStatus::Canceled => pi.status,
        _ => cancel_at_stripe(stripe, ledger, id, "abandoned", &format!("tmt-hold-{id}")).await?,
    };
    let outcome = match status {
        PaymentIntentStatus::Canceled => Expiry::Released,
        // The ledger decided when it recorded the success: a capture asked for in time kept it.
        PaymentIntentStatus::Succeeded => match ledger.hold_of(id.as_str()).await? {
            Some(hold) if hold.state == Some(HoldState::Kept) => Expiry::Captured,
            _ => Expiry::Late(status),
        },
        PaymentIntentStatus::Processing => match ledger.hold_of(id.as_str()).await? {
            Some(hold) if hold.state == Some(HoldState::Debiting) => Expiry::Debiting,
            _ => Expiry::Late(status),
        },
        other => Expiry::Late(other),
    };
    match &outcome {
        Expiry::Released => {
            ledger
                .set_hold_state(id.as_str(), HoldState::Released, false)
                .await?
        }
        // Processing is marked late now, so that the success, whenever it comes, is announced
        // as late or refunded, as `LATE_PAYMENT_POLICY` says.
        Expiry::Late(PaymentIntentStatus::Processing) => ledger.mark_late(id.as_str()).await?,
        Expiry::Late(_) | Expiry::Captured | Expiry::Debiting => {}
    }
    tracing::info!(payment_intent_id = %id, outcome = ?outcome, "seat hold expired");
    metrics::counter!("tmt_holds_expired_total", "outcome" => match &outcome {
        Expiry::Released => "released",
        Expiry::Captured => "captured",
        Expiry::Late(_) => "late",
        Expiry::Debiting => "debiting",
    })
    .increment(1);
    Ok(outcome)
}
