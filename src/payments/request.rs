//! Requests' `data`, parsed into values that are valid by construction (docs/contract.md,
//! "Create" and "Confirm and get"). The input types are what the HTTP layer deserializes and
//! what the OpenAPI document describes; the parsed types are what the use cases receive.

use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::delayed::methods::{self, MethodChoice};
use super::Error;
use crate::ledger::{HOLD_CAP_KEY, HOLD_KEY, PAY_BY_KEY, RESERVATION_KEY};
use crate::money::{self, AmountError, Currency, Money, MAX_MINOR};
use crate::stripe::form::Form;
use crate::stripe::types::{PaymentIntentId, OWNER_KEY, OWNER_TAG};

pub const DEFAULT_DESCRIPTION: &str = "Compra de tickets";
const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Stripe takes at most 50 metadata keys; the service's own (`platform`, `timestamp`, and
/// `hold_expires_at` or a refund's `tmt_reservation` and `tmt_reason`) come out of them.
const STRIPE_METADATA_KEYS: usize = 50;
const MAX_METADATA_KEY_CHARS: usize = 40;
const MAX_METADATA_VALUE_CHARS: usize = 500;
/// Set by the service on every PaymentIntent it creates, winning over caller keys.
const TIMESTAMP_KEY: &str = "timestamp";

/// `data` of a create request, as sent. Every field is read leniently here and checked by
/// [`CreateRequest::parse`], in the order the contract gives.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateInput {
    /// Major units (`50.00` is $50.00): a number, or a string holding a decimal number. > 0.
    #[schema(value_type = String, example = "25.50")]
    pub amount: Option<Value>,
    /// ISO 4217, any case; default `usd`.
    #[schema(value_type = Option<String>, example = "eur")]
    pub currency: Option<Value>,
    /// Default `Compra de tickets`; at most 1000 characters.
    #[schema(value_type = Option<String>)]
    pub description: Option<Value>,
    /// String, number or boolean values; at most 48 keys of at most 40 characters (no `[`/`]`),
    /// values of at most 500. `platform` and `timestamp` are set by the service.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// Seconds the seats are held for this payment, 60–86400: when the hold expires, a payment
    /// that has not succeeded is canceled.
    #[serde(rename = "holdSeconds")]
    #[schema(value_type = Option<i64>, example = 600)]
    pub hold_seconds: Option<Value>,
    /// `automatic` (default) or `manual`: with `manual` the card is only authorised, and
    /// `stripe_capture_payment` charges it once the tickets are issued.
    #[serde(rename = "captureMethod")]
    #[schema(value_type = Option<String>, example = "manual")]
    pub capture_method: Option<Value>,
    /// The organiser the payment is for (Stripe Connect, docs/contract.md §15): required while
    /// `CONNECT_CHARGE_TYPE` is set; it must be onboarded and able to take payments.
    #[serde(rename = "organizerId")]
    #[schema(value_type = Option<String>, example = "org_madrid_42")]
    pub organizer_id: Option<Value>,
    /// How many tickets the payment is for, 1-1000 (default 1): the fixed part of the
    /// platform's fee is per ticket.
    #[schema(value_type = Option<i64>, example = 2)]
    pub tickets: Option<Value>,
    /// Who pays the platform's fee: `organizer` (default: taken from the amount) or `buyer`
    /// (added on top: the buyer pays the amount and the fee, the organiser receives the amount).
    #[serde(rename = "feePaidBy")]
    #[schema(value_type = Option<String>, example = "organizer")]
    pub fee_paid_by: Option<Value>,
    /// Methods the buyer may pay with: `card`, `oxxo` (MXN, 10.00–10,000.00),
    /// `customer_balance` (a bank transfer: SPEI in MXN, SEPA in EUR) and `sepa_debit` (EUR).
    /// Absent: Stripe's automatic payment methods.
    #[serde(rename = "paymentMethodTypes")]
    #[schema(value_type = Option<Vec<String>>, example = json!(["oxxo"]))]
    pub payment_method_types: Option<Value>,
    /// The buyer's e-mail: required with `customer_balance` (one Stripe Customer per e-mail).
    #[serde(rename = "customerEmail")]
    #[schema(value_type = Option<String>, example = "ana@example.mx")]
    pub customer_email: Option<Value>,
}

