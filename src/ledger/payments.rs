//! Payment rows: one per PaymentIntent, brought up to date by reads from Stripe and by events,
//! under the status rules. The final statuses come from [`PaymentIntentStatus::FINAL`], the one
//! definition of "final" for payments. What a change means for the payment's seat hold and for
//! the platform is [`super::holds::after_payment_change`]'s.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;

use super::delayed::after_delayed_change;
use super::holds::{after_payment_change, hold_expires_ms};
use super::rows::{json_column, ByStatus, Chronology, FromLedgerRow, Listed};
use super::sql::{final_sql, payment_columns, Source};
use super::stored::{Outbox, Outcome};
use super::{column, now_iso, Ledger, LedgerError};
use crate::stripe::types::{PaymentIntent, PaymentIntentStatus};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PaymentRow {
    pub id: String,
    pub status: PaymentIntentStatus,
    /// Minor units, as Stripe counts them: what was asked for (authorised, under manual capture).
    pub amount: i64,
    /// What a succeeded payment charged, minor units: `amount`, or less after a partial capture.
    /// `None` until it succeeded (and on rows from before the ledger kept it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amount_received: Option<i64>,
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
    /// The method whose money comes later it is paid with (`oxxo`, `customer_balance`,
    /// `sepa_debit`), once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

impl FromLedgerRow for PaymentRow {
    fn from_ledger_row(r: &AnyRow) -> Result<Self, LedgerError> {
        Ok(PaymentRow {
            id: column(r, "id")?,
            status: PaymentIntentStatus::parse(&column::<String>(r, "status")?),
            amount: column(r, "amount")?,
            amount_received: column(r, "amount_received")?,
            currency: column(r, "currency")?,
            description: column(r, "description")?,
            metadata: json_column(r, "metadata", "a payment")?,
            created: column(r, "created")?,
            updated_at: column(r, "updated_at")?,
            payment_method: column(r, "payment_method")?,
            settled: column::<i64>(r, "settled")? == 1,
            method: column(r, "method")?,
        })
    }
}

impl Listed for PaymentRow {
    const SELECT: &'static str = "SELECT id, status, amount, amount_received, currency, \
         description, metadata, created, updated_at, payment_method, settled, method FROM payments";
    const ORDER: Chronology = Chronology::Created;
}
impl ByStatus for PaymentRow {}

impl PaymentRow {
    /// What the payment charged, minor units (once it succeeded): what refunds can give back.
    pub fn charged(&self) -> i64 {
        self.amount_received.unwrap_or(self.amount)
    }

    /// What was authorised, when the payment charged less than that (a partial capture): what
    /// people are shown beside what it charged, never instead of it.
    pub fn authorised_beyond_charged(&self) -> Option<i64> {
        (self.charged() < self.amount).then_some(self.amount)
    }
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
        final_sql::<PaymentIntentStatus>()
    )
}

/// A new payment row from a PaymentIntent; an upsert's or an insert's conflict clause follows.
const INSERT_PAYMENT: &str = "INSERT INTO payments (id, amount, currency, description, metadata,
        status, created, updated_at, status_at, last_event_id, hold_expires_ms, payment_method,
        settled, amount_received)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

/// A payment first seen in an event: inserted, or left to the event's UPDATE when it exists.
static INSERT_FROM_EVENT: LazyLock<String> =
    LazyLock::new(|| format!("{INSERT_PAYMENT} ON CONFLICT (id) DO NOTHING"));

