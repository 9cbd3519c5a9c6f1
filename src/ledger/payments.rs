//! Payment rows: one per PaymentIntent, brought up to date by reads from Stripe and by events,
//! under the status rules. The final statuses come from [`PaymentIntentStatus::FINAL`], the one
//! definition of "final" for payments.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;

use super::events::{IncomingEvent, Outcome};
use super::{column, now_iso, Ledger, LedgerError};
use crate::stripe::types::{Lifecycle, PaymentIntent, PaymentIntentStatus};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PaymentRow {
    pub id: String,
    pub status: PaymentIntentStatus,
    /// Minor units, as Stripe counts them.
    pub amount: i64,
    pub currency: String,
    pub description: Option<String>,
    pub metadata: Value,
    /// Unix seconds, as Stripe reported it.
    pub created: i64,
    pub updated_at: String,
    /// The payment method's id, as the last whole Stripe object written here had it.
    #[serde(skip)]
    pub payment_method: Option<String>,
    /// Final, and every field written from a whole Stripe object at that status (a verified
    /// event or a read): reads can be answered from the row alone.
    #[serde(skip)]
    pub settled: bool,
}

pub(super) const PAYMENT_COLUMNS: &str =
    "SELECT id, status, amount, currency, description, metadata, created, updated_at, \
     payment_method, settled FROM payments";

pub(super) fn payment_row(r: &AnyRow) -> Result<PaymentRow, LedgerError> {
    let metadata: String = column(r, "metadata")?;
    Ok(PaymentRow {
        id: column(r, "id")?,
        status: PaymentIntentStatus::parse(&column::<String>(r, "status")?),
        amount: column(r, "amount")?,
        currency: column(r, "currency")?,
        description: column(r, "description")?,
        metadata: serde_json::from_str(&metadata)
            .map_err(|e| LedgerError::Corrupt(format!("metadata of a payment: {e}")))?,
        created: column(r, "created")?,
        updated_at: column(r, "updated_at")?,
        payment_method: column(r, "payment_method")?,
        settled: column::<i64>(r, "settled")? == 1,
    })
}

/// "The row keeps its status": it is final, or it knows something newer than `$t`.
/// `{table}` is `payments` where the row is named (an upsert's conflict clause), empty otherwise.
fn keeps_status(table: &str, newer_than: &str) -> String {
    let prefix = if table.is_empty() {
        String::new()
    } else {
        format!("{table}.")
    };
    format!(
        "{prefix}status IN {} OR {prefix}status_at > {newer_than}",
        PaymentIntentStatus::final_sql()
    )
}

/// Brings an existing row up to date with a read (whose time is `excluded.status_at`).
static UPSERT_FROM_READ: LazyLock<String> = LazyLock::new(|| {
    let keeps = keeps_status("payments", "excluded.status_at");
    format!(
        "ON CONFLICT (id) DO UPDATE SET
            amount = excluded.amount, currency = excluded.currency,
            description = excluded.description, metadata = excluded.metadata,
            created = excluded.created, updated_at = excluded.updated_at,
            payment_method = excluded.payment_method, settled = excluded.settled,
            status = CASE WHEN {keeps} THEN payments.status ELSE excluded.status END,
            status_at = CASE WHEN {keeps} THEN payments.status_at ELSE excluded.status_at END"
    )
});

/// A read of a PaymentIntent that is not ours but has a row (it was adopted by an event).
static UPDATE_FROM_READ: LazyLock<String> = LazyLock::new(|| {
    let keeps = keeps_status("", "$9");
    format!(
        "UPDATE payments SET amount = $2, currency = $3, description = $4, metadata = $5,
                created = $6, updated_at = $7, payment_method = $10, settled = $11,
                status = CASE WHEN {keeps} THEN status ELSE $8 END,
                status_at = CASE WHEN {keeps} THEN status_at ELSE $9 END
         WHERE id = $1"
    )
});

/// An event's status applies to a non-final row when it is final itself ($6 = 1), not older
/// than what the row knows, or says what the row already says.
static UPDATE_FROM_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE payments SET status = $2, updated_at = $4, last_event_id = $5,
                status_at = CASE WHEN status_at > $3 THEN status_at ELSE $3 END
         WHERE id = $1 AND status NOT IN {}
           AND ($6 = 1 OR status_at <= $3 OR status = $2)",
        PaymentIntentStatus::final_sql()
    )
});

/// A final event brings the whole row up to date from its object, so that reads can be
/// answered from the row: a non-final row moves to it, and a final row of the same status that
/// is not settled yet (written before the ledger kept whole objects) settles.
static UPDATE_FROM_FINAL_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE payments SET status = $2, updated_at = $4, last_event_id = $5,
                status_at = CASE WHEN status_at > $3 THEN status_at ELSE $3 END,
                amount = $6, currency = $7, description = $8, metadata = $9, created = $10,
                payment_method = $11, settled = 1
         WHERE id = $1 AND (status NOT IN {} OR (status = $2 AND settled = 0))",
        PaymentIntentStatus::final_sql()
    )
});

/// Fingerprints of rows known to be final and up to date: a read that says the same again
/// needs no database round trip at all. Final rows never change status, so the knowledge stays
/// true on every instance; anything else (new metadata, say) misses and is written.
#[derive(Default)]
pub(super) struct Settled(Mutex<HashMap<String, u64>>);

/// The most settled rows remembered; past it the memory starts over.
const SETTLED_CAPACITY: usize = 100_000;

impl Settled {
    fn knows(&self, id: &str, fingerprint: u64) -> bool {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(id) == Some(&fingerprint)
    }

    fn remember(&self, id: &str, fingerprint: u64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SETTLED_CAPACITY {
            map.clear();
        }
        map.insert(id.to_string(), fingerprint);
    }
}