/// Where the organiser's id is kept on its account and on its payments' metadata.
pub const ORGANIZER_KEY: &str = "organizer_id";
/// Where the number of tickets is kept on a payment's metadata.
pub const TICKETS_KEY: &str = "tickets";
/// The longest organiser id.
const MAX_ORGANIZER_ID: usize = 64;
/// How many tickets one payment may be for.
const TICKETS: std::ops::RangeInclusive<i64> = 1..=1000;

/// An organiser id: 1-64 of `A-Z a-z 0-9 _ . -`.
pub fn organizer_id(value: Option<&Value>) -> Option<String> {
    let id = value?.as_str()?;
    let valid = (1..=MAX_ORGANIZER_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    valid.then(|| id.to_string())
}

/// Whom a payment is for, under Stripe Connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizerChoice {
    pub organizer_id: String,
    pub tickets: i64,
    /// `feePaidBy: "buyer"`: the fee is added on top of the amount.
    pub buyer_pays_fee: bool,
}

/// `data` of a confirm or get request, as sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PaymentIntentInput {
    /// `pi_` followed by 1-250 letters or digits.
    #[schema(value_type = String, pattern = "^pi_[A-Za-z0-9]{1,250}$", example = "pi_3PxyzABC")]
    pub payment_intent_id: Option<Value>,
}

/// `data` of a refund request, as sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RefundInput {
    /// The payment, as on confirm and get.
    #[serde(flatten)]
    pub payment: PaymentIntentInput,
    /// Major units in the payment's currency; absent refunds everything not yet refunded.
    #[schema(value_type = Option<String>, example = "10.00")]
    pub amount: Option<Value>,
    /// `requested_by_customer`, `duplicate`, `fraudulent` or `event_canceled`.
    #[schema(value_type = Option<String>, example = "requested_by_customer")]
    pub reason: Option<Value>,
    /// As on create.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
    /// A payment made for an organiser (Stripe Connect): whether the platform's fee goes back
    /// in proportion; default `REFUND_APPLICATION_FEE` (`true`).
    #[serde(rename = "refundApplicationFee")]
    #[schema(value_type = Option<bool>, example = true)]
    pub refund_application_fee: Option<Value>,
    /// A destination charge: whether the organiser's transfer is reversed in proportion;
    /// default `true`.
    #[serde(rename = "reverseTransfer")]
    #[schema(value_type = Option<bool>, example = true)]
    pub reverse_transfer: Option<Value>,
}

/// `data` of a cancel request, as sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CancelInput {
    /// The payment, as on confirm and get.
    #[serde(flatten)]
    pub payment: PaymentIntentInput,
    /// `abandoned` (default), `requested_by_customer`, `duplicate` or `fraudulent`.
    #[schema(value_type = Option<String>, example = "abandoned")]
    pub reason: Option<Value>,
}

/// Reads a request's `data` object into its input type; the input types accept any JSON in
/// every field, so this cannot fail on a well-formed envelope.
pub fn input<T: for<'de> Deserialize<'de> + Default>(data: &Map<String, Value>) -> T {
    T::deserialize(Value::Object(data.clone())).unwrap_or_default()
}

/// A create request that passed every check, in the order the contract's table gives.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    pub money: Money,
    pub description: String,
    /// The caller's metadata, values already turned into Stripe's strings.
    pub metadata: Vec<(String, String)>,
    /// How long the seats are held, seconds.
    pub hold_seconds: Option<i64>,
    pub manual_capture: bool,
    /// The organiser it is for (Stripe Connect).
    pub organizer: Option<OrganizerChoice>,
    /// The payment methods it names, if any (docs/contract.md, "Cash and bank transfers").
    pub methods: Option<MethodChoice>,
}

/// Seat holds last between a minute and a day.
const HOLD_SECONDS: std::ops::RangeInclusive<i64> = 60..=86_400;

