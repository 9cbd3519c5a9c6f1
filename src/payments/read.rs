//! Confirm and get (docs/contract.md, "Confirm and get"): a PaymentIntent read from Stripe, the
//! ledger brought up to date with whatever Stripe said.
//!
//! A payment whose ledger row is settled (final, and written from a whole Stripe object) is
//! answered from the ledger alone, with what Stripe would have said: a final status never
//! changes, so buyers polling for their result cost Stripe nothing on a sale day. Confirm's
//! charges come from the Charge objects the ledger keeps (from `charge.*` events and from
//! earlier confirms); a succeeded payment whose charge it has never seen costs one call.

use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::connect::client_for;
use super::request::parse_payment_intent_id;
use super::{count_api_write, Error, Payments};
use crate::ledger::{next_action_of, Ledger, NextActionData, PaymentRow, Standing};
use crate::money::Major;
use crate::stripe::types::{PaymentIntent, PaymentIntentId, PaymentIntentStatus};
use crate::stripe::StripeClient;

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
    /// Refunded so far (pending and succeeded refunds, whoever made them), major units: less
    /// than what was charged (a payment refunded in full is `payment_refunded`).
    pub amount_refunded: Major,
    /// It succeeded after its seat hold ended (docs/contract.md §10).
    pub late: bool,
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
    /// Refunded so far (pending and succeeded refunds, whoever made them), major units.
    #[serde(rename = "amountRefunded")]
    pub amount_refunded: Major,
    /// It succeeded after its seat hold ended (docs/contract.md §10).
    pub late: bool,
    /// What the buyer has to do while the payment waits for a voucher's payment or a bank
    /// transfer (docs/contract.md, "Cash and bank transfers").
    #[serde(rename = "nextAction", skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextActionData>,
}

impl Payments {
    pub async fn confirm(&self, data: &Map<String, Value>) -> Result<ConfirmedData, Error> {
        let id = parse_payment_intent_id(data)?;
        if let Some(row) = self.ledger.settled_payment(id.as_str()).await? {
            return self.confirm_settled(&id, row).await;
        }
        let pi = self.read(&id).await?;
        if pi.status != PaymentIntentStatus::Succeeded {
            return Err(Error::PaymentNotCompleted(pi.status));
        }
        let standing = self.not_refunded(&id).await?;
        let charges = match pi.embedded_charges() {
            Some(charges) => charges,
            None => {
                let read_at = chrono::Utc::now().timestamp();
                let stripe = client_for(&self.stripe, &self.ledger, id.as_str()).await?;
                let charges = stripe.list_charges(&id).await?;
                // Kept, so that the next confirm of this payment answers by itself.
                self.ledger
                    .record_charges(id.as_str(), &charges, read_at)
                    .await?;
                charges
            }
        };
        Ok(Answered::from(pi).confirmed(standing, charges))
    }

    pub async fn get(&self, data: &Map<String, Value>) -> Result<PaymentIntentData, Error> {
        let id = parse_payment_intent_id(data)?;
        let payment = match self.ledger.settled_payment(id.as_str()).await? {
            Some(row) => {
                count_ledger_read("get");
                Answered::from(row)
            }
            None => Answered::from(self.read(&id).await?),
        };
        let standing = self.ledger.standing(id.as_str()).await?;
        Ok(payment.read(standing))
    }

    /// Where a succeeded payment stands, unless its money is all going back: confirm's rule
    /// (docs/contract.md §4), whoever refunded it, the service itself included (a late payment
    /// under `LATE_PAYMENT_POLICY=refund`, even before its refund is made).
    async fn not_refunded(&self, id: &PaymentIntentId) -> Result<Standing, Error> {
        let standing = self.ledger.standing(id.as_str()).await?;
        match standing.refunded {
            true => Err(Error::PaymentRefunded),
            false => Ok(standing),
        }
    }

