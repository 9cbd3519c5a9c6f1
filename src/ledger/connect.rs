//! What the ledger keeps of payments made for organisers through Stripe Connect: whose they
//! are, how their money reaches the organiser (a destination charge's transfer, a direct
//! charge's account), the platform's application fee and what of it went back. Written by
//! create (which knows it all) and filled in from events (a direct charge's events carry its
//! account, its charge names its transfer and fee), so that a payment the ledger first hears of
//! from Stripe is followed just the same.

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::Value;
use sqlx::FromRow;

use super::rows::{Chronology, Listed, OfPayment};
use super::sql::payment_columns;
use super::stored::ChargeType;
use super::{now_iso, Ledger, LedgerError};
use crate::stripe::connect::ConnectMoney;
use crate::stripe::types::PaymentIntent;

/// A payment's Connect columns.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct ConnectPayment {
    pub organizer_id: Option<String>,
    pub charge_type: Option<ChargeType>,
    /// The connected account of a direct charge: every call about it carries it.
    pub stripe_account: Option<String>,
    /// Minor units.
    pub application_fee: Option<i64>,
    pub application_fee_id: Option<String>,
    /// What of the fee went back, minor units.
    pub application_fee_refunded: i64,
    /// A destination charge's transfer to the organiser.
    pub transfer_id: Option<String>,
    pub transfer_amount: Option<i64>,
    /// What of the transfer was reversed, minor units.
    pub transfer_reversed: i64,
}

const CONNECT_COLUMNS: &str = "organizer_id, charge_type, stripe_account, application_fee, \
     application_fee_id, application_fee_refunded, transfer_id, transfer_amount, \
     transfer_reversed";

/// Money taken back from a destination charge's transfer.
#[derive(Debug, Clone, PartialEq, Serialize, FromRow)]
pub struct ReversalRow {
    pub id: String,
    pub transfer_id: String,
    pub payment_intent_id: String,
    /// Minor units.
    pub amount: i64,
    /// The refund that made it, if one did.
    pub refund_id: Option<String>,
    /// The dispute it was made for, if one was.
    pub dispute_id: Option<String>,
    /// Unix seconds.
    pub created: i64,
    pub updated_at: String,
}

impl Listed for ReversalRow {
    const SELECT: &'static str = "SELECT id, transfer_id, payment_intent_id, amount, refund_id, \
         dispute_id, created, updated_at FROM transfer_reversals";
    const ORDER: Chronology = Chronology::Created;
}
impl OfPayment for ReversalRow {}

/// Where the service notes, on a reversal it makes, the dispute it makes it for.
pub const DISPUTE_KEY: &str = "tmt_dispute";

/// What create knows of a payment it made for an organiser.
#[derive(Debug, Clone)]
pub struct ConnectNote<'a> {
    pub organizer_id: &'a str,
    pub charge_type: ChargeType,
    /// A direct charge's account.
    pub stripe_account: Option<&'a str>,
    pub application_fee: i64,
}

/// A payment's Connect columns filled in where still unknown (`$1` the payment).
const FILL: &str = "UPDATE payments SET
        organizer_id = COALESCE(organizer_id, $2),
        charge_type = COALESCE(charge_type, $3),
        stripe_account = COALESCE(stripe_account, $4),
        application_fee = COALESCE(application_fee, $5)
     WHERE id = $1";

impl Ledger {
    /// Records what create knows of a payment made for an organiser.
    pub async fn note_connect(&self, id: &str, note: &ConnectNote<'_>) -> Result<(), LedgerError> {
        let fill = sqlx::query(FILL)
            .bind(id)
            .bind(note.organizer_id)
            .bind(note.charge_type)
            .bind(note.stripe_account)
            .bind(note.application_fee);
        self.write(fill).await.map(drop)
    }

