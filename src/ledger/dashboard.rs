//! Read queries for the operators' dashboard: payments chosen by status and by metadata
//! `KEY=VALUE`, their totals per currency and their count per day. They only read.

use serde::Serialize;
use sqlx::FromRow;

use super::rows::{Listed, Statement};
use super::sql::{list, literal};
use super::{
    column, ActionRow, Backend, ConnectPayment, DisputeRow, EventRow, Hold, Ledger, LedgerError,
    NotificationRow, PaymentRow, RefundRow, ReversalRow,
};
use crate::stripe::types::{PaymentIntentStatus, RefundStatus};

/// Everything the ledger knows of one payment, as the dashboard and `payments show` present it.
#[derive(Debug, Clone)]
pub struct PaymentDetail {
    pub payment: PaymentRow,
    /// Minor units refunded or being refunded.
    pub refunded: i64,
    /// Its seat hold, if it has one.
    pub hold: Option<Hold>,
    pub events: Vec<EventRow>,
    pub refunds: Vec<RefundRow>,
    pub disputes: Vec<DisputeRow>,
    pub notifications: Vec<NotificationRow>,
    /// A payment made for an organiser (Stripe Connect): its organiser, fee and transfer, what
    /// was reversed of the transfer, and the Stripe calls its disputes called for.
    pub connect: Option<ConnectPayment>,
    pub reversals: Vec<ReversalRow>,
    pub actions: Vec<ActionRow>,
}

impl Ledger {
    /// The payment `id` with its refunds, disputes, events, notifications and hold, or `None`
    /// when the ledger has no such payment.
    pub async fn payment_detail(&self, id: &str) -> Result<Option<PaymentDetail>, LedgerError> {
        let Some(payment) = self.payment(id).await? else {
            return Ok(None);
        };
        Ok(Some(PaymentDetail {
            payment,
            refunded: self.amount_refunded(id).await?,
            hold: self.hold_of(id).await?,
            events: self.of_payment(id).await?,
            refunds: self.of_payment(id).await?,
            disputes: self.of_payment(id).await?,
            notifications: self.of_payment(id).await?,
            connect: self
                .connect_of(id)
                .await?
                .filter(|c| c.organizer_id.is_some() || c.charge_type.is_some()),
            reversals: self.of_payment(id).await?,
            actions: self.of_payment(id).await?,
        }))
    }
}

/// Which payments a dashboard view covers. Empty means all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentFilter {
    pub status: Option<String>,
    /// Every pair must be in the payment's metadata.
    pub metadata: Vec<(String, String)>,
    /// The organiser it was made for (Stripe Connect).
    pub organizer: Option<String>,
}

/// One currency's payments under a filter; amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct CurrencyTotal {
    pub currency: String,
    pub payments: i64,
    pub succeeded: i64,
    /// What the succeeded ones charged (after a partial capture, what was captured).
    pub succeeded_amount: i64,
    /// Pending and succeeded refunds of those payments, as `amount_refunded` counts them.
    pub refunded_amount: i64,
}

/// The payments created on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, FromRow)]
pub struct DayCount {
    /// Days since the Unix epoch.
    pub day: i64,
    pub payments: i64,
    pub succeeded: i64,
}

/// A `WHERE` clause and the text values it binds, numbered from `$1`.
pub(super) struct Condition {
    pub sql: String,
    pub binds: Vec<String>,
}

impl Condition {
    /// `sql`, a statement that holds this condition, with the condition's values bound; the
    /// statement's own values, numbered after them, are bound next.
    pub fn statement<'q>(&'q self, sql: &'q str) -> Statement<'q> {
        let statement = sqlx::query(sql);
        self.binds
            .iter()
            .fold(statement, |s, value| s.bind(value.as_str()))
    }
}

