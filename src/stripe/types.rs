//! Stripe's objects as far as this service reads them, read leniently: unknown fields are
//! ignored, `null` reads as absent, and an enum value this build does not know is kept as it was
//! sent (`Other`), so API-version drift and emulators' partial objects never fail a request.
//! Charge objects are not modelled: they go back to callers exactly as Stripe sent them.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::next_action::{NextAction, PaymentError};

/// An enum over Stripe's string values that keeps values it does not know.
macro_rules! lenient_enum {
    (
        $(#[$meta:meta])*
        $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this build does not know, as Stripe sent it.
            Other(String),
        }

        impl $name {
            /// Every value this build knows.
            pub const KNOWN: &'static [&'static str] = &[$($text),+];

            pub fn parse(text: &str) -> Self {
                match text {
                    $($text => Self::$variant,)+
                    other => Self::Other(other.to_string()),
                }
            }

            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(text) => text,
                }
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }

        /// A status as the ledger wrote it, read as leniently as Stripe's.
        impl From<String> for $name {
            fn from(text: String) -> Self {
                Self::parse(&text)
            }
        }

        crate::as_text!($name);

        impl Default for $name {
            /// What an object without the field reads as.
            fn default() -> Self {
                Self::Other(String::new())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = Option::<String>::deserialize(d)?.unwrap_or_default();
                Ok(Self::parse(&text))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::SchemaType::Type(
                        utoipa::openapi::schema::Type::String,
                    ))
                    .description(Some("Stripe's value; one of the listed ones, or a newer one passed on as Stripe sent it"))
                    .enum_values(Some(Self::KNOWN.iter().copied()))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

/// The statuses an object kind goes through, and which of them never change again
/// (docs/contract.md §8), as variants of its status. The ledger's SQL is built from them, so the
/// rule has one definition per object kind.
pub trait Lifecycle: Sized + PartialEq + AsRef<str> + 'static {
    const FINAL: &'static [Self];
    /// Moves out of a final status that Stripe documents nonetheless, `(from, to)`: a refund
    /// that succeeded can still fail later (the bank returns it).
    const LATE_CHANGES: &'static [(Self, Self)] = &[];

    fn is_final(&self) -> bool {
        Self::FINAL.contains(self)
    }
}

lenient_enum! {
    /// A PaymentIntent's `status`.
    PaymentIntentStatus {
        RequiresPaymentMethod = "requires_payment_method",
        RequiresConfirmation = "requires_confirmation",
        RequiresAction = "requires_action",
        Processing = "processing",
        RequiresCapture = "requires_capture",
        Succeeded = "succeeded",
        Canceled = "canceled",
    }
}

lenient_enum! {
    /// A Refund's `status`.
    RefundStatus {
        Pending = "pending",
        RequiresAction = "requires_action",
        Succeeded = "succeeded",
        Failed = "failed",
        Canceled = "canceled",
    }
}

lenient_enum! {
    /// A Dispute's `status`.
    DisputeStatus {
        WarningNeedsResponse = "warning_needs_response",
        WarningUnderReview = "warning_under_review",
        WarningClosed = "warning_closed",
        NeedsResponse = "needs_response",
        UnderReview = "under_review",
        Won = "won",
        Lost = "lost",
        Prevented = "prevented",
    }
}

impl Lifecycle for PaymentIntentStatus {
    const FINAL: &'static [Self] = &[Self::Succeeded, Self::Canceled];
}

impl Lifecycle for RefundStatus {
    const FINAL: &'static [Self] = &[Self::Succeeded, Self::Failed, Self::Canceled];
    const LATE_CHANGES: &'static [(Self, Self)] = &[(Self::Succeeded, Self::Failed)];
}

impl Lifecycle for DisputeStatus {
    const FINAL: &'static [Self] = &[Self::Won, Self::Lost];
}

