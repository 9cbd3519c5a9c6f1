//! The buyers' Customers (one per account and e-mail, across instances and retries) and the
//! money in their cash balances (docs/contract.md, "Cash and bank transfers"): each cash balance
//! transaction recorded once, and money left in a balance no payment took told to the platform
//! once (`customer.unapplied_funds`).

use std::sync::LazyLock;

use serde_json::json;

use super::notifications::insert_notification;
use super::sql::{literal, Source};
use super::stored::{Kind, Outbox, Outcome};
use super::{column, now_iso, Ledger, LedgerError};
use crate::money::Major;
use crate::stripe::customers::{CashBalance, CashBalanceTransaction};
use crate::stripe::types::PaymentIntentStatus;

/// A buyer's Customer, as the ledger keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerRow {
    /// The connected account it lives on; empty for the platform's.
    pub account: String,
    pub email: String,
    pub customer_id: String,
}

impl Ledger {
    /// The Customer of `email` on `account` ('' for the platform), if one was made.
    pub async fn customer(
        &self,
        account: &str,
        email: &str,
    ) -> Result<Option<String>, LedgerError> {
        Ok(sqlx::query_scalar(
            "SELECT customer_id FROM customers WHERE account = $1 AND email = $2",
        )
        .bind(account)
        .bind(email)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Keeps `customer_id` as the Customer of `email` on `account`, unless another instance
    /// kept one first: the one kept is answered, so that every instance uses the same.
    pub async fn keep_customer(
        &self,
        account: &str,
        email: &str,
        customer_id: &str,
    ) -> Result<String, LedgerError> {
        let insert = sqlx::query(
            "INSERT INTO customers (account, email, customer_id, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (account, email) DO NOTHING",
        )
        .bind(account)
        .bind(email)
        .bind(customer_id)
        .bind(now_iso());
        self.write(insert).await?;
        self.customer(account, email)
            .await?
            .ok_or_else(|| LedgerError::Corrupt(format!("customer of {email} not kept")))
    }

    /// The Customers of `email`, on every account.
    pub async fn customers_of(&self, email: &str) -> Result<Vec<CustomerRow>, LedgerError> {
        let rows = sqlx::query(
            "SELECT account, email, customer_id FROM customers WHERE email = $1
             ORDER BY account",
        )
        .bind(email)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(CustomerRow {
                    account: column(r, "account")?,
                    email: column(r, "email")?,
                    customer_id: column(r, "customer_id")?,
                })
            })
            .collect()
    }

    /// The newest cash balance transaction the ledger knows of for `customer` in `currency`:
    /// what a return of the balance is keyed on, so that it is made once per amount.
    pub async fn newest_cash_transaction(
        &self,
        customer: &str,
        currency: &str,
    ) -> Result<Option<String>, LedgerError> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM cash_balance_transactions WHERE customer_id = $1 AND currency = $2
             ORDER BY created DESC, id DESC LIMIT 1",
        )
        .bind(customer)
        .bind(currency)
        .fetch_optional(&self.pool)
        .await?)
    }
}

/// A cash balance transaction from its event, recorded once.
pub(super) async fn apply_cash_transaction(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    transaction: &CashBalanceTransaction,
    account: Option<&str>,
) -> Result<Outcome, sqlx::Error> {
    let Some(customer) = &transaction.customer else {
        return Ok(Outcome::Unhandled);
    };
    let written = sqlx::query(
        "INSERT INTO cash_balance_transactions (id, customer_id, account, type, net_amount,
                                                currency, created)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&transaction.id)
    .bind(customer)
    .bind(account.unwrap_or(""))
    .bind(&transaction.r#type)
    .bind(transaction.net_amount)
    .bind(&transaction.currency)
    .bind(chrono::Utc::now().timestamp())
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(match written {
        0 => Outcome::Ignored,
        _ => Outcome::Applied,
    })
}

/// Money no payment took (`cash_balance.funds_available`): the platform is told once per event
/// and currency, with the customer's e-mail, so that it can offer the buyer their money back.
pub(super) async fn apply_funds_available(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    outbox: Outbox,
    balance: &CashBalance,
    account: Option<&str>,
    source: Source<'_>,
) -> Result<Outcome, sqlx::Error> {
    let Some(customer) = &balance.customer else {
        return Ok(Outcome::Unhandled);
    };
    if !outbox.enabled {
        return Ok(Outcome::Applied);
    }
    let email: Option<String> =
        sqlx::query_scalar("SELECT email FROM customers WHERE customer_id = $1 AND account = $2")
            .bind(customer)
            .bind(account.unwrap_or(""))
            .fetch_optional(&mut **tx)
            .await?;
    for (currency, amount) in balance.available.iter().filter(|(_, a)| **a > 0) {
        let data = json!({
            "customerId": customer,
            "email": email,
            "amount": Major::of(*amount, currency),
            "currency": currency,
            "account": account,
        });
        let subject = format!("{}:{currency}", source.event_id.unwrap_or(""));
        insert_notification(tx, customer, Kind::UnappliedFunds, &subject, data).await?;
    }
    Ok(Outcome::Applied)
}

/// A payment waiting for money (a voucher, a transfer, a debit processing), as the dashboard
/// lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct AwaitingRow {
    pub id: String,
    pub status: String,
    /// `oxxo`, `customer_balance` or `sepa_debit`.
    pub method: String,
    pub amount: i64,
    pub currency: String,
    /// Minor units a transfer still owes.
    pub amount_remaining: Option<i64>,
    /// When the buyer must have paid (ISO 8601 UTC); none for a debit.
    pub expires_at: Option<String>,
    /// When its seats are released, Unix milliseconds.
    pub hold_expires_ms: Option<i64>,
}

impl Ledger {
    /// Up to `limit` payments waiting for a voucher's payment, a transfer or a debit's outcome,
    /// the soonest deadline first.
    pub async fn awaiting_money(&self, limit: i64) -> Result<Vec<AwaitingRow>, LedgerError> {
        static AWAITING: LazyLock<String> = LazyLock::new(|| {
            format!(
                "SELECT id, status, method, amount, currency, amount_remaining, next_action,
                        hold_expires_ms
                 FROM payments
                 WHERE method IS NOT NULL
                   AND ((status = {} AND next_action IS NOT NULL) OR status = {})
                 ORDER BY hold_expires_ms, created LIMIT $1",
                literal(&PaymentIntentStatus::RequiresAction),
                literal(&PaymentIntentStatus::Processing)
            )
        });
        let rows = sqlx::query(&AWAITING)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let next: Option<String> = column(r, "next_action")?;
                let next = next.and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
                Ok(AwaitingRow {
                    id: column(r, "id")?,
                    status: column(r, "status")?,
                    method: column(r, "method")?,
                    amount: column(r, "amount")?,
                    currency: column(r, "currency")?,
                    amount_remaining: column(r, "amount_remaining")?,
                    expires_at: next
                        .as_ref()
                        .and_then(|n| n.get("expiresAt")?.as_str().map(str::to_string)),
                    hold_expires_ms: column(r, "hold_expires_ms")?,
                })
            })
            .collect()
    }
}
