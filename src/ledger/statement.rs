//! What a statement reads (docs/contract.md §17): each succeeded payment of a period with what
//! its balance transactions add up to, in one query streamed row by row, so that a statement
//! over any number of payments is read in bounded memory.

use futures_util::TryStreamExt;
use serde::Serialize;
use std::sync::LazyLock;

use super::sql::list;
use super::{Backend, Ledger, LedgerError};
use crate::stripe::types::RefundStatus;

/// One payment and its figures. Those of Stripe are in the settlement currency, and `None`
/// while none of its balance transactions has been read.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StatementRow {
    pub id: String,
    pub created: i64,
    pub status: String,
    pub organizer_id: Option<String>,
    /// JSON object.
    pub metadata: String,
    pub currency: String,
    pub amount: i64,
    pub amount_refunded: i64,
    /// `destination`, `direct`, or `None` (the platform's own payment).
    pub charge_type: Option<String>,
    /// How many of its charge's transactions the ledger has (0: its figures are not known).
    pub charges: i64,
    pub settlement_currency: Option<String>,
    pub exchange_rate: Option<String>,
    pub payout_id: Option<String>,
    pub payout_arrival_date: Option<i64>,
    #[sqlx(flatten)]
    pub figures: Figures,
    /// Every net of its transactions on the account the charge settled on.
    pub net_all: i64,
    /// What reached the organiser of a destination charge: the transfer, less what was
    /// reversed and the platform's fee (and plus the fee given back).
    pub net_destination: i64,
    /// The nets already in a payout that was paid.
    pub paid_out: i64,
}

/// What a payment's balance transactions on its charge's account come to, by kind, in the
/// settlement currency; a statement adds payments' figures up into its totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Figures {
    pub gross: i64,
    pub refunds: i64,
    pub disputes: i64,
    pub dispute_fees: i64,
    pub stripe_fees: i64,
    pub application_fees: i64,
}

impl std::ops::AddAssign for Figures {
    fn add_assign(&mut self, other: Figures) {
        self.gross += other.gross;
        self.refunds += other.refunds;
        self.disputes += other.disputes;
        self.dispute_fees += other.dispute_fees;
        self.stripe_fees += other.stripe_fees;
        self.application_fees += other.application_fees;
    }
}

/// The query: one pass over the period's payments, each joined to its transactions on the
/// account its charge settled on (a direct charge's connected account, else the platform)
/// through their index, so that its cost follows the period, not the whole ledger. Grouped in
/// the order it is listed in, so that one sort serves both.
static STATEMENT: LazyLock<String> = LazyLock::new(|| {
    let sum = |expr: &str| format!("CAST(COALESCE(SUM({expr}), 0) AS BIGINT)");
    let when =
        |types: &str, then: &str| format!("CASE WHEN t.type IN {types} THEN {then} ELSE 0 END");
    let charge = "('charge', 'payment')";
    let of_charge = |column: &str| format!("MAX(CASE WHEN t.type IN {charge} THEN {column} END)");
    let refund = "('refund', 'refund_failure', 'payment_refund', 'payment_failure_refund')";
    let dispute = "CASE WHEN t.type = 'adjustment' AND t.reporting_category IN ('dispute', \
                   'dispute_reversal') THEN {} ELSE 0 END";
    let fee_lines = "CASE t.type WHEN 'application_fee' THEN t.amount \
                     WHEN 'application_fee_refund' THEN \
                       (CASE WHEN t.account = '' THEN t.amount ELSE -t.amount END) ELSE 0 END";
    let organiser = "('transfer', 'transfer_refund', 'application_fee', 'application_fee_refund')";
    format!(
        "SELECT p.id, p.created, p.status, p.organizer_id, p.metadata, p.currency, p.amount,
                p.charge_type,
                CAST((SELECT COALESCE(SUM(r.amount), 0) FROM refunds r
                      WHERE r.payment_intent_id = p.id AND r.status IN {counted}) AS BIGINT)
                    AS amount_refunded,
                {charges} AS charges,
                {settlement_currency} AS settlement_currency,
                {exchange_rate} AS exchange_rate,
                {payout_id} AS payout_id,
                {payout_arrival_date} AS payout_arrival_date,
                {gross} AS gross, {refunds} AS refunds, {disputes} AS disputes,
                {dispute_fees} AS dispute_fees, {stripe_fees} AS stripe_fees,
                {application_fees} AS application_fees, {net_all} AS net_all,
                {net_destination} AS net_destination, {paid_out} AS paid_out
         FROM payments p
         LEFT JOIN balance_transactions t
                ON t.payment_intent_id = p.id AND t.account = COALESCE(p.stripe_account, '')
         LEFT JOIN payouts po ON po.id = t.payout_id
         WHERE p.status = 'succeeded' AND p.created >= $1 AND p.created < $2
         GROUP BY p.created, p.id
         ORDER BY p.created, p.id",
        counted = list(RefundStatus::COUNTED),
        charges = sum(&when(charge, "1")),
        settlement_currency = of_charge("t.currency"),
        exchange_rate = of_charge("t.exchange_rate"),
        payout_id = of_charge("t.payout_id"),
        payout_arrival_date = of_charge("po.arrival_date"),
        gross = sum(&when(charge, "t.amount")),
        refunds = sum(&when(refund, "-t.amount")),
        disputes = sum(&dispute.replace("{}", "-t.amount")),
        dispute_fees = sum(&dispute.replace("{}", "t.fee")),
        stripe_fees = sum(&when(
            "('charge', 'payment', 'payment_failure_refund')",
            "t.stripe_fee + t.tax"
        )),
        application_fees = sum(&format!("t.application_fee + {fee_lines}")),
        net_all = sum("t.net"),
        net_destination = sum(&when(organiser, "-t.net")),
        paid_out = sum("CASE WHEN po.status = 'paid' THEN t.net ELSE 0 END"),
    )
});

impl Ledger {
    /// Each succeeded payment created in `[from, to)` (Unix seconds), oldest first, handed to
    /// `each` as it is read.
    pub async fn statement_rows<E>(
        &self,
        from: i64,
        to: i64,
        mut each: impl FnMut(StatementRow) -> Result<(), E>,
    ) -> Result<Result<(), E>, LedgerError> {
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            // PostgreSQL's JIT compiles this one-off aggregate for longer than it then runs
            // (0.6 s of 1.4 over 100,000 payments).
            sqlx::query("SET LOCAL jit = off").execute(&mut *tx).await?;
        }
        let read = {
            let mut rows = sqlx::query_as::<_, StatementRow>(&STATEMENT)
                .bind(from)
                .bind(to)
                .fetch(&mut *tx);
            loop {
                match rows.try_next().await? {
                    None => break Ok(()),
                    Some(row) => {
                        if let Err(e) = each(row) {
                            break Err(e);
                        }
                    }
                }
            }
        };
        tx.commit().await?;
        Ok(read)
    }
}
