//! What can go wrong in the payment use cases, without any HTTP in it: the HTTP layer maps each
//! case to its status, code and message in one place (`http/error.rs`).

use crate::ledger::LedgerError;
use crate::stripe::signature::SignatureError;
use crate::stripe::types::PaymentIntentStatus;
use crate::stripe::StripeError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("amount invalid")]
    AmountInvalid,
    #[error("currency not supported: {0}")]
    CurrencyInvalid(String),
    /// `minimum` in major units, as the caller would write it.
    #[error("amount below the minimum of {minimum} {currency}")]
    AmountTooSmall { currency: String, minimum: String },
    #[error("amount above the maximum")]
    AmountTooLarge,
    #[error("description invalid")]
    DescriptionInvalid,
    #[error("metadata invalid: {0}")]
    MetadataInvalid(String),
    #[error("holdSeconds invalid")]
    HoldInvalid,
    #[error("captureMethod invalid")]
    CaptureMethodInvalid,
    #[error("capture amount invalid")]
    CaptureAmountInvalid,
    #[error("payment not capturable: {0}")]
    PaymentNotCapturable(PaymentIntentStatus),
    #[error("capture above the authorisation")]
    AmountExceedsAuthorized,
    #[error("payment_intent_id missing")]
    PaymentIntentIdRequired,
    #[error("payment_intent_id invalid")]
    PaymentIntentIdInvalid,
    #[error("payment not completed: {0}")]
    PaymentNotCompleted(PaymentIntentStatus),
    #[error("refund amount invalid")]
    RefundAmountInvalid,
    #[error("refund reason invalid")]
    RefundReasonInvalid,
    #[error("cancellation reason invalid")]
    CancelReasonInvalid,
    #[error("payment not refundable: {0}")]
    PaymentNotRefundable(PaymentIntentStatus),
    /// `remaining` in major units, as the caller would write it.
    #[error("refund above what is left: {remaining} {currency}")]
    RefundExceedsRemaining { remaining: String, currency: String },
    #[error("payment already succeeded")]
    PaymentAlreadySucceeded,
    #[error("payment processing")]
    PaymentProcessing,
    /// A capture asked for once the payment's seat hold had ended.
    #[error("seat hold expired")]
    HoldExpired,
    /// Confirm of a payment that succeeded but is all going back.
    #[error("payment refunded")]
    PaymentRefunded,
    /// On refund, cancel and capture: a refusal of Stripe's that has a code of its own.
    #[error("Stripe refused ({0:?}): {1}")]
    Refused(StripeRefusal, Box<StripeError>),
    #[error("Idempotency-Key reused with other data")]
    IdempotencyKeyReused,
    #[error("Idempotency-Key in use by a request in flight")]
    IdempotencyKeyInProgress,
    #[error("webhook signature rejected: {0}")]
    Signature(#[from] SignatureError),
    #[error("webhook body is not a Stripe event")]
    EventInvalid,
    #[error("webhook event could not be recorded: {0}")]
    WebhookNotRecorded(#[source] LedgerError),
    #[error(transparent)]
    Stripe(Box<StripeError>),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A fault of this service (a task that panicked, a saved response it cannot read back).
    #[error("internal error: {0}")]
    Internal(String),
}

/// Stripe's refusals that the platform's own functions (refund, cancel, capture) answer with
/// codes of their own rather than as a failure of Stripe (docs/contract.md §2). The seed's
/// functions (create, confirm, get) keep the seed's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeRefusal {
    /// `resource_missing`: Stripe has no such PaymentIntent.
    PaymentMissing,
    /// `charge_disputed`: the charge is disputed and cannot be refunded.
    Disputed,
    /// `balance_insufficient`: the account's balance cannot cover the refund.
    BalanceInsufficient,
}

impl StripeRefusal {
    /// The refusal Stripe's error is, if it is one of these.
    fn of(e: &StripeError) -> Option<StripeRefusal> {
        let StripeError::Api {
            code: Some(code), ..
        } = e
        else {
            return None;
        };
        match code.as_str() {
            "resource_missing" => Some(StripeRefusal::PaymentMissing),
            "charge_disputed" => Some(StripeRefusal::Disputed),
            "balance_insufficient" => Some(StripeRefusal::BalanceInsufficient),
            _ => None,
        }
    }
}

impl From<StripeError> for Error {
    fn from(e: StripeError) -> Self {
        Error::Stripe(Box::new(e))
    }
}

impl Error {
    /// True when the request never reached Stripe, so nothing can have happened there.
    pub fn never_reached_stripe(&self) -> bool {
        matches!(self, Error::Stripe(e) if e.never_reached_stripe())
    }

    /// The error as the platform's own functions (refund, cancel, capture) answer it: Stripe's
    /// refusals of [`StripeRefusal`] named as such.
    pub(super) fn on_platform_function(self) -> Error {
        match self {
            Error::Stripe(e) => match StripeRefusal::of(&e) {
                Some(refusal) => Error::Refused(refusal, e),
                None => Error::Stripe(e),
            },
            other => other,
        }
    }

    /// The Stripe error behind this one, if Stripe answered or failed.
    pub fn stripe(&self) -> Option<&StripeError> {
        match self {
            Error::Stripe(e) | Error::Refused(_, e) => Some(e),
            _ => None,
        }
    }
}
