//! Create a PaymentIntent (docs/contract.md, "Create"), safely retried under an Idempotency-Key.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::request::CreateRequest;
use super::{count_api_write, Error, Payments};
use crate::ledger::{now_iso, Claim, IdempotencyKey, Ledger, OwnedKey};
use crate::money::Major;
use crate::stripe::StripeClient;

/// `data` of a successful create.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedData {
    pub success: bool,
    /// For Stripe.js: `confirmPayment` / `confirmCardPayment` in the browser.
    pub client_secret: Option<String>,
    pub payment_intent_id: String,
    /// Major units actually charged, after rounding, with the currency's decimals.
    pub amount: Major,
    pub currency: String,
}

/// A create's answer: the response data, and whether it is a replay of an earlier one.
pub struct Created {
    pub data: CreatedData,
    pub replayed: bool,
}

/// The Stripe-side key for a caller's key: the same request always maps to the same key, a key
/// reused after its 24 hours maps to a new one.
fn derived_stripe_key(key: &IdempotencyKey, fingerprint: &str, created_at: i64) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(key.as_str().as_bytes())
        .chain_update([0])
        .chain_update(fingerprint.as_bytes())
        .chain_update([0])
        .chain_update(created_at.to_be_bytes())
        .finalize();
    format!("tmt-{}", &hex::encode(digest)[..48])
}

/// What identifies a request's data whatever its key order.
fn fingerprint(data: &Map<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let canonical = crate::canonical::canonical(&Value::Object(data.clone()));
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn random_idempotency_key() -> String {
    format!("tmt-{:032x}", rand::random::<u128>())
}

impl Payments {
    /// Creates a PaymentIntent. With a caller's `Idempotency-Key`, the same key and data give the
    /// first answer again; the key is claimed (committed) before Stripe is called and its
    /// outcome saved after, with no transaction open across the call.
    pub async fn create(
        &self,
        data: &Map<String, Value>,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Result<Created, Error> {
        let request = CreateRequest::parse(data)?;
        // Whatever Stripe creates must be recorded: a ledger that cannot write refuses the
        // create before Stripe is called.
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
        let fingerprint = fingerprint(data);
        let owned = match self
            .ledger
            .claim_key(key, &fingerprint, self.idempotency_stale)
            .await?
        {
            Claim::Owned(owned) => owned,
            Claim::Replay(body) => {
                let data = serde_json::from_str(&body).map_err(|e| {
                    Error::Internal(format!("saved response of an Idempotency-Key: {e}"))
                })?;
                return Ok(Created {
                    data,
                    replayed: true,
                });
            }
            Claim::Reused => return Err(Error::IdempotencyKeyReused),
            Claim::InProgress => return Err(Error::IdempotencyKeyInProgress),
        };
        let timestamp = chrono::DateTime::from_timestamp_millis(owned.created_at)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let stripe_key = derived_stripe_key(key, &fingerprint, owned.created_at);
        // The work after the claim runs as its own task: a caller that hangs up (a browser
        // timing out) must not leave the key claimed with nobody to finish it. Its retry then
        // gets the replay, or a 409 while this is still running.
        let (stripe, ledger) = (self.stripe.clone(), self.ledger.clone());
        let work = tokio::spawn(async move {
            let outcome =
                create_at_stripe(&stripe, &ledger, &request, &timestamp, &stripe_key).await;
            settle_key(&ledger, &owned, &outcome).await?;
            outcome
        });
        let data = work
            .await
            .map_err(|e| Error::Internal(format!("create task failed: {e}")))??;
        Ok(Created {
            data,
            replayed: false,
        })
    }
}

/// After the work under a key: the answer is saved for replays; a request that never reached
/// Stripe frees the key for any data; any other failure gives it up for a retry of the same
/// request, which then sends Stripe the very same call.
async fn settle_key<T: Serialize>(
    ledger: &Ledger,
    owned: &OwnedKey,
    outcome: &Result<T, Error>,
) -> Result<(), Error> {
    match outcome {
        Ok(data) => {
            let body = serde_json::to_string(data)
                .map_err(|e| Error::Internal(format!("response not serializable: {e}")))?;
            ledger.finish_key(owned, &body).await?;
        }
        Err(Error::Stripe(e)) if e.never_reached_stripe() => {
            if let Err(e) = ledger.release_key(owned).await {
                tracing::warn!(error = %e, "could not release an Idempotency-Key");
            }
        }
        Err(_) => {
            if let Err(e) = ledger.abandon_key(owned).await {
                tracing::warn!(error = %e, "could not give up an Idempotency-Key; it frees itself after IDEMPOTENCY_STALE_SECS");
            }
        }
    }
    Ok(())
}

/// Creates the PaymentIntent at Stripe and records it in the ledger; the response data.
async fn create_at_stripe(
    stripe: &StripeClient,
    ledger: &Ledger,
    request: &CreateRequest,
    timestamp: &str,
    stripe_key: &str,
) -> Result<CreatedData, Error> {
    let form = request.to_form(timestamp);
    let read_at = chrono::Utc::now().timestamp();
    let pi = stripe.create_payment_intent(&form, stripe_key).await?;
    ledger.record_from_api(&pi, read_at).await?;
    count_api_write(&pi);
    tracing::info!(payment_intent_id = %pi.id, amount = pi.amount, currency = %pi.currency, "PaymentIntent created");
    Ok(CreatedData {
        success: true,
        client_secret: pi.client_secret.clone(),
        amount: Major::of(pi.amount, &pi.currency),
        payment_intent_id: pi.id,
        currency: pi.currency,
    })
}
