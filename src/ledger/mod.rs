//! The ledger: every PaymentIntent and every webhook event, in SQLite (sqlx).
//!
//! Rules (SPEC §8): `succeeded` and `canceled` are final; otherwise the newest information wins,
//! and a read from the Stripe API is newer than any event already received. An event is recorded
//! and applied in one transaction. No Stripe call ever happens while a transaction is open: the
//! callers hand in what Stripe said, already fetched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor, Row};

use crate::stripe::types::{is_final_status, PaymentIntent};

mod writer;
pub use writer::EventWriter;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("database URL not usable: {0}")]
    Url(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Writes fail (disk full, I/O error, read-only database): the ledger can be read, and it
    /// is reachable, but nothing can be made durable until the cause goes away.
    #[error("ledger not writable: {0}")]
    NotWritable(String),
}

impl LedgerError {
    /// Whether the error says something about the database's ability to write (as opposed to a
    /// bad query or an unreadable row): those are what readiness reports.
    fn is_storage_fault(&self) -> bool {
        matches!(
            self,
            LedgerError::Database(
                sqlx::Error::Database(_)
                    | sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::WorkerCrashed
            ) | LedgerError::NotWritable(_)
        )
    }
}

/// What became of a webhook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The ledger row took the event's status (or was created from it).
    Applied,
    /// Recorded, but the row did not change: it was already final, or newer information was in.
    Ignored,
    /// A PaymentIntent of another application on the same Stripe account.
    Foreign,
    /// A type this service does not act on.
    Unhandled,
    /// Seen before: nothing was written.
    Duplicate,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Ignored => "ignored",
            Outcome::Foreign => "foreign",
            Outcome::Unhandled => "unhandled",
            Outcome::Duplicate => "duplicate",
        }
    }
}

/// How long a caller's Idempotency-Key keeps its first response (SPEC §7).
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// What a create request with an Idempotency-Key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: go ahead, then finish or abandon it with `owner`.
    /// `created_at` (Unix ms) is when the key was first used; retries of the same request see
    /// the same value, so that what is sent to Stripe is identical each time.
    Owned { owner: String, created_at: i64 },
    /// The same request already succeeded: answer its saved response data again.
    Replay(String),
    /// The key was used with other data.
    Reused,
    /// The first request with this key is still running.
    InProgress,
}

