//! Stripe calls that webhook events call for (docs/contract.md §15, "Disputes"), kept as an
//! outbox is: written in the transaction of the event that calls for them, once per dispute and
//! kind (a unique id) whatever copies and order its events arrive in, and made afterwards,
//! outside any transaction, by the Connect worker. Each step is recorded before the next is
//! taken: the amount is fixed before Stripe is asked, so that a retry asks Stripe for the very
//! same call under the same key.

use serde::Serialize;
use sqlx::FromRow;

use super::rows::{Chronology, Listed, OfPayment};
use super::stored::{ActionKind, ActionState, ChargeType};
use super::{now_iso, Ledger, LedgerError};
use crate::stripe::types::{Dispute, DisputeStatus};

#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct ActionRow {
    pub id: String,
    pub kind: ActionKind,
    pub dispute_id: String,
    pub payment_intent_id: String,
    pub charge_id: Option<String>,
    #[serde(rename = "status")]
    #[sqlx(rename = "state")]
    pub state: ActionState,
    /// Minor units, once decided.
    pub amount: Option<i64>,
    pub transfer_id: Option<String>,
    /// A reversal: the fee refunded before it was made.
    pub fee_before: Option<i64>,
    /// A reversal: the fee it refunded.
    pub fee_returned: Option<i64>,
    /// The reversal (`trr_…`) or transfer (`tr_…`) made.
    pub result_id: Option<String>,
    pub attempts: i64,
    /// Unix milliseconds of the next try, for pending ones.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created: i64,
    pub updated_at: String,
}

impl Listed for ActionRow {
    const SELECT: &'static str = "SELECT id, kind, dispute_id, payment_intent_id, charge_id, \
         state, amount, transfer_id, fee_before, fee_returned, result_id, attempts, \
         next_attempt_at, last_error, created, updated_at FROM connect_actions";
    const ORDER: Chronology = Chronology::Created;
}
impl OfPayment for ActionRow {}

/// The id of the action of `kind` for `dispute`.
pub fn action_id(kind: ActionKind, dispute: &str) -> String {
    format!("{kind}:{dispute}")
}