    /// Brings a payment's fee and transfer up to date with what Stripe said of them: what went
    /// back of either only ever grows (a read that crossed a newer one keeps the newer), and
    /// each reversal is kept once.
    pub async fn record_connect_money(
        &self,
        id: &str,
        money: &ConnectMoney,
    ) -> Result<(), LedgerError> {
        let result = async {
            let mut tx = self.pool.begin().await?;
            let (fee, transfer) = (money.fee.as_ref(), money.transfer.as_ref());
            sqlx::query(
                "UPDATE payments SET
                    application_fee_id = COALESCE($2, application_fee_id),
                    application_fee = COALESCE($3, application_fee),
                    application_fee_refunded = CASE WHEN $4 > application_fee_refunded
                        THEN $4 ELSE application_fee_refunded END,
                    transfer_id = COALESCE($5, transfer_id),
                    transfer_amount = COALESCE($6, transfer_amount),
                    transfer_reversed = CASE WHEN $7 > transfer_reversed
                        THEN $7 ELSE transfer_reversed END
                 WHERE id = $1",
            )
            .bind(id)
            .bind(fee.map(|f| f.id.as_str()))
            .bind(fee.map(|f| f.amount))
            .bind(fee.map_or(0, |f| f.amount_refunded))
            .bind(transfer.map(|t| t.id.as_str()))
            .bind(transfer.map(|t| t.amount))
            .bind(transfer.map_or(0, |t| t.amount_reversed))
            .execute(&mut *tx)
            .await?;
            let now = now_iso();
            for reversal in transfer.iter().flat_map(|t| &t.reversals.data) {
                let dispute = reversal.metadata.get(DISPUTE_KEY).and_then(Value::as_str);
                sqlx::query(
                    "INSERT INTO transfer_reversals (id, transfer_id, payment_intent_id, amount,
                                                     refund_id, dispute_id, created, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&reversal.id)
                .bind(transfer.map(|t| t.id.as_str()))
                .bind(id)
                .bind(reversal.amount)
                .bind(&reversal.source_refund)
                .bind(dispute)
                .bind(reversal.created)
                .bind(&now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        };
        let result = result.await;
        self.watch(result)
    }

    /// A payment's Connect columns, if the ledger has the payment.
    pub async fn connect_of(&self, id: &str) -> Result<Option<ConnectPayment>, LedgerError> {
        static ONE: LazyLock<String> =
            LazyLock::new(|| format!("SELECT {CONNECT_COLUMNS} FROM payments WHERE id = $1"));
        self.fetch_optional(sqlx::query(&ONE).bind(id)).await
    }

    /// The connected account every call about the payment `id` must act for (a direct
    /// charge's), if any.
    pub async fn payment_account(&self, id: &str) -> Result<Option<String>, LedgerError> {
        let account: Option<Option<String>> =
            sqlx::query_scalar("SELECT stripe_account FROM payments WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(account.flatten())
    }
}

/// Inside an event's transaction, after its PaymentIntent was applied: what it says of the
/// organiser (`metadata.organizer_id`), the fee, and how the money goes (`account` of a direct
/// charge's event, `transfer_data` of a destination charge).
pub(super) async fn note_from_payment_event(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    pi: &PaymentIntent,
    account: Option<&str>,
) -> Result<(), sqlx::Error> {
    let organizer = pi.metadata.get("organizer_id").and_then(Value::as_str);
    let charge_type = match (account, pi.destination()) {
        (Some(_), _) => Some(ChargeType::Direct),
        (None, Some(_)) => Some(ChargeType::Destination),
        (None, None) => None,
    };
    if organizer.is_none() && charge_type.is_none() {
        return Ok(());
    }
    sqlx::query(FILL)
        .bind(&pi.id)
        .bind(organizer)
        .bind(charge_type)
        .bind(account)
        .bind(pi.application_fee_amount)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Inside an event's transaction, after a Charge of a payment was kept: the transfer and the
/// fee it names (ids, or the expanded objects), when its payment is one the ledger follows.
pub(super) async fn note_from_charge(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    payment_intent_id: &str,
    charge: &Value,
) -> Result<(), sqlx::Error> {
    let id_of = |field: &str| match &charge[field] {
        Value::String(id) => Some(id.clone()),
        Value::Object(object) => object.get("id").and_then(Value::as_str).map(str::to_string),
        _ => None,
    };
    let (transfer, fee) = (id_of("transfer"), id_of("application_fee"));
    if transfer.is_none() && fee.is_none() {
        return Ok(());
    }
    if payment_columns(tx, payment_intent_id, "1").await?.is_none() {
        return Ok(());
    }
    let fee_amount = charge["application_fee_amount"].as_i64();
    sqlx::query(
        "UPDATE payments SET transfer_id = COALESCE(transfer_id, $2),
                application_fee_id = COALESCE(application_fee_id, $3),
                application_fee = COALESCE(application_fee, $4)
         WHERE id = $1",
    )
    .bind(payment_intent_id)
    .bind(transfer)
    .bind(fee)
    .bind(fee_amount)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
