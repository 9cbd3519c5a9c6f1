//! The four functions' logic, between the HTTP layer and the Stripe client and ledger. Handlers
//! hand in the request's `data` object (or the raw webhook bytes); what comes back is the
//! response's `data` object or an [`ApiError`].

use rust_decimal::Decimal;
use secrecy::SecretString;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::http::error::ApiError;
use crate::ledger::{now_iso, Claim, EventWriter, IncomingEvent, Ledger, LedgerError, Outcome};
use crate::money::{self, AmountError, Currency, MAX_MINOR};
use crate::stripe::form::Form;
use crate::stripe::signature;
use crate::stripe::{PaymentIntent, PaymentIntentId, StripeClient, StripeError};

pub const DEFAULT_DESCRIPTION: &str = "Compra de tickets";
const MAX_DESCRIPTION_CHARS: usize = 1000;
const MAX_CALLER_METADATA_KEYS: usize = 48;
const MAX_METADATA_KEY_CHARS: usize = 40;
const MAX_METADATA_VALUE_CHARS: usize = 500;

/// The PaymentIntent event types that move the ledger (SPEC §6).
const LEDGER_EVENTS: &[&str] = &[
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.canceled",
    "payment_intent.requires_action",
    "payment_intent.created",
];

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
}

/// `data` of a successful create (SPEC §3).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedData {
    pub success: bool,
    /// For Stripe.js: `confirmPayment` / `confirmCardPayment` in the browser.
    pub client_secret: Option<String>,
    pub payment_intent_id: String,
    /// Major units actually charged, after rounding, with the currency's decimals.
    #[schema(value_type = f64, example = 25.5)]
    pub amount: Value,
    pub currency: String,
}

/// `data` of a successful confirm (SPEC §4).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfirmedData {
    pub success: bool,
    pub payment_intent_id: String,
    /// Always `succeeded` here; anything else is a `payment_not_completed` error.
    pub status: String,
    #[schema(value_type = f64, example = 25.5)]
    pub amount: Value,
    pub currency: String,
    /// Unix seconds at which Stripe created the PaymentIntent.
    pub created: i64,
    pub payment_method: Option<String>,
    /// Stripe Charge objects, exactly as Stripe returned them.
    #[schema(value_type = Vec<Object>)]
    pub charges: Vec<Value>,
}

/// `data` of a successful read (SPEC §5).
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentIntentData {
    pub id: String,
    /// Stripe's status: `requires_payment_method`, `requires_action`, `processing`,
    /// `succeeded`, `canceled`, …
    pub status: String,
    #[schema(value_type = f64, example = 25.5)]
    pub amount: Value,
    pub currency: String,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

fn count_api_write(pi: &PaymentIntent) {
    metrics::counter!(
        "tmt_payment_status_updates_total",
        "status" => pi.status.clone(),
        "source" => "api"
    )
    .increment(1);
}

fn to_value<T: Serialize>(data: T) -> Value {
    serde_json::to_value(data).unwrap_or(Value::Null)
}

/// A create's answer: the response data, and whether it is a replay of an earlier one.
pub struct Created {
    pub data: Value,
    pub replayed: bool,
}

/// `Idempotency-Key`: 1–255 printable ASCII characters (SPEC §7).
pub fn check_idempotency_key(key: &str) -> Result<&str, ApiError> {
    let printable = key.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if (1..=255).contains(&key.len()) && printable {
        Ok(key)
    } else {
        Err(ApiError::IdempotencyKeyInvalid)
    }
}

/// The Stripe-side key for a caller's key: the same request always maps to the same key, a key
/// reused after its 24 hours maps to a new one.
fn derived_stripe_key(key: &str, fingerprint: &str, created_at: i64) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(key.as_bytes())
        .chain_update([0])
        .chain_update(fingerprint.as_bytes())
        .chain_update([0])
        .chain_update(created_at.to_be_bytes())
        .finalize();
    format!("tmt-{}", &hex::encode(digest)[..48])
}

