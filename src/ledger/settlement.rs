//! Stripe's balance transactions (docs/contract.md §17), as the settlement round lists them:
//! each kept once by its id, tied to its payment where its source says which, and the listing's
//! place per account saved in the same transaction as the page it read, so that a round killed
//! anywhere goes on from the last page it saved.

use serde::Serialize;

use super::rows::{Chronology, Listed, OfPayment};
use super::{now_iso, Ledger, LedgerError};
use crate::stripe::balance::{BalanceTransaction, Entry, Link};

/// The ledger's name for the platform's own account.
pub const PLATFORM: &str = "";

/// Where an account's listing stands.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Cursor {
    /// Unix seconds the next listing starts from.
    pub created_gte: i64,
    /// A listing under way: the `created[gte]` it uses, the id its last saved page ended
    /// with, and when it began.
    pub under_way: Option<UnderWay>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnderWay {
    pub from: i64,
    pub after: String,
    pub started: i64,
}

/// What saving a page does to the account's cursor.
#[derive(Debug, Clone)]
pub enum Progress {
    /// More pages follow: the listing goes on after `after`.
    Page(UnderWay),
    /// The listing is done: the next one starts from `created_gte`.
    Done { created_gte: i64 },
}

/// `created_gte, listing_from, after, started`.
type CursorColumns = (i64, Option<i64>, Option<String>, Option<i64>);

impl Ledger {
    /// The account's cursor (`""` the platform), if it was ever listed.
    pub async fn settlement_cursor(&self, account: &str) -> Result<Option<Cursor>, LedgerError> {
        let row: Option<CursorColumns> = sqlx::query_as(
            "SELECT created_gte, listing_from, after, started FROM settlement_cursors
             WHERE account = $1",
        )
        .bind(account)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(created_gte, from, after, started)| Cursor {
            created_gte,
            under_way: match (from, after, started) {
                (Some(from), Some(after), Some(started)) => Some(UnderWay {
                    from,
                    after,
                    started,
                }),
                _ => None,
            },
        }))
    }

    /// Keeps `txns` of `account` (`""` the platform) and moves the account's cursor as
    /// `progress` says, in one transaction.
    pub async fn record_balance_transactions(
        &self,
        account: &str,
        txns: &[BalanceTransaction],
        progress: &Progress,
    ) -> Result<(), LedgerError> {
        let result = async {
            let now = now_iso();
            let mut tx = self.pool.begin().await?;
            keep(&mut tx, account, txns, None, &now).await?;
            save_progress(&mut tx, account, progress, &now).await?;
            tx.commit().await?;
            Ok(())
        };
        self.watch(result.await)
    }

    /// How many balance transactions the ledger keeps (of every account).
    pub async fn balance_transaction_count(&self) -> Result<i64, LedgerError> {
        Ok(
            sqlx::query_scalar("SELECT COUNT(*) FROM balance_transactions")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// What each of the newest `limit` payouts settled of each payment (its items' nets, its own
    /// transaction left out), in one read.
    pub async fn payout_nets(&self, limit: i64) -> Result<Vec<PayoutNet>, LedgerError> {
        let sql = "SELECT payout_id, payment_intent_id, CAST(SUM(net) AS BIGINT) AS net
                   FROM balance_transactions
                   WHERE payout_id IN (SELECT id FROM payouts
                                       ORDER BY created DESC, id DESC LIMIT $1)
                     AND payment_intent_id IS NOT NULL
                     AND NOT (type = 'payout' AND source = payout_id)
                   GROUP BY payout_id, payment_intent_id";
        self.fetch_all(sqlx::query(sql).bind(limit)).await
    }
}

/// What a payout settled of one payment: the nets of the payment's items in it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PayoutNet {
    pub payout_id: String,
    pub payment_intent_id: String,
    pub net: i64,
}

/// A balance transaction as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct BalanceRow {
    pub id: String,
    pub account: String,
    pub source: Option<String>,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub entry: Entry,
    pub payment_intent_id: Option<String>,
    pub payout_id: Option<String>,
}