/// Inserts a payment from a read, or brings an existing row up to date with it (the read's
/// time is `excluded.status_at`).
static UPSERT_FROM_READ: LazyLock<String> = LazyLock::new(|| {
    let keeps = keeps_status("payments", "excluded.status_at");
    format!(
        "{INSERT_PAYMENT} ON CONFLICT (id) DO UPDATE SET
            amount = excluded.amount, currency = excluded.currency,
            amount_received = COALESCE(excluded.amount_received, payments.amount_received),
            hold_expires_ms = COALESCE(payments.hold_expires_ms, excluded.hold_expires_ms),
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
                amount_received = COALESCE($12, amount_received),
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
        final_sql::<PaymentIntentStatus>()
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
                payment_method = $11, amount_received = COALESCE($12, amount_received),
                settled = 1
         WHERE id = $1 AND (status NOT IN {} OR (status = $2 AND settled = 0))",
        final_sql::<PaymentIntentStatus>()
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
        received(pi),
        &pi.currency,
        &pi.description,
        metadata,
        pi.created,
        pi.payment_method_id(),
    )
        .hash(&mut h);
    h.finish()
}

/// What the payment charged, when it has succeeded: Stripe's `amount_received` (less than
/// `amount` after a partial capture). Anything else, or an object without the field, says
/// nothing, and the row keeps what it knew.
fn received(pi: &PaymentIntent) -> Option<i64> {
    (pi.status == PaymentIntentStatus::Succeeded && pi.amount_received > 0)
        .then_some(pi.amount_received)
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
        // Only a final PaymentIntent can find its row settled and unchanged: a non-final one
        // is written without reading the row first (every create, every pending poll).
        let known = if pi.is_final() {
            self.payment(&pi.id).await?
        } else {
            None
        };
        if let Some(row) = known {
            let unchanged = row.settled
                && row.status == pi.status
                && row.payment_method == pi.payment_method_id()
                && row.amount == pi.amount
                && (received(pi).is_none() || row.amount_received == received(pi))
                && row.currency == pi.currency
                && row.description == pi.description
                && row.metadata == Value::Object(pi.metadata.clone())
                && row.created == pi.created;
            if unchanged {
                self.settled.remember(&pi.id, fingerprint);
                return Ok(());
            }
        }
        let written = async {
            let now = now_iso();
            let mut tx = self.pool.begin().await?;
            let rows = if pi.is_ours() {
                insert_payment(&mut *tx, pi, &now, read_at, None, &UPSERT_FROM_READ).await?
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
                    .bind(received(pi))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            };
            if rows > 0 {
                after_delayed_change(&mut tx, self.outbox, pi, read_at).await?;
                after_payment_change(&mut tx, self.outbox, &pi.id, read_at).await?;
            }
            tx.commit().await?;
            Ok(())
        };
        let written = written.await;
        self.watch(written)
    }

    /// The row of a payment that reads can answer from the ledger alone: final and settled.
    pub async fn settled_payment(&self, id: &str) -> Result<Option<PaymentRow>, LedgerError> {
        Ok(self.payment(id).await?.filter(|row| row.settled))
    }

    pub async fn payment(&self, id: &str) -> Result<Option<PaymentRow>, LedgerError> {
        static ONE: LazyLock<String> =
            LazyLock::new(|| format!("{} WHERE id = $1", PaymentRow::SELECT));
        self.fetch_optional(sqlx::query(&ONE).bind(id)).await
    }
}

/// Inserts a payment row with `statement` ([`INSERT_FROM_EVENT`] or [`UPSERT_FROM_READ`]);
/// returns how many rows were written.
async fn insert_payment<'e, E>(
    executor: E,
    pi: &PaymentIntent,
    now: &str,
    status_at: i64,
    event_id: Option<&str>,
    statement: &str,
) -> Result<u64, sqlx::Error>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(statement)
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
        .bind(hold_expires_ms(pi))
        .bind(pi.payment_method_id())
        .bind(i64::from(pi.is_final()))
        .bind(received(pi))
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
    outbox: Outbox,
    pi: &PaymentIntent,
    event: Source<'_>,
    now: &str,
) -> Result<Outcome, sqlx::Error> {
    let outcome = write_event_status(tx, pi, event, now).await?;
    if outcome == Outcome::Applied {
        after_delayed_change(tx, outbox, pi, event.at).await?;
        after_payment_change(tx, outbox, &pi.id, event.at).await?;
    }
    Ok(outcome)
}

async fn write_event_status(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    pi: &PaymentIntent,
    event: Source<'_>,
    now: &str,
) -> Result<Outcome, sqlx::Error> {
    if pi.is_ours() {
        let inserted = insert_payment(
            &mut **tx,
            pi,
            now,
            event.at,
            event.event_id,
            &INSERT_FROM_EVENT,
        )
        .await?;
        if inserted == 1 {
            return Ok(Outcome::Applied);
        }
    }
    let sql: &str = if pi.is_final() {
        &UPDATE_FROM_FINAL_EVENT
    } else {
        &UPDATE_FROM_EVENT
    };
    // Both statements take the event's status, time, arrival and id first.
    let update = sqlx::query(sql)
        .bind(&pi.id)
        .bind(pi.status.as_str())
        .bind(event.at)
        .bind(now)
        .bind(event.event_id);
    let update = if pi.is_final() {
        update
            .bind(pi.amount)
            .bind(&pi.currency)
            .bind(&pi.description)
            .bind(metadata_text(pi))
            .bind(pi.created)
            .bind(pi.payment_method_id())
            .bind(received(pi))
    } else {
        // The event's status is not final.
        update.bind(0i64)
    };
    if update.execute(&mut **tx).await?.rows_affected() == 1 {
        return Ok(Outcome::Applied);
    }
    let exists = payment_columns(tx, &pi.id, "1").await?.is_some();
    Ok(if exists || pi.is_ours() {
        Outcome::Ignored
    } else {
        Outcome::Foreign
    })
}

