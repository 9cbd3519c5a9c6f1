//! Callers' Idempotency-Keys (docs/contract.md, "Idempotency"): a key is claimed, committed,
//! before Stripe is called, and its outcome saved after, with no transaction open across the
//! call. Atomic across instances: exactly one request owns a key at a time.

use std::fmt;
use std::time::Duration;

use super::rows::Statement;
use super::stored::KeyState;
use super::{column, Ledger, LedgerError};

/// How long a caller's Idempotency-Key keeps its first response.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// An `Idempotency-Key` header value: 1–255 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(text: &str) -> Option<Self> {
        let printable = text.bytes().all(|b| (0x20..=0x7e).contains(&b));
        ((1..=255).contains(&text.len()) && printable).then(|| IdempotencyKey(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which function a key belongs to: keys are per function, so the same key on a create and on a
/// refund are two keys. Stored as the key's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Create,
    Refund,
    Capture,
}

impl Scope {
    pub fn as_str(&self) -> &'static str {
        match self {
            Scope::Create => "create",
            Scope::Refund => "refund",
            Scope::Capture => "capture",
        }
    }

    fn stored(&self, key: &IdempotencyKey) -> String {
        format!("{}:{}", self.as_str(), key.as_str())
    }
}

/// A key this request holds: finish, abandon or release it when done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedKey {
    /// As stored: the scope's prefix and the caller's key.
    stored: String,
    owner: String,
    /// When the key was first used (Unix ms). Retries of the same request see the same value,
    /// so that what is sent to Stripe is identical each time.
    pub created_at: i64,
}

/// What a request with an Idempotency-Key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: go ahead.
    Owned(OwnedKey),
    /// The same request already succeeded: answer its saved response data again.
    Replay(String),
    /// The key was used with other data.
    Reused,
    /// The first request with this key is still running.
    InProgress,
}

/// A key's row changing hands: from `theirs` to `owner`, at `now` (Unix ms).
struct Takeover<'a> {
    key: &'a str,
    theirs: &'a str,
    owner: &'a str,
    now: i64,
}

/// `sql` on the key's row if this request still holds it (`$1` the key, `$2` its holder; the
/// statement's own values are bound next).
fn on_owned_key<'q>(sql: &'q str, key: &'q OwnedKey) -> Statement<'q> {
    sqlx::query(sql).bind(&key.stored).bind(&key.owner)
}

