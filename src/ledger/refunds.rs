//! Refunds, disputes and the Charge objects of payments of ours (docs/contract.md §9): each
//! its own row, moved by what Stripe says (an API answer or an event) under the same rules as
//! payments: final statuses stay (but for the late failures Stripe documents), otherwise the
//! newest information wins. A payment's `amount_refunded` is the sum of its pending and
//! succeeded refunds.

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::FromRow;

use super::notifications::announce;
use super::rows::{json_column, ByStatus, Chronology, FromLedgerRow, Listed, OfPayment};
use super::sql::{
    final_sql, keeps_final_sql, list, payment_columns, Source, AMOUNT_REFUNDED, CHARGED,
    REFUNDED_OF_PAYMENT,
};
use super::stored::{HoldState, Kind, Outbox, Outcome};
use super::{column, now_iso, Ledger, LedgerError};
use crate::stripe::types::{
    ChargeRef, DisputeDetails, DisputeStatus, Lifecycle, Movement, PaymentIntentStatus, Refund,
    RefundDetails, RefundStatus, OWNER_KEY, OWNER_TAG,
};

/// The metadata key that ties a refund to the reservation made for it before Stripe was asked.
pub const RESERVATION_KEY: &str = "tmt_request";

/// A refund or dispute as the ledger keeps it; `X` is what only that kind has.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MovementRow<S, X> {
    pub id: String,
    pub payment_intent_id: String,
    pub charge_id: Option<String>,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
    pub status: S,
    pub reason: Option<String>,
    pub created: i64,
    pub updated_at: String,
    #[serde(flatten)]
    pub own: X,
}

pub type RefundRow = MovementRow<RefundStatus, RefundColumns>;
pub type DisputeRow = MovementRow<DisputeStatus, DisputeColumns>;

/// What only a refund's row has.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RefundColumns {
    pub failure_reason: Option<String>,
    pub metadata: Value,
}

/// What only a dispute's row has.
#[derive(Debug, Clone, Serialize, PartialEq, FromRow)]
pub struct DisputeColumns {
    /// Unix seconds.
    pub evidence_due_by: Option<i64>,
}

/// Why a refund cannot be reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The ledger has no such payment.
    Unknown,
    /// The payment has not succeeded (its status).
    NotRefundable(PaymentIntentStatus),
    /// More than what is left to refund was asked for; what is left, in minor units.
    ExceedsRemaining { remaining: i64, currency: String },
}

/// A refund amount set aside for a request until Stripe's answer is recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub id: String,
    pub payment_intent_id: String,
    /// Minor units.
    pub amount: i64,
    pub currency: String,
}

impl<S: From<String>, X: FromLedgerRow> FromLedgerRow for MovementRow<S, X> {
    fn from_ledger_row(r: &AnyRow) -> Result<Self, LedgerError> {
        Ok(MovementRow {
            id: column(r, "id")?,
            payment_intent_id: column(r, "payment_intent_id")?,
            charge_id: column(r, "charge_id")?,
            amount: column(r, "amount")?,
            currency: column(r, "currency")?,
            status: S::from(column::<String>(r, "status")?),
            reason: column(r, "reason")?,
            created: column(r, "created")?,
            updated_at: column(r, "updated_at")?,
            own: X::from_ledger_row(r)?,
        })
    }
}

impl FromLedgerRow for RefundColumns {
    fn from_ledger_row(r: &AnyRow) -> Result<Self, LedgerError> {
        Ok(RefundColumns {
            failure_reason: column(r, "failure_reason")?,
            metadata: json_column(r, "metadata", "a refund")?,
        })
    }
}

impl Listed for RefundRow {
    const SELECT: &'static str = "SELECT id, payment_intent_id, charge_id, amount, currency, \
         status, reason, failure_reason, metadata, created, updated_at FROM refunds";
    const ORDER: Chronology = Chronology::Created;
}
impl ByStatus for RefundRow {}
impl OfPayment for RefundRow {}

