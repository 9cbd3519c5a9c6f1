//! What moved an account's balance, and the payouts that took it to the bank (docs/contract.md
//! §17): balance transactions listed page by page, with their `source` expanded so that each
//! can be tied to its payment, and payouts as their events carry them. Read leniently, as every
//! object is (`types`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::client::{safe_id, StripeClient, StripeError};
use super::types::{null_as_default, HasId, List};

/// One balance transaction, as Stripe listed it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BalanceTransaction {
    pub id: String,
    pub entry: Entry,
    /// The id of what caused it (`ch_…`, `re_…`, `dp_…`, `fee_…`, `tr_…`, `po_…`).
    pub source: Option<String>,
    /// How to find its payment, as far as its expanded source says.
    pub link: Option<Link>,
}

/// What a balance transaction moved, of which kind and when: the part of it that reads the same
/// from Stripe and from the ledger's row of it (`ledger::BalanceRow`), which reads it by name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Entry {
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub kind: String,
    pub reporting_category: String,
    pub amount: i64,
    pub fee: i64,
    /// `fee_details` by type.
    pub stripe_fee: i64,
    pub application_fee: i64,
    pub tax: i64,
    pub net: i64,
    pub currency: String,
    /// As Stripe wrote it (a rate, never money); `None` when nothing was converted.
    pub exchange_rate: Option<String>,
    pub available_on: i64,
    pub created: i64,
}