/// A verified webhook event, reduced to what the ledger needs.
#[derive(Debug, Clone)]
pub struct IncomingEvent {
    pub id: String,
    pub event_type: String,
    /// Unix seconds at which Stripe created the event.
    pub created: i64,
    pub payment_intent_id: Option<String>,
    /// Set for the PaymentIntent event types that move the ledger.
    pub payment_intent: Option<PaymentIntent>,
    pub payload: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PaymentRow {
    pub id: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    pub metadata: Value,
    pub created: i64,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventRow {
    pub id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub payment_intent_id: Option<String>,
    pub received_at: String,
    pub outcome: String,
}

/// Which database the ledger lives in. The SQL is shared (`$n` parameters, `ON CONFLICT`,
/// `CASE`), the migrations are kept per backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }
}

/// Pool settings.
#[derive(Debug, Clone, Copy)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// How long a request waits for a connection before it fails (503) instead of hanging.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

#[derive(Clone)]
pub struct Ledger {
    pool: AnyPool,
    backend: Backend,
    health: Arc<WriteHealth>,
    /// Fingerprints of rows known to be final and up to date: a read that says the same again
    /// needs no database round trip at all. Final rows never change status, so the knowledge
    /// stays true on every instance; anything else (new metadata, say) misses and is written.
    settled: Arc<Mutex<HashMap<String, u64>>>,
}

/// What the ledger's own writes and probes have found about its ability to write.
#[derive(Default)]
struct WriteHealth {
    /// Set by a write that failed for a storage reason, cleared by one that succeeded.
    failing: std::sync::atomic::AtomicBool,
    /// The last probe's time and result, so that a burst of readiness checks costs one write.
    last_probe: tokio::sync::Mutex<Option<(std::time::Instant, Result<(), String>)>>,
}

/// How long a probe's answer stands for the next readiness checks.
const PROBE_REUSE: Duration = Duration::from_secs(1);

/// What a probe writes: as much as a typical webhook event, so that it needs new pages (and
/// room in the write-ahead log) just as real writes do.
const PROBE_BYTES: usize = 16 * 1024;

/// The most settled rows remembered; past it the memory starts over.
const SETTLED_CAPACITY: usize = 100_000;

fn settled_fingerprint(pi: &PaymentIntent, metadata: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        &pi.status,
        pi.amount,
        &pi.currency,
        &pi.description,
        metadata,
        pi.created,
    )
        .hash(&mut h);
    h.finish()
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://tmt-payments.db";

/// Now, as ISO 8601 UTC with milliseconds (`2026-01-31T12:00:00.000Z`).
pub fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn is_ours(pi: &PaymentIntent) -> bool {
    pi.metadata.get("platform").and_then(Value::as_str) == Some("TMT")
}

impl Ledger {
    /// Opens the database (a SQLite file is created if missing). Every commit is durable before
    /// it returns: SQLite runs with `synchronous=FULL` in WAL mode, PostgreSQL with
    /// `synchronous_commit=on`. A webhook answered 200 must survive a power cut.
    pub async fn connect(url: &str, settings: PoolSettings) -> Result<Self, LedgerError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of(url)
            .ok_or_else(|| LedgerError::Url("expected sqlite:// or postgres://".into()))?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
            }
            _ => url.to_string(),
        };
        let pool = AnyPoolOptions::new()
            .max_connections(settings.max_connections.max(1))
            .acquire_timeout(settings.acquire_timeout)
            // A connection must come back to the pool outside any transaction. When a COMMIT
            // fails because the disk is full, SQLite rolls the transaction back by itself; the
            // driver's ROLLBACK then fails, its transaction counter stays at 1, and from then on
            // it "begins" with SAVEPOINTs inside a transaction that never ends: every later write
            // on that connection would be answered as committed and never reach the disk. Such
            // a connection (or one whose rollback could not be sent) is closed, which rolls back
            // whatever it still holds, instead of being used again.
            .after_release(|conn, _| {
                Box::pin(async move {
                    use sqlx::Connection;
                    if conn.is_in_transaction() {
                        // A dropped transaction's ROLLBACK may still be queued: let it run.
                        conn.ping().await?;
                    }
                    if conn.is_in_transaction() {
                        tracing::warn!(
                            "closing a database connection left inside a failed transaction"
                        );
                        return Ok(false);
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    let setup = match backend {
                        Backend::Sqlite => {
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;"
                        }
                        Backend::Postgres => "SET synchronous_commit = on",
                    };
                    conn.execute(setup).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        Ok(Self {
            pool,
            backend,
            health: Arc::new(WriteHealth::default()),
            settled: Arc::new(Mutex::new(HashMap::new())),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool itself, for tests that inject faults into its connections.
    #[doc(hidden)]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn migrate(&self) -> Result<(), LedgerError> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    /// Whether the database answers now.
    pub async fn ping(&self) -> Result<(), LedgerError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Notes what a write found out about the database's ability to write.
    fn watch<T>(&self, result: Result<T, LedgerError>) -> Result<T, LedgerError> {
        use std::sync::atomic::Ordering;
        match &result {
            Ok(_) => self.health.failing.store(false, Ordering::Relaxed),
            Err(e) if e.is_storage_fault() => {
                if !self.health.failing.swap(true, Ordering::Relaxed) {
                    tracing::error!(error = %e, "ledger writes are failing");
                }
            }
            Err(_) => {}
        }
        result
    }

    /// Whether the ledger can make a write durable now: writes a scratch row as big as a typical
    /// event and deletes it again, in one committed transaction. The answer is reused for a
    /// second, so that readiness checks in a burst cost one write.
    pub async fn probe_write(&self) -> Result<(), LedgerError> {
        let mut last = self.health.last_probe.lock().await;
        if let Some((at, result)) = last.as_ref() {
            if at.elapsed() < PROBE_REUSE {
                return result.clone().map_err(LedgerError::NotWritable);
            }
        }
        let result = self.watch(self.write_probe_row().await);
        if let Err(e) = &result {
            tracing::warn!(error = %e, "ledger write probe failed");
        }
        *last = Some((
            std::time::Instant::now(),
            result.as_ref().map(drop).map_err(|e| e.to_string()),
        ));
        result.map_err(|e| match e {
            LedgerError::NotWritable(reason) => LedgerError::NotWritable(reason),
            other => LedgerError::NotWritable(other.to_string()),
        })
    }

    async fn write_probe_row(&self) -> Result<(), LedgerError> {
        let filler = "x".repeat(PROBE_BYTES);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO write_probe (id, filler) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET filler = excluded.filler",
        )
        .bind(filler)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM write_probe WHERE id = 1")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Before a call whose result must be recorded (a create at Stripe): the database answers,
    /// and if writes have been failing, a probe shows they work again. A create that Stripe
    /// carries out but the ledger cannot record would leave a PaymentIntent only reconciliation
    /// can find.
    pub async fn ensure_writable(&self) -> Result<(), LedgerError> {
        if self
            .health
            .failing
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return self.probe_write().await;
        }
        self.ping().await
    }

    /// Brings the row up to date with a PaymentIntent read from (or created at) Stripe at
    /// `read_at` (Unix seconds, taken before the request was sent). That read is newer than any
    /// event received before it, so it wins unless the row is final or something newer arrived
    /// while the request was in flight. A PaymentIntent that is neither ours (`platform: TMT`)
    /// nor already in the ledger is left out: it belongs to another application.
    pub async fn record_from_api(
        &self,
        pi: &PaymentIntent,
        read_at: i64,
    ) -> Result<(), LedgerError> {
        // A final row that already says all this needs no write (and no fsync): the common case
        // of a back end polling a finished payment. A non-final row is always written, so that
        // the read's time guards it against older events arriving late.
        let metadata = Value::Object(pi.metadata.clone()).to_string();
        let fingerprint = settled_fingerprint(pi, &metadata);
        if is_final_status(&pi.status) {
            let settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
            if settled.get(&pi.id) == Some(&fingerprint) {
                return Ok(());
            }
        }
        let current = sqlx::query(
            "SELECT status, amount, currency, description, metadata, created
             FROM payments WHERE id = $1",
        )
        .bind(&pi.id)
        .fetch_optional(&self.pool)
        .await?;
        if let Some(row) = current {
            let status: String = row.try_get(0)?;
            let unchanged = is_final_status(&status)
                && status == pi.status
                && row.try_get::<i64, _>(1)? == pi.amount
                && row.try_get::<String, _>(2)? == pi.currency
                && row.try_get::<Option<String>, _>(3)? == pi.description
                && row.try_get::<String, _>(4)? == metadata
                && row.try_get::<i64, _>(5)? == pi.created;
            if unchanged {
                let mut settled = self.settled.lock().unwrap_or_else(|e| e.into_inner());
                if settled.len() >= SETTLED_CAPACITY {
                    settled.clear();
                }
                settled.insert(pi.id.clone(), fingerprint);
                return Ok(());
            }
        }
        let now = now_iso();
        let written = if is_ours(pi) {
            insert_payment(&self.pool, pi, &now, read_at, None, OnConflict::Update).await
        } else {
            sqlx::query(
                "UPDATE payments SET amount = $2, currency = $3, description = $4, metadata = $5,
                        created = $6, updated_at = $7,
                        status = CASE WHEN status IN ('succeeded', 'canceled') OR status_at > $9
                                      THEN status ELSE $8 END,
                        status_at = CASE WHEN status IN ('succeeded', 'canceled') OR status_at > $9
                                         THEN status_at ELSE $9 END
                 WHERE id = $1",
            )
            .bind(&pi.id)
            .bind(pi.amount)
            .bind(&pi.currency)
            .bind(&pi.description)
            .bind(metadata)
            .bind(pi.created)
            .bind(&now)
            .bind(&pi.status)
            .bind(read_at)
            .execute(&self.pool)
            .await
            .map(|done| done.rows_affected())
        };
        self.watch(written.map(drop).map_err(LedgerError::from))
    }

    /// Records the event and applies it, in one transaction. A repeated id writes nothing.
    pub async fn apply_event(&self, event: &IncomingEvent) -> Result<Outcome, LedgerError> {
        let mut outcomes = self.apply_events(std::slice::from_ref(event)).await?;
        Ok(outcomes.pop().unwrap_or(Outcome::Duplicate))
    }

    /// Records and applies several events in one transaction, so that they share one commit
    /// (one fsync); each event's record and effect stay together. Outcomes are in input order.
    pub async fn apply_events(
        &self,
        events: &[IncomingEvent],
    ) -> Result<Vec<Outcome>, LedgerError> {
        self.watch(
            async {
                let now = now_iso();
                let mut tx = self.pool.begin().await?;
                let mut outcomes = Vec::with_capacity(events.len());
                for event in events {
                    // The insert comes first: it takes SQLite's write lock at once and decides
                    // duplicates (an earlier copy in this same batch included).
                    // Recorded with its likely outcome, corrected below in the rarer cases.
                    let likely = if event.payment_intent.is_some() {
                        Outcome::Applied
                    } else {
                        Outcome::Unhandled
                    };
                    let inserted = sqlx::query(
                        "INSERT INTO webhook_events (id, type, payment_intent_id, received_at, outcome, payload)
                         VALUES ($1, $2, $3, $4, $6, $5)
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .bind(&event.id)
                    .bind(&event.event_type)
                    .bind(&event.payment_intent_id)
                    .bind(&now)
                    .bind(&event.payload)
                    .bind(likely.as_str())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if inserted == 0 {
                        outcomes.push(Outcome::Duplicate);
                        continue;
                    }
                    let outcome = match &event.payment_intent {
                        None => Outcome::Unhandled,
                        Some(pi) => apply_to_payment(&mut tx, pi, event, &now).await?,
                    };
                    if outcome != likely {
                        sqlx::query("UPDATE webhook_events SET outcome = $2 WHERE id = $1")
                            .bind(&event.id)
                            .bind(outcome.as_str())
                            .execute(&mut *tx)
                            .await?;
                    }
                    outcomes.push(outcome);
                }
                tx.commit().await?;
                Ok(outcomes)
            }
            .await,
        )
    }

    /// Claims `key` for a request whose data hashes to `fingerprint`. The claim is committed at
    /// once (no transaction stays open while Stripe is called); a claim older than `stale` whose
    /// owner never finished (its process died) is taken over, and a key older than 24 h starts
    /// afresh. Atomic across instances: exactly one request owns a key at a time.
    pub async fn claim_key(
        &self,
        key: &str,
        fingerprint: &str,
        stale: Duration,
    ) -> Result<Claim, LedgerError> {
        self.watch(
            async {
                let owner = format!("{:032x}", rand::random::<u128>());
                for _ in 0..5 {
                    let now = chrono::Utc::now().timestamp_millis();
                    let inserted = sqlx::query(
                        "INSERT INTO idempotency_keys (key, fingerprint, state, owner, created_at, locked_at)
                         VALUES ($1, $2, 'in_progress', $3, $4, $4) ON CONFLICT (key) DO NOTHING",
                    )
                    .bind(key)
                    .bind(fingerprint)
                    .bind(&owner)
                    .bind(now)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    if inserted == 1 {
                        return Ok(Claim::Owned {
                            owner,
                            created_at: now,
                        });
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
                    let theirs: String = row.try_get(2)?;
                    let created_at: i64 = row.try_get(3)?;
                    let locked_at: i64 = row.try_get(4)?;
                    if now - created_at > IDEMPOTENCY_TTL.as_millis() as i64 {
                        // Expired: the key starts a new life with this request's data.
                        let taken = sqlx::query(
                            "UPDATE idempotency_keys SET fingerprint = $2, state = 'in_progress', owner = $3,
                                    created_at = $4, locked_at = $4, response_status = NULL,
                                    response_body = NULL
                             WHERE key = $1 AND owner = $5",
                        )
                        .bind(key)
                        .bind(fingerprint)
                        .bind(&owner)
                        .bind(now)
                        .bind(&theirs)
                        .execute(&self.pool)
                        .await?
                        .rows_affected();
                        if taken == 1 {
                            return Ok(Claim::Owned {
                                owner,
                                created_at: now,
                            });
                        }
                        continue;
                    }
                    let stored: String = row.try_get(0)?;
                    if stored != fingerprint {
                        return Ok(Claim::Reused);
                    }
                    let state: String = row.try_get(1)?;
                    if state == "done" {
                        let body: Option<String> = row.try_get(5)?;
                        return Ok(Claim::Replay(body.unwrap_or_default()));
                    }
                    if now - locked_at <= stale.as_millis() as i64 {
                        return Ok(Claim::InProgress);
                    }
                    // The owner has been silent past any Stripe timeout: it died. Take over.
                    let taken = sqlx::query(
                        "UPDATE idempotency_keys SET owner = $2, locked_at = $3
                         WHERE key = $1 AND owner = $4 AND state = 'in_progress'",
                    )
                    .bind(key)
                    .bind(&owner)
                    .bind(now)
                    .bind(&theirs)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
                    if taken == 1 {
                        if locked_at != 0 {
                            tracing::warn!(
                                idempotency_key = key,
                                "took over a stale in-progress create"
                            );
                        }
                        return Ok(Claim::Owned { owner, created_at });
                    }
                }
                Ok(Claim::InProgress)
            }
            .await,
        )
    }

    /// Saves the response data of a successful create under its key.
    pub async fn finish_key(&self, key: &str, owner: &str, body: &str) -> Result<(), LedgerError> {
        let sql = "UPDATE idempotency_keys SET state = 'done', response_status = 200,
                          response_body = $3 WHERE key = $1 AND owner = $2";
        if self.on_owned_key(sql, key, owner, Some(body)).await? == 0 {
            // Taken over meanwhile (this request outlived IDEMPOTENCY_STALE_SECS): the other
            // request answers for the key, with the same PaymentIntent from Stripe.
            tracing::warn!(
                idempotency_key = key,
                "finished a create whose key had been taken over"
            );
        }
        Ok(())
    }

    /// Gives a key up after a failure: the caller's retry takes it over at once and runs again,
    /// with the same `created_at`, so it sends Stripe the very same request under the same
    /// derived key and Stripe replays whatever it did the first time.
    pub async fn abandon_key(&self, key: &str, owner: &str) -> Result<(), LedgerError> {
        let sql = "UPDATE idempotency_keys SET locked_at = 0 WHERE key = $1 AND owner = $2";
        self.on_owned_key(sql, key, owner, None).await.map(drop)
    }

    /// Frees a key whose request never reached Stripe: the caller may use it again with any
    /// data.
    pub async fn delete_key(&self, key: &str, owner: &str) -> Result<(), LedgerError> {
        let sql = "DELETE FROM idempotency_keys WHERE key = $1 AND owner = $2";
        self.on_owned_key(sql, key, owner, None).await.map(drop)
    }

    /// Runs `sql` on the key's row if `owner` still holds it; the rows changed.
    async fn on_owned_key(
        &self,
        sql: &str,
        key: &str,
        owner: &str,
        body: Option<&str>,
    ) -> Result<u64, LedgerError> {
        self.watch(
            async {
                let mut query = sqlx::query(sql).bind(key).bind(owner);
                if let Some(body) = body {
                    query = query.bind(body);
                }
                Ok(query.execute(&self.pool).await?.rows_affected())
            }
            .await,
        )
    }

    /// Deletes keys past their 24 hours.
    pub async fn purge_expired_keys(&self) -> Result<u64, LedgerError> {
        self.watch(
            async {
                let cutoff =
                    chrono::Utc::now().timestamp_millis() - IDEMPOTENCY_TTL.as_millis() as i64;
                Ok(
                    sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                        .bind(cutoff)
                        .execute(&self.pool)
                        .await?
                        .rows_affected(),
                )
            }
            .await,
        )
    }

    /// The durability settings a pooled connection runs with, as the database reports them:
    /// SQLite `synchronous` and `journal_mode`, PostgreSQL `synchronous_commit` and `fsync`.
    pub async fn durability(&self) -> Result<(String, String), LedgerError> {
        let mut conn = self.pool.acquire().await?;
        let (a, b) = match self.backend {
            Backend::Sqlite => ("PRAGMA synchronous", "PRAGMA journal_mode"),
            Backend::Postgres => ("SHOW synchronous_commit", "SHOW fsync"),
        };
        let first = sqlx::query(a).fetch_one(&mut *conn).await?;
        let second = sqlx::query(b).fetch_one(&mut *conn).await?;
        let text = |row: &AnyRow| {
            row.try_get::<String, _>(0)
                .or_else(|_| row.try_get::<i64, _>(0).map(|n| n.to_string()))
                .unwrap_or_default()
        };
        Ok((text(&first), text(&second)))
    }

    pub async fn payment(&self, id: &str) -> Result<Option<PaymentRow>, LedgerError> {
        let row = sqlx::query(&format!("{PAYMENT_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| payment_row(&r)))
    }

    /// Newest first (by Stripe's creation time).
    pub async fn list_payments(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<PaymentRow>, LedgerError> {
        let rows = sqlx::query(&format!(
            "{PAYMENT_COLUMNS} WHERE ($1 IS NULL OR status = $1)
             ORDER BY created DESC, id DESC LIMIT $2"
        ))
        .bind(status)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(payment_row).collect())
    }

    /// Newest first (by arrival).
    pub async fn list_events(&self, limit: i64) -> Result<Vec<EventRow>, LedgerError> {
        let rows = sqlx::query(&format!("{EVENT_COLUMNS} ORDER BY seq DESC LIMIT $1"))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(event_row).collect())
    }

    /// Every event received for one PaymentIntent, in arrival order.
    pub async fn events_for(&self, payment_intent_id: &str) -> Result<Vec<EventRow>, LedgerError> {
        let rows = sqlx::query(&format!(
            "{EVENT_COLUMNS} WHERE payment_intent_id = $1 ORDER BY seq"
        ))
        .bind(payment_intent_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(event_row).collect())
    }

    /// The raw payload of one event, as Stripe signed it.
    pub async fn event_payload(&self, id: &str) -> Result<Option<String>, LedgerError> {
        Ok(
            sqlx::query_scalar("SELECT payload FROM webhook_events WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OnConflict {
    /// Leave an existing row alone.
    Nothing,
    /// Bring an existing row up to date under the status rules (final statuses stay; newer
    /// information wins).
    Update,
}

/// Inserts a payment row; returns how many rows were written.
async fn insert_payment<'e, E>(
    executor: E,
    pi: &PaymentIntent,
    now: &str,
    status_at: i64,
    event_id: Option<&str>,
    on_conflict: OnConflict,
) -> Result<u64, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    let conflict = if on_conflict == OnConflict::Update {
        "ON CONFLICT (id) DO UPDATE SET
            amount = excluded.amount, currency = excluded.currency,
            description = excluded.description, metadata = excluded.metadata,
            created = excluded.created, updated_at = excluded.updated_at,
            status = CASE WHEN payments.status IN ('succeeded', 'canceled')
                            OR payments.status_at > excluded.status_at
                          THEN payments.status ELSE excluded.status END,
            status_at = CASE WHEN payments.status IN ('succeeded', 'canceled')
                               OR payments.status_at > excluded.status_at
                             THEN payments.status_at ELSE excluded.status_at END"
    } else {
        "ON CONFLICT (id) DO NOTHING"
    };
    sqlx::query(&format!(
        "INSERT INTO payments (id, amount, currency, description, metadata, status, created,
                               updated_at, status_at, last_event_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) {conflict}"
    ))
    .bind(&pi.id)
    .bind(pi.amount)
    .bind(&pi.currency)
    .bind(&pi.description)
    .bind(Value::Object(pi.metadata.clone()).to_string())
    .bind(&pi.status)
    .bind(pi.created)
    .bind(now)
    .bind(status_at)
    .bind(event_id)
    .execute(executor)
    .await
    .map(|done| done.rows_affected())
}

/// Applies a PaymentIntent event to its row under the status rules, inside the event's
/// transaction. One of ours that the ledger does not know yet is inserted; otherwise the
/// conditional UPDATE is the whole decision, so that concurrent events for one PaymentIntent
/// (several instances on PostgreSQL) serialise on the row and never move a final status. On
/// PostgreSQL a conflicting insert waits for the other transaction, and the UPDATE that follows
/// sees its row.
async fn apply_to_payment(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    pi: &PaymentIntent,
    event: &IncomingEvent,
    now: &str,
) -> Result<Outcome, sqlx::Error> {
    if is_ours(pi) {
        let inserted = insert_payment(
            &mut **tx,
            pi,
            now,
            event.created,
            Some(&event.id),
            OnConflict::Nothing,
        )
        .await?;
        if inserted == 1 {
            return Ok(Outcome::Applied);
        }
    }
    // A final status always applies to a non-final row; anything else only when it is not
    // older than what the row knows, or when it says what the row already says.
    let updated = sqlx::query(
        "UPDATE payments SET status = $2, updated_at = $4, last_event_id = $5,
                status_at = CASE WHEN status_at > $3 THEN status_at ELSE $3 END
         WHERE id = $1 AND status NOT IN ('succeeded', 'canceled')
           AND ($6 = 1 OR status_at <= $3 OR status = $2)",
    )
    .bind(&pi.id)
    .bind(&pi.status)
    .bind(event.created)
    .bind(now)
    .bind(&event.id)
    .bind(i64::from(pi.is_final()))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    if updated == 1 {
        return Ok(Outcome::Applied);
    }
    let exists = sqlx::query("SELECT 1 FROM payments WHERE id = $1")
        .bind(&pi.id)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    Ok(if exists || is_ours(pi) {
        Outcome::Ignored
    } else {
        Outcome::Foreign
    })
}

const PAYMENT_COLUMNS: &str = "SELECT id, status, amount, currency, description, metadata, created,
                                      updated_at FROM payments";
const EVENT_COLUMNS: &str =
    "SELECT id, type, payment_intent_id, received_at, outcome FROM webhook_events";

fn payment_row(r: &AnyRow) -> PaymentRow {
    let metadata: String = r.get(5);
    PaymentRow {
        id: r.get(0),
        status: r.get(1),
        amount: r.get(2),
        currency: r.get(3),
        description: r.get(4),
        metadata: serde_json::from_str(&metadata).unwrap_or(Value::Object(Map::new())),
        created: r.get(6),
        updated_at: r.get(7),
    }
}

fn event_row(r: &AnyRow) -> EventRow {
    EventRow {
        id: r.get(0),
        event_type: r.get(1),
        payment_intent_id: r.get(2),
        received_at: r.get(3),
        outcome: r.get(4),
    }
}