fn settled_fingerprint(pi: &PaymentIntent, metadata: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (
        pi.status.as_str(),
        pi.amount,
        &pi.currency,
        &pi.description,
        metadata,
        pi.created,
        pi.payment_method_id(),
    )
        .hash(&mut h);
    h.finish()
}

fn metadata_text(pi: &PaymentIntent) -> String {
    Value::Object(pi.metadata.clone()).to_string()
}

impl Ledger {
    /// Brings the row up to date with a PaymentIntent read from (or created at) Stripe at
    /// `read_at` (Unix seconds, taken before the request was sent). That read is newer than any
    /// event received before it, so it wins unless the row is final or something newer arrived
    /// while the request was in flight. A PaymentIntent that is neither ours nor already in the
    /// ledger is left out: it belongs to another application.
    pub async fn record_from_api(
        &self,
        pi: &PaymentIntent,
        read_at: i64,
    ) -> Result<(), LedgerError> {
        // A final row that already says all this needs no write (and no fsync): the common case
        // of a back end polling a finished payment. A non-final row is always written, so that
        // the read's time guards it against older events arriving late.
        let metadata = metadata_text(pi);
        let fingerprint = settled_fingerprint(pi, &metadata);
        if pi.is_final() && self.settled.knows(&pi.id, fingerprint) {
            return Ok(());
        }
        if let Some(row) = self.payment(&pi.id).await? {
            let unchanged = row.settled
                && row.status == pi.status
                && row.payment_method == pi.payment_method_id()
                && row.amount == pi.amount
                && row.currency == pi.currency
                && row.description == pi.description
                && row.metadata == Value::Object(pi.metadata.clone())
                && row.created == pi.created;
            if unchanged {
                self.settled.remember(&pi.id, fingerprint);
                return Ok(());
            }
        }
        let now = now_iso();
        let written = if pi.is_ours() {
            insert_payment(&self.pool, pi, &now, read_at, None, &UPSERT_FROM_READ).await
        } else {
            sqlx::query(&UPDATE_FROM_READ)
                .bind(&pi.id)
                .bind(pi.amount)
                .bind(&pi.currency)
                .bind(&pi.description)
                .bind(metadata)
                .bind(pi.created)
                .bind(&now)
                .bind(pi.status.as_str())
                .bind(read_at)
                .bind(pi.payment_method_id())
                .bind(i64::from(pi.is_final()))
                .execute(&self.pool)
                .await
                .map(|done| done.rows_affected())
        };
        self.watch(written.map(drop).map_err(LedgerError::from))
    }

    /// The row of a payment that reads can answer from the ledger alone: final and settled.
    pub async fn settled_payment(&self, id: &str) -> Result<Option<PaymentRow>, LedgerError> {
        Ok(self.payment(id).await?.filter(|row| row.settled))
    }

    pub async fn payment(&self, id: &str) -> Result<Option<PaymentRow>, LedgerError> {
        let row = sqlx::query(&format!("{PAYMENT_COLUMNS} WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(payment_row).transpose()
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
        rows.iter().map(payment_row).collect()
    }
}

/// Inserts a payment row, with `on_conflict` deciding what happens to an existing one; returns
/// how many rows were written.
async fn insert_payment<'e, E>(
    executor: E,
    pi: &PaymentIntent,
    now: &str,
    status_at: i64,
    event_id: Option<&str>,
    on_conflict: &str,
) -> Result<u64, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(&format!(
        "INSERT INTO payments (id, amount, currency, description, metadata, status, created,
                               updated_at, status_at, last_event_id, payment_method, settled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) {on_conflict}"
    ))
    .bind(&pi.id)
    .bind(pi.amount)
    .bind(&pi.currency)
    .bind(&pi.description)
    .bind(metadata_text(pi))
    .bind(pi.status.as_str())
    .bind(pi.created)
    .bind(now)
    .bind(status_at)
    .bind(event_id)
    .bind(pi.payment_method_id())
    .bind(i64::from(pi.is_final()))
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
pub(super) async fn apply_to_payment(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    pi: &PaymentIntent,
    event: &IncomingEvent,
    now: &str,
) -> Result<Outcome, sqlx::Error> {
    if pi.is_ours() {
        let inserted = insert_payment(
            &mut **tx,
            pi,
            now,
            event.created,
            Some(&event.id),
            "ON CONFLICT (id) DO NOTHING",
        )
        .await?;
        if inserted == 1 {
            return Ok(Outcome::Applied);
        }
    }
    let updated = if pi.is_final() {
        sqlx::query(&UPDATE_FROM_FINAL_EVENT)
            .bind(&pi.id)
            .bind(pi.status.as_str())
            .bind(event.created)
            .bind(now)
            .bind(&event.id)
            .bind(pi.amount)
            .bind(&pi.currency)
            .bind(&pi.description)
            .bind(metadata_text(pi))
            .bind(pi.created)
            .bind(pi.payment_method_id())
            .execute(&mut **tx)
            .await?
    } else {
        sqlx::query(&UPDATE_FROM_EVENT)
            .bind(&pi.id)
            .bind(pi.status.as_str())
            .bind(event.created)
            .bind(now)
            .bind(&event.id)
            .bind(0i64)
            .execute(&mut **tx)
            .await?
    }
    .rows_affected();
    if updated == 1 {
        return Ok(Outcome::Applied);
    }
    let exists = sqlx::query("SELECT 1 FROM payments WHERE id = $1")
        .bind(&pi.id)
        .fetch_optional(&mut **tx)
        .await?
        .is_some();
    Ok(if exists || pi.is_ours() {
        Outcome::Ignored
    } else {
        Outcome::Foreign
    })
}