/// What ties a balance transaction to a payment: the PaymentIntent itself, or an object the
/// ledger knows the payment of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    PaymentIntent(String),
    Charge(String),
    ApplicationFee(String),
    Transfer(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Raw {
    id: String,
    #[serde(rename = "type", deserialize_with = "null_as_default")]
    kind: String,
    #[serde(deserialize_with = "null_as_default")]
    reporting_category: String,
    #[serde(deserialize_with = "null_as_default")]
    amount: i64,
    #[serde(deserialize_with = "null_as_default")]
    fee: i64,
    #[serde(deserialize_with = "null_as_default")]
    fee_details: Vec<FeeDetail>,
    #[serde(deserialize_with = "null_as_default")]
    net: i64,
    #[serde(deserialize_with = "null_as_default")]
    currency: String,
    exchange_rate: Option<serde_json::Number>,
    #[serde(deserialize_with = "null_as_default")]
    available_on: i64,
    #[serde(deserialize_with = "null_as_default")]
    created: i64,
    source: Value,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct FeeDetail {
    #[serde(deserialize_with = "null_as_default")]
    amount: i64,
    #[serde(rename = "type", deserialize_with = "null_as_default")]
    kind: String,
}

impl BalanceTransaction {
    /// Reads one from what Stripe listed; `None` without a `txn_…` id.
    pub fn from_value(value: &Value) -> Option<BalanceTransaction> {
        let raw = Raw::deserialize(value).ok()?;
        if !raw.id.starts_with("txn_") {
            return None;
        }
        let by_type = |kind: &str| -> i64 {
            raw.fee_details
                .iter()
                .filter(|d| d.kind == kind)
                .map(|d| d.amount)
                .sum()
        };
        let source = id_in(Some(&raw.source));
        Some(BalanceTransaction {
            entry: Entry {
                stripe_fee: by_type("stripe_fee"),
                application_fee: by_type("application_fee"),
                tax: by_type("tax"),
                kind: raw.kind,
                reporting_category: raw.reporting_category,
                amount: raw.amount,
                fee: raw.fee,
                net: raw.net,
                currency: raw.currency.to_ascii_lowercase(),
                exchange_rate: raw.exchange_rate.map(|r| r.to_string()),
                available_on: raw.available_on,
                created: raw.created,
            },
            link: link(&raw.source),
            id: raw.id,
            source,
        })
    }
}

/// The id in an expandable field, sent as an id or as the object.
fn id_in(field: Option<&Value>) -> Option<String> {
    match field? {
        Value::String(id) => Some(id.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// What the expanded source says of its payment.
fn link(source: &Value) -> Option<Link> {
    let object = source.as_object()?;
    let field = |name: &str| id_in(object.get(name));
    match object.get("object").and_then(Value::as_str)? {
        "charge" | "refund" | "dispute" => field("payment_intent")
            .map(Link::PaymentIntent)
            .or_else(|| field("charge").map(Link::Charge))
            .or_else(|| field("source_transfer").map(Link::Transfer)),
        "application_fee" => id_in(object.get("id")).map(Link::ApplicationFee),
        "fee_refund" => field("fee").map(Link::ApplicationFee),
        "transfer" => id_in(object.get("id")).map(Link::Transfer),
        "transfer_reversal" => field("transfer").map(Link::Transfer),
        _ => None,
    }
}

/// A payout, as its events carry it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Payout {
    pub id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub amount: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub currency: String,
    #[serde(deserialize_with = "null_as_default")]
    pub arrival_date: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub status: String,
    #[serde(deserialize_with = "null_as_default")]
    pub automatic: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub reconciliation_status: String,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub created: i64,
}

impl HasId for Payout {
    fn id(&self) -> &str {
        &self.id
    }
}

impl Payout {
    /// Reads one from any JSON Stripe sent for it; `None` without a `po_…` id.
    pub fn from_value(value: &Value) -> Option<Payout> {
        Payout::deserialize(value)
            .ok()
            .filter(|p| p.id.starts_with("po_"))
    }
}

impl StripeClient {
    /// `GET /v1/balance_transactions`: one page (100) of the account's transactions created at
    /// or after `since`, newest first, after `starting_after`, their sources expanded.
    pub async fn list_balance_transactions(
        &self,
        since: i64,
        starting_after: Option<&str>,
    ) -> Result<List<Value>, StripeError> {
        let expand = [("expand[]", "data.source")];
        self.page(
            "list_balance_transactions",
            "/v1/balance_transactions",
            Some(since),
            &expand,
            starting_after,
        )
        .await
    }

    /// `GET /v1/balance_transactions?payout=po_…`: one page of what an automatic payout paid
    /// out (and its own `payout` transaction), once Stripe's reconciliation of it is complete.
    pub async fn list_payout_items(
        &self,
        payout: &str,
        starting_after: Option<&str>,
    ) -> Result<List<Value>, StripeError> {
        safe_id(payout)?;
        let filters = [("payout", payout), ("expand[]", "data.source")];
        self.page(
            "list_payout_items",
            "/v1/balance_transactions",
            None,
            &filters,
            starting_after,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fees_are_split_by_type_and_sources_tie_to_payments() {
        let txn = BalanceTransaction::from_value(&json!({
            "id": "txn_1", "object": "balance_transaction", "type": "charge",
            "reporting_category": "charge", "amount": 10000, "fee": 766, "net": 9234,
            "currency": "MXN", "exchange_rate": 0.05, "available_on": 5, "created": 3,
            "fee_details": [
                {"amount": 660, "type": "stripe_fee"}, {"amount": 106, "type": "tax"},
                {"amount": null, "type": "application_fee"}, {"amount": 1, "type": "future"}
            ],
            "source": {"id": "ch_1", "object": "charge", "payment_intent": "pi_1"}
        }))
        .unwrap();
        assert_eq!(
            (
                txn.entry.stripe_fee,
                txn.entry.tax,
                txn.entry.application_fee
            ),
            (660, 106, 0)
        );
        assert_eq!(txn.entry.currency, "mxn");
        assert_eq!(txn.entry.exchange_rate.as_deref(), Some("0.05"));
        assert_eq!(txn.source.as_deref(), Some("ch_1"));
        assert_eq!(txn.link, Some(Link::PaymentIntent("pi_1".into())));

        let of = |source: Value| {
            BalanceTransaction::from_value(&json!({"id": "txn_2", "source": source}))
                .unwrap()
                .link
        };
        assert_eq!(of(json!("ch_9")), None, "an id alone says nothing");
        assert_eq!(
            of(json!({"id": "fee_1", "object": "application_fee", "charge": "ch_1"})),
            Some(Link::ApplicationFee("fee_1".into()))
        );
        assert_eq!(
            of(json!({"id": "fr_1", "object": "fee_refund", "fee": "fee_2"})),
            Some(Link::ApplicationFee("fee_2".into()))
        );
        assert_eq!(
            of(json!({"id": "trr_1", "object": "transfer_reversal", "transfer": {"id": "tr_1"}})),
            Some(Link::Transfer("tr_1".into()))
        );
        assert_eq!(
            of(json!({"id": "py_1", "object": "charge", "source_transfer": "tr_2"})),
            Some(Link::Transfer("tr_2".into()))
        );
        assert_eq!(of(json!({"id": "po_1", "object": "payout"})), None);
        assert!(BalanceTransaction::from_value(&json!({"id": "ch_1"})).is_none());
    }

    #[test]
    fn payouts_are_read_leniently() {
        let p = Payout::from_value(&json!({
            "id": "po_1", "amount": 1200, "currency": "usd", "automatic": true,
            "status": "paid", "reconciliation_status": "completed", "failure_code": null,
            "arrival_date": 7, "created": 6, "future": {}
        }))
        .unwrap();
        assert!(p.automatic && p.status == "paid" && p.reconciliation_status == "completed");
        assert!(Payout::from_value(&json!({"id": "tr_1"})).is_none());
    }
}
