//! Payouts (docs/contract.md §17): kept from their events (the platform's, and connected
//! accounts' under Connect) by the rules every object's events follow: recorded once, the newest
//! information wins, a failed or canceled payout stays so. An automatic payout whose
//! reconciliation Stripe has completed is itemised once, by the settlement round: its items
//! are tied to it and checked against its amount.

use std::sync::LazyLock;

use serde::Serialize;

use super::rows::{ByStatus, Chronology, Listed};
use super::settlement::keep;
use super::sql::{Source, DISCONNECTED};
use super::stored::Outcome;
use super::{now_iso, Ledger, LedgerError};
use crate::stripe::balance::{BalanceTransaction, Payout};

/// What a payout's items came to, once it was itemised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Itemised {
    /// Its items, its own `payout` transaction left out.
    pub items: i64,
    /// Their nets added up.
    pub items_sum: i64,
    /// The payout's amount less that sum: 0 when it adds up.
    pub mismatch: i64,
}

/// A payout as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PayoutRow {
    pub id: String,
    /// `""`: the platform's.
    pub account: String,
    pub amount: i64,
    pub currency: String,
    pub arrival_date: i64,
    pub status: String,
    #[sqlx(try_from = "i64")]
    pub automatic: Flag,
    pub reconciliation_status: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    pub items: Option<i64>,
    pub items_sum: Option<i64>,
    pub mismatch: Option<i64>,
    pub created: i64,
}

/// A 0/1 column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Flag(pub bool);

impl From<i64> for Flag {
    fn from(n: i64) -> Flag {
        Flag(n != 0)
    }
}

impl Listed for PayoutRow {
    const SELECT: &'static str =
        "SELECT id, account, amount, currency, arrival_date, status, automatic,
                reconciliation_status, failure_code, failure_message, items, items_sum, mismatch,
                created
         FROM payouts";
    const ORDER: Chronology = Chronology::Created;
}
impl ByStatus for PayoutRow {}

impl PayoutRow {
    /// Whether its items can be known: Stripe itemises automatic payouts only.
    pub fn itemisable(&self) -> bool {
        self.automatic.0
    }

    /// Whether its items add up to its amount; `None` until it is itemised (or when it cannot
    /// be).
    pub fn adds_up(&self) -> Option<bool> {
        self.mismatch.map(|m| m == 0)
    }
}

/// How far along a payout's status is, as SQL over `{column}`: a payout only moves forward
/// (`pending`, `in_transit`, `paid`, then `failed` or `canceled`; Stripe may report a paid
/// payout failed), whatever order its events arrive in, even within one second.
fn rank(column: &str) -> String {
    format!(
        "(CASE {column} WHEN 'pending' THEN 0 WHEN 'in_transit' THEN 1 WHEN 'paid' THEN 2 \
         WHEN 'failed' THEN 3 WHEN 'canceled' THEN 3 ELSE 0 END)"
    )
}

