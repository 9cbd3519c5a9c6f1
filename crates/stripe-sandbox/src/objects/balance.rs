//! Balance objects: balance transactions (what moved an account's balance, and what Stripe
//! kept of it), payouts (money sent from the balance to the bank), and the balance itself.

use serde_json::{json, Map, Value};

use super::new_id;

/// A balance transaction as the sandbox keeps it. Its `status` is what it was when made; it is
/// set afresh from `available_on` whenever the transaction is shown.
pub struct NewTransaction<'a> {
    /// The id the object that caused it already names (`balance_transaction`), else a new one.
    pub id: Option<String>,
    /// Stripe's `type`: `charge`, `refund`, `payout`, …
    pub kind: &'a str,
    pub reporting_category: &'a str,
    /// The object that caused it.
    pub source: &'a str,
    /// In the settlement currency: positive adds to the balance.
    pub amount: i64,
    pub currency: &'a str,
    /// The rate the amount was converted at, as JSON (null when it was not).
    pub exchange_rate: Value,
    /// `fee_details`: `{"amount", "application", "currency", "description", "type"}`.
    pub fee_details: Vec<Value>,
    pub description: Option<String>,
    pub created: i64,
    pub available_on: i64,
    pub status: &'a str,
}

pub fn balance_transaction(t: NewTransaction<'_>) -> Value {
    let fee: i64 = t
        .fee_details
        .iter()
        .map(|f| f["amount"].as_i64().unwrap_or(0))
        .sum();
    json!({
        "amount": t.amount,
        "available_on": t.available_on,
        "balance_type": "payments",
        "created": t.created,
        "currency": t.currency,
        "description": t.description,
        "exchange_rate": t.exchange_rate,
        "fee": fee,
        "fee_details": t.fee_details,
        "id": t.id.unwrap_or_else(|| new_id("txn")),
        "net": t.amount - fee,
        "object": "balance_transaction",
        "reporting_category": t.reporting_category,
        "source": t.source,
        "status": t.status,
        "type": t.kind,
    })
}

/// One line of `fee_details`.
pub fn fee_detail(
    kind: &str,
    amount: i64,
    currency: &str,
    description: &str,
    application: Option<&str>,
) -> Value {
    json!({"amount": amount, "application": application, "currency": currency,
           "description": description, "type": kind})
}

pub struct NewPayout<'a> {
    pub amount: i64,
    pub currency: &'a str,
    /// Made by the payout schedule (the sandbox's control), or requested through the API.
    pub automatic: bool,
    pub arrival_date: i64,
    /// The bank account it goes to, where the account has one.
    pub destination: Value,
    pub description: Option<String>,
    pub statement_descriptor: Option<String>,
    pub metadata: Map<String, Value>,
    pub created: i64,
}

/// A new payout, `pending`, with the balance transaction that takes its amount out of the
/// balance (`balance_transaction`, made by the caller with that id).
pub fn payout(p: NewPayout<'_>) -> Value {
    json!({
        "amount": p.amount,
        "application_fee": null,
        "application_fee_amount": null,
        "arrival_date": p.arrival_date,
        "automatic": p.automatic,
        "balance_transaction": new_id("txn"),
        "created": p.created,
        "currency": p.currency,
        "description": p.description,
        "destination": p.destination,
        "failure_balance_transaction": null,
        "failure_code": null,
        "failure_message": null,
        "id": new_id("po"),
        "livemode": false,
        "metadata": p.metadata,
        "method": "standard",
        "object": "payout",
        "original_payout": null,
        "payout_method": null,
        "reconciliation_status": if p.automatic { "in_progress" } else { "not_applicable" },
        "reversed_by": null,
        "source_type": "card",
        "statement_descriptor": p.statement_descriptor,
        "status": "pending",
        "trace_id": {"status": "unsupported", "value": null},
        "type": "bank_account",
    })
}

/// One currency of a balance: `{"amount", "currency", "source_types": {"card"}}`.
pub fn balance_amount(amount: i64, currency: &str) -> Value {
    json!({"amount": amount, "currency": currency, "source_types": {"card": amount}})
}

/// The balance: what is available and what is pending, per currency.
pub fn balance(available: Vec<Value>, pending: Vec<Value>, reserved: Vec<Value>) -> Value {
    json!({
        "available": available,
        "connect_reserved": reserved,
        "livemode": false,
        "object": "balance",
        "pending": pending,
    })
}
