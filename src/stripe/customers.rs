//! The Customers that bank transfers need (one per buyer's e-mail), the money of their cash
//! balances, and the refund that returns it to the buyer (`origin=customer_balance`).

use serde::Deserialize;
use serde_json::Value;

use super::client::{Readable, StripeClient, StripeError};
use super::form::Form;
use super::types::{null_as_default, HasId, Refund};

/// A Customer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Customer {
    pub id: String,
}

impl HasId for Customer {
    fn id(&self) -> &str {
        &self.id
    }
}

/// Money that reached or left a customer's cash balance: a `customer_cash_balance_transaction`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CashBalanceTransaction {
    pub id: String,
    /// `funded`, `applied_to_payment`, `unapplied_from_payment`, `return_initiated`, …
    #[serde(deserialize_with = "null_as_default")]
    pub r#type: String,
    /// Minor units; negative when money leaves the balance.
    #[serde(deserialize_with = "null_as_default")]
    pub net_amount: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub currency: String,
    pub customer: Option<String>,
}

impl HasId for CashBalanceTransaction {
    fn id(&self) -> &str {
        &self.id
    }
}

impl CashBalanceTransaction {
    pub fn from_value(value: &Value) -> Option<Self> {
        Self::deserialize(value).ok().filter(|t| !t.id.is_empty())
    }
}

/// A customer's `cash_balance` (the object of `cash_balance.funds_available`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct CashBalance {
    pub customer: Option<String>,
    /// Minor units per currency.
    #[serde(deserialize_with = "null_as_default")]
    pub available: std::collections::BTreeMap<String, i64>,
}

impl CashBalance {
    pub fn from_value(value: &Value) -> Option<Self> {
        Self::deserialize(value)
            .ok()
            .filter(|b| b.customer.is_some())
    }
}

impl StripeClient {
    /// `POST /v1/customers` with `email`, under `idempotency_key`.
    pub async fn create_customer(
        &self,
        email: &str,
        idempotency_key: &str,
    ) -> Result<Customer, StripeError> {
        let mut form = Form::new();
        form.push("email", email)
            .nested("metadata", "platform", "TMT");
        self.post("create_customer", "/v1/customers", &form, idempotency_key)
            .await
    }

    /// `POST /v1/refunds` with `customer` and `origin=customer_balance`: `amount` of the
    /// customer's cash balance in `currency` goes back to them.
    pub async fn return_cash_balance(
        &self,
        customer: &str,
        amount: i64,
        currency: &str,
        idempotency_key: &str,
    ) -> Result<Refund, StripeError> {
        let mut form = Form::new();
        form.push("customer", customer)
            .push("origin", "customer_balance")
            .push("amount", amount.to_string())
            .push("currency", currency)
            .nested("metadata", "platform", "TMT");
        self.post("return_cash_balance", "/v1/refunds", &form, idempotency_key)
            .await
    }
}

/// A balance without its customer is not one.
impl Readable for CashBalance {
    fn is_usable(&self) -> bool {
        self.customer.is_some()
    }
}

impl StripeClient {
    /// `GET /v1/customers/{id}/cash_balance`.
    pub async fn cash_balance(&self, customer: &str) -> Result<CashBalance, StripeError> {
        let path = format!("/v1/customers/{customer}/cash_balance");
        self.get("retrieve_cash_balance", &path).await
    }
}