impl Listed for DisputeRow {
    const SELECT: &'static str = "SELECT id, charge_id, payment_intent_id, amount, currency, \
         reason, status, evidence_due_by, created, updated_at FROM disputes";
    const ORDER: Chronology = Chronology::Created;
}
impl ByStatus for DisputeRow {}
impl OfPayment for DisputeRow {}

/// The upsert of a status-carrying row: everything is refreshed, but the status (and what goes
/// with it) only moves when the row's status is not final (but for a late change) and the
/// incoming information is not older, or is final itself (a final status is where the object
/// ends, whenever the news of it arrives). `RETURNING status` tells whether it moved.
fn status_upsert<S: Lifecycle>(table: &str, columns: &[&str], with_status: &[&str]) -> String {
    let keeps = format!(
        "{} OR ({table}.status_at > excluded.status_at AND excluded.status NOT IN {})",
        keeps_final_sql::<S>(&format!("{table}.status"), "excluded.status"),
        final_sql::<S>()
    );
    let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let mut sets: Vec<String> = columns
        .iter()
        .filter(|c| **c != "id" && !with_status.contains(c) && **c != "status_at")
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    for c in with_status.iter().chain(["status_at"].iter()) {
        sets.push(format!(
            "{c} = CASE WHEN {keeps} THEN {table}.{c} ELSE excluded.{c} END"
        ));
    }
    format!(
        "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {} RETURNING status",
        columns.join(", "),
        params.join(", "),
        sets.join(", ")
    )
}

/// The columns every refund and dispute row has, in the order `apply_movement` binds them;
/// each kind's own columns follow.
const MOVEMENT_COLUMNS: [&str; 11] = [
    "id",
    "payment_intent_id",
    "charge_id",
    "amount",
    "currency",
    "status",
    "reason",
    "created",
    "updated_at",
    "status_at",
    "last_event_id",
];

/// `own` are the kind's own columns; `own_with_status` those of them that move only with the
/// status (the others are refreshed by every update).
fn movement_upsert<S: Lifecycle>(table: &str, own: &[&str], own_with_status: &str) -> String {
    let columns: Vec<&str> = MOVEMENT_COLUMNS.iter().chain(own).copied().collect();
    let with_status = ["status", own_with_status, "last_event_id"];
    status_upsert::<S>(table, &columns, &with_status)
}

static REFUND_UPSERT: LazyLock<String> = LazyLock::new(|| {
    movement_upsert::<RefundStatus>("refunds", &["failure_reason", "metadata"], "failure_reason")
});

static DISPUTE_UPSERT: LazyLock<String> = LazyLock::new(|| {
    movement_upsert::<DisputeStatus>("disputes", &["evidence_due_by"], "evidence_due_by")
});

/// Inside a transaction: whether a payment is ours to follow (it has a row), or the object
/// carries our tag.
async fn follows(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    payment_intent_id: &str,
    metadata: &Map<String, Value>,
) -> Result<bool, sqlx::Error> {
    if metadata.get(OWNER_KEY).and_then(Value::as_str) == Some(OWNER_TAG) {
        return Ok(true);
    }
    Ok(payment_columns(tx, payment_intent_id, "1").await?.is_some())
}

/// Inside a transaction: the payment a refund or dispute belongs to (its own PaymentIntent, or
/// else its charge's, when the ledger has seen the charge), if the ledger follows it.
async fn followed_payment(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    payment_intent_id: Option<&str>,
    charge_id: Option<&str>,
    metadata: &Map<String, Value>,
) -> Result<Option<String>, sqlx::Error> {
    let payment_intent_id = match (payment_intent_id, charge_id) {
        (Some(id), _) => Some(id.to_string()),
        (None, Some(charge_id)) => {
            sqlx::query_scalar("SELECT payment_intent_id FROM charges WHERE id = $1")
                .bind(charge_id)
                .fetch_optional(&mut **tx)
                .await?
        }
        (None, None) => None,
    };
    let Some(id) = payment_intent_id else {
        return Ok(None);
    };
    Ok(follows(tx, &id, metadata).await?.then_some(id))
}

