//! Confirm and get (docs/contract.md, "Confirm and get"): a PaymentIntent read from Stripe, the
//! ledger brought up to date with whatever Stripe said.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::request::parse_payment_intent_id;
use super::{count_api_write, Error, Payments};
use crate::money::Major;
use crate::stripe::types::{PaymentIntent, PaymentIntentId, PaymentIntentStatus};

/// `data` of a successful confirm.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmedData {
    pub success: bool,
    pub payment_intent_id: String,
    /// Always `succeeded` here; anything else is a `payment_not_completed` error.
    pub status: PaymentIntentStatus,
    pub amount: Major,
    pub currency: String,
    /// Unix seconds at which Stripe created the PaymentIntent.
    pub created: i64,
    pub payment_method: Option<String>,
    /// Stripe Charge objects, exactly as Stripe returned them.
    #[schema(value_type = Vec<Object>)]
    pub charges: Vec<Value>,
}

/// `data` of a successful read.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentIntentData {
    pub id: String,
    pub status: PaymentIntentStatus,
    pub amount: Major,
    pub currency: String,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

impl Payments {
    pub async fn confirm(&self, data: &Map<String, Value>) -> Result<ConfirmedData, Error> {
        let id = parse_payment_intent_id(data)?;
        let pi = self.read(&id).await?;
        if pi.status != PaymentIntentStatus::Succeeded {
            return Err(Error::PaymentNotCompleted(pi.status));
        }
        let charges = match pi.embedded_charges() {
            Some(charges) => charges,
            None => self.stripe.list_charges(&id).await?,
        };
        Ok(ConfirmedData {
            success: true,
            payment_method: pi.payment_method_id(),
            amount: Major::of(pi.amount, &pi.currency),
            payment_intent_id: pi.id,
            status: pi.status,
            currency: pi.currency,
            created: pi.created,
            charges,
        })
    }

    pub async fn get(&self, data: &Map<String, Value>) -> Result<PaymentIntentData, Error> {
        let id = parse_payment_intent_id(data)?;
        let pi = self.read(&id).await?;
        Ok(PaymentIntentData {
            amount: Major::of(pi.amount, &pi.currency),
            id: pi.id,
            status: pi.status,
            currency: pi.currency,
            metadata: pi.metadata,
        })
    }

    /// Reads the PaymentIntent from Stripe and brings the ledger up to date, whatever it says.
    pub(super) async fn read(&self, id: &PaymentIntentId) -> Result<PaymentIntent, Error> {
        let read_at = chrono::Utc::now().timestamp();
        let pi = self.stripe.retrieve_payment_intent(id).await?;
        self.ledger.record_from_api(&pi, read_at).await?;
        count_api_write(&pi);
        Ok(pi)
    }
}
