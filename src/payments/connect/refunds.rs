//! Refunds of payments made for organisers (docs/contract.md §15, "Refunds"): by default the
//! platform's fee goes back in proportion (`refundApplicationFee`, `REFUND_APPLICATION_FEE`)
//! and a destination charge's transfer is reversed in proportion (`reverseTransfer`), always
//! said to Stripe explicitly, whoever refunds (the platform's back end, a bulk job, the hold
//! worker refunding a late payment). What Stripe then says of the fee and the transfer is
//! recorded, so that the answer tells what of the fee went back in all.

use super::Connect;
use crate::ledger::{ChargeType, Ledger};
use crate::payments::request::RefundRequest;
use crate::payments::Error;
use crate::stripe::connect::ConnectMoney;
use crate::stripe::form::Form;
use crate::stripe::StripeClient;

/// How a refund treats the platform's fee and the organiser's transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundTerms {
    charge_type: ChargeType,
    refund_fee: bool,
    /// Destination charges only: there is no transfer otherwise.
    reverse_transfer: bool,
}

impl RefundTerms {
    /// The terms for refunding the payment `id` as `request` asks, `None` for a payment not
    /// made for an organiser.
    pub async fn of(
        ledger: &Ledger,
        id: &str,
        request: &RefundRequest,
        connect: &Connect,
    ) -> Result<Option<RefundTerms>, Error> {
        let charge_type = ledger.connect_of(id).await?.and_then(|c| c.charge_type);
        Ok(charge_type.map(|charge_type| RefundTerms {
            charge_type,
            refund_fee: request
                .refund_application_fee
                .unwrap_or(connect.refund_application_fee),
            reverse_transfer: charge_type == ChargeType::Destination
                && request.reverse_transfer.unwrap_or(true),
        }))
    }

    /// What `POST /v1/refunds` is told.
    pub fn add_to(&self, form: &mut Form) {
        form.push("refund_application_fee", self.refund_fee.to_string());
        if self.charge_type == ChargeType::Destination {
            form.push("reverse_transfer", self.reverse_transfer.to_string());
        }
    }

    /// Once Stripe made the refund of `charge`: what Stripe says of the fee and the transfer,
    /// recorded. What of the fee went back in all, minor units, as the ledger then has it (what
    /// it had, when Stripe cannot be read: the refund is made all the same).
    pub async fn settle(
        &self,
        stripe: &StripeClient,
        ledger: &Ledger,
        id: &str,
        charge: Option<&str>,
    ) -> Result<i64, Error> {
        if let Some(charge) = charge {
            // Fees and transfers are the platform's, whatever account the charge is on.
            let platform = stripe.on_account(None);
            let read = match self.charge_type {
                ChargeType::Destination => platform.charge_money(charge).await,
                ChargeType::Direct => {
                    platform
                        .fee_of_charge(charge)
                        .await
                        .map(|fee| ConnectMoney {
                            fee,
                            transfer: None,
                        })
                }
            };
            match read {
                Ok(money) => ledger.record_connect_money(id, &money).await?,
                Err(e) => {
                    tracing::warn!(payment_intent_id = id, error = %e, "could not read the fee and transfer of a refunded payment")
                }
            }
        }
        let kept = ledger.connect_of(id).await?;
        Ok(kept.map_or(0, |c| c.application_fee_refunded))
    }
}
