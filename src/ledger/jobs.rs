//! Bulk refund jobs (docs/contract.md §9, "Refunding a whole event"): a job and one row per
//! payment it covers, so that a run interrupted in any way (Ctrl-C, `kill -9`, a deploy) is
//! resumed by the next one.

use serde::Serialize;
use sqlx::FromRow;

use super::dashboard::PaymentFilter;
use super::rows::Listed;
use super::stored::ItemState;
use super::{now_iso, Ledger, LedgerError, PaymentRow};
use crate::stripe::types::PaymentIntentStatus;

#[derive(Debug, Clone, Serialize, PartialEq, FromRow)]
pub struct Job {
    pub id: String,
    /// `KEY=VALUE` pairs, sorted, comma-separated (after `organizer:ID` for an organiser's).
    pub selector: String,
    pub reason: String,
    pub created_at: String,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq, FromRow)]
pub struct JobItem {
    pub payment_intent_id: String,
    pub state: ItemState,
    /// Minor units refunded (or asked for), once known.
    pub amount: Option<i64>,
    pub currency: String,
    pub refund_id: Option<String>,
    pub error: Option<String>,
    /// Refusals so far: each new try after a refusal is a new request at Stripe.
    pub attempts: i64,
}

const JOB_COLUMNS: &str = "SELECT id, selector, reason, created_at, finished_at FROM refund_jobs";
const ITEM_COLUMNS: &str = "SELECT payment_intent_id, state, amount, currency, refund_id, error, \
     attempts FROM refund_job_items";

impl Ledger {
    /// Succeeded payments whose metadata has every `KEY=VALUE` of `pairs` (and made for
    /// `organizer`, when given), oldest first.
    pub async fn succeeded_payments_with(
        &self,
        pairs: &[(String, String)],
        organizer: Option<&str>,
    ) -> Result<Vec<PaymentRow>, LedgerError> {
        let filter = PaymentFilter {
            status: Some(PaymentIntentStatus::Succeeded.as_str().to_string()),
            metadata: pairs.to_vec(),
            organizer: organizer.map(str::to_string),
        };
        let c = self.condition(&filter, "");
        let sql = format!(
            "{} WHERE {} ORDER BY {}",
            PaymentRow::SELECT,
            c.sql,
            PaymentRow::ORDER.oldest_first()
        );
        self.fetch_all(c.statement(&sql)).await
    }

    /// The unfinished job for `selector`, if there is one.
    pub async fn unfinished_job(&self, selector: &str) -> Result<Option<Job>, LedgerError> {
        let sql = format!(
            "{JOB_COLUMNS} WHERE selector = $1 AND finished_at IS NULL ORDER BY created_at LIMIT 1"
        );
        self.fetch_optional(sqlx::query(&sql).bind(selector)).await
    }

    pub async fn create_job(&self, selector: &str, reason: &str) -> Result<Job, LedgerError> {
        let job = Job {
            id: format!("job_{:024x}", rand::random::<u128>() >> 32),
            selector: selector.to_string(),
            reason: reason.to_string(),
            created_at: now_iso(),
            finished_at: None,
        };
        let insert = sqlx::query(
            "INSERT INTO refund_jobs (id, selector, reason, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&job.id)
        .bind(&job.selector)
        .bind(&job.reason)
        .bind(&job.created_at);
        self.write(insert).await?;
        Ok(job)
    }

    /// Adds the payments a job does not cover yet, as pending.
    pub async fn add_job_items(
        &self,
        job_id: &str,
        payments: &[PaymentRow],
    ) -> Result<u64, LedgerError> {
        let result = async {
            let mut tx = self.pool.begin().await?;
            let mut added = 0;
            for payment in payments {
                added += sqlx::query(
                    "INSERT INTO refund_job_items (job_id, payment_intent_id, state, currency,
                                                   updated_at)
                     VALUES ($1, $2, $5, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(job_id)
                .bind(&payment.id)
                .bind(&payment.currency)
                .bind(now_iso())
                .bind(ItemState::Pending)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            tx.commit().await?;
            Ok(added)
        };
        let result = result.await;
        self.watch(result)
    }

    /// A job's payments, in the order they are worked through.
    pub async fn job_items(&self, job_id: &str) -> Result<Vec<JobItem>, LedgerError> {
        let sql = format!("{ITEM_COLUMNS} WHERE job_id = $1 ORDER BY payment_intent_id");
        self.fetch_all(sqlx::query(&sql).bind(job_id)).await
    }

    /// Saves where a job's payment stands.
    pub async fn update_job_item(&self, job_id: &str, item: &JobItem) -> Result<(), LedgerError> {
        let update = sqlx::query(
            "UPDATE refund_job_items SET state = $3, amount = $4, refund_id = $5, error = $6,
                    attempts = $7, updated_at = $8
             WHERE job_id = $1 AND payment_intent_id = $2",
        )
        .bind(job_id)
        .bind(&item.payment_intent_id)
        .bind(item.state)
        .bind(item.amount)
        .bind(&item.refund_id)
        .bind(&item.error)
        .bind(item.attempts)
        .bind(now_iso());
        self.write(update).await.map(drop)
    }

    pub async fn finish_job(&self, job_id: &str) -> Result<(), LedgerError> {
        let update = sqlx::query("UPDATE refund_jobs SET finished_at = $2 WHERE id = $1")
            .bind(job_id)
            .bind(now_iso());
        self.write(update).await.map(drop)
    }
}