    /// Confirm of a settled payment: the row says everything but the charges, which the ledger
    /// has kept unless no `charge.*` event and no earlier confirm brought the succeeded one.
    async fn confirm_settled(
        &self,
        id: &PaymentIntentId,
        row: PaymentRow,
    ) -> Result<ConfirmedData, Error> {
        if row.status != PaymentIntentStatus::Succeeded {
            count_ledger_read("confirm");
            return Err(Error::PaymentNotCompleted(row.status));
        }
        let standing = self.not_refunded(id).await.inspect_err(|_| {
            count_ledger_read("confirm");
        })?;
        let mut charges = self.ledger.charges_for(id.as_str()).await?;
        let seen = charges
            .iter()
            .any(|c| c.get("status").and_then(Value::as_str) == Some("succeeded"));
        if seen {
            count_ledger_read("confirm");
        } else {
            let read_at = chrono::Utc::now().timestamp();
            let stripe = client_for(&self.stripe, &self.ledger, id.as_str()).await?;
            charges = stripe.list_charges(id).await?;
            self.ledger
                .record_charges(id.as_str(), &charges, read_at)
                .await?;
        }
        Ok(Answered::from(row).confirmed(standing, charges))
    }

    /// Reads the PaymentIntent from Stripe and brings the ledger up to date, whatever it says.
    pub(super) async fn read(&self, id: &PaymentIntentId) -> Result<PaymentIntent, Error> {
        read_at_stripe(&self.stripe, &self.ledger, id).await
    }
}

/// Reads the PaymentIntent from Stripe and brings the ledger up to date, whatever it says.
pub(super) async fn read_at_stripe(
    stripe: &StripeClient,
    ledger: &Ledger,
    id: &PaymentIntentId,
) -> Result<PaymentIntent, Error> {
    let stripe = client_for(stripe, ledger, id.as_str()).await?;
    let read_at = chrono::Utc::now().timestamp();
    let pi = stripe.retrieve_payment_intent(id).await?;
    ledger.record_from_api(&pi, read_at).await?;
    if let Some(charges) = pi.embedded_charges() {
        // An object that embeds its charges (older API versions, emulators) brings what a later
        // confirm needs: keep them with the row.
        ledger
            .record_charges(id.as_str(), &charges, read_at)
            .await?;
    }
    count_api_write(&pi);
    Ok(pi)
}

/// A payment as confirm and get answer for it: from its settled ledger row, or as Stripe has
/// just said it.
struct Answered {
    id: String,
    status: PaymentIntentStatus,
    amount: i64,
    currency: String,
    created: i64,
    payment_method: Option<String>,
    metadata: Map<String, Value>,
    next_action: Option<NextActionData>,
}

impl From<PaymentRow> for Answered {
    fn from(row: PaymentRow) -> Self {
        Answered {
            metadata: match row.metadata {
                Value::Object(map) => map,
                _ => Map::new(),
            },
            id: row.id,
            status: row.status,
            amount: row.amount,
            currency: row.currency,
            created: row.created,
            payment_method: row.payment_method,
            // A settled row is final: nothing is awaited.
            next_action: None,
        }
    }
}

impl From<PaymentIntent> for Answered {
    fn from(pi: PaymentIntent) -> Self {
        Answered {
            next_action: next_action_of(&pi),
            payment_method: pi.payment_method_id(),
            id: pi.id,
            status: pi.status,
            amount: pi.amount,
            currency: pi.currency,
            created: pi.created,
            metadata: pi.metadata,
        }
    }
}

impl Answered {
    /// Confirm's answer, with where the payment stands and its charges.
    fn confirmed(self, standing: Standing, charges: Vec<Value>) -> ConfirmedData {
        ConfirmedData {
            success: true,
            amount: Major::of(self.amount, &self.currency),
            amount_refunded: Major::of(standing.amount_refunded, &self.currency),
            late: standing.late,
            payment_intent_id: self.id,
            status: self.status,
            currency: self.currency,
            created: self.created,
            payment_method: self.payment_method,
            charges,
        }
    }

    /// Get's answer, with where the payment stands.
    fn read(self, standing: Standing) -> PaymentIntentData {
        PaymentIntentData {
            amount: Major::of(self.amount, &self.currency),
            amount_refunded: Major::of(standing.amount_refunded, &self.currency),
            late: standing.late,
            id: self.id,
            status: self.status,
            currency: self.currency,
            metadata: self.metadata,
            next_action: self.next_action,
        }
    }
}

/// A read answered by the ledger instead of Stripe.
fn count_ledger_read(operation: &'static str) {
    metrics::counter!("tmt_reads_from_ledger_total", "operation" => operation).increment(1);
}