impl RefundStatus {
    /// The statuses whose money has left or is leaving: what a payment counts as refunded.
    pub const COUNTED: &'static [Self] = &[Self::Pending, Self::Succeeded];
    /// What is no longer available to refund: the counted ones, and those waiting on the
    /// customer.
    pub const COMMITTED: &'static [Self] = &[Self::Pending, Self::Succeeded, Self::RequiresAction];
}

lenient_enum! {
    /// An Event's `type`, for the types this service acts on; every other type is `Other`.
    EventType {
        PaymentIntentCreated = "payment_intent.created",
        PaymentIntentSucceeded = "payment_intent.succeeded",
        PaymentIntentPaymentFailed = "payment_intent.payment_failed",
        PaymentIntentProcessing = "payment_intent.processing",
        PaymentIntentCanceled = "payment_intent.canceled",
        PaymentIntentRequiresAction = "payment_intent.requires_action",
        PaymentIntentAmountCapturableUpdated = "payment_intent.amount_capturable_updated",
        /// A bank transfer paid part of what is owed.
        PaymentIntentPartiallyFunded = "payment_intent.partially_funded",
        ChargeSucceeded = "charge.succeeded",
        ChargeFailed = "charge.failed",
        ChargeUpdated = "charge.updated",
        ChargeCaptured = "charge.captured",
        ChargeRefunded = "charge.refunded",
        ChargeRefundUpdated = "charge.refund.updated",
        RefundCreated = "refund.created",
        RefundUpdated = "refund.updated",
        RefundFailed = "refund.failed",
        DisputeCreated = "charge.dispute.created",
        DisputeUpdated = "charge.dispute.updated",
        DisputeClosed = "charge.dispute.closed",
        DisputeFundsWithdrawn = "charge.dispute.funds_withdrawn",
        DisputeFundsReinstated = "charge.dispute.funds_reinstated",
        AccountUpdated = "account.updated",
        /// The account disconnected from the platform (Connect).
        AccountDeauthorized = "account.application.deauthorized",
        /// Money reached or left a customer's cash balance (bank transfers).
        CashBalanceTransactionCreated = "customer_cash_balance_transaction.created",
        /// A customer's cash balance holds money no payment took.
        CashBalanceFundsAvailable = "cash_balance.funds_available",
        PayoutCreated = "payout.created",
        PayoutUpdated = "payout.updated",
        PayoutPaid = "payout.paid",
        PayoutFailed = "payout.failed",
        PayoutCanceled = "payout.canceled",
        PayoutReconciliationCompleted = "payout.reconciliation_completed",
    }
}

lenient_enum! {
    /// An error's `type`.
    ErrorType {
        ApiError = "api_error",
        CardError = "card_error",
        IdempotencyError = "idempotency_error",
        InvalidRequestError = "invalid_request_error",
    }
}

lenient_enum! {
    /// An error's `code`, for the codes this service acts on and the commonest others; any
    /// other is kept as Stripe sent it, and passed on to callers as it is.
    ErrorCode {
        /// No such object (a PaymentIntent Stripe does not have).
        ResourceMissing = "resource_missing",
        /// The charge is disputed and cannot be refunded.
        ChargeDisputed = "charge_disputed",
        /// The account's balance cannot cover a refund.
        BalanceInsufficient = "balance_insufficient",
        /// An amount above what may be charged, or refunded.
        AmountTooLarge = "amount_too_large",
        AmountTooSmall = "amount_too_small",
        /// The charge has already been refunded in full.
        ChargeAlreadyRefunded = "charge_already_refunded",
        CardDeclined = "card_declined",
        ExpiredCard = "expired_card",
        IncorrectCvc = "incorrect_cvc",
        ProcessingError = "processing_error",
        /// The PaymentIntent's status does not allow the call (a capture of a canceled one).
        PaymentIntentUnexpectedState = "payment_intent_unexpected_state",
        IdempotencyKeyInUse = "idempotency_key_in_use",
        RateLimit = "rate_limit",
    }
}

/// What an event's `data.object` is, by its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventObjectKind {
    PaymentIntent,
    Charge,
    Refund,
    Dispute,
    /// A connected account (Connect), or its application for a deauthorisation.
    Account,
    /// A customer's cash balance, or one of its transactions.
    CashBalance,
    Payout,
    Unknown,
}

