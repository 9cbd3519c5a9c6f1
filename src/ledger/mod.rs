//! The ledger: every PaymentIntent and every webhook event, in SQLite (sqlx).
//!
//! Rules (SPEC §8): `succeeded` and `canceled` are final; otherwise the newest information wins,
//! and a read from the Stripe API is newer than any event already received. An event is recorded
//! and applied in one transaction. No Stripe call ever happens while a transaction is open: the
//! callers hand in what Stripe said, already fetched.

use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::stripe::types::{is_final_status, PaymentIntent};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("database URL not usable: {0}")]
    Url(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
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

/// A verified webhook event, reduced to what the ledger needs.
pub struct IncomingEvent<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    /// Unix seconds at which Stripe created the event.
    pub created: i64,
    pub payment_intent_id: Option<&'a str>,
    /// Set for the PaymentIntent event types that move the ledger.
    pub payment_intent: Option<PaymentIntent>,
    pub payload: &'a str,
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

#[derive(Clone)]
pub struct Ledger {
    pool: SqlitePool,
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
    /// Opens (creating if missing) the database. Every commit is fsync'd (`synchronous=FULL`):
    /// a webhook answered 200 must survive a power cut.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, LedgerError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| LedgerError::Url(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        Ok(Self { pool })
    }

    pub async fn migrate(&self) -> Result<(), LedgerError> {
        sqlx::migrate!("./migrations").run(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
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
        let now = now_iso();
        if is_ours(pi) {
            insert_payment(&self.pool, pi, &now, read_at, None, true).await?;
            return Ok(());
        }
        sqlx::query(
            "UPDATE payments SET amount = ?2, currency = ?3, description = ?4, metadata = ?5,
                    created = ?6, updated_at = ?7,
                    status = CASE WHEN status IN ('succeeded', 'canceled') OR status_at > ?9
                                  THEN status ELSE ?8 END,
                    status_at = CASE WHEN status IN ('succeeded', 'canceled') OR status_at > ?9
                                     THEN status_at ELSE ?9 END
             WHERE id = ?1",
        )
        .bind(&pi.id)
        .bind(pi.amount)
        .bind(&pi.currency)
        .bind(&pi.description)
        .bind(Value::Object(pi.metadata.clone()).to_string())
        .bind(pi.created)
        .bind(&now)
        .bind(&pi.status)
        .bind(read_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the event and applies it, in one transaction. A repeated id writes nothing.
    pub async fn apply_event(&self, event: &IncomingEvent<'_>) -> Result<Outcome, LedgerError> {
        let now = now_iso();
        let mut tx = self.pool.begin().await?;
        // The insert comes first: it takes SQLite's write lock at once and decides duplicates.
        let inserted = sqlx::query(
            "INSERT INTO webhook_events (id, type, payment_intent_id, received_at, outcome, payload)
             VALUES (?1, ?2, ?3, ?4, 'unhandled', ?5)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(event.id)
        .bind(event.event_type)
        .bind(event.payment_intent_id)
        .bind(&now)
        .bind(event.payload)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            return Ok(Outcome::Duplicate);
        }
        let outcome = match &event.payment_intent {
            None => Outcome::Unhandled,
            Some(pi) => {
                let row = sqlx::query("SELECT status, status_at FROM payments WHERE id = ?1")
                    .bind(&pi.id)
                    .fetch_optional(&mut *tx)
                    .await?;
                match row {
                    None if !is_ours(pi) => Outcome::Foreign,
                    None => {
                        insert_payment(&mut *tx, pi, &now, event.created, Some(event.id), false)
                            .await?;
                        Outcome::Applied
                    }
                    Some(row) => {
                        let status: String = row.get(0);
                        let status_at: i64 = row.get(1);
                        // A final status is the end of the story whenever it arrives; anything
                        // else yields to information that is newer than the event. An event that
                        // says what the row already says is applied (it changes nothing).
                        let stale = !pi.is_final() && event.created < status_at;
                        if is_final_status(&status) || (stale && status != pi.status) {
                            Outcome::Ignored
                        } else {
                            sqlx::query(
                                "UPDATE payments SET status = ?2, status_at = ?3, updated_at = ?4,
                                                     last_event_id = ?5
                                 WHERE id = ?1",
                            )
                            .bind(&pi.id)
                            .bind(&pi.status)
                            .bind(event.created.max(status_at))
                            .bind(&now)
                            .bind(event.id)
                            .execute(&mut *tx)
                            .await?;
                            Outcome::Applied
                        }
                    }
                }
            }
        };
        if outcome != Outcome::Unhandled {
            sqlx::query("UPDATE webhook_events SET outcome = ?2 WHERE id = ?1")
                .bind(event.id)
                .bind(outcome.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// The durability settings a pooled connection runs with: (`synchronous`, `journal_mode`).
    pub async fn durability(&self) -> Result<(i64, String), LedgerError> {
        let mut conn = self.pool.acquire().await?;
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(&mut *conn)
            .await?;
        let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
            .fetch_one(&mut *conn)
            .await?;
        Ok((synchronous, journal))
    }

    pub async fn payment(&self, id: &str) -> Result<Option<PaymentRow>, LedgerError> {
        let row = sqlx::query(&format!("{PAYMENT_COLUMNS} WHERE id = ?1"))
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
            "{PAYMENT_COLUMNS} WHERE (?1 IS NULL OR status = ?1)
             ORDER BY created DESC, id DESC LIMIT ?2"
        ))
        .bind(status)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(payment_row).collect())
    }

    /// Newest first (by arrival).
    pub async fn list_events(&self, limit: i64) -> Result<Vec<EventRow>, LedgerError> {
        let rows = sqlx::query(&format!("{EVENT_COLUMNS} ORDER BY seq DESC LIMIT ?1"))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(event_row).collect())
    }

    /// Every event received for one PaymentIntent, in arrival order.
    pub async fn events_for(&self, payment_intent_id: &str) -> Result<Vec<EventRow>, LedgerError> {
        let rows = sqlx::query(&format!(
            "{EVENT_COLUMNS} WHERE payment_intent_id = ?1 ORDER BY seq"
        ))
        .bind(payment_intent_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(event_row).collect())
    }

    /// The raw payload of one event, as Stripe signed it.
    pub async fn event_payload(&self, id: &str) -> Result<Option<String>, LedgerError> {
        Ok(
            sqlx::query_scalar("SELECT payload FROM webhook_events WHERE id = ?1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }
}

/// Inserts a payment row; with `upsert`, an existing row is brought up to date under the status
/// rules (final statuses stay; newer information wins).
async fn insert_payment<'e, E>(
    executor: E,
    pi: &PaymentIntent,
    now: &str,
    status_at: i64,
    event_id: Option<&str>,
    upsert: bool,
) -> Result<(), sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let conflict = if upsert {
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
        ""
    };
    sqlx::query(&format!(
        "INSERT INTO payments (id, amount, currency, description, metadata, status, created,
                               updated_at, status_at, last_event_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) {conflict}"
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
    .await?;
    Ok(())
}

const PAYMENT_COLUMNS: &str = "SELECT id, status, amount, currency, description, metadata, created,
                                      updated_at FROM payments";
const EVENT_COLUMNS: &str =
    "SELECT id, type, payment_intent_id, received_at, outcome FROM webhook_events";

fn payment_row(r: &sqlx::sqlite::SqliteRow) -> PaymentRow {
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

fn event_row(r: &sqlx::sqlite::SqliteRow) -> EventRow {
    EventRow {
        id: r.get(0),
        event_type: r.get(1),
        payment_intent_id: r.get(2),
        received_at: r.get(3),
        outcome: r.get(4),
    }
}