/// What the platform is told of a payment besides its status: what it counts as refunded,
/// whether it is late (§10), and whether its money is all going back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    /// Pending and succeeded refunds, minor units.
    pub amount_refunded: i64,
    pub late: bool,
    /// Refunded in full (what it charged), or a late payment the service is about to refund
    /// under `LATE_PAYMENT_POLICY=refund`.
    pub refunded: bool,
}

/// A refund's or dispute's upsert, bound and ready to run.
type Upsert<'q> = sqlx::query::QueryScalar<'q, sqlx::Any, String, sqlx::any::AnyArguments<'q>>;

/// What differs between refunds and disputes in the ledger: their table, the columns only
/// they have, and what the platform hears of them.
pub(super) trait Details {
    /// The upsert of their table: the columns of `MOVEMENT_COLUMNS`, then their own.
    fn upsert() -> &'static str;
    /// Binds their own columns, after the common ones.
    fn bind_own<'q>(&'q self, query: Upsert<'q>) -> Upsert<'q>;
    /// Metadata that may carry our tag.
    fn metadata(&self) -> &Map<String, Value>;
    /// What the platform is told once the row holds `kept`, in this order (each at most once
    /// per row, ever: the outbox's unique key).
    fn announced(kept: &str) -> &'static [Kind];
}

impl Details for RefundDetails {
    fn upsert() -> &'static str {
        &REFUND_UPSERT
    }
    fn bind_own<'q>(&'q self, query: Upsert<'q>) -> Upsert<'q> {
        let metadata = Value::Object(self.metadata.clone()).to_string();
        query.bind(&self.failure_reason).bind(metadata)
    }
    fn metadata(&self) -> &Map<String, Value> {
        &self.metadata
    }
    /// A refund that fails after it succeeded can only be told after `payment.refunded`: once
    /// failed, the row never becomes `succeeded` again.
    fn announced(kept: &str) -> &'static [Kind] {
        match RefundStatus::parse(kept) {
            RefundStatus::Succeeded => &[Kind::Refunded],
            RefundStatus::Failed => &[Kind::RefundFailed],
            _ => &[],
        }
    }
}

/// Disputes carry no metadata of ours: they are followed through their payment.
static NO_METADATA: LazyLock<Map<String, Value>> = LazyLock::new(Map::new);

impl Details for DisputeDetails {
    fn upsert() -> &'static str {
        &DISPUTE_UPSERT
    }
    fn bind_own<'q>(&'q self, query: Upsert<'q>) -> Upsert<'q> {
        query.bind(self.evidence_details.due_by)
    }
    fn metadata(&self) -> &Map<String, Value> {
        &NO_METADATA
    }
    /// A dispute first heard of already decided is told opened, then closed.
    fn announced(kept: &str) -> &'static [Kind] {
        match DisputeStatus::parse(kept) {
            DisputeStatus::Won | DisputeStatus::Lost => &[Kind::Disputed, Kind::DisputeClosed],
            _ => &[Kind::Disputed],
        }
    }
}

/// Records a refund or dispute under its status rules, inside the caller's transaction, and
/// tells the platform what it should hear of it. A refund made under a reservation marks the
/// reservation as done.
pub(super) async fn apply_movement<S: Lifecycle, X: Details>(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    outbox: Outbox,
    movement: &Movement<S, X>,
    source: Source<'_>,
) -> Result<Outcome, sqlx::Error> {
    let (charge_id, metadata) = (movement.charge_id(), movement.own.metadata());
    let followed = followed_payment(tx, movement.payment_intent_id(), charge_id, metadata).await?;
    let Some(payment_intent_id) = followed else {
        return Ok(Outcome::Foreign);
    };
    let status = movement.status.as_ref();
    let common = sqlx::query_scalar(X::upsert())
        .bind(&movement.id)
        .bind(&payment_intent_id)
        .bind(charge_id)
        .bind(movement.amount)
        .bind(&movement.currency)
        .bind(status)
        .bind(&movement.reason)
        .bind(movement.created)
        .bind(now_iso())
        .bind(source.at)
        .bind(source.event_id);
    let kept: String = movement.own.bind_own(common).fetch_one(&mut **tx).await?;
    if let Some(reservation) = metadata.get(RESERVATION_KEY).and_then(Value::as_str) {
        sqlx::query("UPDATE refund_reservations SET refund_id = $2 WHERE id = $1")
            .bind(reservation)
            .bind(&movement.id)
            .execute(&mut **tx)
            .await?;
    }
    for kind in X::announced(&kept) {
        announce(tx, outbox, &payment_intent_id, *kind, Some(&movement.id)).await?;
    }
    Ok(Outcome::took(kept == status))
}