/// A create request that passed every check of SPEC §3, in the order the table gives.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateRequest {
    pub amount_minor: i64,
    pub currency: Currency,
    pub description: String,
    /// The caller's metadata, values already turned into Stripe's strings.
    pub metadata: Vec<(String, String)>,
}

impl CreateRequest {
    pub fn parse(data: &Map<String, Value>) -> Result<Self, ApiError> {
        let amount = match data.get("amount") {
            None => return Err(ApiError::AmountInvalid),
            Some(v) => money::parse_amount(v),
        };
        let amount = match amount {
            Ok(a) => Ok(a),
            Err(AmountError::Invalid) => return Err(ApiError::AmountInvalid),
            Err(AmountError::TooLarge) => Err(ApiError::AmountTooLarge),
        };
        let currency = match data.get("currency") {
            None | Some(Value::Null) => Currency::parse("usd").expect("usd is supported"),
            Some(Value::String(s)) => {
                Currency::parse(s).ok_or_else(|| ApiError::CurrencyInvalid(s.clone()))?
            }
            Some(other) => return Err(ApiError::CurrencyInvalid(other.to_string())),
        };
        let amount_minor = convert(amount?, currency)?;
        let description = match data.get("description") {
            None | Some(Value::Null) => DEFAULT_DESCRIPTION.to_string(),
            Some(Value::String(s)) if s.chars().count() > MAX_DESCRIPTION_CHARS => {
                return Err(ApiError::DescriptionInvalid)
            }
            Some(Value::String(s)) if s.is_empty() => DEFAULT_DESCRIPTION.to_string(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(ApiError::DescriptionInvalid),
        };
        let metadata = parse_metadata(data.get("metadata"))?;
        Ok(CreateRequest {
            amount_minor,
            currency,
            description,
            metadata,
        })
    }

    /// The form sent to `POST /v1/payment_intents`. `platform` and `timestamp` are added last and
    /// win over caller keys of the same name.
    pub fn to_form(&self, timestamp: &str) -> Form {
        let mut form = Form::new();
        form.push("amount", self.amount_minor.to_string())
            .push("currency", self.currency.code())
            .push("description", self.description.clone());
        for (key, value) in &self.metadata {
            if key != "platform" && key != "timestamp" {
                form.nested("metadata", key, value.clone());
            }
        }
        form.nested("metadata", "platform", "TMT")
            .nested("metadata", "timestamp", timestamp)
            .nested("automatic_payment_methods", "enabled", "true");
        form
    }
}

fn convert(amount: Decimal, currency: Currency) -> Result<i64, ApiError> {
    let minor = currency.to_minor(amount).ok_or(ApiError::AmountTooLarge)?;
    let minimum = currency.minimum_minor();
    if minor < minimum {
        return Err(ApiError::AmountTooSmall {
            currency: currency.code().to_ascii_uppercase(),
            minimum: currency.to_major(minimum).to_string(),
        });
    }
    if minor > MAX_MINOR {
        return Err(ApiError::AmountTooLarge);
    }
    Ok(minor)
}

fn parse_metadata(value: Option<&Value>) -> Result<Vec<(String, String)>, ApiError> {
    let map = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ApiError::MetadataInvalid("debe ser un objeto".into())),
    };
    if map.len() > MAX_CALLER_METADATA_KEYS {
        return Err(ApiError::MetadataInvalid(format!(
            "máximo {MAX_CALLER_METADATA_KEYS} claves"
        )));
    }
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_CHARS {
            return Err(ApiError::MetadataInvalid(format!(
                "la clave '{}' debe tener entre 1 y {MAX_METADATA_KEY_CHARS} caracteres",
                truncate(key)
            )));
        }
        if key.contains(['[', ']']) {
            return Err(ApiError::MetadataInvalid(format!(
                "la clave '{}' no puede contener '[' ni ']'",
                truncate(key)
            )));
        }
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(ApiError::MetadataInvalid(format!(
                    "el valor de '{key}' debe ser texto, número o booleano"
                )))
            }
        };
        if text.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(ApiError::MetadataInvalid(format!(
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

/// `payment_intent_id` from a request's data, checked before it can reach a URL.
pub fn parse_payment_intent_id(data: &Map<String, Value>) -> Result<PaymentIntentId, ApiError> {
    match data.get("payment_intent_id") {
        None | Some(Value::Null) => Err(ApiError::PaymentIntentIdRequired),
        Some(Value::String(s)) if s.is_empty() => Err(ApiError::PaymentIntentIdRequired),
        Some(Value::String(s)) => PaymentIntentId::parse(s).ok_or(ApiError::PaymentIntentIdInvalid),
        Some(_) => Err(ApiError::PaymentIntentIdInvalid),
    }
}

/// Major units for a response, by the PaymentIntent's own currency.
fn major_json(minor: i64, currency: &str) -> Value {
    match Currency::parse(currency) {
        Some(c) => c.to_major_json(minor),
        // A currency this build does not know: Stripe's default is two decimals.
        None => money::decimal_to_json(Decimal::new(minor, 2)),
    }
}

/// Stripe answered 200 with something that is not a PaymentIntent.
fn malformed() -> ApiError {
    ApiError::from(StripeError::unreadable(200, None))
}

fn random_idempotency_key() -> String {
    use rand::Rng;
    let bytes: [u8; 16] = rand::thread_rng().gen();
    format!("tmt-{}", hex::encode(bytes))
}

impl Payments {
    /// Creates a PaymentIntent. With a caller's `Idempotency-Key`, the same key and data give the
    /// first answer again; the key is claimed (committed) before Stripe is called and its
    /// outcome saved after, with no transaction open across the call.
    pub async fn create(
        &self,
        data: &Map<String, Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Created, ApiError> {
        let request = CreateRequest::parse(data)?;
        // Whatever Stripe creates must be recorded: a ledger that cannot write refuses the create
        // before Stripe is called.
        self.ledger.ensure_writable().await?;
        let Some(key) = idempotency_key else {
            let data = create_at_stripe(
                &self.stripe,
                &self.ledger,
                &request,
                &now_iso(),
                &random_idempotency_key(),
            )
            .await?;
            return Ok(Created {
                data,
                replayed: false,
            });
        };
        let fingerprint = {
            use sha2::{Digest, Sha256};
            let canonical = crate::canonical::canonical(&Value::Object(data.clone()));
            hex::encode(Sha256::digest(canonical.as_bytes()))
        };
        let (owner, created_at) = match self
            .ledger
            .claim_key(key, &fingerprint, self.idempotency_stale)
            .await?
        {
            Claim::Owned { owner, created_at } => (owner, created_at),
            Claim::Replay(body) => {
                let data =
                    serde_json::from_str(&body).map_err(|_| ApiError::IdempotencyKeyInProgress)?;
                return Ok(Created {
                    data,
                    replayed: true,
                });
            }
            Claim::Reused => return Err(ApiError::IdempotencyKeyReused),
            Claim::InProgress => return Err(ApiError::IdempotencyKeyInProgress),
        };
        let timestamp = chrono::DateTime::from_timestamp_millis(created_at)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let stripe_key = derived_stripe_key(key, &fingerprint, created_at);
        // The work after the claim runs as its own task: a caller that hangs up (a browser
        // timing out) must not leave the key claimed with nobody to finish it. Its retry then
        // gets the replay, or a 409 while this is still running.
        let (stripe, ledger) = (self.stripe.clone(), self.ledger.clone());
        let key = key.to_string();
        let work = tokio::spawn(async move {
            let outcome =
                create_at_stripe(&stripe, &ledger, &request, &timestamp, &stripe_key).await;
            match &outcome {
                Ok(data) => ledger.finish_key(&key, &owner, &data.to_string()).await?,
                // Stripe never saw the request: the key is free again for any data.
                Err(ApiError::Stripe(e)) if e.never_reached_stripe() => {
                    if let Err(e) = ledger.delete_key(&key, &owner).await {
                        tracing::warn!(error = %e, "could not release an Idempotency-Key");
                    }
                }
                Err(_) => {
                    if let Err(e) = ledger.abandon_key(&key, &owner).await {
                        tracing::warn!(error = %e, "could not give up an Idempotency-Key; it frees itself after IDEMPOTENCY_STALE_SECS");
                    }
                }
            }
            outcome
        });
        let data = work.await.map_err(|e| {
            ApiError::Ledger(LedgerError::Unavailable(format!("create task failed: {e}")))
        })??;
        Ok(Created {
            data,
            replayed: false,
        })
    }
}

/// Creates the PaymentIntent at Stripe and records it in the ledger; the response data.
async fn create_at_stripe(
    stripe: &StripeClient,
    ledger: &Ledger,
    request: &CreateRequest,
    timestamp: &str,
    stripe_key: &str,
) -> Result<Value, ApiError> {
    let form = request.to_form(timestamp);
    let read_at = chrono::Utc::now().timestamp();
    let raw = stripe.create_payment_intent(&form, stripe_key).await?;
    let pi = PaymentIntent::from_value(&raw).ok_or_else(malformed)?;
    ledger.record_from_api(&pi, read_at).await?;
    count_api_write(&pi);
    tracing::info!(payment_intent_id = %pi.id, amount = pi.amount, currency = %pi.currency, "PaymentIntent created");
    Ok(to_value(CreatedData {
        success: true,
        client_secret: pi.client_secret.clone(),
        payment_intent_id: pi.id.clone(),
        amount: major_json(pi.amount, &pi.currency),
        currency: pi.currency,
    }))
}

impl Payments {
    pub async fn confirm(&self, data: &Map<String, Value>) -> Result<Value, ApiError> {
        let id = parse_payment_intent_id(data)?;
        let pi = self.read(&id).await?;
        if pi.status != "succeeded" {
            return Err(ApiError::PaymentNotCompleted(pi.status));
        }
        let charges = match pi.embedded_charges() {
            Some(charges) => charges,
            None => self.stripe.list_charges(&id).await?,
        };
        Ok(to_value(ConfirmedData {
            success: true,
            payment_method: pi.payment_method_id(),
            amount: major_json(pi.amount, &pi.currency),
            payment_intent_id: pi.id,
            status: pi.status,
            currency: pi.currency,
            created: pi.created,
            charges,
        }))
    }

    pub async fn get(&self, data: &Map<String, Value>) -> Result<Value, ApiError> {
        let id = parse_payment_intent_id(data)?;
        let pi = self.read(&id).await?;
        Ok(to_value(PaymentIntentData {
            amount: major_json(pi.amount, &pi.currency),
            id: pi.id,
            status: pi.status,
            currency: pi.currency,
            metadata: pi.metadata,
        }))
    }

    /// Reads the PaymentIntent from Stripe and brings the ledger up to date, whatever it says.
    async fn read(&self, id: &PaymentIntentId) -> Result<PaymentIntent, ApiError> {
        let read_at = chrono::Utc::now().timestamp();
        let raw = self.stripe.retrieve_payment_intent(id).await?;
        let pi = PaymentIntent::from_value(&raw).ok_or_else(malformed)?;
        self.ledger.record_from_api(&pi, read_at).await?;
        count_api_write(&pi);
        Ok(pi)
    }

    /// Verifies, records and applies one delivery. `Ok` means it is on disk (or was already).
    pub async fn webhook(
        &self,
        signature_header: Option<&str>,
        body: &[u8],
        now: i64,
    ) -> Result<Outcome, ApiError> {
        signature::verify(
            signature_header,
            body,
            &self.webhook.secrets,
            self.webhook.tolerance_secs,
            now,
        )?;
        let payload = std::str::from_utf8(body).map_err(|_| ApiError::EventInvalid)?;
        let event: Value = serde_json::from_str(payload).map_err(|_| ApiError::EventInvalid)?;
        let id = event.get("id").and_then(Value::as_str).unwrap_or("");
        let event_type = event.get("type").and_then(Value::as_str).unwrap_or("");
        let object_kind = event.get("object").and_then(Value::as_str);
        if id.is_empty() || event_type.is_empty() || object_kind.is_some_and(|o| o != "event") {
            return Err(ApiError::EventInvalid);
        }
        let object = event.pointer("/data/object");
        let payment_intent_id = match object {
            Some(o) if o.get("object").and_then(Value::as_str) == Some("payment_intent") => {
                o.get("id").and_then(Value::as_str)
            }
            Some(o) => o.get("payment_intent").and_then(Value::as_str),
            None => None,
        };
        let payment_intent = if LEDGER_EVENTS.contains(&event_type) {
            let parsed = object
                .and_then(PaymentIntent::from_value)
                .filter(|pi| !pi.id.is_empty());
            if parsed.is_none() {
                tracing::warn!(
                    event_id = id,
                    event_type,
                    "event object is not a PaymentIntent; recorded as unhandled"
                );
            }
            parsed
        } else {
            None
        };
        let incoming = IncomingEvent {
            id: id.to_string(),
            event_type: event_type.to_string(),
            created: event.get("created").and_then(Value::as_i64).unwrap_or(0),
            payment_intent_id: payment_intent_id.map(str::to_string),
            payment_intent,
            payload: payload.to_string(),
        };
        let pi_status = incoming.payment_intent.as_ref().map(|pi| pi.status.clone());
        let outcome = self
            .events
            .apply(incoming)
            .await
            .map_err(ApiError::WebhookNotRecorded)?;
        metrics::counter!(
            "tmt_webhook_events_total",
            "type" => event_type.to_string(),
            "outcome" => outcome.as_str()
        )
        .increment(1);
        if let (Outcome::Applied, Some(status)) = (outcome, pi_status) {
            metrics::counter!(
                "tmt_payment_status_updates_total",
                "status" => status,
                "source" => "webhook"
            )
            .increment(1);
        }
        let message = match (event_type, outcome) {
            (_, Outcome::Duplicate) => "webhook event already recorded",
            ("payment_intent.succeeded", _) => "PaymentIntent succeeded",
            ("payment_intent.payment_failed", _) => "PaymentIntent failed",
            (_, Outcome::Unhandled) => "unhandled webhook event",
            _ => "webhook event",
        };
        tracing::info!(
            event_id = id,
            event_type,
            payment_intent_id,
            outcome = outcome.as_str(),
            "{message}"
        );
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn validation_order_follows_the_spec_table() {
        // Bad amount and bad currency: the amount is reported.
        let e = CreateRequest::parse(&data(json!({"amount": "x", "currency": "zzz"}))).unwrap_err();
        assert_eq!(e.code(), "amount_invalid");
        // Bad currency and bad description: the currency.
        let e = CreateRequest::parse(&data(
            json!({"amount": 5, "currency": "zzz", "description": 1}),
        ))
        .unwrap_err();
        assert_eq!(e.code(), "currency_invalid");
        // Too small and bad metadata: too small.
        let e = CreateRequest::parse(&data(json!({"amount": 0.1, "metadata": 1}))).unwrap_err();
        assert_eq!(e.code(), "amount_too_small");
        // A number too large to hold, with a bad currency: the currency comes first.
        let e =
            CreateRequest::parse(&data(json!({"amount": "1e60", "currency": "zzz"}))).unwrap_err();
        assert_eq!(e.code(), "currency_invalid");
    }

    #[test]
    fn form_merges_metadata_with_ours_winning() {
        let req = CreateRequest::parse(&data(json!({
            "amount": 50, "metadata": {"platform": "evil", "order": 7, "vip": true, "timestamp": "x"}
        })))
        .unwrap();
        let form = req.to_form("2026-01-01T00:00:00.000Z");
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
}