/// Inside the transaction of a dispute's event: the Stripe calls it calls for. A dispute on a
/// destination charge made for an organiser (or one whose kind the ledger does not know yet:
/// the worker finds out) reverses the transfer once it is more than an inquiry, and gives it
/// back once it is won.
pub(super) async fn note_dispute(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    dispute: &Dispute,
) -> Result<(), sqlx::Error> {
    let kept: Option<(String, String)> =
        sqlx::query_as("SELECT d.payment_intent_id, d.status FROM disputes d WHERE d.id = $1")
            .bind(&dispute.id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some((payment_intent_id, status)) = kept else {
        return Ok(());
    };
    let payment: Option<(Option<String>, Option<ChargeType>)> =
        sqlx::query_as("SELECT organizer_id, charge_type FROM payments WHERE id = $1")
            .bind(&payment_intent_id)
            .fetch_optional(&mut **tx)
            .await?;
    let for_organizer = matches!(
        payment,
        Some((_, Some(ChargeType::Destination))) | Some((Some(_), None))
    );
    let status = DisputeStatus::parse(&status);
    let inquiry = matches!(
        status,
        DisputeStatus::WarningNeedsResponse
            | DisputeStatus::WarningUnderReview
            | DisputeStatus::WarningClosed
            | DisputeStatus::Prevented
    );
    if !for_organizer || inquiry {
        return Ok(());
    }
    let mut kinds = vec![ActionKind::DisputeReversal];
    if status == DisputeStatus::Won {
        kinds.push(ActionKind::DisputeReturn);
    }
    let (now, created) = (now_iso(), chrono::Utc::now());
    for kind in kinds {
        sqlx::query(
            "INSERT INTO connect_actions (id, kind, dispute_id, payment_intent_id, charge_id,
                                          state, next_attempt_at, created, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
        )
        .bind(action_id(kind, &dispute.id))
        .bind(kind)
        .bind(&dispute.id)
        .bind(&payment_intent_id)
        .bind(dispute.charge_id())
        .bind(ActionState::Pending)
        .bind(created.timestamp_millis())
        .bind(created.timestamp())
        .bind(&now)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Ledger {
    /// Whether any action is due now (a read: the idle worker's check writes nothing).
    pub async fn connect_actions_due(&self) -> Result<bool, LedgerError> {
        let due: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM connect_actions WHERE state = $1 AND next_attempt_at <= $2 LIMIT 1",
        )
        .bind(ActionState::Pending)
        .bind(chrono::Utc::now().timestamp_millis())
        .fetch_optional(&self.pool)
        .await?;
        Ok(due.is_some())
    }

    /// The actions due now, oldest first (a dispute's reversal before its return).
    pub async fn due_connect_actions(&self, limit: i64) -> Result<Vec<ActionRow>, LedgerError> {
        let sql = format!(
            "{} WHERE state = $1 AND next_attempt_at <= $2 ORDER BY created, kind DESC, id LIMIT $3",
            ActionRow::SELECT
        );
        let statement = sqlx::query(&sql)
            .bind(ActionState::Pending)
            .bind(chrono::Utc::now().timestamp_millis())
            .bind(limit);
        self.fetch_all(statement).await
    }

    pub async fn connect_action(&self, id: &str) -> Result<Option<ActionRow>, LedgerError> {
        let sql = format!("{} WHERE id = $1", ActionRow::SELECT);
        self.fetch_optional(sqlx::query(&sql).bind(id)).await
    }

    /// Fixes what a pending action will ask Stripe for, before it is asked: the amount, the
    /// transfer and (a reversal) the fee refunded so far. A decision already taken stands.
    pub async fn decide_connect_action(
        &self,
        id: &str,
        amount: i64,
        transfer_id: Option<&str>,
        fee_before: Option<i64>,
    ) -> Result<(), LedgerError> {
        let decide = sqlx::query(
            "UPDATE connect_actions SET amount = $2, transfer_id = $3, fee_before = $4,
                    updated_at = $5
             WHERE id = $1 AND amount IS NULL",
        )
        .bind(id)
        .bind(amount)
        .bind(transfer_id)
        .bind(fee_before)
        .bind(now_iso());
        self.write(decide).await.map(drop)
    }

    /// Ends a pending action: `done` with what it made, or `skipped` saying why.
    pub async fn end_connect_action(
        &self,
        id: &str,
        state: ActionState,
        result_id: Option<&str>,
        fee_returned: Option<i64>,
        note: Option<&str>,
    ) -> Result<(), LedgerError> {
        let end = sqlx::query(
            "UPDATE connect_actions SET state = $2, result_id = COALESCE($3, result_id),
                    fee_returned = COALESCE($4, fee_returned), last_error = $5, updated_at = $6
             WHERE id = $1 AND state = $7",
        )
        .bind(id)
        .bind(state)
        .bind(result_id)
        .bind(fee_returned)
        .bind(note)
        .bind(now_iso())
        .bind(ActionState::Pending);
        self.write(end).await.map(drop)
    }

    /// A try of a pending action failed: it is tried again at `next_attempt_at` (Unix ms), or
    /// given up on (`failed`) when `give_up`.
    pub async fn retry_connect_action(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: i64,
        give_up: bool,
    ) -> Result<(), LedgerError> {
        let state = match give_up {
            true => ActionState::Failed,
            false => ActionState::Pending,
        };
        let retry = sqlx::query(
            "UPDATE connect_actions SET attempts = attempts + 1, last_error = $2,
                    next_attempt_at = $3, state = $4, updated_at = $5
             WHERE id = $1 AND state = $6",
        )
        .bind(id)
        .bind(error)
        .bind(next_attempt_at)
        .bind(state)
        .bind(now_iso())
        .bind(ActionState::Pending);
        self.write(retry).await.map(drop)
    }
}
