//! Organisers paid through Stripe Connect: one row each, claimed before its connected account
//! is created so that concurrent first onboardings (on any number of instances) ask Stripe for
//! one account, under one key. The account's status is what its newest event (or the answer
//! that created it) said; `account.application.deauthorized` disconnects it for good.

use std::sync::LazyLock;

use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;

use super::rows::{json_column, Chronology, FromLedgerRow, Listed, Statement};
use super::sql::{list, literal, Source, DISCONNECTED};
use super::stored::Outcome;
use super::{column, now_iso, Ledger, LedgerError};
use crate::stripe::connect::Account;
use crate::stripe::types::{PaymentIntentStatus, RefundStatus};

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OrganizerRow {
    pub id: String,
    /// The connected account, once created.
    pub account_id: Option<String>,
    pub country: String,
    pub email: Option<String>,
    /// The organiser's own fee policy (the `fee` object as given), or `None` for the
    /// platform's.
    pub fee: Option<Value>,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    /// What Stripe still needs (`requirements.currently_due`).
    pub requirements_due: Vec<String>,
    pub disabled_reason: Option<String>,
    /// False once the account deauthorised the platform.
    pub connected: bool,
    /// Unix seconds.
    pub created: i64,
    pub updated_at: String,
}

/// One currency's payments of an organiser; amounts in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OrganizerTotal {
    pub currency: String,
    pub payments: i64,
    pub succeeded: i64,
    /// What the succeeded ones charged.
    pub succeeded_amount: i64,
    /// Pending and succeeded refunds of those payments.
    pub refunded_amount: i64,
    /// The platform's fees on the succeeded ones, and what of them went back.
    pub application_fees: i64,
    pub application_fees_refunded: i64,
    /// What was reversed of the transfers to the organiser (destination charges).
    pub transfers_reversed: i64,
}

impl OrganizerRow {
    /// Whether payments can be made for the organiser now: its account can take charges and
    /// is still connected to the platform.
    pub fn ready(&self) -> bool {
        self.account_id.is_some() && self.charges_enabled && self.connected
    }
}

impl FromLedgerRow for OrganizerRow {
    fn from_ledger_row(r: &AnyRow) -> Result<Self, LedgerError> {
        let fee: Option<String> = column(r, "fee")?;
        let fee = match fee {
            Some(_) => Some(json_column(r, "fee", "an organiser")?),
            None => None,
        };
        let due = json_column(r, "requirements_due", "an organiser")?;
        let requirements_due = serde_json::from_value(due)
            .map_err(|e| LedgerError::Corrupt(format!("requirements_due of an organiser: {e}")))?;
        let flag = |name: &str| column::<i64>(r, name).map(|v| v != 0);
        Ok(OrganizerRow {
            id: column(r, "id")?,
            account_id: column(r, "account_id")?,
            country: column(r, "country")?,
            email: column(r, "email")?,
            fee,
            charges_enabled: flag("charges_enabled")?,
            payouts_enabled: flag("payouts_enabled")?,
            details_submitted: flag("details_submitted")?,
            requirements_due,
            disabled_reason: column(r, "disabled_reason")?,
            connected: flag("connected")?,
            created: column(r, "created")?,
            updated_at: column(r, "updated_at")?,
        })
    }
}

impl Listed for OrganizerRow {
    const SELECT: &'static str = "SELECT id, account_id, country, email, fee, charges_enabled, \
         payouts_enabled, details_submitted, requirements_due, disabled_reason, connected, \
         created, updated_at FROM organizers";
    const ORDER: Chronology = Chronology::Created;
}

/// The account's status fields, set from an account when the information is not older than
/// what the row knows ($8, Unix seconds); `$1` is the account, `$9` the event (or null).
const STATUS_FROM_ACCOUNT: &str = "charges_enabled = CASE WHEN status_at <= $8 THEN $2 ELSE charges_enabled END,
    payouts_enabled = CASE WHEN status_at <= $8 THEN $3 ELSE payouts_enabled END,
    details_submitted = CASE WHEN status_at <= $8 THEN $4 ELSE details_submitted END,
    requirements_due = CASE WHEN status_at <= $8 THEN $5 ELSE requirements_due END,
    disabled_reason = CASE WHEN status_at <= $8 THEN $6 ELSE disabled_reason END,
    last_event_id = CASE WHEN status_at <= $8 THEN COALESCE($9, last_event_id) ELSE last_event_id END,
    status_at = CASE WHEN status_at <= $8 THEN $8 ELSE status_at END,
    updated_at = $7";