impl EventType {
    pub fn object_kind(&self) -> EventObjectKind {
        use EventType::*;
        match self {
            PaymentIntentCreated
            | PaymentIntentSucceeded
            | PaymentIntentPaymentFailed
            | PaymentIntentProcessing
            | PaymentIntentCanceled
            | PaymentIntentRequiresAction
            | PaymentIntentAmountCapturableUpdated
            | PaymentIntentPartiallyFunded => EventObjectKind::PaymentIntent,
            ChargeSucceeded | ChargeFailed | ChargeUpdated | ChargeCaptured | ChargeRefunded => {
                EventObjectKind::Charge
            }
            ChargeRefundUpdated | RefundCreated | RefundUpdated | RefundFailed => {
                EventObjectKind::Refund
            }
            DisputeCreated
            | DisputeUpdated
            | DisputeClosed
            | DisputeFundsWithdrawn
            | DisputeFundsReinstated => EventObjectKind::Dispute,
            AccountUpdated | AccountDeauthorized => EventObjectKind::Account,
            CashBalanceTransactionCreated | CashBalanceFundsAvailable => {
                EventObjectKind::CashBalance
            }
            PayoutCreated
            | PayoutUpdated
            | PayoutPaid
            | PayoutFailed
            | PayoutCanceled
            | PayoutReconciliationCompleted => EventObjectKind::Payout,
            Other(_) => EventObjectKind::Unknown,
        }
    }

    /// Whether the event moves a payment's status (docs/contract.md §6): every PaymentIntent
    /// event does.
    pub fn moves_payment(&self) -> bool {
        self.object_kind() == EventObjectKind::PaymentIntent
    }

    /// The types the reconciliation lists from Stripe's event log: every type that moves the
    /// ledger.
    pub fn reconciled() -> Vec<EventType> {
        EventType::KNOWN
            .iter()
            .map(|t| EventType::parse(t))
            .filter(|t| t.object_kind() != EventObjectKind::Unknown)
            .collect()
    }
}

/// A field Stripe sends as an id, or as the object itself when it was expanded.
#[derive(Debug, Clone, PartialEq)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

/// What every expandable object has: an id.
pub trait HasId {
    fn id(&self) -> &str;
}

impl<T: HasId> Expandable<T> {
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) => id,
            Expandable::Object(object) => object.id(),
        }
    }
}

/// What every object modelled here has: an id, a reader from JSON, and for each `getter: field`
/// given, a getter of the id in an [`Expandable`] field.
macro_rules! stripe_object {
    ($name:ident $(, $getter:ident: $field:ident)* $(,)?) => {
        impl HasId for $name {
            fn id(&self) -> &str {
                &self.id
            }
        }

        impl $name {
            /// Reads the fields we need from any JSON value Stripe (or an emulator) sent for one;
            /// `None` when it has no usable id.
            pub fn from_value(value: &Value) -> Option<Self> {
                Self::deserialize(value).ok().filter(|o| !o.id.is_empty())
            }

            $(
                #[doc = concat!(
                    "The id in `", stringify!($field), "`, whether Stripe sent the id or the ",
                    "expanded object."
                )]
                pub fn $getter(&self) -> Option<&str> {
                    self.$field.as_ref().map(Expandable::id)
                }
            )*
        }
    };
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Expandable<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<T> {
            Id(String),
            Object(Box<T>),
        }
        Ok(match Either::deserialize(d)? {
            Either::Id(id) => Expandable::Id(id),
            Either::Object(object) => Expandable::Object(object),
        })
    }
}

/// Any object reduced to its id (a PaymentMethod, a Charge, a PaymentIntent…).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ObjectRef {
    pub id: String,
}

impl HasId for ObjectRef {
    fn id(&self) -> &str {
        &self.id
    }
}

