//! The fulfilment outbox (docs/contract.md §11): a notification is written in the transaction
//! of the ledger change that causes it, at most once per (payment, type, refund or dispute)
//! thanks to a unique key, and delivered later by the notifier: per payment in order, each by
//! one instance at a time under a lease that another instance takes over when it lapses.

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::{json, Value};
use sqlx::FromRow;

use super::rows::{read_all, ByStatus, Chronology, Listed, OfPayment};
use super::sql::{payment_columns, AMOUNT_REFUNDED, CHARGED};
use super::stored::{Kind, NotificationStatus, Outbox};
use super::{column, Backend, Ledger, LedgerError};
use crate::money::Major;

impl Ledger {
    /// Records how this deployment writes notifications, for the command-line tools that
    /// change the ledger outside `serve`.
    pub async fn save_outbox(&self, outbox: Outbox) -> Result<(), LedgerError> {
        let value = outbox.text();
        let save = sqlx::query(
            "INSERT INTO settings (name, value) VALUES ('outbox', $1)
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(value);
        self.write(save).await.map(drop)
    }

    /// The same ledger, writing notifications as the service that serves it does (as it last
    /// recorded at its start; off when no service ever did).
    pub async fn with_saved_outbox(self) -> Result<Ledger, LedgerError> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE name = 'outbox'")
                .fetch_optional(&self.pool)
                .await?;
        let outbox = match value {
            Some(text) => Outbox::parse(&text)?,
            None => Outbox::default(),
        };
        Ok(self.with_outbox(outbox))
    }
}

#[derive(Debug, Clone, Serialize, PartialEq, FromRow)]
pub struct NotificationRow {
    pub id: String,
    pub payment_intent_id: String,
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub kind: Kind,
    pub status: NotificationStatus,
    pub attempts: i64,
    /// Unix seconds.
    pub created: i64,
    /// Unix milliseconds of the next try, for pending ones.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub delivered_at: Option<i64>,
    /// The JSON the platform receives, as sent.
    pub body: String,
}

impl Listed for NotificationRow {
    const SELECT: &'static str = "SELECT id, payment_intent_id, type, status, attempts, created, \
         next_attempt_at, last_error, delivered_at, body FROM notifications";
    const ORDER: Chronology = Chronology::Written;
}
impl ByStatus for NotificationRow {}
impl OfPayment for NotificationRow {}

/// Inside the transaction of a change: writes the notification it calls for, unless one was
/// written for it already (then nothing happens). `subject` is the refund's or dispute's id.
pub(super) async fn announce(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    outbox: Outbox,
    payment_intent_id: &str,
    kind: Kind,
    subject: Option<&str>,
) -> Result<(), sqlx::Error> {
    if !outbox.enabled {
        return Ok(());
    }
    // The amount is what the payment charged (after a partial capture, what was captured).
    static COLUMNS: LazyLock<String> = LazyLock::new(|| {
        format!("status, {CHARGED} AS amount, currency, metadata, late, next_action")
    });
    let Some(payment) = payment_columns(tx, payment_intent_id, &COLUMNS).await? else {
        return Ok(());
    };
    let refunded: i64 = sqlx::query_scalar(&AMOUNT_REFUNDED)
        .bind(payment_intent_id)
        .fetch_one(&mut **tx)
        .await?;
    let currency: String = column(&payment, "currency")?;
    let metadata: String = column(&payment, "metadata")?;
    let mut data = json!({
        "paymentIntentId": payment_intent_id,
        "status": column::<String>(&payment, "status")?,
        "amount": Major::of(column(&payment, "amount")?, &currency),
        "currency": currency,
        "metadata": serde_json::from_str::<Value>(&metadata).unwrap_or_else(|_| json!({})),
        "amountRefunded": Major::of(refunded, &currency),
        "late": column::<i64>(&payment, "late")? != 0,
    });
    match (kind, subject) {
        (Kind::Refunded | Kind::RefundFailed, Some(refund)) => {
            data["refundId"] = json!(refund);
            let row =
                sqlx::query("SELECT amount, currency, failure_reason FROM refunds WHERE id = $1")
                    .bind(refund)
                    .fetch_one(&mut **tx)
                    .await?;
            let currency: String = column(&row, "currency")?;
            data["refundAmount"] = json!(Major::of(column(&row, "amount")?, &currency));
            if kind == Kind::RefundFailed {
                data["failureReason"] = json!(column::<Option<String>>(&row, "failure_reason")?);
            }
        }
        (Kind::Disputed | Kind::DisputeClosed, Some(dispute)) => {
            data["disputeId"] = json!(dispute);
            if kind == Kind::DisputeClosed {
                let status: String =
                    sqlx::query_scalar("SELECT status FROM disputes WHERE id = $1")
                        .bind(dispute)
                        .fetch_one(&mut **tx)
                        .await?;
                data["disputeStatus"] = json!(status);
            }
        }
        (Kind::AwaitingPayment | Kind::PartiallyFunded, _) => {
            let next = column::<Option<String>>(&payment, "next_action")?
                .and_then(|text| serde_json::from_str::<Value>(&text).ok());
            data["nextAction"] = next.unwrap_or(Value::Null);
        }
        _ => {}
    }
    insert_notification(tx, payment_intent_id, kind, subject.unwrap_or(""), data).await
}