/// The statement `sql` that writes an account's status onto its organiser's row, with `extra`
/// bound as its `$10`….
fn status_statement<'q>(
    sql: &'q str,
    account: &'q Account,
    at: i64,
    event_id: Option<&'q str>,
    extra: &[Option<&'q str>],
) -> Statement<'q> {
    let due = Value::from(account.requirements.currently_due.clone()).to_string();
    let query = sqlx::query(sql)
        .bind(&account.id)
        .bind(i64::from(account.charges_enabled))
        .bind(i64::from(account.payouts_enabled))
        .bind(i64::from(account.details_submitted))
        .bind(due)
        .bind(&account.requirements.disabled_reason)
        .bind(now_iso())
        .bind(at)
        .bind(event_id);
    extra.iter().fold(query, |query, value| query.bind(*value))
}

/// `account.updated`, inside the event's transaction: the organiser of the account takes its
/// status unless it knows something newer.
pub(super) async fn apply_account(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account: &Account,
    source: Source<'_>,
) -> Result<Outcome, sqlx::Error> {
    static UPDATE: LazyLock<String> = LazyLock::new(|| {
        format!(
            "UPDATE organizers SET {STATUS_FROM_ACCOUNT}
             WHERE account_id = $1 AND status_at <= $8"
        )
    });
    let moved = status_statement(&UPDATE, account, source.at, source.event_id, &[])
        .execute(&mut **tx)
        .await?
        .rows_affected();
    moved_or_not(tx, moved, &account.id).await
}

/// `account.application.deauthorized`, inside the event's transaction: the organiser of the
/// account is disconnected, whatever the events' order (nothing connects it again but a new
/// onboarding, with a new account).
pub(super) async fn deauthorize(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    account_id: &str,
    source: Source<'_>,
) -> Result<Outcome, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE organizers SET connected = 0, updated_at = $2, last_event_id = $3
         WHERE account_id = $1 AND connected = 1",
    )
    .bind(account_id)
    .bind(now_iso())
    .bind(source.event_id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    moved_or_not(tx, moved, account_id).await
}