/// `pi_` followed by 1–250 ASCII letters or digits. It goes into a URL path, so nothing else is
/// accepted: `pi_1/../x` or `pi_1?expand[]=x` never reach Stripe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PaymentIntentId(String);

impl PaymentIntentId {
    pub fn parse(input: &str) -> Option<Self> {
        let rest = input.strip_prefix("pi_")?;
        let ok = (1..=250).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| PaymentIntentId(input.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PaymentIntentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `null` (which emulators send for fields they do not fill) reads as the type's default.
pub(super) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Metadata that is `null`, absent or not an object reads as empty.
pub(super) fn lenient_map<'de, D>(d: D) -> Result<Map<String, Value>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match Option::<Value>::deserialize(d)? {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    })
}

/// An expandable field that is absent, `null`, or neither an id nor an object reads as `None`.
pub(super) fn lenient_expandable<'de, D, T>(d: D) -> Result<Option<Expandable<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let value = Option::<Value>::deserialize(d)?;
    Ok(value.and_then(|v| Expandable::deserialize(v).ok()))
}

/// A Stripe list: `{"object": "list", "data": [...], "has_more": bool}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct List<T> {
    #[serde(default = "Vec::new", deserialize_with = "null_as_default")]
    pub data: Vec<T>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub has_more: bool,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        List {
            data: Vec::new(),
            has_more: false,
        }
    }
}

/// A PaymentIntent as far as this service cares.
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub amount: i64,
    /// Kept as Stripe sent it: a currency this build does not know must still be recorded.
    #[serde(default, deserialize_with = "null_as_default")]
    pub currency: String,
    #[serde(default)]
    pub status: PaymentIntentStatus,
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created: i64,
    #[serde(default, deserialize_with = "lenient_map")]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "lenient_expandable")]
    pub payment_method: Option<Expandable<ObjectRef>>,
    /// Older API versions and emulators embed the charges; newer ones do not.
    #[serde(default)]
    pub charges: Option<List<Value>>,
    /// What a manual-capture payment may still capture, minor units.
    #[serde(default, deserialize_with = "null_as_default")]
    pub amount_capturable: i64,
    /// What was charged, minor units (after a partial capture: what was captured).
    #[serde(default, deserialize_with = "null_as_default")]
    pub amount_received: i64,
    /// Connect: the platform's fee on the payment, minor units.
    #[serde(default)]
    pub application_fee_amount: Option<i64>,
    /// Connect: where a destination charge's money goes.
    #[serde(default)]
    pub transfer_data: Option<TransferData>,
    /// A voucher or bank transfer instructions (`delayed`); other actions read as `None`.
    #[serde(default, deserialize_with = "super::next_action::lenient_next_action")]
    pub next_action: Option<NextAction>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub payment_method_types: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub last_payment_error: Option<PaymentError>,
}

/// A destination charge's `transfer_data`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TransferData {
    #[serde(default, deserialize_with = "lenient_expandable")]
    pub destination: Option<Expandable<ObjectRef>>,
}

/// How this service marks the PaymentIntents it creates: `metadata.platform = "TMT"`. Another
/// application on the same Stripe account has other PaymentIntents, which are not ours.
pub const OWNER_KEY: &str = "platform";
pub const OWNER_TAG: &str = "TMT";

stripe_object!(PaymentIntent);

impl PaymentIntent {
    pub fn is_final(&self) -> bool {
        self.status.is_final()
    }

    /// Whether this service created it (its metadata carries our tag).
    pub fn is_ours(&self) -> bool {
        self.metadata.get(OWNER_KEY).and_then(Value::as_str) == Some(OWNER_TAG)
    }

    /// The payment method's id, whether Stripe sent the id or an expanded object.
    pub fn payment_method_id(&self) -> Option<String> {
        self.payment_method.as_ref().map(|pm| pm.id().to_string())
    }

    /// A destination charge's connected account.
    pub fn destination(&self) -> Option<&str> {
        let destination = self.transfer_data.as_ref()?.destination.as_ref()?;
        Some(destination.id())
    }