impl Listed for BalanceRow {
    const SELECT: &'static str =
        "SELECT id, account, source, type, reporting_category, amount, fee, stripe_fee,
                application_fee, tax, net, currency, exchange_rate, available_on, created,
                payment_intent_id, payout_id
         FROM balance_transactions";
    const ORDER: Chronology = Chronology::Created;
}
impl OfPayment for BalanceRow {}

/// The payment a transaction belongs to, from what its source named.
async fn payment_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    link: Option<&Link>,
) -> Result<Option<String>, sqlx::Error> {
    let (sql, id) = match link {
        None => return Ok(None),
        Some(Link::PaymentIntent(id)) => return Ok(Some(id.clone())),
        Some(Link::Charge(id)) => ("SELECT payment_intent_id FROM charges WHERE id = $1", id),
        Some(Link::ApplicationFee(id)) => {
            ("SELECT id FROM payments WHERE application_fee_id = $1", id)
        }
        Some(Link::Transfer(id)) => ("SELECT id FROM payments WHERE transfer_id = $1", id),
    };
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

/// Inside `tx`: keeps `txns` of `account`, paid out by `payout` when given, each tied to the
/// payment its source names. A transaction seen before keeps the payment and payout it was tied
/// to unless this says more.
pub(super) async fn keep(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account: &str,
    txns: &[BalanceTransaction],
    payout: Option<&str>,
    now: &str,
) -> Result<(), sqlx::Error> {
    for txn in txns {
        let payment = payment_of(tx, txn.link.as_ref()).await?;
        upsert(tx, account, txn, payment.as_deref(), payout, now).await?;
    }
    Ok(())
}

async fn upsert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account: &str,
    txn: &BalanceTransaction,
    payment: Option<&str>,
    payout: Option<&str>,
    now: &str,
) -> Result<(), sqlx::Error> {
    let entry = &txn.entry;
    sqlx::query(
        "INSERT INTO balance_transactions (id, account, source, type, reporting_category, amount,
             fee, stripe_fee, application_fee, tax, net, currency, exchange_rate, available_on,
             created, payment_intent_id, payout_id, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
         ON CONFLICT (id) DO UPDATE SET
             fee = excluded.fee, stripe_fee = excluded.stripe_fee,
             application_fee = excluded.application_fee, tax = excluded.tax, net = excluded.net,
             available_on = excluded.available_on,
             payment_intent_id = COALESCE(excluded.payment_intent_id,
                                          balance_transactions.payment_intent_id),
             payout_id = COALESCE(excluded.payout_id, balance_transactions.payout_id),
             updated_at = excluded.updated_at",
    )
    .bind(&txn.id)
    .bind(account)
    .bind(&txn.source)
    .bind(&entry.kind)
    .bind(&entry.reporting_category)
    .bind(entry.amount)
    .bind(entry.fee)
    .bind(entry.stripe_fee)
    .bind(entry.application_fee)
    .bind(entry.tax)
    .bind(entry.net)
    .bind(&entry.currency)
    .bind(&entry.exchange_rate)
    .bind(entry.available_on)
    .bind(entry.created)
    .bind(payment)
    .bind(payout)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn save_progress(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account: &str,
    progress: &Progress,
    now: &str,
) -> Result<(), sqlx::Error> {
    let (created_gte, under_way) = match progress {
        Progress::Done { created_gte } => (Some(*created_gte), None),
        Progress::Page(under_way) => (None, Some(under_way)),
    };
    // A listing under way leaves the next start as it was (the listing's own start, for an
    // account listed for the first time).
    sqlx::query(
        "INSERT INTO settlement_cursors (account, created_gte, listing_from, after, started,
                                         updated_at)
         VALUES ($1, COALESCE($2, $3), $3, $4, $5, $6)
         ON CONFLICT (account) DO UPDATE SET
             created_gte = COALESCE($2, settlement_cursors.created_gte),
             listing_from = $3, after = $4, started = $5, updated_at = $6",
    )
    .bind(account)
    .bind(created_gte)
    .bind(under_way.map(|u| u.from))
    .bind(under_way.map(|u| u.after.clone()))
    .bind(under_way.map(|u| u.started))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
