//! What can go wrong in the payment use cases, without any HTTP in it, sorted into kinds: the
//! caller's input, the payment's state, Stripe's refusals (and the ones with codes of their
//! own), Stripe unreachable, unreadable or busy, the ledger unavailable or not writable, the
//! webhook's signature, a fault of the service. The failures of the layers below (`StripeError`,
//! `LedgerError`, `SignatureError`) are sorted here, once, so that the HTTP layer maps each kind
//! to its status, code and message (`http/error.rs`) without knowing those layers.
//!
//! A new kind of failure is a variant here and a row in the HTTP layer's table; a new refusal
//! of Stripe's with a code of its own is a [`StripeRefusal`] and its [`ErrorCode`].

use std::time::Duration;

use crate::ledger::LedgerError;
use crate::stripe::client::ApiRefusal;
use crate::stripe::signature::SignatureError;
use crate::stripe::types::{ErrorCode, PaymentIntentStatus};
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
    /// A function of Stripe Connect while `CONNECT_CHARGE_TYPE` is unset.
    #[error("Stripe Connect is off")]
    ConnectDisabled,
    #[error("organizerId invalid")]
    OrganizerIdInvalid,
    #[error("country invalid")]
    CountryInvalid,
    /// The field whose URL is not `https://` (or `http://` on this machine).
    #[error("{0} invalid")]
    UrlInvalid(&'static str),
    #[error("email invalid")]
    EmailInvalid,
    /// What is wrong with the fee policy.
    #[error("fee invalid: {0}")]
    FeeInvalid(String),
    #[error("organiser not found")]
    OrganizerNotFound,
    /// Create for an organiser the ledger does not know (or an id that cannot be one).
    #[error("organiser unknown")]
    OrganizerInvalid,
    /// Create for an organiser whose account cannot take charges, or left the platform.
    #[error("organiser cannot take payments")]
    OrganizerNotReady,
    /// Create without an organiser while Connect is on.
    #[error("organizerId missing")]
    OrganizerRequired,
    #[error("tickets invalid")]
    TicketsInvalid,
    /// A payment method that is unknown, or does not fit the currency or the amount.
    #[error("payment method not available for this currency or amount")]
    PaymentMethodInvalid,
    /// A bank transfer without the buyer's e-mail.
    #[error("customerEmail missing")]
    CustomerEmailRequired,
    /// A refund of a payment whose method cannot be refunded (OXXO).
    #[error("refunds not supported by the payment method")]
    RefundNotSupported,
    /// A refund's Connect option (its field) that is not `true` or `false`.
    #[error("{0} is not true or false")]
    RefundOptionInvalid(&'static str),
    /// On refund, cancel and capture: a refusal of Stripe's that has a code of its own.
    #[error("Stripe refused ({0:?}): {1}")]
    Refused(StripeRefusal, Box<ApiRefusal>),
    #[error("Idempotency-Key reused with other data")]
    IdempotencyKeyReused,
    #[error("Idempotency-Key in use by a request in flight")]
    IdempotencyKeyInProgress,
    #[error("webhook signature rejected: no Stripe-Signature header")]
    SignatureMissing,
    #[error("webhook signature rejected: unparseable Stripe-Signature header")]
    SignatureMalformed,
    #[error("webhook signature rejected: no v1 signature in the header")]
    SignatureNoV1,
    #[error("webhook signature rejected: no signature matches any configured secret")]
    SignatureMismatch,
    #[error("webhook signature rejected: timestamp outside the tolerance")]
    SignatureExpired,
    #[error("webhook body is not a Stripe event")]
    EventInvalid,
    #[error("webhook event could not be recorded: {0}")]
    WebhookNotRecorded(#[source] LedgerError),
    /// Stripe answered the call with an error: what it said (status, type, code, message,
    /// request id) is passed on to the caller.
    #[error(transparent)]
    StripeRefused(Box<ApiRefusal>),
    /// Stripe answered with a success status and a body that is not the object asked for.
    #[error("Stripe answered HTTP {status} with a body that is not the expected object")]
    StripeUnreadable {
        status: u16,
        request_id: Option<String>,
    },
    /// No answer came from Stripe. `maybe_reached`: a request may have reached it, so the call
    /// may have been carried out.
    #[error("Stripe could not be reached: {cause}")]
    StripeUnreachable { cause: String, maybe_reached: bool },
    /// The instance's budget of Stripe calls had no turn in time, or Stripe kept answering 429
    /// (it did nothing with those requests) until the call's time ran out.
    #[error("Stripe call budget exhausted; retry in {} s", retry_after.as_secs())]
    StripeBusy {
        retry_after: Duration,
        maybe_reached: bool,
    },
    /// The ledger cannot be reached or read: a database that does not answer, a failing query,
    /// a row it cannot read back.
    #[error("ledger unavailable: {0}")]
    LedgerUnavailable(#[source] LedgerError),
    /// The ledger answers but cannot make a write durable (disk full, read-only database).
    #[error("ledger not writable: {0}")]
    LedgerNotWritable(#[source] LedgerError),
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
    /// The refusal Stripe's answer is, if it is one of these.
    fn of(refusal: &ApiRefusal) -> Option<StripeRefusal> {
        match refusal.code.as_ref()? {
            ErrorCode::ResourceMissing => Some(StripeRefusal::PaymentMissing),
            ErrorCode::ChargeDisputed => Some(StripeRefusal::Disputed),
            ErrorCode::BalanceInsufficient => Some(StripeRefusal::BalanceInsufficient),
            _ => None,
        }
    }
}

/// A failed Stripe call, sorted by what it means for the payment functions.
impl From<StripeError> for Error {
    fn from(e: StripeError) -> Self {
        let maybe_reached = !e.never_reached_stripe();
        match e {
            StripeError::Api(refusal) => Error::StripeRefused(refusal),
            StripeError::Unreadable { status, request_id } => {
                Error::StripeUnreadable { status, request_id }
            }
            StripeError::Unreachable(transport) => Error::StripeUnreachable {
                cause: transport.to_string(),
                maybe_reached,
            },
            StripeError::Busy { retry_after, .. } => Error::StripeBusy {
                retry_after,
                maybe_reached,
            },
        }
    }
}

/// A failed ledger call: the ledger cannot write, or cannot be used at all.
impl From<LedgerError> for Error {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::NotWritable(_) => Error::LedgerNotWritable(e),
            e => Error::LedgerUnavailable(e),
        }
    }
}

impl From<SignatureError> for Error {
    fn from(e: SignatureError) -> Self {
        match e {
            SignatureError::MissingHeader => Error::SignatureMissing,
            SignatureError::MalformedHeader => Error::SignatureMalformed,
            SignatureError::NoV1 => Error::SignatureNoV1,
            SignatureError::NoMatch => Error::SignatureMismatch,
            SignatureError::OutsideTolerance => Error::SignatureExpired,
        }
    }
}

impl Error {
    /// True when the request never reached Stripe, so nothing can have happened there.
    pub fn never_reached_stripe(&self) -> bool {
        matches!(
            self,
            Error::StripeUnreachable {
                maybe_reached: false,
                ..
            } | Error::StripeBusy {
                maybe_reached: false,
                ..
            }
        )
    }

    /// The error as the platform's own functions (refund, cancel, capture) answer it: Stripe's
    /// refusals of [`StripeRefusal`] named as such.
    pub(super) fn on_platform_function(self) -> Error {
        match self {
            Error::StripeRefused(refusal) => match StripeRefusal::of(&refusal) {
                Some(kind) => Error::Refused(kind, refusal),
                None => Error::StripeRefused(refusal),
            },
            other => other,
        }
    }

    /// What Stripe said, when it answered the call with an error.
    pub fn stripe_refusal(&self) -> Option<&ApiRefusal> {
        match self {
            Error::StripeRefused(refusal) | Error::Refused(_, refusal) => Some(refusal),
            _ => None,
        }
    }

    /// Whether the ledger failed (it cannot be used, or cannot write).
    pub fn is_ledger_fault(&self) -> bool {
        matches!(
            self,
            Error::LedgerUnavailable(_) | Error::LedgerNotWritable(_)
        )
    }
}

/// One error of each kind, for the HTTP layer's test that every kind has a code.
#[cfg(test)]
pub(crate) fn one_of_each() -> Vec<Error> {
    use crate::stripe::client::Transport;
    let refusal = |status: u16, code: Option<ErrorCode>, message: Option<&str>| {
        Box::new(ApiRefusal {
            status,
            code,
            message: message.map(str::to_string),
            ..ApiRefusal::default()
        })
    };
    let ledger = || LedgerError::Url("x".into());
    let mut all = vec![
        Error::AmountInvalid,
        Error::CurrencyInvalid("x".into()),
        Error::AmountTooSmall {
            currency: "USD".into(),
            minimum: "0.50".into(),
        },
        Error::AmountTooLarge,
        Error::DescriptionInvalid,
        Error::MetadataInvalid("x".into()),
        Error::HoldInvalid,
        Error::CaptureMethodInvalid,
        Error::CaptureAmountInvalid,
        Error::PaymentNotCapturable(PaymentIntentStatus::RequiresPaymentMethod),
        Error::AmountExceedsAuthorized,
        Error::PaymentIntentIdRequired,
        Error::PaymentIntentIdInvalid,
        Error::PaymentNotCompleted(PaymentIntentStatus::Processing),
        Error::RefundAmountInvalid,
        Error::RefundReasonInvalid,
        Error::CancelReasonInvalid,
        Error::PaymentNotRefundable(PaymentIntentStatus::Processing),
        Error::RefundExceedsRemaining {
            remaining: "1.00".into(),
            currency: "USD".into(),
        },
        Error::PaymentAlreadySucceeded,
        Error::PaymentProcessing,
        Error::HoldExpired,
        Error::PaymentRefunded,
        Error::ConnectDisabled,
        Error::OrganizerIdInvalid,
        Error::CountryInvalid,
        Error::UrlInvalid("returnUrl"),
        Error::EmailInvalid,
        Error::FeeInvalid("percent".into()),
        Error::OrganizerNotFound,
        Error::OrganizerInvalid,
        Error::OrganizerNotReady,
        Error::OrganizerRequired,
        Error::TicketsInvalid,
        Error::PaymentMethodInvalid,
        Error::CustomerEmailRequired,
        Error::RefundNotSupported,
        Error::RefundOptionInvalid("reverseTransfer"),
        Error::IdempotencyKeyReused,
        Error::IdempotencyKeyInProgress,
        Error::EventInvalid,
        Error::WebhookNotRecorded(ledger()),
        Error::from(StripeError::Api(refusal(402, None, Some("m")))),
        Error::from(StripeError::Api(refusal(402, None, None))),
        Error::from(StripeError::Unreadable {
            status: 200,
            request_id: None,
        }),
        Error::from(StripeError::Unreachable(Transport::Timeout)),
        Error::from(StripeError::Busy {
            retry_after: Duration::from_secs(3),
            maybe_reached: false,
        }),
        Error::from(ledger()),
        Error::from(LedgerError::NotWritable("disk full".into())),
        Error::Internal("task panicked".into()),
    ];
    for code in [
        ErrorCode::ResourceMissing,
        ErrorCode::ChargeDisputed,
        ErrorCode::BalanceInsufficient,
    ] {
        let refused = Error::from(StripeError::Api(refusal(400, Some(code), None)));
        all.push(refused.on_platform_function());
    }
    for e in [
        SignatureError::MissingHeader,
        SignatureError::MalformedHeader,
        SignatureError::NoV1,
        SignatureError::NoMatch,
        SignatureError::OutsideTolerance,
    ] {
        all.push(Error::from(e));
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stripe::client::Transport;

    #[test]
    fn failures_below_are_sorted_into_kinds() {
        let refused = ApiRefusal {
            status: 402,
            code: Some(ErrorCode::CardDeclined),
            message: Some("Your card was declined.".into()),
            ..ApiRefusal::default()
        };
        let e = Error::from(StripeError::Api(Box::new(refused.clone())));
        assert_eq!(e.stripe_refusal(), Some(&refused));
        assert!(!e.never_reached_stripe());
        // A card decline is no refusal of the platform's functions: it stays Stripe's.
        let e = e.on_platform_function();
        assert!(
            matches!(&e, Error::StripeRefused(r) if **r == refused),
            "{e:?}"
        );

        let connect = Error::from(StripeError::Unreachable(Transport::Connect));
        assert!(connect.never_reached_stripe());
        let timeout = Error::from(StripeError::Unreachable(Transport::Timeout));
        assert!(!timeout.never_reached_stripe() && timeout.stripe_refusal().is_none());
        let busy = |maybe_reached| {
            Error::from(StripeError::Busy {
                retry_after: Duration::from_secs(2),
                maybe_reached,
            })
        };
        assert!(busy(false).never_reached_stripe() && !busy(true).never_reached_stripe());

        assert!(matches!(
            Error::from(LedgerError::NotWritable("disk full".into())),
            Error::LedgerNotWritable(_)
        ));
        for e in [
            LedgerError::Unavailable("gone".into()),
            LedgerError::Corrupt("x".into()),
        ] {
            let e = Error::from(e);
            assert!(matches!(e, Error::LedgerUnavailable(_)) && e.is_ledger_fault());
        }
        assert!(matches!(
            Error::from(SignatureError::OutsideTolerance),
            Error::SignatureExpired
        ));
    }

    #[test]
    fn refusals_with_codes_of_their_own_keep_what_stripe_said() {
        for (code, kind) in [
            (ErrorCode::ResourceMissing, StripeRefusal::PaymentMissing),
            (ErrorCode::ChargeDisputed, StripeRefusal::Disputed),
            (
                ErrorCode::BalanceInsufficient,
                StripeRefusal::BalanceInsufficient,
            ),
        ] {
            let refused = ApiRefusal {
                status: 400,
                code: Some(code),
                request_id: Some("req_1".into()),
                ..ApiRefusal::default()
            };
            let e = Error::from(StripeError::Api(Box::new(refused.clone())));
            let e = e.on_platform_function();
            assert!(matches!(&e, Error::Refused(k, r) if *k == kind && **r == refused));
            assert_eq!(
                e.stripe_refusal().unwrap().request_id.as_deref(),
                Some("req_1")
            );
        }
    }
}