    /// Charges embedded in the object (older API versions, emulators), if it carries a list.
    pub fn embedded_charges(&self) -> Option<Vec<Value>> {
        self.charges.as_ref().map(|list| list.data.clone())
    }
}

/// Money going back from a payment, as far as this service cares: a Refund or a Dispute. `S` is
/// its status; `X` what only that kind of object carries.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Movement<S, X> {
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub amount: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub currency: String,
    pub status: S,
    pub reason: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub created: i64,
    #[serde(deserialize_with = "lenient_expandable")]
    pub payment_intent: Option<Expandable<ObjectRef>>,
    #[serde(deserialize_with = "lenient_expandable")]
    pub charge: Option<Expandable<ObjectRef>>,
    #[serde(flatten)]
    pub own: X,
}

/// A Refund.
pub type Refund = Movement<RefundStatus, RefundDetails>;

/// What only a Refund carries.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RefundDetails {
    #[serde(default)]
    pub failure_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient_map")]
    pub metadata: Map<String, Value>,
}

stripe_object!(Refund);

/// A Dispute.
pub type Dispute = Movement<DisputeStatus, DisputeDetails>;

/// What only a Dispute carries.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DisputeDetails {
    #[serde(default, deserialize_with = "null_as_default")]
    pub evidence_details: EvidenceDetails,
}

/// `evidence_details` of a Dispute: only when evidence is due.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EvidenceDetails {
    #[serde(default)]
    pub due_by: Option<i64>,
}

stripe_object!(Dispute);

impl<S, X> Movement<S, X> {
    /// The id in `payment_intent`, whether Stripe sent the id or the expanded object.
    pub fn payment_intent_id(&self) -> Option<&str> {
        self.payment_intent.as_ref().map(Expandable::id)
    }

    /// The id in `charge`, whether Stripe sent the id or the expanded object.
    pub fn charge_id(&self) -> Option<&str> {
        self.charge.as_ref().map(Expandable::id)
    }
}

/// A Charge reduced to what ties it to a payment; the object itself is kept raw.
#[derive(Debug, Clone, Deserialize)]
pub struct ChargeRef {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created: i64,
    #[serde(default, deserialize_with = "lenient_expandable")]
    pub payment_intent: Option<Expandable<ObjectRef>>,
    /// Older API versions embed the charge's refunds.
    #[serde(default)]
    pub refunds: Option<List<Value>>,
}

stripe_object!(ChargeRef, payment_intent_id: payment_intent);

