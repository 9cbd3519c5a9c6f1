//! Payment rows: one per PaymentIntent, brought up to date by reads from Stripe and by events,
//! under the status rules. The final statuses come from [`PaymentIntentStatus::FINAL`], the one
//! definition of "final" for payments.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;

use super::events::IncomingEvent;
use super::notifications::announce;
use super::rows::{json_column, ByStatus, Chronology, FromLedgerRow, Listed};
use super::stored::{HoldState, Kind, LatePolicy, Outbox, Outcome};
use super::{column, now_iso, Ledger, LedgerError};
use crate::stripe::types::{Lifecycle, PaymentIntent, PaymentIntentStatus};

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
        })
    }
}

impl Listed for PaymentRow {
    const SELECT: &'static str = "SELECT id, status, amount, amount_received, currency, \
         description, metadata, created, updated_at, payment_method, settled FROM payments";
    const ORDER: Chronology = Chronology::Created;
}
impl ByStatus for PaymentRow {}

/// What a payment charged, as an SQL expression over its row: what a refund can give back.
pub(super) const CHARGED: &str = "CAST(COALESCE(amount_received, amount) AS BIGINT)";

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
        PaymentIntentStatus::final_sql()
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
                payment_method = $11, amount_received = COALESCE($12, amount_received),
                settled = 1
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

/// The metadata key under which a create records its seat hold's end (ISO 8601 UTC).
pub const HOLD_KEY: &str = "hold_expires_at";

/// A hold nothing has been decided about yet, as SQL: undecided, or a capture asked for in time.
static OPEN_HOLD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "(hold_state IS NULL OR hold_state = '{}')",
        HoldState::Capturing.as_str()
    )
});

/// When the payment's seat hold ends (Unix milliseconds), from the mark its create left in the
/// metadata.
fn hold_expires_ms(pi: &PaymentIntent) -> Option<i64> {
    let text = pi.metadata.get(HOLD_KEY)?.as_str()?;
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp_millis())
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
    event: &IncomingEvent,
    now: &str,
) -> Result<Outcome, sqlx::Error> {
    let outcome = write_event_status(tx, pi, event, now).await?;
    if outcome == Outcome::Applied {
        after_payment_change(tx, outbox, &pi.id, event.created).await?;
    }
    Ok(outcome)
}

