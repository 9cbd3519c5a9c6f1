//! Cancel a payment that has not succeeded (docs/contract.md §9, "Cancel"), and the cancel at
//! Stripe that a seat hold's end makes too.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::connect::client_for;
use super::read::read_at_stripe;
use super::request::CancelRequest;
use super::{count_api_write, Error, Payments};
use crate::ledger::Ledger;
use crate::stripe::client::Action;
use crate::stripe::form::Form;
use crate::stripe::types::{Lifecycle, PaymentIntentId, PaymentIntentStatus};
use crate::stripe::{StripeClient, StripeError};

/// `data` of a successful cancel.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanceledData {
    pub success: bool,
    pub payment_intent_id: String,
    /// Always `canceled`.
    pub status: PaymentIntentStatus,
}

impl Payments {
    /// Cancels a payment that has not succeeded; a canceled one answers the same again.
    pub async fn cancel(&self, data: &Map<String, Value>) -> Result<CanceledData, Error> {
        let request = CancelRequest::parse(data)?;
        self.cancel_request(&request)
            .await
            .map_err(Error::on_platform_function)
    }

    async fn cancel_request(&self, request: &CancelRequest) -> Result<CanceledData, Error> {
        let id = &request.payment_intent_id;
        // A final row needs no call to Stripe: its status can never change again.
        let known = self
            .ledger
            .payment(id.as_str())
            .await?
            .map(|row| row.status);
        let status = match known {
            Some(status) if status.is_final() => status,
            _ => {
                self.ledger.ensure_writable().await?;
                let key = format!("tmt-cancel-{id}");
                let reason = request.reason.as_str();
                cancel_at_stripe(&self.stripe, &self.ledger, id, reason, &key).await?
            }
        };
        match status {
            PaymentIntentStatus::Canceled => {
                tracing::info!(payment_intent_id = %id, reason = request.reason.as_str(), "PaymentIntent canceled");
                Ok(CanceledData {
                    success: true,
                    payment_intent_id: id.to_string(),
                    status,
                })
            }
            PaymentIntentStatus::Succeeded => Err(Error::PaymentAlreadySucceeded),
            PaymentIntentStatus::Processing => Err(Error::PaymentProcessing),
            other => Err(Error::Internal(format!(
                "Stripe left the PaymentIntent in {other} after a cancel"
            ))),
        }
    }
}

/// Cancels `id` at Stripe for `reason` under the Stripe-side `key`; the status it ends in (a
/// payment that succeeded or went processing meanwhile cannot be canceled any more: Stripe
/// refuses, and a read says which it is).
pub(super) async fn cancel_at_stripe(
    stripe: &StripeClient,
    ledger: &Ledger,
    id: &PaymentIntentId,
    reason: &str,
    key: &str,
) -> Result<PaymentIntentStatus, Error> {
    let mut form = Form::new();
    form.push("cancellation_reason", reason);
    let scoped = client_for(stripe, ledger, id.as_str()).await?;
    let read_at = chrono::Utc::now().timestamp();
    match scoped
        .act_on_payment_intent(id, Action::Cancel, &form, key)
        .await
    {
        Ok(pi) => {
            ledger.record_from_api(&pi, read_at).await?;
            count_api_write(&pi);
            Ok(pi.status)
        }
        Err(StripeError::Api(refused)) if refused.status == 400 => {
            Ok(read_at_stripe(stripe, ledger, id).await?.status)
        }
        Err(e) => Err(e.into()),
    }
}
