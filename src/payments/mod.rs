//! The payment use cases, between the HTTP layer and the Stripe client and ledger. They take a
//! request's `data` object (or the raw webhook bytes) and answer with typed data or an
//! [`Error`]; nothing in here knows about HTTP.

pub mod bulk;
mod cancel;
mod capture;
pub mod connect;
mod create;
pub mod delayed;
mod email;
mod error;
pub mod holds;
mod idempotent;
mod read;
pub mod reconcile;
mod refunds;
pub mod request;
mod round;
pub mod settlement;
pub mod statement;
mod webhook;

use secrecy::SecretString;

pub use cancel::CanceledData;
pub use capture::CapturedData;
pub use create::CreatedData;
#[cfg(test)]
pub(crate) use error::one_of_each;
pub use error::{Error, StripeRefusal};
pub use idempotent::{Answer, IdempotentWrite};
pub use read::{ConfirmedData, PaymentIntentData};
pub use refunds::RefundedData;
pub use request::{
    CancelInput, CaptureInput, CaptureRequest, CreateInput, CreateRequest, PaymentIntentInput,
    RefundInput, RefundRequest, DEFAULT_DESCRIPTION,
};

use crate::ledger::{EventWriter, Ledger, Outcome};
use crate::stripe::types::{EventType, PaymentIntent};
use crate::stripe::StripeClient;

#[derive(Clone)]
pub struct WebhookSettings {
    pub secrets: Vec<SecretString>,
    pub tolerance_secs: i64,
}

pub struct Payments {
    pub stripe: StripeClient,
    pub ledger: Ledger,
    /// Webhook events go through the group-commit writer.
    pub events: EventWriter,
    pub webhook: WebhookSettings,
    /// When an unfinished create's Idempotency-Key may be taken over.
    pub idempotency_stale: std::time::Duration,
    /// Organisers paid through Stripe Connect (off unless `CONNECT_CHARGE_TYPE` is set).
    pub connect: std::sync::Arc<connect::Connect>,
    /// OXXO, bank transfers and SEPA Debit.
    pub delayed: std::sync::Arc<delayed::Delayed>,
}

fn count_api_write(pi: &PaymentIntent) {
    metrics::counter!(
        "tmt_payment_status_updates_total",
        "status" => pi.status.to_string(),
        "source" => "api"
    )
    .increment(1);
}

/// A dispute the ledger learnt of, from a webhook or from reconciliation: counted once, when
/// its event is applied.
fn count_dispute_opened(event_type: &EventType, outcome: Outcome) {
    if outcome == Outcome::Applied && *event_type == EventType::DisputeCreated {
        metrics::counter!("tmt_disputes_opened_total").increment(1);
    }
}