/// Inside the transaction of a change: the notification of `kind` about `subject` with `data`,
/// in the queue of `group` (a payment, or a customer for money without a payment), unless one
/// was written for it already.
pub(super) async fn insert_notification(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    group: &str,
    kind: Kind,
    subject: &str,
    data: Value,
) -> Result<(), sqlx::Error> {
    let id = format!("ntf_{:024x}", rand::random::<u128>() >> 32);
    let created = chrono::Utc::now().timestamp();
    let body = json!({"id": id, "type": kind.as_str(), "created": created, "data": data});
    sqlx::query(
        "INSERT INTO notifications (id, payment_intent_id, type, subject, body, created, status,
                                    next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (payment_intent_id, type, subject) DO NOTHING",
    )
    .bind(&id)
    .bind(group)
    .bind(kind)
    .bind(subject)
    .bind(body.to_string())
    .bind(created)
    .bind(NotificationStatus::Pending)
    .bind(created * 1000)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A notification taken for sending by this instance.
#[derive(Debug, Clone, FromRow)]
pub struct Leased {
    pub id: String,
    pub payment_intent_id: String,
    pub body: String,
    pub attempts: i64,
    /// Unix seconds.
    pub created: i64,
}

impl Ledger {
    /// Takes up to `limit` notifications that are due, the first pending one of each payment
    /// only (a later one waits for the earlier), under a lease of `lease_ms` for `owner`. A
    /// lapsed lease (its instance died) is taken over.
    pub async fn lease_due_notifications(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: i64,
    ) -> Result<Vec<Leased>, LedgerError> {
        let now = chrono::Utc::now().timestamp_millis();
        let eligible = "SELECT n.seq FROM notifications n
             WHERE n.status = $5 AND n.next_attempt_at <= $1
               AND (n.lease_until IS NULL OR n.lease_until < $1)
               AND NOT EXISTS (SELECT 1 FROM notifications e
                               WHERE e.payment_intent_id = n.payment_intent_id
                                 AND e.status = $5 AND e.seq < n.seq)
             ORDER BY n.seq LIMIT $2";
        // PostgreSQL: instances skip each other's rows instead of queueing on them.
        let lock = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE notifications SET lease_owner = $3, lease_until = $4
             WHERE seq IN ({eligible}{lock})
             RETURNING id, payment_intent_id, body, attempts, created"
        );
        let result = sqlx::query(&sql)
            .bind(now)
            .bind(limit)
            .bind(owner)
            .bind(now + lease_ms)
            .bind(NotificationStatus::Pending)
            .fetch_all(&self.pool)
            .await;
        read_all(&self.watch(result.map_err(LedgerError::from))?)
    }

    /// Records the outcome of one try by `owner`: delivered, retried at `retry_at` (Unix ms),
    /// or failed for good. Nothing happens when the lease was lost meanwhile.
    pub async fn settle_notification(
        &self,
        id: &str,
        owner: &str,
        outcome: Delivery,
    ) -> Result<bool, LedgerError> {
        let now = chrono::Utc::now();
        let query = match &outcome {
            Delivery::Delivered => sqlx::query(
                "UPDATE notifications SET status = $4, attempts = attempts + 1,
                        delivered_at = $3, last_error = NULL, lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(now.timestamp())
            .bind(NotificationStatus::Delivered),
            Delivery::Retry { at, error } => sqlx::query(
                "UPDATE notifications SET attempts = attempts + 1, next_attempt_at = $3,
                        last_error = $4, lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(*at)
            .bind(error.clone()),
            Delivery::Failed { error } => sqlx::query(
                "UPDATE notifications SET status = $4, attempts = attempts + 1,
                        last_error = $3, lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2",
            )
            .bind(id)
            .bind(owner)
            .bind(error.clone())
            .bind(NotificationStatus::Failed),
        };
        Ok(self.write(query).await? == 1)
    }

    /// Puts failed notifications (one, or all of them) back to pending, due now; how many.
    pub async fn retry_notifications(&self, id: Option<&str>) -> Result<u64, LedgerError> {
        let now = chrono::Utc::now().timestamp_millis();
        let update = sqlx::query(
            "UPDATE notifications SET status = $3, next_attempt_at = $2,
                    lease_owner = NULL, lease_until = NULL
             WHERE status = $4 AND ($1 IS NULL OR id = $1)",
        )
        .bind(id)
        .bind(now)
        .bind(NotificationStatus::Pending)
        .bind(NotificationStatus::Failed);
        self.write(update).await
    }

    /// How many notifications are pending, and the age in seconds of the oldest.
    pub async fn pending_notifications(&self) -> Result<(i64, i64), LedgerError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, CAST(COALESCE(MIN(created), 0) AS BIGINT) AS oldest
             FROM notifications WHERE status = $1",
        )
        .bind(NotificationStatus::Pending)
        .fetch_one(&self.pool)
        .await?;
        let (n, oldest): (i64, i64) = (column(&row, "n")?, column(&row, "oldest")?);
        let age = match n {
            0 => 0,
            _ => (chrono::Utc::now().timestamp() - oldest).max(0),
        };
        Ok((n, age))
    }
}

/// The outcome of one try to deliver a notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    Retry { at: i64, error: String },
    Failed { error: String },
}