fn fresh_owner() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Ledger {
    /// Claims `key` for a request whose data hashes to `fingerprint`. The claim is committed at
    /// once (no transaction stays open while Stripe is called); a claim older than `stale` whose
    /// owner never finished (its process died) is taken over, and a key older than 24 h starts
    /// afresh.
    pub async fn claim_key(
        &self,
        scope: Scope,
        key: &IdempotencyKey,
        fingerprint: &str,
        stale: Duration,
    ) -> Result<Claim, LedgerError> {
        let result = self.try_claim(&scope.stored(key), fingerprint, stale).await;
        self.watch(result)
    }

    async fn try_claim(
        &self,
        key: &str,
        fingerprint: &str,
        stale: Duration,
    ) -> Result<Claim, LedgerError> {
        let owner = fresh_owner();
        let owned = |created_at| {
            Claim::Owned(OwnedKey {
                stored: key.to_string(),
                owner: owner.clone(),
                created_at,
            })
        };
        for _ in 0..5 {
            let now = chrono::Utc::now().timestamp_millis();
            let inserted = sqlx::query(
                "INSERT INTO idempotency_keys (key, fingerprint, state, owner, created_at, locked_at)
                 VALUES ($1, $2, $5, $3, $4, $4) ON CONFLICT (key) DO NOTHING",
            )
            .bind(key)
            .bind(fingerprint)
            .bind(&owner)
            .bind(now)
            .bind(KeyState::InProgress)
            .execute(&self.pool)
            .await?
            .rows_affected();
            if inserted == 1 {
                return Ok(owned(now));
            }
            let Some(row) = sqlx::query(
                "SELECT fingerprint, state, owner, created_at, locked_at, response_body
                 FROM idempotency_keys WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            else {
                continue; // released meanwhile: try to insert again
            };
            let theirs: String = column(&row, "owner")?;
            let created_at: i64 = column(&row, "created_at")?;
            let locked_at: i64 = column(&row, "locked_at")?;
            let takeover = Takeover {
                key,
                theirs: &theirs,
                owner: &owner,
                now,
            };
            if now - created_at > IDEMPOTENCY_TTL.as_millis() as i64 {
                // Expired: the key starts a new life with this request's data.
                let renew = "UPDATE idempotency_keys
                     SET owner = $3, locked_at = $4, fingerprint = $6, created_at = $4,
                         state = $5, response_status = NULL, response_body = NULL
                     WHERE key = $1 AND owner = $2";
                if self.take_over(renew, takeover, Some(fingerprint)).await? {
                    return Ok(owned(now));
                }
                continue;
            }
            if column::<String>(&row, "fingerprint")? != fingerprint {
                return Ok(Claim::Reused);
            }
            if column::<KeyState>(&row, "state")? == KeyState::Done {
                let body: Option<String> = column(&row, "response_body")?;
                return Ok(Claim::Replay(body.unwrap_or_default()));
            }
            if now - locked_at <= stale.as_millis() as i64 {
                return Ok(Claim::InProgress);
            }
            // The owner has been silent past any Stripe timeout: it died. Take over.
            let relock = "UPDATE idempotency_keys SET owner = $3, locked_at = $4
                          WHERE key = $1 AND owner = $2 AND state = $5";
            if self.take_over(relock, takeover, None).await? {
                if locked_at != 0 {
                    tracing::warn!(
                        idempotency_key = key,
                        "took over a stale in-progress request"
                    );
                }
                return Ok(owned(created_at));
            }
        }
        Ok(Claim::InProgress)
    }

    /// Moves a key's row from the request that holds it to this one, by `sql`: `$1` the key,
    /// `$2` its holder, `$3` this request, `$4` now, `$5` the in-progress state, `$6` the
    /// fingerprint of the data the key is to stand for from now on, when given. Whether the row moved (its holder may have
    /// finished, or someone else taken over, meanwhile).
    async fn take_over(
        &self,
        sql: &str,
        takeover: Takeover<'_>,
        fingerprint: Option<&str>,
    ) -> Result<bool, LedgerError> {
        let mut statement = sqlx::query(sql)
            .bind(takeover.key)
            .bind(takeover.theirs)
            .bind(takeover.owner)
            .bind(takeover.now)
            .bind(KeyState::InProgress);
        if let Some(fingerprint) = fingerprint {
            statement = statement.bind(fingerprint);
        }
        Ok(statement.execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Saves the response data of a successful request under its key.
    pub async fn finish_key(&self, key: &OwnedKey, body: &str) -> Result<(), LedgerError> {
        let sql = "UPDATE idempotency_keys SET state = $3, response_status = 200,
                          response_body = $4 WHERE key = $1 AND owner = $2";
        let finish = on_owned_key(sql, key).bind(KeyState::Done).bind(body);
        if self.write(finish).await? == 0 {
            // Taken over meanwhile (this request outlived IDEMPOTENCY_STALE_SECS): the other
            // request answers for the key, with the same object from Stripe.
            tracing::warn!(
                idempotency_key = key.stored,
                "finished a request whose key had been taken over"
            );
        }
        Ok(())
    }

    /// Gives a key up after a failure: the caller's retry takes it over at once and runs again,
    /// with the same `created_at`, so it sends Stripe the very same request under the same
    /// derived key and Stripe replays whatever it did the first time.
    pub async fn abandon_key(&self, key: &OwnedKey) -> Result<(), LedgerError> {
        let sql = "UPDATE idempotency_keys SET locked_at = 0 WHERE key = $1 AND owner = $2";
        self.write(on_owned_key(sql, key)).await.map(drop)
    }

    /// Frees a key whose request never reached Stripe: the caller may use it again with any
    /// data.
    pub async fn release_key(&self, key: &OwnedKey) -> Result<(), LedgerError> {
        let sql = "DELETE FROM idempotency_keys WHERE key = $1 AND owner = $2";
        self.write(on_owned_key(sql, key)).await.map(drop)
    }

    /// Deletes keys past their 24 hours.
    pub async fn purge_expired_keys(&self) -> Result<u64, LedgerError> {
        let cutoff = chrono::Utc::now().timestamp_millis() - IDEMPOTENCY_TTL.as_millis() as i64;
        let purge = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(cutoff);
        self.write(purge).await
    }
}