impl CreateRequest {
    pub fn parse(data: &Map<String, Value>) -> Result<Self, Error> {
        let input: CreateInput = input(data);
        let amount = match &input.amount {
            None => return Err(Error::AmountInvalid),
            Some(v) => match money::parse_amount(v) {
                Ok(a) => Ok(a),
                Err(AmountError::Invalid) => return Err(Error::AmountInvalid),
                Err(AmountError::TooLarge) => Err(Error::AmountTooLarge),
            },
        };
        let currency = match &input.currency {
            None => Currency::parse("usd").expect("usd is supported"),
            Some(Value::String(s)) => {
                Currency::parse(s).ok_or_else(|| Error::CurrencyInvalid(s.clone()))?
            }
            Some(other) => return Err(Error::CurrencyInvalid(other.to_string())),
        };
        let money = convert(amount?, currency)?;
        let description = match &input.description {
            None => DEFAULT_DESCRIPTION.to_string(),
            Some(Value::String(s)) if s.chars().count() > MAX_DESCRIPTION_CHARS => {
                return Err(Error::DescriptionInvalid)
            }
            Some(Value::String(s)) if s.is_empty() => DEFAULT_DESCRIPTION.to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(Error::DescriptionInvalid),
        };
        // Room for the service's own keys: two, the hold's end when there is a hold, and the
        // organiser's and the tickets when there is an organiser.
        let for_organizer = input.organizer_id.as_ref().is_some_and(|v| !v.is_null());
        // Named methods may add a transfer's deadline and the hold's cap.
        let named = input
            .payment_method_types
            .as_ref()
            .is_some_and(|v| !v.is_null());
        let ours = 2
            + usize::from(input.hold_seconds.is_some())
            + 2 * usize::from(for_organizer)
            + 2 * usize::from(named);
        let metadata = parse_metadata(input.metadata.as_ref(), ours)?;
        let hold_seconds = match &input.hold_seconds {
            None => None,
            Some(Value::Number(n)) => match n.as_i64() {
                Some(s) if HOLD_SECONDS.contains(&s) => Some(s),
                _ => return Err(Error::HoldInvalid),
            },
            Some(_) => return Err(Error::HoldInvalid),
        };
        let manual_capture = match &input.capture_method {
            None => false,
            Some(Value::String(s)) if s == "automatic" => false,
            Some(Value::String(s)) if s == "manual" => true,
            Some(_) => return Err(Error::CaptureMethodInvalid),
        };
        let methods = methods::parse(
            input.payment_method_types.as_ref(),
            input.customer_email.as_ref(),
            money,
            manual_capture,
        )?;
        let organizer = match input.organizer_id.as_ref().filter(|v| !v.is_null()) {
            None => None,
            Some(value) => Some(OrganizerChoice {
                organizer_id: organizer_id(Some(value)).ok_or(Error::OrganizerInvalid)?,
                tickets: match &input.tickets {
                    None | Some(Value::Null) => 1,
                    Some(Value::Number(n)) => n
                        .as_i64()
                        .filter(|t| TICKETS.contains(t))
                        .ok_or(Error::TicketsInvalid)?,
                    Some(_) => return Err(Error::TicketsInvalid),
                },
                buyer_pays_fee: match &input.fee_paid_by {
                    None | Some(Value::Null) => false,
                    Some(Value::String(s)) if s == "organizer" => false,
                    Some(Value::String(s)) if s == "buyer" => true,
                    Some(_) => return Err(Error::FeeInvalid("feePaidBy".into())),
                },
            }),
        };
        Ok(CreateRequest {
            money,
            description,
            metadata,
            hold_seconds,
            manual_capture,
            organizer,
            methods,
        })
    }

    /// When the hold ends for a create first tried at `first_use` (Unix ms): fixed by the
    /// first try, so that a retry sends Stripe the very same request.
    pub fn hold_expires_at(&self, first_use: i64) -> Option<chrono::DateTime<chrono::Utc>> {
        let seconds = self.hold_seconds?;
        chrono::DateTime::from_timestamp_millis(first_use)
            .map(|t| t + chrono::Duration::seconds(seconds))
    }