/// A Charge object kept under the newest-wins rule; `RETURNING status_at` tells whether it won.
const CHARGE_UPSERT: &str =
    "INSERT INTO charges (id, payment_intent_id, payload, created, updated_at, status_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (id) DO UPDATE SET
        payload = CASE WHEN charges.status_at > excluded.status_at
                       THEN charges.payload ELSE excluded.payload END,
        updated_at = excluded.updated_at,
        status_at = CASE WHEN charges.status_at > excluded.status_at
                         THEN charges.status_at ELSE excluded.status_at END
     RETURNING status_at";

/// Inside a transaction: keeps Charge objects that Stripe gave as this payment's (listed by it,
/// or embedded in it by older API versions and emulators), under it whatever their own
/// `payment_intent` field says; nothing for a payment the ledger does not follow.
pub(super) async fn keep_listed_charges(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    payment_intent_id: &str,
    charges: &[Value],
    at: i64,
) -> Result<(), sqlx::Error> {
    if charges.is_empty() || !follows(tx, payment_intent_id, &Map::new()).await? {
        return Ok(());
    }
    let now = now_iso();
    for raw in charges {
        let Some(id) = raw.get("id").and_then(Value::as_str) else {
            continue;
        };
        let created = raw.get("created").and_then(Value::as_i64).unwrap_or(at);
        sqlx::query_scalar::<_, i64>(CHARGE_UPSERT)
            .bind(id)
            .bind(payment_intent_id)
            .bind(raw.to_string())
            .bind(created)
            .bind(&now)
            .bind(at)
            .fetch_one(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Keeps the Charge object of a payment of ours as Stripe sent it (the newest information
/// wins), and the refunds an older API version embeds in it.
pub(super) async fn apply_charge(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    outbox: Outbox,
    charge: &ChargeRef,
    raw: &Value,
    source: Source<'_>,
) -> Result<Outcome, sqlx::Error> {
    let Some(payment_intent_id) = charge.payment_intent_id() else {
        return Ok(Outcome::Foreign);
    };
    if !follows(tx, payment_intent_id, &Map::new()).await? {
        return Ok(Outcome::Foreign);
    }
    let kept: i64 = sqlx::query_scalar(CHARGE_UPSERT)
        .bind(&charge.id)
        .bind(payment_intent_id)
        .bind(raw.to_string())
        .bind(charge.created)
        .bind(now_iso())
        .bind(source.at)
        .fetch_one(&mut **tx)
        .await?;
    for embedded in charge.refunds.iter().flat_map(|list| &list.data) {
        if let Some(mut refund) = Refund::from_value(embedded) {
            if refund.payment_intent.is_none() {
                refund.payment_intent = charge.payment_intent.clone();
            }
            apply_movement(tx, outbox, &refund, source).await?;
        }
    }
    Ok(Outcome::took(kept == source.at))
}

impl Ledger {
    /// Sets `wanted` minor units (or everything left, when `None`) aside for a refund of a
    /// succeeded payment under `reservation_id`, atomically with respect to every other
    /// reservation and refund of it, across instances: the payment's row is locked first (a
    /// write, so SQLite takes its lock at once and PostgreSQL serialises on the row). A
    /// reservation that already exists (a retry of the same request) is answered as it was
    /// made, so that the retry asks Stripe for the very same refund.
    pub async fn reserve_refund(
        &self,
        reservation_id: &str,
        payment_intent_id: &str,
        wanted: Option<i64>,
        ttl: std::time::Duration,
    ) -> Result<Result<Reservation, Refusal>, LedgerError> {
        let result = async {
            let mut tx = self.pool.begin().await?;
            let locked = sqlx::query("UPDATE payments SET updated_at = updated_at WHERE id = $1")
                .bind(payment_intent_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if locked == 0 {
                return Ok(Err(Refusal::Unknown));
            }
            let columns = &format!("{CHARGED} AS amount, currency, status");
            let Some(row) = payment_columns(&mut tx, payment_intent_id, columns).await? else {
                return Ok(Err(Refusal::Unknown));
            };
            let status = PaymentIntentStatus::parse(&column::<String>(&row, "status")?);
            let (amount, currency): (i64, String) =
                (column(&row, "amount")?, column(&row, "currency")?);
            if status != PaymentIntentStatus::Succeeded {
                return Ok(Err(Refusal::NotRefundable(status)));
            }
            let now = chrono::Utc::now().timestamp();
            let expires_at = now + ttl.as_secs() as i64;
            let earlier: Option<i64> =
                sqlx::query_scalar("SELECT amount FROM refund_reservations WHERE id = $1")
                    .bind(reservation_id)
                    .fetch_optional(&mut *tx)
                    .await?;
            let asked = match earlier {
                Some(asked) => {
                    sqlx::query("UPDATE refund_reservations SET expires_at = $2 WHERE id = $1")
                        .bind(reservation_id)
                        .bind(expires_at)
                        .execute(&mut *tx)
                        .await?;
                    asked
                }
                None => {
                    // One statement, so one snapshot: a refund recorded meanwhile (its row
                    // written and its reservation marked done in one commit) is counted once,
                    // never missed between two reads.
                    let taken: i64 = sqlx::query_scalar(&format!(
                        "SELECT CAST(
                            (SELECT COALESCE(SUM(amount), 0) FROM refunds
                             WHERE payment_intent_id = $1 AND status IN {})
                          + (SELECT COALESCE(SUM(amount), 0) FROM refund_reservations
                             WHERE payment_intent_id = $1 AND refund_id IS NULL
                               AND expires_at > $2) AS BIGINT)",
                        list(RefundStatus::COMMITTED)
                    ))
                    .bind(payment_intent_id)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    let remaining = (amount - taken).max(0);
                    let asked = wanted.unwrap_or(remaining);
                    if remaining == 0 || asked > remaining {
                        return Ok(Err(Refusal::ExceedsRemaining {
                            remaining,
                            currency,
                        }));
                    }
                    sqlx::query(
                        "INSERT INTO refund_reservations (id, payment_intent_id, amount, expires_at)
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(reservation_id)
                    .bind(payment_intent_id)
                    .bind(asked)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?;
                    asked
                }
            };
            tx.commit().await?;
            Ok(Ok(Reservation {
                id: reservation_id.to_string(),
                payment_intent_id: payment_intent_id.to_string(),
                amount: asked,
                currency,
            }))
        };
        let result = result.await;
        self.watch(result)
    }

    /// Ends a reservation whose refund Stripe refused (nothing was refunded).
    pub async fn release_reservation(&self, id: &str) -> Result<(), LedgerError> {
        let delete =
            sqlx::query("DELETE FROM refund_reservations WHERE id = $1 AND refund_id IS NULL")
                .bind(id);
        self.write(delete).await.map(drop)
    }

    /// What is left to refund of a payment, minor units, as the ledger knows it.
    pub async fn refundable(&self, payment_intent_id: &str) -> Result<i64, LedgerError> {
        let left: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT CAST({CHARGED} - (SELECT COALESCE(SUM(amount), 0) FROM refunds
                                   WHERE payment_intent_id = $1 AND status IN {}) AS BIGINT)
             FROM payments WHERE id = $1",
            list(RefundStatus::COMMITTED)
        ))
        .bind(payment_intent_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(left.unwrap_or(0).max(0))
    }

    /// Records a refund as Stripe answered it, read at `read_at` (Unix seconds), and ends its
    /// reservation.
    pub async fn record_refund(&self, refund: &Refund, read_at: i64) -> Result<(), LedgerError> {
        let result = async {
            let mut tx = self.pool.begin().await?;
            apply_movement(
                &mut tx,
                self.outbox,
                refund,
                Source {
                    event_id: None,
                    at: read_at,
                },
            )
            .await?;
            tx.commit().await?;
            Ok(())
        };
        let result = result.await;
        self.watch(result)
    }

    /// Where a payment stands for the platform (zero and false for one the ledger does not
    /// have), in one read.
    pub async fn standing(&self, payment_intent_id: &str) -> Result<Standing, LedgerError> {
        static STANDING: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT {CHARGED} AS charged, late, hold_state, {} AS refunded
                 FROM payments WHERE id = $1",
                *REFUNDED_OF_PAYMENT
            )
        });
        let row = sqlx::query(&STANDING)
            .bind(payment_intent_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(Standing::default());
        };
        let charged: i64 = column(&row, "charged")?;
        let amount_refunded: i64 = column(&row, "refunded")?;
        let hold_state: Option<HoldState> = column(&row, "hold_state")?;
        let refund_due = hold_state == Some(HoldState::RefundDue);
        Ok(Standing {
            amount_refunded,
            late: column::<i64>(&row, "late")? != 0,
            refunded: amount_refunded >= charged || refund_due,
        })
    }

    /// What a payment counts as refunded: its pending and succeeded refunds, minor units.
    pub async fn amount_refunded(&self, payment_intent_id: &str) -> Result<i64, LedgerError> {
        Ok(sqlx::query_scalar(&AMOUNT_REFUNDED)
            .bind(payment_intent_id)
            .fetch_one(&self.pool)
            .await?)
    }

    pub async fn refund(&self, id: &str) -> Result<Option<RefundRow>, LedgerError> {
        static ONE: LazyLock<String> =
            LazyLock::new(|| format!("{} WHERE id = $1", RefundRow::SELECT));
        self.fetch_optional(sqlx::query(&ONE).bind(id)).await
    }

    /// Keeps the Charge objects Stripe listed (or embedded) for a payment, read at `read_at`
    /// (Unix seconds), so that the next confirm of it needs no Stripe call.
    pub async fn record_charges(
        &self,
        payment_intent_id: &str,
        charges: &[Value],
        read_at: i64,
    ) -> Result<(), LedgerError> {
        let result = async {
            let mut tx = self.pool.begin().await?;
            keep_listed_charges(&mut tx, payment_intent_id, charges, read_at).await?;
            tx.commit().await?;
            Ok(())
        };
        let result = result.await;
        self.watch(result)
    }

    /// The Charge objects seen for a payment, as Stripe sent them, newest first.
    pub async fn charges_for(&self, payment_intent_id: &str) -> Result<Vec<Value>, LedgerError> {
        let payloads: Vec<String> = sqlx::query_scalar(
            "SELECT payload FROM charges WHERE payment_intent_id = $1 ORDER BY created DESC, id DESC",
        )
        .bind(payment_intent_id)
        .fetch_all(&self.pool)
        .await?;
        payloads
            .iter()
            .map(|p| {
                serde_json::from_str(p).map_err(|e| LedgerError::Corrupt(format!("charge: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refund_upsert_lets_a_succeeded_refund_fail_late_and_nothing_else() {
        let sql = REFUND_UPSERT.as_str();
        assert!(sql.contains(
            "refunds.status IN ('succeeded', 'failed', 'canceled') AND NOT (refunds.status = 'succeeded' AND excluded.status = 'failed')"
        ), "{sql}");
        assert!(sql.ends_with("RETURNING status"));
        assert!(sql.contains("amount = excluded.amount"));
        assert!(!sql.contains("id = excluded.id"));
    }
}