impl Ledger {
    /// `filter` as SQL over the payments table, its columns prefixed with `table.` when given.
    pub(super) fn condition(&self, filter: &PaymentFilter, table: &str) -> Condition {
        let col = |name: &str| {
            if table.is_empty() {
                name.to_string()
            } else {
                format!("{table}.{name}")
            }
        };
        let mut sql = String::from("1 = 1");
        let mut binds = Vec::new();
        if let Some(status) = &filter.status {
            binds.push(status.clone());
            sql.push_str(&format!(" AND {} = ${}", col("status"), binds.len()));
        }
        if let Some(organizer) = &filter.organizer {
            binds.push(organizer.clone());
            sql.push_str(&format!(" AND {} = ${}", col("organizer_id"), binds.len()));
        }
        for (key, value) in &filter.metadata {
            let metadata = col("metadata");
            match self.backend {
                Backend::Sqlite => {
                    // json_each compares keys as text: a JSON path cannot name every key
                    // (SQLite reads no escaped quote inside a quoted path label).
                    binds.push(key.clone());
                    sql.push_str(&format!(
                        " AND EXISTS (SELECT 1 FROM json_each({metadata}) AS m
                                      WHERE m.key = ${} AND m.value = ${})",
                        binds.len(),
                        binds.len() + 1
                    ));
                }
                Backend::Postgres => {
                    binds.push(key.clone());
                    sql.push_str(&format!(
                        " AND ({metadata}::jsonb ->> ${}) = ${}",
                        binds.len(),
                        binds.len() + 1
                    ));
                }
            }
            binds.push(value.clone());
        }
        Condition { sql, binds }
    }

    /// The newest `limit` payments under `filter`, newest first, and how many there are in all.
    pub async fn dashboard_payments(
        &self,
        filter: &PaymentFilter,
        limit: i64,
    ) -> Result<(Vec<PaymentRow>, i64), LedgerError> {
        let c = self.condition(filter, "");
        let sql = format!(
            "{} WHERE {} ORDER BY {} LIMIT ${}",
            PaymentRow::SELECT,
            c.sql,
            PaymentRow::ORDER.newest_first(),
            c.binds.len() + 1
        );
        let payments = self.fetch_all(c.statement(&sql).bind(limit)).await?;

        let sql = format!("SELECT COUNT(*) AS n FROM payments WHERE {}", c.sql);
        let count = c.statement(&sql).fetch_one(&self.pool).await?;
        Ok((payments, column(&count, "n")?))
    }

    /// Per currency (alphabetical): how many payments `filter` covers, how many succeeded and
    /// for how much, and what was refunded of them.
    pub async fn dashboard_totals(
        &self,
        filter: &PaymentFilter,
    ) -> Result<Vec<CurrencyTotal>, LedgerError> {
        let c = self.condition(filter, "p");
        let succeeded = literal(&PaymentIntentStatus::Succeeded);
        let sql = format!(
            "SELECT p.currency AS currency, COUNT(*) AS payments,
                    CAST(SUM(CASE WHEN p.status = {succeeded} THEN 1 ELSE 0 END) AS BIGINT)
                        AS succeeded,
                    CAST(SUM(CASE WHEN p.status = {succeeded}
                                  THEN COALESCE(p.amount_received, p.amount) ELSE 0 END) AS BIGINT)
                        AS succeeded_amount,
                    CAST(COALESCE(SUM(r.refunded), 0) AS BIGINT) AS refunded_amount
             FROM payments p
             LEFT JOIN (SELECT payment_intent_id, SUM(amount) AS refunded FROM refunds
                        WHERE status IN {counted} GROUP BY payment_intent_id) r
                    ON r.payment_intent_id = p.id
             WHERE {condition}
             GROUP BY p.currency ORDER BY p.currency",
            counted = list(RefundStatus::COUNTED),
            condition = c.sql
        );
        self.fetch_all(c.statement(&sql)).await
    }

    /// Payments under `filter` created from `since` (Unix seconds) on, counted per UTC day,
    /// oldest day first; days without payments are left out.
    pub async fn dashboard_days(
        &self,
        filter: &PaymentFilter,
        since: i64,
    ) -> Result<Vec<DayCount>, LedgerError> {
        let c = self.condition(filter, "");
        let succeeded = literal(&PaymentIntentStatus::Succeeded);
        let sql = format!(
            "SELECT created / 86400 AS day, COUNT(*) AS payments,
                    CAST(SUM(CASE WHEN status = {succeeded} THEN 1 ELSE 0 END) AS BIGINT)
                        AS succeeded
             FROM payments WHERE {} AND created >= ${}
             GROUP BY created / 86400 ORDER BY day",
            c.sql,
            c.binds.len() + 1
        );
        self.fetch_all(c.statement(&sql).bind(since)).await
    }
}