    /// The form sent to `POST /v1/payment_intents`. The owner tag, `timestamp` and the hold's
    /// end are added last and win over caller keys of the same name.
    pub fn to_form(&self, timestamp: &str, hold_expires_at: Option<&str>) -> Form {
        let mut form = Form::new();
        form.push("amount", self.money.minor.to_string())
            .push("currency", self.money.currency.code())
            .push("description", self.description.clone());
        let ours = [OWNER_KEY, TIMESTAMP_KEY, HOLD_KEY, PAY_BY_KEY, HOLD_CAP_KEY];
        let organizers = [ORGANIZER_KEY, TICKETS_KEY];
        for (key, value) in &self.metadata {
            let organizers = self.organizer.is_some() && organizers.contains(&key.as_str());
            if !ours.contains(&key.as_str()) && !organizers {
                form.nested("metadata", key, value.clone());
            }
        }
        if let Some(organizer) = &self.organizer {
            form.nested("metadata", ORGANIZER_KEY, organizer.organizer_id.as_str())
                .nested("metadata", TICKETS_KEY, organizer.tickets.to_string());
        }
        form.nested("metadata", OWNER_KEY, OWNER_TAG)
            .nested("metadata", TIMESTAMP_KEY, timestamp);
        if let Some(hold) = hold_expires_at {
            form.nested("metadata", HOLD_KEY, hold);
        }
        // Named methods replace the automatic ones (`MethodChoice::add_to`).
        if self.methods.is_none() {
            form.nested("automatic_payment_methods", "enabled", "true");
        }
        if self.manual_capture {
            form.push("capture_method", "manual");
        }
        form
    }
}

/// Major units to Stripe's minor units, within Stripe's minimum and maximum for the currency.
fn convert(amount: Decimal, currency: Currency) -> Result<Money, Error> {
    let minor = currency.to_minor(amount).ok_or(Error::AmountTooLarge)?;
    let minimum = currency.minimum_minor();
    if minor < minimum {
        return Err(Error::AmountTooSmall {
            currency: currency.code().to_ascii_uppercase(),
            minimum: currency.to_major(minimum).to_string(),
        });
    }
    if minor > MAX_MINOR {
        return Err(Error::AmountTooLarge);
    }
    Ok(Money { minor, currency })
}

/// The caller's metadata, leaving room for `ours` keys of the service's own within Stripe's 50.
fn parse_metadata(value: Option<&Value>, ours: usize) -> Result<Vec<(String, String)>, Error> {
    let map = match value {
        None => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(Error::MetadataInvalid("debe ser un objeto".into())),
    };
    let most = STRIPE_METADATA_KEYS - ours;
    if map.len() > most {
        return Err(Error::MetadataInvalid(format!("máximo {most} claves")));
    }
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_CHARS {
            return Err(Error::MetadataInvalid(format!(
                "la clave '{}' debe tener entre 1 y {MAX_METADATA_KEY_CHARS} caracteres",
                truncate(key)
            )));
        }
        if key.contains(['[', ']']) {
            return Err(Error::MetadataInvalid(format!(
                "la clave '{}' no puede contener '[' ni ']'",
                truncate(key)
            )));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(Error::MetadataInvalid(format!(
                    "el valor de '{key}' debe ser texto, número o booleano"
                )))
            }
        };
        if text.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(Error::MetadataInvalid(format!(
                "el valor de '{key}' excede {MAX_METADATA_VALUE_CHARS} caracteres"
            )));
        }
        out.push((key.clone(), text));
    }
    Ok(out)
}

fn truncate(s: &str) -> String {
    s.chars().take(MAX_METADATA_KEY_CHARS).collect()
}

/// An optional amount in major units; one that is not an amount is `invalid`, one too large to
/// hold is `amount_too_large` (as on create).
fn optional_amount(value: Option<&Value>, invalid: Error) -> Result<Option<Decimal>, Error> {
    value
        .map(|v| {
            money::parse_amount(v).map_err(|e| match e {
                AmountError::Invalid => invalid,
                AmountError::TooLarge => Error::AmountTooLarge,
            })
        })
        .transpose()
}

