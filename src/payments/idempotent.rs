//! Running a Stripe write once per caller's Idempotency-Key (docs/contract.md §7): the key is
//! claimed (committed) before Stripe is called, the work runs as its own task so that a caller
//! hanging up cannot leave the key claimed with nobody to finish it, and the answer is saved for
//! replays. Keys are per function ([`Scope`]).

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Error, Payments};
use crate::ledger::{Claim, IdempotencyKey, Ledger, OwnedKey, Scope};
use crate::stripe::StripeClient;

/// A write's answer, and whether it is a replay of an earlier one.
pub struct Answer<T> {
    pub data: T,
    pub replayed: bool,
}

/// A Stripe write that a caller may retry safely under an Idempotency-Key: a create, a refund
/// or a capture. [`Payments::write`] makes it once per key.
pub trait IdempotentWrite: Send + 'static {
    /// The function the caller's keys belong to.
    const SCOPE: Scope;
    /// Whether Stripe's call budget is asked before the key is claimed.
    const BUDGET_FIRST: bool = false;
    /// The write's answer, saved for replays.
    type Data: Serialize + DeserializeOwned + Send + Sync + 'static;

    /// Makes the write at Stripe and records it in the ledger.
    fn at_stripe(self, call: StripeCall) -> impl Future<Output = Result<Self::Data, Error>> + Send;
}

/// What a write at Stripe works with.
pub struct StripeCall {
    pub stripe: StripeClient,
    pub ledger: Ledger,
    /// The Stripe-side idempotency key of this request.
    pub stripe_key: String,
    /// When the caller's key was first used (Unix ms); now, without a key.
    pub first_use: i64,
    /// The Connect settings (organisers, the platform's fee).
    pub connect: std::sync::Arc<super::connect::Connect>,
    /// The delayed methods' settings.
    pub delayed: std::sync::Arc<super::delayed::Delayed>,
}

/// A Stripe-side key derived from `parts`, hashed with a zero byte between them: the same parts
/// always give the same key.
pub(super) fn derived_key(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update([0]);
        }
        hasher.update(part);
    }
    format!("tmt-{}", &hex::encode(hasher.finalize())[..48])
}

/// The Stripe-side key for a caller's key: the same request always maps to the same key, a key
/// reused after its 24 hours maps to a new one, and functions never share one.
fn derived_stripe_key(
    scope: Scope,
    key: &IdempotencyKey,
    fingerprint: &str,
    created_at: i64,
) -> String {
    let (key, fingerprint) = (key.as_str().as_bytes(), fingerprint.as_bytes());
    let created_at = created_at.to_be_bytes();
    // Create's keys predate scopes: its derivation stays as it was, so that a retry across an
    // upgrade still sends Stripe the same key.
    match scope {
        Scope::Create => derived_key(&[key, fingerprint, &created_at]),
        _ => derived_key(&[scope.as_str().as_bytes(), key, fingerprint, &created_at]),
    }
}

/// What identifies a request's data whatever its key order.
fn fingerprint(data: &Map<String, Value>) -> String {
    use sha2::{Digest, Sha256};
    let canonical = crate::canonical::canonical(&Value::Object(data.clone()));
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

pub(super) fn random_stripe_key() -> String {
    format!("tmt-{:032x}", rand::random::<u128>())
}

impl Payments {
    /// Makes the write that `parse` reads from `data`, once per caller's Idempotency-Key.
    pub async fn write<W: IdempotentWrite>(
        &self,
        data: &Map<String, Value>,
        idempotency_key: Option<&IdempotencyKey>,
        parse: fn(&Map<String, Value>) -> Result<W, Error>,
    ) -> Result<Answer<W::Data>, Error> {
        let request = parse(data)?;
        // On a sale day most creates beyond Stripe's budget are told to come back: before the
        // Idempotency-Key is claimed, which would cost two ledger writes for nothing.
        let budget = W::BUDGET_FIRST.then(|| self.stripe.budget().refuses_now());
        if let Some(busy) = budget.flatten() {
            return Err(Error::StripeBusy {
                retry_after: busy.retry_after,
                maybe_reached: false,
            });
        }
        // Whatever Stripe does must be recorded: a ledger that cannot write refuses the write
        // before Stripe is called.
        self.ledger.ensure_writable().await?;
        let (stripe, ledger) = (self.stripe.clone(), self.ledger.clone());
        let (connect, delayed) = (self.connect.clone(), self.delayed.clone());
        self.once(W::SCOPE, idempotency_key, data, |stripe_key, first_use| {
            request.at_stripe(StripeCall {
                stripe,
                ledger,
                stripe_key,
                first_use,
                connect,
                delayed,
            })
        })
        .await
    }

    /// Runs `work(stripe_key, first_use_ms)` once for the caller's key and `data`. Without a key
    /// it runs with a random Stripe-side key.
    async fn once<T, F, Fut>(
        &self,
        scope: Scope,
        key: Option<&IdempotencyKey>,
        data: &Map<String, Value>,
        work: F,
    ) -> Result<Answer<T>, Error>
    where
        T: Serialize + DeserializeOwned + Send + Sync + 'static,
        F: FnOnce(String, i64) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let Some(key) = key else {
            let now = chrono::Utc::now().timestamp_millis();
            let data = work(random_stripe_key(), now).await?;
            return Ok(Answer {
                data,
                replayed: false,
            });
        };
        let fingerprint = fingerprint(data);
        let owned = match self
            .ledger
            .claim_key(scope, key, &fingerprint, self.idempotency_stale)
            .await?
        {
            Claim::Owned(owned) => owned,
            Claim::Replay(body) => {
                let data = serde_json::from_str(&body).map_err(|e| {
                    Error::Internal(format!("saved response of an Idempotency-Key: {e}"))
                })?;
                return Ok(Answer {
                    data,
                    replayed: true,
                });
            }
            Claim::Reused => return Err(Error::IdempotencyKeyReused),
            Claim::InProgress => return Err(Error::IdempotencyKeyInProgress),
        };
        let stripe_key = derived_stripe_key(scope, key, &fingerprint, owned.created_at);
        let ledger = self.ledger.clone();
        let task = tokio::spawn(async move {
            let outcome = work(stripe_key, owned.created_at).await;
            settle_key(&ledger, &owned, &outcome).await?;
            outcome
        });
        let data = task
            .await
            .map_err(|e| Error::Internal(format!("{} task failed: {e}", scope.as_str())))??;
        Ok(Answer {
            data,
            replayed: false,
        })
    }
}

/// After the work under a key: the answer is saved for replays; a request that never reached
/// Stripe frees the key for any data; any other failure gives it up for a retry of the same
/// request, which then sends Stripe the very same call and gets Stripe's replay.
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
        Err(e) if e.never_reached_stripe() => {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys already sent to Stripe must be derived again the same way after an upgrade.
    #[test]
    fn stripe_keys_stay_as_they_were() {
        let key = IdempotencyKey::parse("key-1").unwrap();
        let at = 1_700_000_000_000;
        assert_eq!(
            derived_stripe_key(Scope::Create, &key, "fp", at),
            "tmt-20d3c5efe4869247e5c5e5637dba806ea3c1c3cc8434a519"
        );
        assert_eq!(
            derived_stripe_key(Scope::Refund, &key, "fp", at),
            "tmt-7cef99165ac09f214ad75be878c7621d5a48432bf0f89822"
        );
        // A late payment's refund (holds.rs).
        assert_eq!(
            derived_key(&[b"late-refund", b"pi_1"]),
            "tmt-b1b157106a5c97a7571e2353a3a78b3bf06bab8a9d8ba895"
        );
    }
}