/// What an account's event did to the ledger: `Applied` when it moved the organiser's row
/// (`moved` rows), else `Ignored` for an account the ledger knows and `Foreign` for one it does
/// not.
async fn moved_or_not(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    moved: u64,
    account_id: &str,
) -> Result<Outcome, sqlx::Error> {
    if moved > 0 {
        return Ok(Outcome::Applied);
    }
    let known = sqlx::query("SELECT 1 FROM organizers WHERE account_id = $1")
        .bind(account_id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(match known {
        Some(_) => Outcome::Ignored,
        None => Outcome::Foreign,
    })
}

impl Ledger {
    /// Claims the organiser `id` (a new row with `country` and `email`, or the one there is)
    /// and sets its own fee policy when `fee` is given; the row as it stands.
    pub async fn claim_organizer(
        &self,
        id: &str,
        country: &str,
        email: Option<&str>,
        fee: Option<&Value>,
    ) -> Result<OrganizerRow, LedgerError> {
        let result = async {
            let now = now_iso();
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "INSERT INTO organizers (id, country, email, created, updated_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id)
            .bind(country)
            .bind(email)
            .bind(chrono::Utc::now().timestamp())
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            if let Some(fee) = fee {
                sqlx::query("UPDATE organizers SET fee = $2, updated_at = $3 WHERE id = $1")
                    .bind(id)
                    .bind(fee.to_string())
                    .bind(&now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        };
        let claimed = result.await;
        self.watch(claimed)?;
        self.organizer(id)
            .await?
            .ok_or_else(|| LedgerError::Corrupt(format!("organiser {id} vanished once claimed")))
    }

    /// Records the account Stripe created for the organiser `id` (read at `at`, Unix seconds):
    /// unless the row already has another one, which only a deauthorised `previous` account may
    /// be, it becomes the organiser's, connected. The row as it stands.
    pub async fn set_organizer_account(
        &self,
        id: &str,
        previous: Option<&str>,
        account: &Account,
        at: i64,
    ) -> Result<OrganizerRow, LedgerError> {
        static SET: LazyLock<String> = LazyLock::new(|| {
            format!(
                "UPDATE organizers SET {STATUS_FROM_ACCOUNT},
                        connected = CASE WHEN account_id = $1 THEN connected ELSE 1 END,
                        account_id = $1
                 WHERE id = $10 AND (account_id IS NULL OR account_id = $1
                                     OR account_id = $11)"
            )
        });
        self.write(status_statement(
            &SET,
            account,
            at,
            None,
            &[Some(id), previous],
        ))
        .await?;
        self.organizer(id)
            .await?
            .ok_or_else(|| LedgerError::Corrupt(format!("organiser {id} vanished once claimed")))
    }

    pub async fn organizer(&self, id: &str) -> Result<Option<OrganizerRow>, LedgerError> {
        static ONE: LazyLock<String> =
            LazyLock::new(|| format!("{} WHERE id = $1", OrganizerRow::SELECT));
        self.fetch_optional(sqlx::query(&ONE).bind(id)).await
    }

    /// The connected accounts of the organisers still connected, oldest first.
    pub async fn organizer_accounts(&self) -> Result<Vec<String>, LedgerError> {
        Ok(sqlx::query_scalar(
            "SELECT account_id FROM organizers
             WHERE account_id IS NOT NULL AND connected = 1 ORDER BY created, id",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// The connected accounts that direct charges were made on, but those the ledger knows
    /// were disconnected (deauthorised: the platform can no longer read them).
    pub async fn direct_charge_accounts(&self) -> Result<Vec<String>, LedgerError> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT DISTINCT stripe_account FROM payments
             WHERE stripe_account IS NOT NULL AND stripe_account NOT IN {DISCONNECTED}"
        ))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Per currency (alphabetical): the organiser's payments, what the succeeded ones charged,
    /// what was refunded, the platform's fees and what of them and of the transfers went back.
    pub async fn organizer_totals(&self, id: &str) -> Result<Vec<OrganizerTotal>, LedgerError> {
        static TOTALS: LazyLock<String> = LazyLock::new(|| {
            let succeeded = literal(&PaymentIntentStatus::Succeeded);
            let when = |what: &str| {
                format!(
                    "CAST(SUM(CASE WHEN p.status = {succeeded} THEN {what} ELSE 0 END) AS BIGINT)"
                )
            };
            format!(
                "SELECT p.currency AS currency, COUNT(*) AS payments,
                        {} AS succeeded, {} AS succeeded_amount,
                        CAST(COALESCE(SUM(r.refunded), 0) AS BIGINT) AS refunded_amount,
                        {} AS application_fees,
                        CAST(SUM(p.application_fee_refunded) AS BIGINT) AS application_fees_refunded,
                        CAST(SUM(p.transfer_reversed) AS BIGINT) AS transfers_reversed
                 FROM payments p
                 LEFT JOIN (SELECT payment_intent_id, SUM(amount) AS refunded FROM refunds
                            WHERE status IN {} GROUP BY payment_intent_id) r
                        ON r.payment_intent_id = p.id
                 WHERE p.organizer_id = $1
                 GROUP BY p.currency ORDER BY p.currency",
                when("1"),
                when("COALESCE(p.amount_received, p.amount)"),
                when("COALESCE(p.application_fee, 0)"),
                list(RefundStatus::COUNTED)
            )
        });
        self.fetch_all(sqlx::query(&TOTALS).bind(id)).await
    }

    /// Organisers, newest first, `limit` at the most.
    pub async fn organizers(&self, limit: i64) -> Result<Vec<OrganizerRow>, LedgerError> {
        let sql = format!(
            "{} ORDER BY {} LIMIT $1",
            OrganizerRow::SELECT,
            OrganizerRow::ORDER.newest_first()
        );
        self.fetch_all(sqlx::query(&sql).bind(limit)).await
    }
}