/// An optional field holding one of the words `parse` knows; anything else is `invalid`.
fn optional_word<T>(
    value: Option<&Value>,
    parse: fn(&str) -> Option<T>,
    invalid: Error,
) -> Result<Option<T>, Error> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => parse(s).map(Some).ok_or(invalid),
        Some(_) => Err(invalid),
    }
}

/// `payment_intent_id` from a request's data, checked before it can reach a URL.
pub fn parse_payment_intent_id(data: &Map<String, Value>) -> Result<PaymentIntentId, Error> {
    payment_intent_id(data.get("payment_intent_id"))
}

/// A `payment_intent_id` as sent (absent, `null` and `""` are all missing).
fn payment_intent_id(value: Option<&Value>) -> Result<PaymentIntentId, Error> {
    match value {
        None | Some(Value::Null) => Err(Error::PaymentIntentIdRequired),
        Some(Value::String(s)) if s.is_empty() => Err(Error::PaymentIntentIdRequired),
        Some(Value::String(s)) => PaymentIntentId::parse(s).ok_or(Error::PaymentIntentIdInvalid),
        Some(_) => Err(Error::PaymentIntentIdInvalid),
    }
}

impl PaymentIntentInput {
    /// The payment's id, checked as [`parse_payment_intent_id`] checks it.
    fn id(&self) -> Result<PaymentIntentId, Error> {
        payment_intent_id(self.payment_intent_id.as_ref())
    }
}

/// An enum whose values are words of the contract: `parse` and `as_str` from one list.
macro_rules! words {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $($(#[$variant_meta:meta])* $variant:ident = $word:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($word => Some($name::$variant),)+
                    _ => None,
                }
            }

            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }
        }
    };
}

words! {
    /// Why a payment is refunded.
    pub enum RefundReason {
        RequestedByCustomer = "requested_by_customer",
        Duplicate = "duplicate",
        Fraudulent = "fraudulent",
        /// The event was canceled: Stripe knows no such reason, so it is sent as
        /// `requested_by_customer` with `metadata[tmt_reason]=event_canceled`.
        EventCanceled = "event_canceled",
    }
}

impl RefundReason {
    /// What Stripe is sent as `reason`.
    pub fn stripe_reason(&self) -> &'static str {
        match self {
            RefundReason::EventCanceled => "requested_by_customer",
            other => other.as_str(),
        }
    }
}

/// A refund request that passed every check of the contract's table, in its order.
#[derive(Debug, Clone, PartialEq)]
pub struct RefundRequest {
    pub payment_intent_id: PaymentIntentId,
    /// Major units; converted with the payment's currency once it is known.
    pub amount: Option<Decimal>,
    pub reason: Option<RefundReason>,
    pub metadata: Vec<(String, String)>,
    /// Why the service refunds on its own (`hold_expired`), noted in `metadata[tmt_reason]`.
    pub service_reason: Option<&'static str>,
    /// Stripe Connect: whether the platform's fee goes back; `None`: the setting's default.
    pub refund_application_fee: Option<bool>,
    /// Stripe Connect: whether a destination charge's transfer is reversed; `None`: it is.
    pub reverse_transfer: Option<bool>,
}

/// An optional `true` or `false`; anything else is `refund_option_invalid` naming `field`.
fn optional_flag(value: Option<&Value>, field: &'static str) -> Result<Option<bool>, Error> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(Error::RefundOptionInvalid(field)),
    }
}