impl Ledger {
    /// Payments that are not final and have not changed for `stale_secs`: the reconciliation
    /// reads them again from Stripe. Oldest first.
    pub async fn stale_payments(
        &self,
        stale_secs: i64,
        limit: i64,
    ) -> Result<Vec<String>, LedgerError> {
        let cutoff = chrono::Utc::now() - chrono::Duration::seconds(stale_secs);
        let cutoff = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let final_sql = final_sql::<PaymentIntentStatus>();
        let condition = format!("status NOT IN {final_sql} AND updated_at < $1");
        self.payment_ids(&condition, cutoff, "updated_at", limit)
            .await
    }
}

#[cfg(test)]
mod tests {
    //! Every write path against every status: the rule "final stays, otherwise the newest
    //! information wins" holds whichever path the information comes by.

    use super::*;
    use crate::ledger::testing::{ledger, pi};
    use crate::ledger::{EventSource, IncomingEvent};
    use crate::stripe::types::Event;
    use serde_json::json;

    const STATUSES: [&str; 7] = [
        "requires_payment_method",
        "requires_confirmation",
        "requires_action",
        "processing",
        "requires_capture",
        "succeeded",
        "canceled",
    ];

    #[derive(Debug, Clone, Copy)]
    enum Path {
        /// A webhook event dated before the row's information.
        OlderEvent,
        /// A webhook event dated after it.
        NewerEvent,
        /// The same event found by the reconciliation.
        ReconciledEvent,
        /// A read from Stripe's API (get, confirm, a create's answer, a hold's expiry).
        Read,
    }

    fn incoming(n: usize, status: &str, created: i64, source: EventSource) -> IncomingEvent {
        let body = json!({
            "id": format!("evt_matrix_{n}"), "object": "event",
            "type": "payment_intent.processing", "created": created,
            "data": {"object": {
                "id": "pi_matrix", "object": "payment_intent", "amount": 500,
                "currency": "usd", "status": status, "created": 1_700_000_000,
                "metadata": {"platform": "TMT"}}},
        })
        .to_string();
        let event: Event = serde_json::from_str(&body).unwrap();
        IncomingEvent::from_event(&event, body, source)
    }

    fn expected(before: &str, incoming: &str, path: Path) -> String {
        let final_before = matches!(before, "succeeded" | "canceled");
        let final_incoming = matches!(incoming, "succeeded" | "canceled");
        let takes = !final_before
            && match path {
                Path::OlderEvent => final_incoming || incoming == before,
                Path::NewerEvent | Path::ReconciledEvent | Path::Read => true,
            };
        if takes { incoming } else { before }.to_string()
    }

    #[tokio::test]
    async fn every_path_keeps_final_statuses_and_lets_the_newest_win() {
        let t = 1_800_000_000;
        let mut n = 0;
        for before in STATUSES {
            for after in STATUSES {
                for path in [
                    Path::OlderEvent,
                    Path::NewerEvent,
                    Path::ReconciledEvent,
                    Path::Read,
                ] {
                    let ledger = ledger().await;
                    // The row first learns `before` from a read at `t`.
                    ledger.record_from_api(&pi(before), t).await.unwrap();
                    n += 1;
                    match path {
                        Path::OlderEvent => {
                            let e = incoming(n, after, t - 10, EventSource::Webhook);
                            ledger.apply_event(&e).await.unwrap();
                        }
                        Path::NewerEvent => {
                            let e = incoming(n, after, t + 10, EventSource::Webhook);
                            ledger.apply_event(&e).await.unwrap();
                        }
                        Path::ReconciledEvent => {
                            let e = incoming(n, after, t + 10, EventSource::Reconcile);
                            ledger.apply_event(&e).await.unwrap();
                        }
                        Path::Read => ledger.record_from_api(&pi(after), t + 10).await.unwrap(),
                    }
                    let row = ledger.payment("pi_matrix").await.unwrap().unwrap();
                    assert_eq!(
                        row.status.as_str(),
                        expected(before, after, path),
                        "{before} then {after} by {path:?}"
                    );
                }
            }
        }
        assert_eq!(n, STATUSES.len() * STATUSES.len() * 4);
    }

    #[tokio::test]
    async fn an_unknown_payment_is_created_by_events_and_reads_but_only_if_ours() {
        let ledger = ledger().await;
        let e = incoming(
            1,
            "requires_payment_method",
            1_800_000_000,
            EventSource::Webhook,
        );
        assert_eq!(ledger.apply_event(&e).await.unwrap(), Outcome::Applied);
        assert!(ledger.payment("pi_matrix").await.unwrap().is_some());
        let mut theirs = pi("succeeded");
        theirs.id = "pi_theirs".into();
        theirs.metadata.clear();
        ledger
            .record_from_api(&theirs, 1_800_000_000)
            .await
            .unwrap();
        assert!(ledger.payment("pi_theirs").await.unwrap().is_none());
    }
}