async fn write_event_status(
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
        .bind(event.created)
        .bind(now)
        .bind(&event.id);
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

/// Inside a transaction: the `columns` (comma-separated) of a payment's row, if the ledger has
/// the payment.
pub(super) async fn payment_columns(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    columns: &str,
) -> Result<Option<AnyRow>, sqlx::Error> {
    sqlx::query(&format!("SELECT {columns} FROM payments WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

/// Inside the transaction that wrote a payment's row, with information dated `info_at` (Unix
/// seconds): the first time it is seen succeeded, whether it is late (its hold had expired,
/// and no capture was asked for before it did); then the notification its status calls for. A
/// late payment under `LATE_PAYMENT_POLICY=refund` is marked for the hold worker to refund, and
/// not announced.
pub(super) async fn after_payment_change(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    outbox: Outbox,
    id: &str,
    info_at: i64,
) -> Result<(), sqlx::Error> {
    let Some(row) = payment_columns(tx, id, "status, hold_expires_ms, hold_state").await? else {
        return Ok(());
    };
    let status = PaymentIntentStatus::parse(&column::<String>(&row, "status")?);
    let hold: Option<i64> = column(&row, "hold_expires_ms")?;
    let mut hold_state: Option<HoldState> = column(&row, "hold_state")?;
    match status {
        PaymentIntentStatus::Succeeded => {
            // A capture asked for while the hold held is in time, whenever the news of its
            // success arrives (a webhook or a hold worker's read may tell of it first, dated
            // after the hold's end): the platform was told it succeeded.
            let capturing = hold_state == Some(HoldState::Capturing);
            if let (Some(expires), true) = (hold, HoldState::is_open(hold_state)) {
                let after_the_hold = !capturing && info_at.saturating_mul(1000) > expires;
                let decided = match (after_the_hold, outbox.late) {
                    (false, _) => HoldState::Kept,
                    (true, LatePolicy::Notify) => HoldState::Late,
                    (true, LatePolicy::Refund) => HoldState::RefundDue,
                };
                sqlx::query("UPDATE payments SET hold_state = $2, late = $3 WHERE id = $1")
                    .bind(id)
                    .bind(decided)
                    .bind(i64::from(decided != HoldState::Kept))
                    .execute(&mut **tx)
                    .await?;
                hold_state = Some(decided);
            }
            let refunding = matches!(hold_state, Some(HoldState::RefundDue | HoldState::Refunded));
            if !refunding {
                announce(tx, outbox, id, Kind::Succeeded, None).await?;
            }
        }
        PaymentIntentStatus::Canceled => announce(tx, outbox, id, Kind::Canceled, None).await?,
        _ => {}
    }
    Ok(())
}

/// A payment's seat hold: when it ends and what became of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// When the hold ends, Unix milliseconds.
    pub expires_ms: i64,
    /// What became of it; `None` while nothing has been decided.
    pub state: Option<HoldState>,
    /// Whether the payment succeeded (or was still processing) after the hold ended.
    pub late: bool,
}

/// Whether a capture may go to Stripe as far as the payment's seat hold goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldCheck {
    /// No hold stands in the way: the payment has none, or is final (Stripe says why it
    /// cannot be captured), or another capture of it was asked for in time.
    Clear,
    /// The hold holds: the capture is marked as asked for in time ([`HoldState::Capturing`]).
    InTime,
    /// The hold has ended. `release`: nothing has released the authorisation yet.
    Expired { release: bool },
}

impl Ledger {
    /// Payments whose seat hold ended at or before `now_ms` (Unix milliseconds) and that
    /// nothing has been done about yet: not final, hold undecided (or a capture asked for in
    /// time that has not gone through). Oldest first.
    pub async fn expired_holds(&self, now_ms: i64, limit: i64) -> Result<Vec<String>, LedgerError> {
        let condition = format!(
            "hold_expires_ms <= $1 AND {} AND status NOT IN {}",
            *OPEN_HOLD,
            PaymentIntentStatus::final_sql()
        );
        self.payment_ids(&condition, now_ms, "hold_expires_ms", limit)
            .await
    }

    /// Where a payment's seat hold stands at `now_ms` (the service's clock, Unix
    /// milliseconds) for a capture of it: ended (at or after its end), or not in the way.
    pub async fn hold_for_capture(&self, id: &str, now_ms: i64) -> Result<HoldCheck, LedgerError> {
        let row =
            sqlx::query("SELECT hold_expires_ms, hold_state, status FROM payments WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            return Ok(HoldCheck::Clear);
        };
        let expires: Option<i64> = column(&row, "hold_expires_ms")?;
        let state: Option<HoldState> = column(&row, "hold_state")?;
        let status = PaymentIntentStatus::parse(&column::<String>(&row, "status")?);
        let ended = expires.is_some_and(|e| e <= now_ms);
        Ok(match state {
            Some(HoldState::Released) => HoldCheck::Expired { release: false },
            open if ended && HoldState::is_open(open) && !status.is_final() => {
                HoldCheck::Expired { release: true }
            }
            _ => HoldCheck::Clear,
        })
    }

    /// Right before a capture of an authorisation is sent to Stripe, at `now_ms`: while the
    /// hold holds, the capture is marked as asked for in time, in one statement, so that its
    /// success is never taken for a late payment, whichever path (webhook, read, hold worker)
    /// tells the ledger of it first. Otherwise, as [`Ledger::hold_for_capture`].
    pub async fn claim_hold_for_capture(
        &self,
        id: &str,
        now_ms: i64,
    ) -> Result<HoldCheck, LedgerError> {
        static CLAIM: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE payments SET hold_state = $3
                 WHERE id = $1 AND hold_expires_ms > $2 AND hold_state IS NULL
                   AND status NOT IN {}",
                PaymentIntentStatus::final_sql()
            )
        });
        let claim = sqlx::query(&CLAIM)
            .bind(id)
            .bind(now_ms)
            .bind(HoldState::Capturing);
        if self.write(claim).await? == 1 {
            return Ok(HoldCheck::InTime);
        }
        self.hold_for_capture(id, now_ms).await
    }

    /// Late payments to refund under `LATE_PAYMENT_POLICY=refund`: those that have succeeded
    /// (one still processing when its hold ended waits for its outcome).
    pub async fn late_refunds_due(&self, limit: i64) -> Result<Vec<String>, LedgerError> {
        let condition = "hold_state = $1 AND status = 'succeeded'";
        self.payment_ids(condition, HoldState::RefundDue, "hold_expires_ms", limit)
            .await
    }

    /// A payment still processing when its hold ended: whatever it becomes is late, so that
    /// when it succeeds it is announced late (`LATE_PAYMENT_POLICY=notify`) or refunded
    /// (`refund`), never announced as if it had been in time.
    pub async fn mark_late(&self, id: &str) -> Result<(), LedgerError> {
        let state = match self.outbox.late {
            LatePolicy::Notify => HoldState::Late,
            LatePolicy::Refund => HoldState::RefundDue,
        };
        self.set_hold_state(id, state, true).await
    }

    /// Records what became of a payment's hold. `late` marks the payment late too (it was
    /// still processing when its hold ended).
    pub async fn set_hold_state(
        &self,
        id: &str,
        state: HoldState,
        late: bool,
    ) -> Result<(), LedgerError> {
        let update = sqlx::query(
            "UPDATE payments SET hold_state = $2, late = CASE WHEN $3 = 1 THEN 1 ELSE late END
             WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(i64::from(late));
        self.write(update).await.map(drop)
    }

    /// A payment's hold, if it has one.
    pub async fn hold_of(&self, id: &str) -> Result<Option<Hold>, LedgerError> {
        let row = sqlx::query(
            "SELECT hold_expires_ms, hold_state, late FROM payments
             WHERE id = $1 AND hold_expires_ms IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(Hold {
                expires_ms: column(&r, "hold_expires_ms")?,
                state: column(&r, "hold_state")?,
                late: column::<i64>(&r, "late")? != 0,
            })
        })
        .transpose()
    }

    /// Payments that are not final and have not changed for `stale_secs`: the reconciliation
    /// reads them again from Stripe. Oldest first.
    pub async fn stale_payments(
        &self,
        stale_secs: i64,
        limit: i64,
    ) -> Result<Vec<String>, LedgerError> {
        let cutoff = chrono::Utc::now() - chrono::Duration::seconds(stale_secs);
        let cutoff = cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let final_sql = PaymentIntentStatus::final_sql();
        let condition = format!("status NOT IN {final_sql} AND updated_at < $1");
        self.payment_ids(&condition, cutoff, "updated_at", limit)
            .await
    }

    /// The ids of the payments that `condition` (SQL, whose `$1` is `value`) chooses, in
    /// `order`, `limit` at the most.
    async fn payment_ids<T>(
        &self,
        condition: &str,
        value: T,
        order: &str,
        limit: i64,
    ) -> Result<Vec<String>, LedgerError>
    where
        T: 'static + Send + for<'q> sqlx::Encode<'q, sqlx::Any> + sqlx::Type<sqlx::Any>,
    {
        let sql = format!("SELECT id FROM payments WHERE {condition} ORDER BY {order} LIMIT $2");
        Ok(sqlx::query_scalar(&sql)
            .bind(value)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    //! Every write path against every status: the rule "final stays, otherwise the newest
    //! information wins" holds whichever path the information comes by.

    use super::*;
    use crate::ledger::{EventSource, IncomingEvent, PoolSettings};
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

    fn pi(status: &str) -> PaymentIntent {
        PaymentIntent::from_value(&json!({
            "id": "pi_matrix", "object": "payment_intent", "amount": 500, "currency": "usd",
            "status": status, "created": 1_700_000_000, "metadata": {"platform": "TMT"},
        }))
        .unwrap()
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

    async fn ledger() -> Ledger {
        let ledger = Ledger::connect(
            "sqlite::memory:",
            PoolSettings {
                max_connections: 1,
                ..PoolSettings::default()
            },
        )
        .await
        .unwrap();
        ledger.migrate().await.unwrap();
        ledger
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

    /// An authorisation whose seats are held until `hold_ms`, as the ledger reads it.
    fn held(hold_ms: i64) -> PaymentIntent {
        let until = chrono::DateTime::from_timestamp_millis(hold_ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let mut pi = pi("requires_capture");
        pi.metadata.insert(HOLD_KEY.into(), json!(until));
        pi
    }

    #[tokio::test]
    async fn a_capture_is_in_time_until_the_millisecond_the_hold_ends() {
        // 2030-01-01T00:00:00.500Z: half way through its second.
        let ends = 1_893_456_000_500;
        let captured = ledger().await;
        captured.record_from_api(&held(ends), 1).await.unwrap();
        let check = |at| captured.hold_for_capture("pi_matrix", at);
        let claim = |at| captured.claim_hold_for_capture("pi_matrix", at);
        assert_eq!(check(ends - 1).await.unwrap(), HoldCheck::Clear);
        assert_eq!(claim(ends - 1).await.unwrap(), HoldCheck::InTime);
        // Asked for in time: another capture meanwhile goes on, until the hold ends.
        assert_eq!(claim(ends - 1).await.unwrap(), HoldCheck::Clear);
        for ended in [check(ends).await.unwrap(), claim(ends).await.unwrap()] {
            assert_eq!(ended, HoldCheck::Expired { release: true });
        }
        // Its success, whenever the news of it is dated, is in time.
        let mut paid = held(ends);
        paid.status = PaymentIntentStatus::Succeeded;
        let news_at = ends / 1000 + 60;
        captured.record_from_api(&paid, news_at).await.unwrap();
        let hold = captured.hold_of("pi_matrix").await.unwrap().unwrap();
        assert_eq!((hold.state, hold.late), (Some(HoldState::Kept), false));

        let released = ledger().await;
        released.record_from_api(&held(ends), 1).await.unwrap();
        let check = |at| released.claim_hold_for_capture("pi_matrix", at);
        assert_eq!(
            check(ends).await.unwrap(),
            HoldCheck::Expired { release: true }
        );
        released
            .set_hold_state("pi_matrix", HoldState::Released, false)
            .await
            .unwrap();
        assert_eq!(
            check(ends).await.unwrap(),
            HoldCheck::Expired { release: false }
        );
        // Without a capture asked for in time, the same news of success is late.
        paid.id = "pi_late".into();
        released.record_from_api(&paid, news_at).await.unwrap();
        let hold = released.hold_of("pi_late").await.unwrap().unwrap();
        assert_eq!((hold.state, hold.late), (Some(HoldState::Late), true));
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