impl RefundRequest {
    pub fn parse(data: &Map<String, Value>) -> Result<Self, Error> {
        let input: RefundInput = input(data);
        let payment_intent_id = input.payment.id()?;
        let amount = optional_amount(input.amount.as_ref(), Error::RefundAmountInvalid)?;
        let reason = optional_word(
            input.reason.as_ref(),
            RefundReason::parse,
            Error::RefundReasonInvalid,
        )?;
        // The owner and reservation keys, and `tmt_reason` for a canceled event.
        let ours = 2 + usize::from(reason == Some(RefundReason::EventCanceled));
        let metadata = parse_metadata(input.metadata.as_ref(), ours)?;
        let refund_application_fee = optional_flag(
            input.refund_application_fee.as_ref(),
            "refundApplicationFee",
        )?;
        let reverse_transfer = optional_flag(input.reverse_transfer.as_ref(), "reverseTransfer")?;
        Ok(RefundRequest {
            payment_intent_id,
            amount,
            reason,
            metadata,
            service_reason: None,
            refund_application_fee,
            reverse_transfer,
        })
    }

    /// The amount in the payment's minor units, by the same conversion as create; an amount
    /// that rounds to nothing is invalid, one above Stripe's maximum too large.
    pub fn minor_amount(&self, currency: &str) -> Result<Option<i64>, Error> {
        self.amount
            .map(|amount| to_minor(amount, currency, Error::RefundAmountInvalid))
            .transpose()
    }

    /// The form sent to `POST /v1/refunds`, with the reservation's id in the metadata.
    pub fn to_form(&self, amount: i64, reservation: &str) -> Form {
        let mut form = Form::new();
        form.push("payment_intent", self.payment_intent_id.as_str())
            .push("amount", amount.to_string());
        if let Some(reason) = self.reason {
            form.push("reason", reason.stripe_reason());
        }
        let ours = [OWNER_KEY, RESERVATION_KEY, REASON_KEY];
        for (key, value) in &self.metadata {
            if !ours.contains(&key.as_str()) {
                form.nested("metadata", key, value.clone());
            }
        }
        let noted = match self.reason {
            Some(RefundReason::EventCanceled) => Some("event_canceled"),
            _ => self.service_reason,
        };
        if let Some(note) = noted {
            form.nested("metadata", REASON_KEY, note);
        }
        form.nested("metadata", OWNER_KEY, OWNER_TAG).nested(
            "metadata",
            RESERVATION_KEY,
            reservation,
        );
        form
    }
}

/// Where the service notes a reason Stripe has no value for (`event_canceled`, `hold_expired`).
pub const REASON_KEY: &str = "tmt_reason";

words! {
    /// Why a payment is canceled: Stripe's `cancellation_reason`.
    pub enum CancelReason {
        Abandoned = "abandoned",
        RequestedByCustomer = "requested_by_customer",
        Duplicate = "duplicate",
        Fraudulent = "fraudulent",
    }
}

/// `data` of a capture request, as sent.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CaptureInput {
    /// The payment, as on confirm and get.
    #[serde(flatten)]
    pub payment: PaymentIntentInput,
    /// Major units, at most what was authorised (the rest is released); absent captures all.
    #[schema(value_type = Option<String>, example = "40.00")]
    pub amount: Option<Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaptureRequest {
    pub payment_intent_id: PaymentIntentId,
    /// Major units; converted with the payment's currency.
    pub amount: Option<Decimal>,
}

impl CaptureRequest {
    pub fn parse(data: &Map<String, Value>) -> Result<Self, Error> {
        let input: CaptureInput = input(data);
        let payment_intent_id = input.payment.id()?;
        let amount = optional_amount(input.amount.as_ref(), Error::CaptureAmountInvalid)?;
        Ok(CaptureRequest {
            payment_intent_id,
            amount,
        })
    }
}