/// A payout's event, inside the event's transaction.
pub(super) async fn apply_payout(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    payout: &Payout,
    account: Option<&str>,
    source: Source<'_>,
) -> Result<Outcome, sqlx::Error> {
    // A payout moves only forward, and a reconciliation once completed stays completed.
    static UPSERT: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO payouts (id, account, amount, currency, arrival_date, status, automatic,
                 reconciliation_status, failure_code, failure_message, created, updated_at,
                 status_at, last_event_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (id) DO UPDATE SET
                 amount = excluded.amount, arrival_date = excluded.arrival_date,
                 status = excluded.status,
                 reconciliation_status = CASE WHEN payouts.reconciliation_status = 'completed'
                     THEN payouts.reconciliation_status ELSE excluded.reconciliation_status END,
                 failure_code = COALESCE(excluded.failure_code, payouts.failure_code),
                 failure_message = COALESCE(excluded.failure_message, payouts.failure_message),
                 updated_at = excluded.updated_at, status_at = excluded.status_at,
                 last_event_id = excluded.last_event_id
             WHERE {} >= {}",
            rank("excluded.status"),
            rank("payouts.status")
        )
    });
    let moved = sqlx::query(&UPSERT)
        .bind(&payout.id)
        .bind(account.unwrap_or(super::settlement::PLATFORM))
        .bind(payout.amount)
        .bind(payout.currency.to_ascii_lowercase())
        .bind(payout.arrival_date)
        .bind(&payout.status)
        .bind(i64::from(payout.automatic))
        .bind(&payout.reconciliation_status)
        .bind(&payout.failure_code)
        .bind(&payout.failure_message)
        .bind(payout.created)
        .bind(now_iso())
        .bind(source.at)
        .bind(source.event_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if moved > 0 {
        return Ok(Outcome::Applied);
    }
    // Behind what the ledger has: its reconciliation may still be news.
    if payout.reconciliation_status == "completed" {
        let completed = sqlx::query(
            "UPDATE payouts SET reconciliation_status = 'completed', updated_at = $2
             WHERE id = $1 AND reconciliation_status <> 'completed'",
        )
        .bind(&payout.id)
        .bind(now_iso())
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if completed > 0 {
            return Ok(Outcome::Applied);
        }
    }
    Ok(Outcome::Ignored)
}

impl Ledger {
    pub async fn payout(&self, id: &str) -> Result<Option<PayoutRow>, LedgerError> {
        let sql = format!("{} WHERE id = $1", PayoutRow::SELECT);
        self.fetch_optional(sqlx::query(&sql).bind(id)).await
    }

    /// Automatic payouts whose reconciliation is complete and that are not itemised yet.
    pub async fn payouts_to_itemise(
        &self,
        after: Option<&PayoutRow>,
        limit: i64,
    ) -> Result<Vec<PayoutRow>, LedgerError> {
        static DUE: LazyLock<String> = LazyLock::new(|| {
            format!(
                "{} WHERE automatic = 1 AND reconciliation_status = 'completed' AND items IS NULL
                   AND account NOT IN {DISCONNECTED}
                   AND (created > $2 OR (created = $2 AND id > $3))
                 ORDER BY created, id LIMIT $1",
                PayoutRow::SELECT
            )
        });
        let (created, id) = after.map_or((i64::MIN, ""), |p| (p.created, p.id.as_str()));
        self.fetch_all(sqlx::query(&DUE).bind(limit).bind(created).bind(id))
            .await
    }

    /// Keeps what Stripe listed for the payout `payout` (its items and its own transaction),
    /// ties them to it, and notes what they came to, in one transaction.
    pub async fn record_itemisation(
        &self,
        payout: &PayoutRow,
        txns: &[BalanceTransaction],
        itemised: Itemised,
    ) -> Result<(), LedgerError> {
        let result = async {
            let now = now_iso();
            let mut tx = self.pool.begin().await?;
            keep(&mut tx, &payout.account, txns, Some(&payout.id), &now).await?;
            sqlx::query(
                "UPDATE payouts SET items = $2, items_sum = $3, mismatch = $4, updated_at = $5
                 WHERE id = $1",
            )
            .bind(&payout.id)
            .bind(itemised.items)
            .bind(itemised.items_sum)
            .bind(itemised.mismatch)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        };
        self.watch(result.await.map_err(LedgerError::from))
    }
}

/// What a payout's listed transactions come to: its items are every one but its own `payout`
/// transaction.
pub fn itemise(payout: &PayoutRow, txns: &[BalanceTransaction]) -> Itemised {
    let items: Vec<&BalanceTransaction> = txns
        .iter()
        .filter(|t| !(t.entry.kind == "payout" && t.source.as_deref() == Some(payout.id.as_str())))
        .collect();
    let items_sum = items.iter().map(|t| t.entry.net).sum();
    Itemised {
        items: items.len() as i64,
        items_sum,
        mismatch: payout.amount - items_sum,
    }
}