/// An Event's envelope: its `data.object` stays raw until its type says what it is.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: EventType,
    #[serde(default, deserialize_with = "null_as_default")]
    pub created: i64,
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default)]
    pub data: EventData,
    /// The connected account the event happened on (Connect); `None` for the platform's own.
    #[serde(default)]
    pub account: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventData {
    #[serde(default)]
    pub object: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids() {
        assert!(PaymentIntentId::parse("pi_1PgafyB7WZ01zgkWSjxsAJo3").is_some());
        assert!(PaymentIntentId::parse(&format!("pi_{}", "a".repeat(250))).is_some());
        for bad in [
            "",
            "pi_",
            "pi_1/../x",
            "pi_1?expand[]=x",
            "pi_1%2F",
            "ch_123",
            "PI_123",
            "pi_1 ",
            "pi_ñ",
        ] {
            assert!(PaymentIntentId::parse(bad).is_none(), "{bad}");
        }
        assert!(PaymentIntentId::parse(&format!("pi_{}", "a".repeat(251))).is_none());
    }

    #[test]
    fn reads_the_published_fixture_leniently() {
        let raw: Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/stripe/payment_intent.json"
        ))
        .unwrap();
        let pi = PaymentIntent::from_value(&raw).unwrap();
        assert_eq!(pi.id, "pi_1PgafyB7WZ01zgkWSjxsAJo3");
        assert_eq!(pi.amount, 1099);
        assert_eq!(pi.status, PaymentIntentStatus::RequiresPaymentMethod);
        assert!(pi.embedded_charges().is_none());
        assert_eq!(pi.payment_method_id(), None);
    }

    #[test]
    fn unknown_values_and_partial_objects() {
        let v = json!({"id": "pi_1", "status": "some_future_status", "metadata": null});
        let pi = PaymentIntent::from_value(&v).unwrap();
        assert_eq!(
            pi.status,
            PaymentIntentStatus::Other("some_future_status".into())
        );
        assert_eq!(pi.status.as_str(), "some_future_status");
        assert!(!pi.is_final());
        assert!(pi.metadata.is_empty());
        let v = json!({"id": "pi_1", "amount": null, "currency": null, "created": null, "status": null});
        let pi = PaymentIntent::from_value(&v).unwrap();
        assert_eq!((pi.amount, pi.created, pi.status.as_str()), (0, 0, ""));
        let v = json!({"id": "pi_1", "status": "succeeded", "payment_method": {"id": "pm_1"}, "charges": {"data": [{"id": "ch_1"}]}});
        let pi = PaymentIntent::from_value(&v).unwrap();
        assert_eq!(pi.payment_method_id().as_deref(), Some("pm_1"));
        assert_eq!(pi.embedded_charges().unwrap().len(), 1);
        assert!(pi.is_final());
        let v =
            json!({"id": "pi_1", "status": "canceled", "payment_method": "pm_2", "charges": null});
        let pi = PaymentIntent::from_value(&v).unwrap();
        assert_eq!(pi.payment_method_id().as_deref(), Some("pm_2"));
        assert!(pi.embedded_charges().is_none());
        // An unusable payment_method does not fail the object.
        let v = json!({"id": "pi_1", "status": "succeeded", "payment_method": 7});
        assert_eq!(
            PaymentIntent::from_value(&v).unwrap().payment_method_id(),
            None
        );
        assert!(PaymentIntent::from_value(&json!({"id": "", "status": "x"})).is_none());
    }

    #[test]
    fn one_definition_of_final_per_kind() {
        for text in PaymentIntentStatus::KNOWN {
            let s = PaymentIntentStatus::parse(text);
            assert_eq!(s.as_str(), *text);
            assert_eq!(
                s.is_final(),
                matches!(
                    s,
                    PaymentIntentStatus::Succeeded | PaymentIntentStatus::Canceled
                )
            );
        }
        assert!(RefundStatus::Failed.is_final() && !RefundStatus::Pending.is_final());
        assert!(DisputeStatus::Lost.is_final() && !DisputeStatus::UnderReview.is_final());
        // A value this build does not know is never final: its row may still move.
        assert!(!PaymentIntentStatus::Other("succeeded_later".into()).is_final());
    }

    #[test]
    fn event_types_round_trip_and_classify() {
        for text in EventType::KNOWN {
            let t: EventType = serde_json::from_value(json!(text)).unwrap();
            assert_eq!(serde_json::to_value(&t).unwrap(), json!(text));
            assert_ne!(t.object_kind(), EventObjectKind::Unknown, "{text}");
        }
        let other: EventType = serde_json::from_value(json!("customer.created")).unwrap();
        assert_eq!(other, EventType::Other("customer.created".into()));
        assert_eq!(other.object_kind(), EventObjectKind::Unknown);
        assert!(EventType::PaymentIntentSucceeded.moves_payment());
        // A manual-capture payment's authorisation is how the ledger learns requires_capture.
        assert!(EventType::PaymentIntentAmountCapturableUpdated.moves_payment());
        assert!(!EventType::ChargeSucceeded.moves_payment());
    }

    #[test]
    fn expandable_fields() {
        let id: Expandable<ObjectRef> = serde_json::from_value(json!("ch_1")).unwrap();
        assert_eq!(id.id(), "ch_1");
        let object: Expandable<ObjectRef> =
            serde_json::from_value(json!({"id": "ch_2", "amount": 5})).unwrap();
        assert_eq!(object.id(), "ch_2");
        assert!(matches!(object, Expandable::Object(_)));
    }
}