/// Major units to minor units of `currency` (Stripe's two decimals for one this build does not
/// know). An amount that rounds to nothing is `invalid`; one above Stripe's maximum (or beyond
/// any number) is `amount_too_large`, as on create.
pub fn to_minor(amount: Decimal, currency: &str, invalid: Error) -> Result<i64, Error> {
    let minor = match Currency::parse(currency) {
        Some(c) => c.to_minor(amount),
        None => amount
            .checked_mul(Decimal::ONE_HUNDRED)
            .map(|m| {
                m.round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
            })
            .and_then(|m| i64::try_from(m).ok()),
    };
    match minor {
        None => Err(Error::AmountTooLarge),
        Some(m) if m > MAX_MINOR => Err(Error::AmountTooLarge),
        Some(m) if m <= 0 => Err(invalid),
        Some(m) => Ok(m),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CancelRequest {
    pub payment_intent_id: PaymentIntentId,
    pub reason: CancelReason,
}

impl CancelRequest {
    pub fn parse(data: &Map<String, Value>) -> Result<Self, Error> {
        let input: CancelInput = input(data);
        let payment_intent_id = input.payment.id()?;
        let reason = optional_word(
            input.reason.as_ref(),
            CancelReason::parse,
            Error::CancelReasonInvalid,
        )?
        .unwrap_or(CancelReason::Abandoned);
        Ok(CancelRequest {
            payment_intent_id,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn code(e: Error) -> &'static str {
        match e {
            Error::AmountInvalid => "amount_invalid",
            Error::CurrencyInvalid(_) => "currency_invalid",
            Error::AmountTooSmall { .. } => "amount_too_small",
            Error::AmountTooLarge => "amount_too_large",
            Error::DescriptionInvalid => "description_invalid",
            Error::MetadataInvalid(_) => "metadata_invalid",
            other => panic!("not a validation error: {other}"),
        }
    }

    #[test]
    fn validation_order_follows_the_contract_table() {
        let first = |v: Value| code(CreateRequest::parse(&data(v)).unwrap_err());
        // Bad amount and bad currency: the amount is reported.
        assert_eq!(
            first(json!({"amount": "x", "currency": "zzz"})),
            "amount_invalid"
        );
        // Bad currency and bad description: the currency.
        assert_eq!(
            first(json!({"amount": 5, "currency": "zzz", "description": 1})),
            "currency_invalid"
        );
        // Too small and bad metadata: too small.
        assert_eq!(
            first(json!({"amount": 0.1, "metadata": 1})),
            "amount_too_small"
        );
        // A number too large to hold, with a bad currency: the currency comes first.
        assert_eq!(
            first(json!({"amount": "1e60", "currency": "zzz"})),
            "currency_invalid"
        );
        assert_eq!(first(json!({"amount": null})), "amount_invalid");
    }

    #[test]
    fn form_merges_metadata_with_ours_winning() {
        let req = CreateRequest::parse(&data(json!({
            "amount": 50, "metadata": {"platform": "evil", "order": 7, "vip": true, "timestamp": "x"}
        })))
        .unwrap();
        let form = req.to_form("2026-01-01T00:00:00.000Z", None);
        let pairs: Vec<(&str, &str)> = form
            .pairs()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert!(pairs.contains(&("metadata[platform]", "TMT")));
        assert!(pairs.contains(&("metadata[timestamp]", "2026-01-01T00:00:00.000Z")));
        assert!(pairs.contains(&("metadata[order]", "7")));
        assert!(pairs.contains(&("metadata[vip]", "true")));
        assert_eq!(
            pairs
                .iter()
                .filter(|(k, _)| *k == "metadata[platform]")
                .count(),
            1
        );
        assert!(pairs.contains(&("amount", "5000")));
        assert!(pairs.contains(&("description", DEFAULT_DESCRIPTION)));
    }

    #[test]
    fn payment_intent_ids_from_data() {
        let parse = |v: Value| parse_payment_intent_id(&data(v));
        assert!(matches!(
            parse(json!({})),
            Err(Error::PaymentIntentIdRequired)
        ));
        assert!(matches!(
            parse(json!({"payment_intent_id": ""})),
            Err(Error::PaymentIntentIdRequired)
        ));
        assert!(matches!(
            parse(json!({"payment_intent_id": null})),
            Err(Error::PaymentIntentIdRequired)
        ));
        assert!(matches!(
            parse(json!({"payment_intent_id": 5})),
            Err(Error::PaymentIntentIdInvalid)
        ));
        assert!(matches!(
            parse(json!({"payment_intent_id": "pi_1/../x"})),
            Err(Error::PaymentIntentIdInvalid)
        ));
        assert_eq!(
            parse(json!({"payment_intent_id": "pi_123"}))
                .unwrap()
                .as_str(),
            "pi_123"
        );
    }
}
